//! QEMU harness for the bare-metal kernel: build the PVH image, make sure QEMU is
//! installed, and boot it interactively or as a timed scenario with the serial log
//! captured.

use crate::counters::Counters;
use crate::shell::describe;
use anyhow::{Context, Result, bail};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The QEMU binary the harness runs.
pub const QEMU: &str = "qemu-system-x86_64";
/// Debian package that provides `QEMU`.
pub const QEMU_PACKAGE: &str = "qemu-system-x86";
/// The line prefix the kernel prints once every core is up.
pub const READY_PREFIX: &str = "warpcore ready ";

/// QEMU exit statuses produced by the kernel through isa-debug-exit: `(code << 1) | 1`
/// with the codes of `kernel/src/exit.rs`. Status 0 is a triple fault under `-no-reboot`.
pub mod exit_status {
    /// A scenario passed.
    pub const SUCCESS: i32 = (0x10 << 1) | 1;
    /// A scenario's check failed.
    pub const FAILURE: i32 = (0x11 << 1) | 1;
    /// The kernel panicked.
    pub const PANIC: i32 = (0x12 << 1) | 1;
    /// A CPU exception was reported.
    pub const EXCEPTION: i32 = (0x13 << 1) | 1;
    /// Triple fault (QEMU exits 0 under `-no-reboot`): never a success.
    pub const TRIPLE_FAULT: i32 = 0;
}

/// The QEMU machine type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// `-M q35`: PCIe with ECAM (MCFG), SeaBIOS assigns BARs.
    Q35,
    /// `-M microvm`: no firmware tables for PCI unless `pcie=on`, qboot, fastest boot.
    Microvm,
    /// `-M pc` (i440FX): legacy PCI through ports 0xcf8/0xcfc.
    Pc,
}

impl Machine {
    /// The `-M` argument. microvm gets `pcie=on` only when PCI devices are requested,
    /// because the PCIe host bridge costs boot time.
    fn argument(self, wants_pci: bool) -> &'static str {
        match (self, wants_pci) {
            (Machine::Q35, _) => "q35",
            (Machine::Microvm, false) => "microvm",
            (Machine::Microvm, true) => "microvm,pcie=on",
            (Machine::Pc, _) => "pc",
        }
    }
}

impl FromStr for Machine {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "q35" => Ok(Machine::Q35),
            "microvm" => Ok(Machine::Microvm),
            "pc" => Ok(Machine::Pc),
            other => bail!("unknown machine `{other}` (expected q35, microvm or pc)"),
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Machine::Q35 => "q35",
            Machine::Microvm => "microvm",
            Machine::Pc => "pc",
        })
    }
}

/// The QEMU accelerator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// Multi-threaded TCG (the default: nested KVM here is slower and unreliable).
    Tcg,
    /// KVM with the host CPU model, for machines with real KVM.
    Kvm,
}

impl FromStr for Accel {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "tcg" => Ok(Accel::Tcg),
            "kvm" => Ok(Accel::Kvm),
            other => bail!("unknown accelerator `{other}` (expected tcg or kvm)"),
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        })
    }
}

/// How to boot the kernel.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    /// Number of vCPUs (`-smp`).
    pub smp: u32,
    /// Guest RAM in MiB (`-m`).
    pub mem_mib: u32,
    /// Machine type.
    pub machine: Machine,
    /// Accelerator.
    pub accel: Accel,
    /// Spec file handed to the kernel as the first PVH module (`-initrd`).
    pub spec: Option<PathBuf>,
    /// Kernel command line (`-append`), e.g. `test=boot`.
    pub cmdline: String,
    /// Extra QEMU arguments (devices, netdevs).
    pub extra_args: Vec<String>,
}

impl Default for QemuConfig {
    fn default() -> Self {
        Self {
            smp: 1,
            mem_mib: 512,
            machine: Machine::Q35,
            accel: Accel::Tcg,
            spec: None,
            cmdline: String::new(),
            extra_args: Vec::new(),
        }
    }
}

