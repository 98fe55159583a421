//! Network namespaces, veth pairs and tap devices for tests, each torn down
//! by a guard's `Drop` (also when a test fails or panics).
//!
//! Names carry the process id and a counter, so parallel runs never collide,
//! and stay within the kernel's 15-byte interface-name limit. Everything here
//! needs root (CAP_NET_ADMIN) and `ip` from iproute2.
//!
//! Drop order matters only for tidiness: a veth or tap inside a namespace
//! vanishes with the namespace, and guards ignore devices already gone.
// A shared toolbox: the hosted and the appliance tests each use part of it.
#![allow(dead_code)]

use crate::shell::describe;
use anyhow::{Context, Result, bail};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Debian packages that provide the tools the network tests drive.
pub const NET_TOOL_PACKAGES: [&str; 4] = [
    "iproute2",
    "iputils-ping",
    "iputils-arping",
    "netcat-openbsd",
];

/// Programs that must be on PATH, and the package that ships each.
const NET_TOOLS: [(&str, &str); 4] = [
    ("ip", "iproute2"),
    ("ping", "iputils-ping"),
    ("arping", "iputils-arping"),
    ("nc", "netcat-openbsd"),
];

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;

/// Makes sure `ip`, `ping`, `arping` and `nc` are installed: as root, installs
/// the missing packages with `apt-get install -y`; otherwise fails naming them.
pub fn ensure_net_tools() -> Result<()> {
    let missing: Vec<&str> = NET_TOOLS
        .iter()
        .filter(|(program, _)| !crate::shell::have(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "network tests need {} (missing: {}); install them with \
             `sudo apt-get install -y {}` or run as root",
            NET_TOOL_PACKAGES.join(", "),
            missing.join(", "),
            missing.join(" ")
        );
    }
    crate::shell::run(
        "apt-get update",
        Command::new("apt-get").args(["update", "-q"]),
    )?;
    crate::shell::run(
        "install network tools",
        Command::new("apt-get")
            .args(["install", "-y", "-q"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    let still_missing: Vec<&str> = NET_TOOLS
        .iter()
        .filter(|(program, _)| !crate::shell::have(program))
        .map(|(program, _)| *program)
        .collect();
    if !still_missing.is_empty() {
        bail!(
            "installed {} but still cannot find {}",
            missing.join(" "),
            still_missing.join(", ")
        );
    }
    Ok(())
}

/// True when the process runs as root (network namespaces need it).
pub fn is_root() -> bool {
    // /proc/self/status has "Uid:\treal\teffective\t...".
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|id| id == "0"))
        })
        .unwrap_or(false)
}

/// A name unique to this process and call: `{prefix}{pid}n{counter}`, at
/// most 15 bytes. `prefix` is at most 4 ASCII letters or digits.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    assert!(
        prefix.len() <= 4 && prefix.bytes().all(|b| b.is_ascii_alphanumeric()),
        "name prefix `{prefix}` must be at most 4 ASCII letters or digits"
    );
    // Ordering: Relaxed, the counter only has to hand out distinct numbers.
    let serial = NEXT.fetch_add(1, Ordering::Relaxed) % 1000;
    let name = format!("{prefix}{}n{serial}", std::process::id());
    debug_assert!(name.len() <= MAX_IFNAME);
    name
}

/// Runs `ip` with `args`; fails with its stderr when it exits non-zero.
pub fn ip(args: &[&str]) -> Result<String> {
    let mut command = Command::new("ip");
    command.args(args);
    checked_output(&mut command)
}

