//! What the host gave QEMU's vCPU threads over a window: each thread's CPU
//! time, its time runnable but waiting for a host CPU, its involuntary
//! context switches and its moves between host CPUs
//! (`/proc/<pid>/task/*/{comm,schedstat,status,sched}`), plus the CPU time
//! the rest of the host used, which of its threads used the most, and the
//! time this host's own hypervisor stole from its CPUs (`/proc/stat`). QEMU
//! names its threads only with `-name debug-threads=on`.
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
    /// Times the host moved it to another CPU (`sched`'s `se.nr_migrations`;
    /// `None` where the kernel has no scheduler debug files).
    pub migrations: Option<u64>,
}

/// One thread outside QEMU: who it is and its CPU time so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostThread {
    /// Its thread id.
    pub tid: u32,
    /// `comm (pid)` of its process and thread, for a human.
    pub name: String,
    /// Time on a host CPU (schedstat field 1).
    pub run_ns: u64,
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
    /// Every other thread on the host (other processes, kernel threads).
    pub others: Vec<HostThread>,
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
    /// Moves to another host CPU in the window, when the host says.
    pub migrations: Option<u64>,
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
    /// The threads outside QEMU that ran longest in the window, longest
    /// first, in host CPUs (at most [`BUSIEST_SHOWN`], each at least
    /// [`BUSIEST_FLOOR`]). Threads that started and ended inside the window
    /// are not here, only in `host_other_cpus`.
    pub busiest_others: Vec<(String, f64)>,
}

/// How many of the busiest other threads a window names.
pub const BUSIEST_SHOWN: usize = 3;
/// Least share of a host CPU for which a window names another thread.
pub const BUSIEST_FLOOR: f64 = 0.002;

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
                let migrations = std::fs::read_to_string(dir.join("sched"))
                    .ok()
                    .and_then(|sched| sched_field(&sched, "se.nr_migrations"));
                vcpus.push(VcpuTimes {
                    vcpu,
                    run_ns,
                    wait_ns,
                    involuntary_switches: status_field(&status, "nonvoluntary_ctxt_switches")
                        .unwrap_or(0),
                    migrations,
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
            others: host_threads(pid),
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
                    migrations: end
                        .migrations
                        .zip(begin.migrations)
                        .map(|(end, begin)| end.saturating_sub(begin)),
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
            busiest_others: busiest(&self.others, &later.others, wall_ns),
        }
    }
}

/// The threads of `later` that ran longest since `earlier`, in host CPUs
/// over `wall_ns`, by thread id (a kernel worker renames itself after the
/// work it does). A thread born in between counts all its time, as does a
/// reused thread id whose time went backwards.
fn busiest(earlier: &[HostThread], later: &[HostThread], wall_ns: f64) -> Vec<(String, f64)> {
    let mut moved: Vec<(String, f64)> = later
        .iter()
        .map(|thread| {
            let before = earlier
                .iter()
                .find(|old| old.tid == thread.tid && old.run_ns <= thread.run_ns)
                .map_or(0, |old| old.run_ns);
            (
                thread.name.clone(),
                thread.run_ns.saturating_sub(before) as f64 / wall_ns,
            )
        })
        .filter(|(_, cpus)| *cpus >= BUSIEST_FLOOR)
        .collect();
    moved.sort_by(|a, b| b.1.total_cmp(&a.1));
    moved.truncate(BUSIEST_SHOWN);
    moved
}