/// What a scenario run produced.
#[derive(Clone, Debug)]
pub struct ScenarioOutcome {
    /// QEMU's exit status; `None` if it was killed on timeout or by a signal.
    pub exit_code: Option<i32>,
    /// Everything the guest wrote to the serial port.
    pub serial_log: String,
    /// Whether the harness killed QEMU at the timeout.
    pub timed_out: bool,
    /// Wall time from spawning QEMU to the kernel's ready line, if it printed one.
    pub ready_after: Option<Duration>,
    /// Wall time from spawning QEMU to its exit (or the kill).
    pub elapsed: Duration,
}

impl ScenarioOutcome {
    /// Whether the kernel reported success through isa-debug-exit.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(exit_status::SUCCESS)
    }

    /// The kernel's `warpcore ready ...` line, if any.
    pub fn ready_line(&self) -> Option<&str> {
        self.serial_log
            .lines()
            .map(str::trim_end)
            .find(|line| line.starts_with(READY_PREFIX))
    }

    /// The value of `key=` in the ready line, e.g. `cores` or `boot_ms`.
    pub fn ready_field(&self, key: &str) -> Option<&str> {
        self.ready_line()?
            .split_whitespace()
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
    }

    /// Describes the exit status for humans.
    pub fn describe_exit(&self) -> String {
        match self.exit_code {
            _ if self.timed_out => format!("timed out after {:.1?}", self.elapsed),
            Some(exit_status::SUCCESS) => "success (33)".into(),
            Some(exit_status::FAILURE) => "scenario failure (35)".into(),
            Some(exit_status::PANIC) => "kernel panic (37)".into(),
            Some(exit_status::EXCEPTION) => "CPU exception (39)".into(),
            Some(exit_status::TRIPLE_FAULT) => "triple fault or QEMU exit 0 (never success)".into(),
            Some(other) => format!("QEMU exit status {other}"),
            None => "killed by a signal".into(),
        }
    }
}

pub use crate::shell::workspace_root;

/// Builds the kernel (`cargo build -p kernel --release --target x86_64-unknown-none`)
/// and returns the path of the PVH ELF.
pub fn build_kernel() -> Result<PathBuf> {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: [kernel] cargo build -p kernel --release --target x86_64-unknown-none");
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "-p",
            "kernel",
            "--release",
            "--target",
            "x86_64-unknown-none",
        ])
        .status()
        .context("kernel build: could not start cargo")?;
    if !status.success() {
        bail!("kernel build failed ({status})");
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target_dir = if target_dir.is_absolute() {
        target_dir
    } else {
        root.join(target_dir)
    };
    let image = target_dir.join("x86_64-unknown-none/release/kernel");
    if !image.is_file() {
        bail!("kernel build succeeded but {} is missing", image.display());
    }
    Ok(image)
}

/// Builds the kernel once per xtask process and returns the image path.
fn kernel_image() -> Result<PathBuf> {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    if let Some(image) = IMAGE.get() {
        return Ok(image.clone());
    }
    let image = build_kernel()?;
    Ok(IMAGE.get_or_init(|| image).clone())
}

