//! A running appliance with its serial console collected in the background
//! and its serial input writable, so a test can wait for lines and ask the
//! kernel for its counters dump.

use crate::counters::Counters;
use crate::net::netns::Netns;
use crate::qemu::command_line::model_nic_args;
use crate::qemu::command_line::{QemuConfig, qemu_command};
use crate::qemu::console;
use crate::qemu::image::{ensure_qemu_binary, image_for};
use crate::shell::process::describe;
use crate::spec_file;
use anyhow::{Context, Result, bail, ensure};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running appliance whose serial console is collected in the background and
/// whose serial input the harness can write (the kernel's counters dump is asked
/// for that way). QEMU is killed when the session drops.
pub struct QemuSession {
    child: Child,
    stdin: std::process::ChildStdin,
    log: Arc<Mutex<String>>,
    /// Appends the console to `log` until QEMU exits; joined on drop.
    collector: Option<JoinHandle<()>>,
}

/// How long an appliance boot may take until every core runs the appliance.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

impl QemuSession {
    /// Boots the appliance with `spec` on `smp` cores and one NIC (virtio-net
    /// with `queues` queue pairs, or igb as the spec's driver says) per tap of `taps` (all in `netns`,
    /// in the order of the spec's interfaces), and waits until every core
    /// runs the appliance.
    pub fn boot_appliance(
        spec: &Path,
        smp: u32,
        netns: &Netns,
        taps: &[&str],
        queues: u16,
    ) -> Result<Self> {
        Self::boot_appliance_with(spec, smp, netns, taps, queues, Vec::new())
    }

    /// [`boot_appliance`](Self::boot_appliance) with more QEMU arguments
    /// after the NICs' (a monitor socket, say).
    pub fn boot_appliance_with(
        spec: &Path,
        smp: u32,
        netns: &Netns,
        taps: &[&str],
        queues: u16,
        more_args: Vec<String>,
    ) -> Result<Self> {
        let interfaces = spec_file::interfaces(spec)?;
        ensure!(
            interfaces.len() == taps.len(),
            "{} names {} interfaces for {} taps",
            spec.display(),
            interfaces.len(),
            taps.len()
        );
        let mut extra_args = Vec::new();
        for (index, (tap, interface)) in taps.iter().zip(&interfaces).enumerate() {
            extra_args.extend(model_nic_args(
                interface.model,
                index,
                tap,
                &interface.mac,
                queues,
            ));
        }
        extra_args.extend(more_args);
        let config = QemuConfig {
            smp,
            spec: Some(spec.to_owned()),
            extra_args,
            ..QemuConfig::default()
        };
        let mut session = Self::start(&config, Some(netns.name()))?;
        for core in 0..smp {
            session.wait_for(&format!("core {core} appliance running"), 0, BOOT_TIMEOUT)?;
        }
        Ok(session)
    }

    /// Boots `config` without a terminal, inside network namespace `netns` when
    /// given (so QEMU can open a tap that lives there).
    pub fn start(config: &QemuConfig, netns: Option<&str>) -> Result<Self> {
        Self::start_kernel(config, &image_for(config)?, netns)
    }

    /// Boots another kernel (the Linux peer guest) under the same QEMU command
    /// line as the appliance; `config.spec` becomes its initrd.
    pub fn start_kernel(config: &QemuConfig, kernel: &Path, netns: Option<&str>) -> Result<Self> {
        ensure_qemu_binary(config.binary())?;
        let qemu = qemu_command(config, kernel, false);
        let mut command = match netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns, config.binary()]);
                command.args(qemu.get_args());
                command
            }
            None => qemu,
        };
        command.stdin(Stdio::piped());
        eprintln!("xtask: [appliance] {}", describe(&command));
        let (mut child, console) = console::spawn(&mut command)?;
        let stdin = child.stdin.take().context("QEMU stdin was not captured")?;
        let log = Arc::new(Mutex::new(String::new()));
        let collector = Some(console.collect_into(log.clone()));
        Ok(Self {
            child,
            stdin,
            log,
            collector,
        })
    }

    /// QEMU's process id (`ip netns exec` execs QEMU in its own process).
    pub fn pid(&self) -> u32 {
        self.child.id()
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
        Counters::parse_dump(&self.log()[start..end])
    }
}

impl Drop for QemuSession {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Some(collector) = self.collector.take() {
            let _ = collector.join();
        }
    }
}
