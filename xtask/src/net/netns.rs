//! Network namespaces for tests, deleted by a guard's `Drop` (also when a
//! test fails or panics), and the `ip` tool that builds them.
//!
//! Names carry the process id and a counter, so parallel runs never collide,
//! and stay within the kernel's 15-byte interface-name limit. Everything here
//! needs root (CAP_NET_ADMIN) and `ip` from iproute2.

use crate::shell::host::ensure_programs;
use crate::shell::process::{checked_output, describe};
use anyhow::{Context, Result, bail};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Programs the network tests drive, and the Debian package that ships each.
const NET_TOOLS: [(&str, &str); 5] = [
    ("ip", "iproute2"),
    ("ping", "iputils-ping"),
    ("arping", "iputils-arping"),
    ("nc", "netcat-openbsd"),
    ("nft", "nftables"),
];

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;

/// Makes sure `ip`, `ping`, `arping`, `nc` and `nft` are installed: as root, installs
/// the missing packages; otherwise fails naming them.
pub fn ensure_net_tools() -> Result<()> {
    ensure_programs("network tests", &NET_TOOLS)
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
}
