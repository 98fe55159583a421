//! What the host gave QEMU's vCPU threads over a window: each thread's CPU
//! time, its time runnable but waiting for a host CPU, and its involuntary
//! context switches (`/proc/<pid>/task/*/{comm,schedstat,status}`), plus the
//! CPU time the rest of the host used and the time this host's own
//! hypervisor stole from its CPUs (`/proc/stat`). QEMU names its threads only
//! with `-name debug-threads=on`.
//!
//! Under TCG a guest core runs only while its vCPU thread has a host CPU, and
//! the guest's clock keeps host time: a vCPU thread that waits for the host
//! loses packets/s the guest cannot see. This says how much.

use anyhow::{Context, Result};
use std::time::Instant;

/// Nanoseconds in one `/proc/stat` tick (USER_HZ is 100 on Linux).
const NS_PER_USER_HZ_TICK: u64 = 10_000_000;

/// One vCPU thread's totals since it started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuTimes {
    /// The guest core it runs (`CPU <n>/TCG`).
    pub vcpu: u32,
    /// Time on a host CPU (schedstat field 1).
    pub run_ns: u64,
    /// Time runnable but waiting for a host CPU (schedstat field 2).
    pub wait_ns: u64,
    /// Times the host took the CPU away while it could still run.
    pub involuntary_switches: u64,
}

/// The host's view of one QEMU process at one moment.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When it was read.
    pub at: Instant,
    /// Every vCPU thread, by guest core.
    pub vcpus: Vec<VcpuTimes>,
    /// CPU time of all of QEMU's threads (vCPUs, main loop, RCU, ...).
    pub qemu_run_ns: u64,
    /// Busy CPU time of the whole host (every CPU, `/proc/stat`).
    pub host_busy_ns: u64,
    /// Time the host's own hypervisor ran something else on its CPUs
    /// (`/proc/stat`'s steal: this host is a VM).
    pub host_steal_ns: u64,
}

/// One vCPU thread over a window, as shares of the window's wall time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VcpuShare {
    /// The guest core.
    pub vcpu: u32,
    /// Share of the window it ran on a host CPU (1.0: all of it).
    pub run: f64,
    /// Share of the window it waited for a host CPU.
    pub wait: f64,
    /// Involuntary context switches in the window.
    pub involuntary_switches: u64,
}

/// What the host gave a QEMU process between two samples.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowShare {
    /// Wall time between the samples.
    pub seconds: f64,
    /// Every vCPU thread, by guest core.
    pub vcpus: Vec<VcpuShare>,
    /// CPU time of QEMU's other threads, in host CPUs (0.1: a tenth of one).
    pub qemu_other_cpus: f64,
    /// CPU time of everything else on the host, in host CPUs.
    pub host_other_cpus: f64,
    /// Host CPUs' worth of time its hypervisor stole.
    pub host_steal_cpus: f64,
}

impl Sample {
    /// Reads QEMU process `pid`'s threads and the host's busy time.
    pub fn read(pid: u32) -> Result<Self> {
        let at = Instant::now();
        let mut vcpus = Vec::new();
        let mut qemu_run_ns = 0;
        let tasks = format!("/proc/{pid}/task");
        for entry in std::fs::read_dir(&tasks).with_context(|| format!("reading {tasks}"))? {
            let dir = entry?.path();
            // A thread can end between the listing and the reads: skip it.
            let (Ok(comm), Ok(schedstat), Ok(status)) = (
                std::fs::read_to_string(dir.join("comm")),
                std::fs::read_to_string(dir.join("schedstat")),
                std::fs::read_to_string(dir.join("status")),
            ) else {
                continue;
            };
            let (run_ns, wait_ns) = parse_schedstat(&schedstat)
                .with_context(|| format!("{}: `{schedstat}`", dir.display()))?;
            qemu_run_ns += run_ns;
            if let Some(vcpu) = vcpu_of(&comm) {
                vcpus.push(VcpuTimes {
                    vcpu,
                    run_ns,
                    wait_ns,
                    involuntary_switches: status_field(&status, "nonvoluntary_ctxt_switches")
                        .unwrap_or(0),
                });
            }
        }
        vcpus.sort_by_key(|times| times.vcpu);
        let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        let (busy, steal) = host_ticks(&stat).context("/proc/stat has no `cpu` line")?;
        Ok(Self {
            at,
            vcpus,
            qemu_run_ns,
            host_busy_ns: busy * NS_PER_USER_HZ_TICK,
            host_steal_ns: steal * NS_PER_USER_HZ_TICK,
        })
    }

    /// What the host gave the process from `self` to `later`.
    pub fn window_to(&self, later: &Sample) -> WindowShare {
        let wall_ns = later.at.duration_since(self.at).as_nanos().max(1) as f64;
        let vcpus: Vec<VcpuShare> = later
            .vcpus
            .iter()
            .filter_map(|end| {
                let begin = self.vcpus.iter().find(|times| times.vcpu == end.vcpu)?;
                Some(VcpuShare {
                    vcpu: end.vcpu,
                    run: end.run_ns.saturating_sub(begin.run_ns) as f64 / wall_ns,
                    wait: end.wait_ns.saturating_sub(begin.wait_ns) as f64 / wall_ns,
                    involuntary_switches: end
                        .involuntary_switches
                        .saturating_sub(begin.involuntary_switches),
                })
            })
            .collect();
        let qemu = later.qemu_run_ns.saturating_sub(self.qemu_run_ns) as f64 / wall_ns;
        let vcpu_total: f64 = vcpus.iter().map(|share| share.run).sum();
        let host = later.host_busy_ns.saturating_sub(self.host_busy_ns) as f64 / wall_ns;
        WindowShare {
            seconds: wall_ns / 1e9,
            vcpus,
            qemu_other_cpus: (qemu - vcpu_total).max(0.0),
            // /proc/stat counts in 10 ms ticks: small negatives are rounding.
            host_other_cpus: (host - qemu).max(0.0),
            host_steal_cpus: later.host_steal_ns.saturating_sub(self.host_steal_ns) as f64
                / wall_ns,
        }
    }
}