/// Every thread on the host outside process `skip`, with its CPU time so
/// far. Threads that end while it reads are left out.
fn host_threads(skip: u32) -> Vec<HostThread> {
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut threads = Vec::new();
    for process in processes.flatten() {
        let Some(pid) = process
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == skip {
            continue;
        }
        let Ok(tasks) = std::fs::read_dir(process.path().join("task")) else {
            continue;
        };
        let process_name = std::fs::read_to_string(process.path().join("comm")).unwrap_or_default();
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
            else {
                continue;
            };
            let (Ok(comm), Ok(schedstat)) = (
                std::fs::read_to_string(task.path().join("comm")),
                std::fs::read_to_string(task.path().join("schedstat")),
            ) else {
                continue;
            };
            let Some((run_ns, _)) = parse_schedstat(&schedstat) else {
                continue;
            };
            let (process_name, comm) = (process_name.trim(), comm.trim());
            let name = if tid == pid || comm == process_name {
                format!("{comm} ({tid})")
            } else {
                format!("{process_name}/{comm} ({tid})")
            };
            threads.push(HostThread { tid, name, run_ns });
        }
    }
    threads
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
                let moved = share
                    .migrations
                    .map(|count| format!(", {count} moved"))
                    .unwrap_or_default();
                format!(
                    "vCPU{} ran {:.0}% waited {:.0}% ({} preempted{moved})",
                    share.vcpu,
                    share.run * 100.0,
                    share.wait * 100.0,
                    share.involuntary_switches
                )
            })
            .collect();
        let busiest: Vec<String> = self
            .busiest_others
            .iter()
            .map(|(name, cpus)| format!("{name} {cpus:.3}"))
            .collect();
        let busiest = if busiest.is_empty() {
            String::new()
        } else {
            format!(" (busiest: {})", busiest.join(", "))
        };
        format!(
            "{}; QEMU's other threads {:.2} CPUs, rest of host {:.2} CPUs{busiest}, stolen {:.2} CPUs over {:.2} s",
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

/// A numeric `name : value` field of a `sched` file (integer part).
fn sched_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim_start().strip_prefix(':'))?
        .trim()
        .split('.')
        .next()?
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
        let sched = "qemu (12, #threads: 5)\n---\nse.sum_exec_runtime                          :          1234.5\nse.nr_migrations                             :                   42\n";
        assert_eq!(sched_field(sched, "se.nr_migrations"), Some(42));
        assert_eq!(sched_field(sched, "se.sum_exec_runtime"), Some(1234));
        assert_eq!(sched_field(sched, "nr_switches"), None);
    }

    #[test]
    fn a_window_is_the_difference_of_two_samples() {
        let begin = Instant::now();
        let thread = |tid, name: &str, run_ns| HostThread {
            tid,
            name: name.to_owned(),
            run_ns,
        };
        let sample = |at, run_ns, wait_ns, switches, qemu_run_ns, host_busy_ns: u64| Sample {
            host_steal_ns: host_busy_ns / 10,
            at,
            vcpus: vec![
                VcpuTimes {
                    vcpu: 0,
                    run_ns: 0,
                    wait_ns: 0,
                    involuntary_switches: 0,
                    migrations: None,
                },
                VcpuTimes {
                    vcpu: 1,
                    run_ns,
                    wait_ns,
                    involuntary_switches: switches,
                    migrations: Some(switches / 5),
                },
            ],
            qemu_run_ns,
            host_busy_ns,
            // Thread 7 ran 0.4 s of the window, 8 was born in it and ran
            // 0.1 s, 9 ran 1 ms (under the floor) and 10 ended before the end.
            others: if run_ns == 1_000_000_000 {
                vec![
                    thread(7, "rustc (7)", 5_000_000_000),
                    thread(9, "bash (9)", 10_000_000),
                    thread(10, "git (10)", 1),
                ]
            } else {
                vec![
                    thread(7, "rustc (7)", 5_400_000_000),
                    thread(8, "cargo/jobserver (8)", 100_000_000),
                    thread(9, "bash-renamed (9)", 11_000_000),
                ]
            },
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
        assert_eq!(vcpu.migrations, Some(4));
        assert_eq!(window.vcpus[0].migrations, None);
        assert_eq!(
            window.busiest_others,
            [
                ("rustc (7)".to_owned(), 0.2),
                ("cargo/jobserver (8)".to_owned(), 0.05)
            ]
        );
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
                .contains("vCPU1 ran 80% waited 15% (20 preempted, 4 moved)")
        );
        assert!(
            window
                .describe()
                .contains("(busiest: rustc (7) 0.200, cargo/jobserver (8) 0.050)")
        );
    }
}