fn qemu_installed() -> bool {
    crate::shell::have(QEMU)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Makes sure `qemu-system-x86_64` is available: installs `qemu-system-x86` with
/// `scripts/install-qemu.sh` when running as root, else fails saying what to install.
pub fn ensure_qemu() -> Result<()> {
    if qemu_installed() {
        return Ok(());
    }
    if !running_as_root() {
        bail!(
            "{QEMU} not found: install the `{QEMU_PACKAGE}` package (sudo apt-get install -y {QEMU_PACKAGE})"
        );
    }
    let script = workspace_root().join("scripts/install-qemu.sh");
    eprintln!("xtask: [qemu] {QEMU} missing, running {}", script.display());
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .with_context(|| format!("could not run {}", script.display()))?;
    if !status.success() || !qemu_installed() {
        bail!(
            "installing `{QEMU_PACKAGE}` failed ({status}); install it with apt-get install -y {QEMU_PACKAGE}"
        );
    }
    Ok(())
}

/// The QEMU command line for `config` booting `kernel`; `interactive` multiplexes the
/// monitor on stdio so that Ctrl-A X quits.
pub fn qemu_command(config: &QemuConfig, kernel: &Path, interactive: bool) -> Command {
    let wants_pci = config.extra_args.iter().any(|arg| arg.contains("-pci"));
    let mut command = Command::new(QEMU);
    command
        .args(["-M", config.machine.argument(wants_pci)])
        .args(["-m", &config.mem_mib.to_string()])
        .args(["-smp", &config.smp.to_string()]);
    match config.accel {
        Accel::Tcg => command.args(["-accel", "tcg,thread=multi"]),
        Accel::Kvm => command.args(["-accel", "kvm", "-cpu", "host,-arch-capabilities"]),
    };
    command
        .arg("-kernel")
        .arg(kernel)
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .args(["-no-reboot", "-display", "none", "-nic", "none"])
        .args(["-serial", if interactive { "mon:stdio" } else { "stdio" }]);
    if !interactive {
        command.args(["-monitor", "none"]);
    }
    let mut cmdline = config.cmdline.clone();
    if config.machine == Machine::Microvm && wants_pci {
        // microvm has no MCFG; its ECAM window is fixed at 0xe0000000 (hw/i386/microvm.c).
        cmdline.push_str(" pci_ecam=0xe0000000");
    }
    let cmdline = cmdline.trim();
    if !cmdline.is_empty() {
        command.args(["-append", cmdline]);
    }
    if let Some(spec) = &config.spec {
        command.arg("-initrd").arg(spec);
    }
    command.args(&config.extra_args);
    command
}

/// Boots the kernel with the serial console on this terminal until QEMU exits
/// (Ctrl-A X quits). Fails if the kernel reports a failure or triple-faults.
pub fn run_interactive(config: &QemuConfig) -> Result<()> {
    ensure_qemu()?;
    let kernel = kernel_image()?;
    if let Some(spec) = &config.spec
        && !spec.is_file()
    {
        bail!("spec file {} not found", spec.display());
    }
    let mut command = qemu_command(config, &kernel, true);
    eprintln!("xtask: [run] {}", describe(&command));
    let status = command
        .status()
        .with_context(|| format!("could not start {QEMU}"))?;
    match status.code() {
        Some(exit_status::SUCCESS) => Ok(()),
        // QEMU exits 0 when quit from the monitor; a triple fault also exits 0, but then
        // the console shows no ready line, which the user can see.
        Some(0) => Ok(()),
        Some(code) => bail!("kernel exited with status {code}"),
        None => bail!("{QEMU} was killed by a signal"),
    }
}

/// Boots the kernel with `config`, captures the serial log, and kills QEMU after
/// `timeout`. Never fails because of what the kernel did; check the outcome.
pub fn run_scenario(config: &QemuConfig, timeout: Duration) -> Result<ScenarioOutcome> {
    ensure_qemu()?;
    let kernel = kernel_image()?;
    let mut command = qemu_command(config, &kernel, false);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start {}", describe(&command)))?;
    let (lines, receiver) = mpsc::channel::<(String, Instant)>();
    let stdout = child
        .stdout
        .take()
        .context("QEMU stdout was not captured")?;
    let stderr = child
        .stderr
        .take()
        .context("QEMU stderr was not captured")?;
    let stderr_lines = lines.clone();
    let readers = [
        std::thread::spawn(move || forward_lines(stdout, &lines, "")),
        std::thread::spawn(move || forward_lines(stderr, &stderr_lines, "qemu stderr: ")),
    ];
    let mut serial_log = String::new();
    let mut ready_after = None;
    let deadline = started + timeout;
    let (exit_code, timed_out) = loop {
        match receiver.recv_timeout(Duration::from_millis(20)) {
            Ok((line, at)) => {
                if ready_after.is_none() && line.trim_start().starts_with(READY_PREFIX) {
                    ready_after = Some(at - started);
                }
                serial_log.push_str(&line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Both pipes closed: QEMU is gone or about to be.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = wait_until(&mut child, deadline)?;
                break (status.and_then(|status| status.code()), status.is_none());
            }
        }
        if let Some(status) = child.try_wait()? {
            // Drain what the readers still hold before reporting.
            for (line, at) in receiver.iter() {
                if ready_after.is_none() && line.trim_start().starts_with(READY_PREFIX) {
                    ready_after = Some(at - started);
                }
                serial_log.push_str(&line);
            }
            break (status.code(), false);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
    };
    let elapsed = started.elapsed();
    for reader in readers {
        let _ = reader.join();
    }
    for (line, _) in receiver.try_iter() {
        serial_log.push_str(&line);
    }
    Ok(ScenarioOutcome {
        exit_code,
        serial_log,
        timed_out,
        ready_after,
        elapsed,
    })
}

/// Sends each line of `source` (with its arrival time) to `sink`.
fn forward_lines(source: impl std::io::Read, sink: &mpsc::Sender<(String, Instant)>, prefix: &str) {
    let mut reader = BufReader::new(source);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buffer).replace('\r', "");
                if sink
                    .send((format!("{prefix}{text}"), Instant::now()))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Waits for `child` until `deadline`, killing it then; `None` means it was killed.
fn wait_until(child: &mut Child, deadline: Instant) -> Result<Option<std::process::ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A running appliance whose serial console is collected in the background and
/// whose serial input the harness can write (the kernel's counters dump is asked
/// for that way). QEMU is killed when the session drops.
pub struct QemuSession {
    child: Child,
    stdin: std::process::ChildStdin,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl QemuSession {
    /// Boots `config` without a terminal, inside network namespace `netns` when
    /// given (so QEMU can open a tap that lives there).
    pub fn start(config: &QemuConfig, netns: Option<&str>) -> Result<Self> {
        ensure_qemu()?;
        Self::start_kernel(config, &kernel_image()?, netns)
    }

    /// Boots another kernel (the Linux peer guest) under the same QEMU command
    /// line as the appliance; `config.spec` becomes its initrd.
    pub fn start_kernel(config: &QemuConfig, kernel: &Path, netns: Option<&str>) -> Result<Self> {
        ensure_qemu()?;
        let qemu = qemu_command(config, kernel, false);
        let mut command = match netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns, QEMU]);
                command.args(qemu.get_args());
                command
            }
            None => qemu,
        };
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        eprintln!("xtask: [appliance] {}", describe(&command));
        let mut child = command
            .spawn()
            .with_context(|| format!("could not start {}", describe(&command)))?;
        let stdin = child.stdin.take().context("QEMU stdin was not captured")?;
        let stdout = child
            .stdout
            .take()
            .context("QEMU stdout was not captured")?;
        let stderr = child
            .stderr
            .take()
            .context("QEMU stderr was not captured")?;
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let collect = |source: Box<dyn std::io::Read + Send>, prefix: &'static str| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(source);
                let mut buffer = Vec::new();
                while let Ok(read) = reader.read_until(b'\n', &mut buffer) {
                    if read == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buffer).replace('\r', "");
                    if let Ok(mut log) = log.lock() {
                        log.push_str(prefix);
                        log.push_str(&text);
                    }
                    buffer.clear();
                }
            })
        };
        let readers = vec![
            collect(Box::new(stdout), ""),
            collect(Box::new(stderr), "qemu stderr: "),
        ];
        Ok(Self {
            child,
            stdin,
            log,
            readers,
        })
    }

    /// Everything the console printed so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// Waits until the console has printed `needle` after byte `from` of the
    /// log; returns the log position just past it. Fails (with the log) when
    /// QEMU exits or `timeout` passes first.
    pub fn wait_for(&mut self, needle: &str, from: usize, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if let Some(at) = log.get(from..).and_then(|tail| tail.find(needle)) {
                return Ok(from + at + needle.len());
            }
            if let Some(status) = self.child.try_wait()? {
                std::thread::sleep(Duration::from_millis(100));
                bail!(
                    "QEMU exited ({status}) before printing `{needle}`; console:\n{}",
                    self.log()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "no `{needle}` on the console within {timeout:?}; console:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes `bytes` to the guest's serial input.
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        self.stdin
            .write_all(bytes)
            .and_then(|()| self.stdin.flush())
            .context("writing to QEMU's serial input")
    }

    /// Asks the kernel for its counters dump and parses it.
    pub fn counters(&mut self) -> Result<Counters> {
        let start = self.log().len();
        self.send(b"c")?;
        let end = self.wait_for("counters end", start, Duration::from_secs(20))?;
        let log = self.log();
        let begin = log[start..end]
            .rfind("counters begin")
            .map_or(start, |at| start + at);
        Counters::parse(&log[begin..end])
    }
}

impl Drop for QemuSession {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

/// The namespace `cargo xtask run` puts the appliance's taps in.
pub const RUN_NETNS: &str = "wc-run";

/// Deletes `RUN_NETNS` (and the taps in it) on drop.
struct RunNetns;

impl Drop for RunNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", RUN_NETNS])
            .status();
    }
}