/// Runs `command` to completion and returns its stdout; fails with the
/// command line and its stderr when it exits non-zero.
pub fn checked_output(command: &mut Command) -> Result<String> {
    let line = describe(command);
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !output.status.success() {
        bail!(
            "`{line}` failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A network namespace, deleted (with every device left in it) on drop.
/// Loopback is up and IPv6 is off, so the kernel sends no router
/// solicitations or MLD reports that would disturb traffic counts.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace named [`unique_name`]`(prefix)`.
    pub fn create(prefix: &str) -> Result<Self> {
        let name = unique_name(prefix);
        ip(&["netns", "add", &name])?;
        // The guard exists from here on, so a failure below deletes it.
        let netns = Self { name };
        netns.ip(&["link", "set", "lo", "up"])?;
        for scope in ["all", "default"] {
            netns.run(&[
                "sysctl",
                "-q",
                "-w",
                &format!("net.ipv6.conf.{scope}.disable_ipv6=1"),
            ])?;
        }
        Ok(netns)
    }

    /// The namespace's name, for `ip netns exec` and `ip -n`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace
    /// (`ip netns exec NAME program`); add arguments and spawn it as usual.
    /// `ip netns exec` execs the program, so a spawned child's pid is the
    /// program's.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs `args[0]` with the rest as arguments inside the namespace and
    /// returns its stdout; fails when it exits non-zero.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let (program, rest) = args.split_first().context("no program given")?;
        checked_output(self.command(program).args(rest))
    }

    /// Runs `args[0]` inside the namespace and returns its output whatever
    /// its exit status (for tools whose failure is the result, like a ping
    /// that must not get through).
    pub fn output(&self, args: &[&str]) -> Result<Output> {
        let (program, rest) = args.split_first().context("no program given")?;
        let mut command = self.command(program);
        command.args(rest).stdin(Stdio::null());
        let line = describe(&command);
        command
            .output()
            .with_context(|| format!("could not start `{line}`"))
    }

    /// Runs `ip -n NAME args`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Brings `ifname` up, with `address` (CIDR, like `10.0.0.1/24`) if given.
    pub fn configure(&self, ifname: &str, address: Option<&str>) -> Result<()> {
        if let Some(address) = address {
            self.ip(&["addr", "add", address, "dev", ifname])?;
        }
        self.ip(&["link", "set", ifname, "up"])?;
        Ok(())
    }

    /// The MAC address of `ifname` in the namespace, as six bytes.
    pub fn mac_address(&self, ifname: &str) -> Result<[u8; 6]> {
        let text = self.run(&["cat", &format!("/sys/class/net/{ifname}/address")])?;
        parse_mac(text.trim())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(error) = ip(&["netns", "del", &self.name]) {
            eprintln!("netns: could not delete namespace {}: {error:#}", self.name);
        }
    }
}

/// A veth pair, its ends optionally moved into namespaces; deleted on drop.
#[derive(Debug)]
pub struct Veth {
    first: String,
    second: String,
    first_netns: Option<String>,
}

impl Veth {
    /// Creates a pair named [`unique_name`]`(prefix)` with ends `…a` and
    /// `…b` (the counter makes them distinct), puts each end in the given
    /// namespace (`None`: the current one) and brings both up, without
    /// addresses.
    pub fn create(prefix: &str, first: Option<&Netns>, second: Option<&Netns>) -> Result<Self> {
        let first_name = unique_name(prefix);
        let second_name = unique_name(prefix);
        ip(&[
            "link",
            "add",
            &first_name,
            "type",
            "veth",
            "peer",
            "name",
            &second_name,
        ])?;
        let mut veth = Self {
            first: first_name,
            second: second_name,
            first_netns: None,
        };
        if let Some(netns) = second {
            ip(&["link", "set", &veth.second, "netns", netns.name()])?;
        }
        if let Some(netns) = first {
            ip(&["link", "set", &veth.first, "netns", netns.name()])?;
            veth.first_netns = Some(netns.name().to_owned());
        }
        veth.set_up(&veth.first, first)?;
        veth.set_up(&veth.second, second)?;
        Ok(veth)
    }

    fn set_up(&self, ifname: &str, netns: Option<&Netns>) -> Result<()> {
        match netns {
            Some(netns) => netns.ip(&["link", "set", ifname, "up"]),
            None => ip(&["link", "set", ifname, "up"]),
        }
        .map(drop)
    }

    /// The first end's interface name.
    pub fn first(&self) -> &str {
        &self.first
    }

    /// The second end's interface name.
    pub fn second(&self) -> &str {
        &self.second
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting one end deletes the pair; it is already gone when its
        // namespace was dropped first.
        let _ = match &self.first_netns {
            Some(netns) => ip(&["-n", netns, "link", "del", &self.first]),
            None => ip(&["link", "del", &self.first]),
        };
    }
}

/// A persistent tap device, optionally inside a namespace; deleted on drop.
#[derive(Debug)]
pub struct Tap {
    name: String,
    netns: Option<String>,
}

impl Tap {
    /// Creates tap [`unique_name`]`(prefix)` in `netns` (`None`: the current
    /// namespace), with `multi_queue` for one queue per core (then every
    /// opener must ask for `IFF_MULTI_QUEUE` too). It stays down and
    /// unaddressed: see [`Netns::configure`].
    pub fn create(prefix: &str, netns: Option<&Netns>, multi_queue: bool) -> Result<Self> {
        let name = unique_name(prefix);
        let mut args = vec!["tuntap", "add", "dev", name.as_str(), "mode", "tap"];
        if multi_queue {
            args.push("multi_queue");
        }
        match netns {
            Some(netns) => netns.ip(&args)?,
            None => ip(&args)?,
        };
        Ok(Self {
            name,
            netns: netns.map(|netns| netns.name().to_owned()),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = match &self.netns {
            Some(netns) => ip(&["-n", netns, "link", "del", &self.name]),
            None => ip(&["link", "del", &self.name]),
        };
    }
}

/// A spawned process killed (SIGKILL) and reaped on drop, unless it already
/// exited or was taken back with [`ChildGuard::into_inner`].
#[derive(Debug)]
pub struct ChildGuard {
    /// Always `Some` until `into_inner` or `drop` takes it.
    child: Option<Child>,
}

impl ChildGuard {
    /// Spawns `command` under the guard.
    pub fn spawn(command: &mut Command) -> Result<Self> {
        let line = describe(command);
        let child = command
            .spawn()
            .with_context(|| format!("could not start `{line}`"))?;
        Ok(Self { child: Some(child) })
    }

    fn child(&self) -> &Child {
        self.child
            .as_ref()
            .expect("present until into_inner or drop")
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child().id()
    }

    /// The child, for its pipes and `try_wait`.
    pub fn child_mut(&mut self) -> &mut Child {
        self.child
            .as_mut()
            .expect("present until into_inner or drop")
    }

    /// Sends `signal` (like `"INT"`, `"TERM"`, `"USR1"`) with `kill(1)`.
    pub fn signal(&self, signal: &str) -> Result<()> {
        checked_output(Command::new("kill").args([format!("-{signal}"), self.id().to_string()]))
            .map(drop)
    }

    /// Gives up the guard: the process is no longer killed on drop.
    pub fn into_inner(mut self) -> Child {
        self.child.take().expect("present until into_inner or drop")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child
            && let Ok(None) = child.try_wait()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let mut mac = [0; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts
            .next()
            .with_context(|| format!("MAC `{text}` has fewer than 6 bytes"))?;
        *byte = u8::from_str_radix(part, 16)
            .with_context(|| format!("MAC `{text}` has a bad byte `{part}`"))?;
    }
    if parts.next().is_some() {
        bail!("MAC `{text}` has more than 6 bytes");
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_fit_an_interface_name() {
        let a = unique_name("wcab");
        let b = unique_name("wcab");
        assert_ne!(a, b);
        assert!(a.len() <= MAX_IFNAME && b.len() <= MAX_IFNAME);
        assert!(a.contains(&std::process::id().to_string()));
    }

    #[test]
    fn macs_parse_and_reject_nonsense() {
        assert_eq!(
            parse_mac("02:00:0a:ff:00:01").unwrap(),
            [2, 0, 0x0a, 0xff, 0, 1]
        );
        assert!(parse_mac("02:00:0a:ff:00").is_err());
        assert!(parse_mac("02:00:0a:ff:00:01:02").is_err());
        assert!(parse_mac("02:00:0a:ff:00:zz").is_err());
    }

    /// Creates and tears down a namespace, a veth pair across it and a tap,
    /// when running as root with `ip` available (skipped otherwise: unit
    /// tests run unprivileged too).
    #[test]
    fn namespace_veth_and_tap_come_and_go() {
        if !is_root() || !crate::shell::have("ip") {
            eprintln!("skipped: needs root and iproute2");
            return;
        }
        let netns = Netns::create("wcut").unwrap();
        let name = netns.name().to_owned();
        let veth = Veth::create("wcut", None, Some(&netns)).unwrap();
        netns
            .configure(veth.second(), Some("10.251.0.1/24"))
            .unwrap();
        assert!(
            netns
                .ip(&["addr", "show", veth.second()])
                .unwrap()
                .contains("10.251.0.1/24")
        );
        assert_eq!(netns.mac_address(veth.second()).unwrap().len(), 6);
        let tap = Tap::create("wcut", Some(&netns), true).unwrap();
        assert!(netns.ip(&["link", "show", tap.name()]).is_ok());
        let host_end = veth.first().to_owned();
        drop(tap);
        drop(veth);
        assert!(ip(&["link", "show", &host_end]).is_err());
        drop(netns);
        assert!(!ip(&["netns", "list"]).unwrap().contains(&name));
    }
}
