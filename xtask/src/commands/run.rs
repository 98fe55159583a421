//! `cargo xtask build` and `cargo xtask run`: build the appliance image, and
//! boot it interactively with its serial console on this terminal, as root
//! with a tap per spec interface in network namespace `wc-run`.

use crate::cli::RunArguments;
use crate::net::netns::{ensure_net_tools, ip};
use crate::qemu::command_line::{NicModel, QemuConfig, model_nic_args, qemu_command};
use crate::qemu::image::{build_kernel, ensure_qemu, image_for, qemu_binary};
use crate::qemu::scenario::exit_status;
use crate::shell::host::is_root;
use crate::shell::process::describe;
use crate::spec_file;
use anyhow::{Context, Result, bail};
use std::process::{Command, Stdio};

/// `cargo xtask build`: builds the PVH image and prints its path.
pub fn build() -> Result<()> {
    let image = build_kernel()?;
    println!("{}", image.display());
    Ok(())
}

/// `cargo xtask run`: boots the appliance with `arguments`.
pub fn run(arguments: &RunArguments) -> Result<()> {
    let config = arguments.qemu_config();
    ensure_qemu()?;
    run_appliance(&config)
}

/// Boots the kernel with the serial console on this terminal until QEMU exits
/// (Ctrl-A X quits). Fails if the kernel reports a failure or triple-faults.
fn run_interactive(config: &QemuConfig) -> Result<()> {
    let kernel = image_for(config)?;
    if let Some(spec) = &config.spec
        && !spec.is_file()
    {
        bail!("spec file {} not found", spec.display());
    }
    let mut command = qemu_command(config, &kernel, true);
    eprintln!("xtask: [run] {}", describe(&command));
    wait_interactive(&mut command)
}

/// Runs an interactive QEMU to its end; fails if the kernel reported a
/// failure or QEMU died of a signal.
fn wait_interactive(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("could not start {}", qemu_binary()))?;
    match status.code() {
        // QEMU exits 0 when quit from the monitor; a triple fault also exits 0, but then
        // the console shows no ready line, which the user can see.
        Some(exit_status::SUCCESS) | Some(0) => Ok(()),
        Some(code) => bail!("kernel exited with status {code}"),
        None => bail!("{} was killed by a signal", qemu_binary()),
    }
}

/// The namespace `cargo xtask run` puts the appliance's taps in.
const RUN_NETNS: &str = "wc-run";

/// Deletes `RUN_NETNS` (and the taps in it) on drop.
struct RunNetns;

impl Drop for RunNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", RUN_NETNS])
            .status();
    }
}

/// The host's address on an appliance subnet: `.1`, or `.2` when the appliance is `.1`.
fn host_address(appliance: &str) -> Option<String> {
    let (network, last) = appliance.rsplit_once('.')?;
    Some(format!("{network}.{}", if last == "1" { 2 } else { 1 }))
}

/// `cargo xtask run`: boots the appliance with one tap per spec interface in
/// network namespace `wc-run` (host side `.1` of each subnet), prints how to
/// reach it, pings it a few times once it is up, and removes the namespace when
/// QEMU exits (Ctrl-A X). Without root it boots without a network.
fn run_appliance(config: &QemuConfig) -> Result<()> {
    let Some(spec) = &config.spec else {
        return run_interactive(config);
    };
    if !is_root() {
        eprintln!("xtask: [run] not root: booting without a network (taps need CAP_NET_ADMIN)");
        return run_interactive(config);
    }
    ensure_net_tools()?;
    let interfaces = spec_file::interfaces(spec)?;
    let _ = Command::new("ip")
        .args(["netns", "del", RUN_NETNS])
        .stderr(Stdio::null())
        .status();
    ip(&["netns", "add", RUN_NETNS])?;
    let _guard = RunNetns;
    let in_netns = |args: &[&str]| -> Result<String> {
        let mut full = vec!["-n", RUN_NETNS];
        full.extend_from_slice(args);
        ip(&full)
    };
    in_netns(&["link", "set", "lo", "up"])?;
    let mut config = config.clone();
    // `--nic igb` (`nic=igb` for the kernel) puts every interface on igb.
    let forced_igb = config
        .cmdline
        .split_whitespace()
        .any(|word| word == "nic=igb");
    let mut targets = Vec::new();
    for (index, interface) in interfaces.iter().enumerate() {
        let Some((address, prefix)) = interface.address.split_once('/') else {
            continue;
        };
        let tap = format!("wctap{index}");
        let host = host_address(address).context("interface address")?;
        in_netns(&["tuntap", "add", "dev", &tap, "mode", "tap"])?;
        in_netns(&["addr", "add", &format!("{host}/{prefix}"), "dev", &tap])?;
        in_netns(&["link", "set", &tap, "up"])?;
        let model = if forced_igb {
            NicModel::Igb
        } else {
            interface.model
        };
        config
            .extra_args
            .extend(model_nic_args(model, index, &tap, &interface.mac, 1));
        targets.push(address.to_owned());
    }
    let kernel = image_for(&config)?;
    let qemu = qemu_command(&config, &kernel, true);
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", RUN_NETNS, qemu_binary()])
        .args(qemu.get_args());
    eprintln!("xtask: [run] {}", describe(&command));
    for target in &targets {
        eprintln!("xtask: [run] reach the appliance with: ip netns exec {RUN_NETNS} ping {target}");
    }
    eprintln!("xtask: [run] quit with Ctrl-A X");
    if let Some(target) = targets.first().cloned() {
        std::thread::spawn(move || greet(&target));
    }
    wait_interactive(&mut command)
}

/// Waits (at most a minute) until `target` answers, then shows three pings.
fn greet(target: &str) {
    let ping = |count: &str| {
        Command::new("ip")
            .args([
                "netns", "exec", RUN_NETNS, "ping", "-c", count, "-W", "1", target,
            ])
            .stdin(Stdio::null())
            .output()
    };
    for _ in 0..60 {
        if ping("1").is_ok_and(|output| output.status.success()) {
            if let Ok(output) = ping("3") {
                eprint!(
                    "xtask: [run] the appliance answers:\n{}",
                    String::from_utf8_lossy(&output.stdout).replace('\n', "\r\n")
                );
            }
            return;
        }
    }
    eprintln!("xtask: [run] {target} did not answer a ping within a minute\r");
}