/// The `address = "a.b.c.d/p"` values of a spec's interfaces, in order.
fn spec_addresses(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "address").then(|| value.trim().trim_matches('"'))
        })
        .filter_map(|cidr| {
            let (address, prefix) = cidr.split_once('/')?;
            Some((address.to_owned(), prefix.to_owned()))
        })
        .collect()
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
pub fn run_appliance(config: &QemuConfig) -> Result<()> {
    let Some(spec) = &config.spec else {
        return run_interactive(config);
    };
    if !crate::netns::is_root() {
        eprintln!("xtask: [run] not root: booting without a network (taps need CAP_NET_ADMIN)");
        return run_interactive(config);
    }
    crate::netns::ensure_net_tools()?;
    let text = std::fs::read_to_string(spec).with_context(|| spec.display().to_string())?;
    let macs = crate::appliance_tests::spec_macs(&text);
    let addresses = spec_addresses(&text);
    let _ = Command::new("ip")
        .args(["netns", "del", RUN_NETNS])
        .stderr(Stdio::null())
        .status();
    crate::netns::ip(&["netns", "add", RUN_NETNS])?;
    let _guard = RunNetns;
    let in_netns = |args: &[&str]| -> Result<String> {
        let mut full = vec!["-n", RUN_NETNS];
        full.extend_from_slice(args);
        crate::netns::ip(&full)
    };
    in_netns(&["link", "set", "lo", "up"])?;
    let mut config = config.clone();
    let mut targets = Vec::new();
    for (index, (mac, (address, prefix))) in macs.iter().zip(&addresses).enumerate() {
        let tap = format!("wctap{index}");
        let host = host_address(address).context("interface address")?;
        in_netns(&["tuntap", "add", "dev", &tap, "mode", "tap"])?;
        in_netns(&["addr", "add", &format!("{host}/{prefix}"), "dev", &tap])?;
        in_netns(&["link", "set", &tap, "up"])?;
        config
            .extra_args
            .extend(crate::appliance_tests::tap_nic_args(index, &tap, mac, 1));
        targets.push(address.clone());
    }
    ensure_qemu()?;
    let kernel = kernel_image()?;
    let qemu = qemu_command(&config, &kernel, true);
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", RUN_NETNS, QEMU])
        .args(qemu.get_args());
    eprintln!("xtask: [run] {}", describe(&command));
    for target in &targets {
        eprintln!("xtask: [run] reach the appliance with: ip netns exec {RUN_NETNS} ping {target}");
    }
    eprintln!("xtask: [run] quit with Ctrl-A X");
    if let Some(target) = targets.first().cloned() {
        std::thread::spawn(move || greet(&target));
    }
    let status = command
        .status()
        .with_context(|| format!("could not start {QEMU}"))?;
    match status.code() {
        Some(exit_status::SUCCESS) | Some(0) => Ok(()),
        Some(code) => bail!("kernel exited with status {code}"),
        None => bail!("{QEMU} was killed by a signal"),
    }
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