impl WindowShare {
    /// The shares of guest cores `first..=last`.
    pub fn vcpus_between(&self, first: u32, last: u32) -> impl Iterator<Item = &VcpuShare> {
        self.vcpus
            .iter()
            .filter(move |share| (first..=last).contains(&share.vcpu))
    }

    /// One line for a human: every vCPU's run and wait share, and the rest.
    pub fn describe(&self) -> String {
        let vcpus: Vec<String> = self
            .vcpus
            .iter()
            .map(|share| {
                format!(
                    "vCPU{} ran {:.0}% waited {:.0}% ({} preempted)",
                    share.vcpu,
                    share.run * 100.0,
                    share.wait * 100.0,
                    share.involuntary_switches
                )
            })
            .collect();
        format!(
            "{}; QEMU's other threads {:.2} CPUs, rest of host {:.2} CPUs, stolen {:.2} CPUs over {:.2} s",
            vcpus.join(", "),
            self.qemu_other_cpus,
            self.host_other_cpus,
            self.host_steal_cpus,
            self.seconds
        )
    }
}

/// The guest core of a QEMU thread named `CPU <n>/TCG` (or `/KVM`).
fn vcpu_of(comm: &str) -> Option<u32> {
    comm.trim()
        .strip_prefix("CPU ")?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// Time on a CPU and time waiting for one, from a `schedstat` file.
fn parse_schedstat(text: &str) -> Option<(u64, u64)> {
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    Some((fields.next()?.ok()?, fields.next()?.ok()?))
}

/// A numeric `Name:\tvalue` field of a `status` file.
fn status_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))?
        .trim()
        .parse()
        .ok()
}

/// Busy ticks (everything but idle, iowait and steal) and stolen ticks of
/// all CPUs from `/proc/stat`'s `cpu` line.
fn host_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map_while(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is in user).
    let busy = |index: usize| fields.get(index).copied().unwrap_or(0);
    (fields.len() >= 4).then(|| (busy(0) + busy(1) + busy(2) + busy(5) + busy(6), busy(7)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parses_the_proc_files() {
        assert_eq!(vcpu_of("CPU 2/TCG\n"), Some(2));
        assert_eq!(vcpu_of("CPU 0/KVM"), Some(0));
        assert_eq!(vcpu_of("qemu-system-x86"), None);
        assert_eq!(vcpu_of("CPU x/TCG"), None);
        assert_eq!(
            parse_schedstat("1500000000 250000000 1234\n"),
            Some((1_500_000_000, 250_000_000))
        );
        assert_eq!(parse_schedstat("12"), None);
        let status = "Name:\tqemu\nvoluntary_ctxt_switches:\t10\nnonvoluntary_ctxt_switches:\t7\n";
        assert_eq!(status_field(status, "nonvoluntary_ctxt_switches"), Some(7));
        assert_eq!(status_field(status, "voluntary_ctxt_switches"), Some(10));
        assert_eq!(status_field(status, "missing"), None);
        let stat = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n";
        assert_eq!(host_ticks(stat), Some((100 + 5 + 50 + 3 + 2, 1)));
        assert_eq!(host_ticks("intr 1 2"), None);
    }

    #[test]
    fn a_window_is_the_difference_of_two_samples() {
        let begin = Instant::now();
        let sample = |at, run_ns, wait_ns, switches, qemu_run_ns, host_busy_ns: u64| Sample {
            host_steal_ns: host_busy_ns / 10,
            at,
            vcpus: vec![
                VcpuTimes {
                    vcpu: 0,
                    run_ns: 0,
                    wait_ns: 0,
                    involuntary_switches: 0,
                },
                VcpuTimes {
                    vcpu: 1,
                    run_ns,
                    wait_ns,
                    involuntary_switches: switches,
                },
            ],
            qemu_run_ns,
            host_busy_ns,
        };
        let first = sample(begin, 1_000_000_000, 0, 5, 1_100_000_000, 2_000_000_000);
        let second = sample(
            begin + Duration::from_secs(2),
            2_600_000_000,
            300_000_000,
            25,
            2_900_000_000,
            5_000_000_000,
        );
        let window = first.window_to(&second);
        assert!((window.seconds - 2.0).abs() < 1e-9);
        let vcpu = window.vcpus[1];
        assert_eq!(vcpu.vcpu, 1);
        assert!((vcpu.run - 0.8).abs() < 1e-9);
        assert!((vcpu.wait - 0.15).abs() < 1e-9);
        assert_eq!(vcpu.involuntary_switches, 20);
        // QEMU used 1.8 s in 2 s (0.9 CPUs), 1.6 s of it vCPU 1: 0.1 CPUs else.
        assert!((window.qemu_other_cpus - 0.1).abs() < 1e-9);
        // The host was busy 3 s in 2 s (1.5 CPUs), 0.9 of it QEMU.
        assert!((window.host_other_cpus - 0.6).abs() < 1e-9);
        // A tenth of the busy time, as the samples say: 0.3 s in 2 s.
        assert!((window.host_steal_cpus - 0.15).abs() < 1e-9);
        assert_eq!(window.vcpus_between(1, 1).count(), 1);
        assert!(
            window
                .describe()
                .contains("vCPU1 ran 80% waited 15% (20 preempted)")
        );
    }
}
