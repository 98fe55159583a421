//! Measurements of the systems under test and their medians over repetitions.

use crate::scenario::{Backend, System, Workload};
use loadgen::run::RunResult;
use serde::{Deserialize, Serialize};

/// The management plane's load beside a data-path run
/// (`udp-echo-management-load`): the same system measured alone just
/// before, and what the management client got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagementLoad {
    /// The data path's rate alone (pps), on the same system in the same
    /// run; the measurement's `pps` is its rate under the load.
    pub alone_pps: f64,
    /// Management requests answered per second during the loaded run.
    pub requests_per_second: f64,
    /// Management requests that failed (socket errors, non-2xx).
    pub request_errors: u64,
    /// The management client's connections.
    pub connections: u32,
}

/// What one run of one system produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// The run finished.
    Measured {
        /// Packets per second the system handled: echoes for echo workloads,
        /// forwarded packets for l3fwd, frames received at the NIC for sink.
        pps: f64,
        /// loadgen's figures, when replies came back to loadgen.
        run: Option<Box<RunResult>>,
        /// The management load beside the run, for the workloads that
        /// have one.
        /// (Boxed: the other variants are far smaller.)
        #[serde(default, skip_serializing_if = "Option::is_none")]
        management: Option<Box<ManagementLoad>>,
    },
    /// The system could not be measured; the reason goes into the report.
    Failed {
        /// Why.
        reason: String,
    },
}

/// One run of one system in one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Scenario name.
    pub scenario: String,
    /// Its workload.
    pub workload: Workload,
    /// The system under test.
    pub system: System,
    /// The QEMU backend it ran on (`tap` for the host systems).
    #[serde(default)]
    pub backend: Backend,
    /// Cores (vCPUs or pinned threads) the system had.
    pub cores: u32,
    /// Which repetition, from 0.
    pub repetition: u32,
    /// What happened.
    pub outcome: Outcome,
}

/// The median over repetitions of one system in one scenario at one core count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Scenario name.
    pub scenario: String,
    /// Its workload.
    pub workload: Workload,
    /// The system.
    pub system: System,
    /// The QEMU backend it ran on.
    #[serde(default)]
    pub backend: Backend,
    /// Cores.
    pub cores: u32,
    /// Median packets per second; `None` when every repetition failed.
    pub pps: Option<f64>,
    /// Loss of the median run, percent.
    pub loss_percent: Option<f64>,
    /// Median round trip of the median run.
    pub latency_p50_ns: Option<u64>,
    /// 99th percentile round trip of the median run.
    pub latency_p99_ns: Option<u64>,
    /// Latency CDF of the median run, (percent, ns).
    pub latency_cdf: Vec<(f64, u64)>,
    /// Repetitions that succeeded.
    pub runs: u32,
    /// Why runs failed, if they did.
    pub failures: Vec<String>,
    /// The management load beside the median run, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management: Option<ManagementLoad>,
}

/// Groups measurements by (scenario, system, backend, cores), keeping the
/// run with the median pps of each group, in first-seen order. The
/// fixed-rate workloads keep the run with the median p99 instead: every
/// run offers the same rate, so a median by rate would be whichever run
/// happened to be a few packets faster.
pub fn aggregate(measurements: &[Measurement]) -> Vec<Point> {
    let mut keys: Vec<(String, System, Backend, u32)> = Vec::new();
    for measurement in measurements {
        let key = (
            measurement.scenario.clone(),
            measurement.system,
            measurement.backend,
            measurement.cores,
        );
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(scenario, system, backend, cores)| {
            let group: Vec<&Measurement> = measurements
                .iter()
                .filter(|m| {
                    m.scenario == scenario
                        && m.system == system
                        && m.backend == backend
                        && m.cores == cores
                })
                .collect();
            let mut measured: Vec<(f64, Option<&RunResult>, Option<&ManagementLoad>)> = group
                .iter()
                .filter_map(|m| match &m.outcome {
                    Outcome::Measured {
                        pps,
                        run,
                        management,
                    } => Some((*pps, run.as_deref(), management.as_deref())),
                    Outcome::Failed { .. } => None,
                })
                .collect();
            if group[0].workload.is_fixed_rate() {
                let p99 = |run: Option<&RunResult>| {
                    run.and_then(|r| r.summary.latency_p99_ns)
                        .unwrap_or(u64::MAX)
                };
                measured.sort_by_key(|(_, run, _)| p99(*run));
            } else {
                measured.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            let failures = group
                .iter()
                .filter_map(|m| match &m.outcome {
                    Outcome::Failed { reason } => Some(reason.clone()),
                    Outcome::Measured { .. } => None,
                })
                .collect();
            let median = measured.get(measured.len().saturating_sub(1) / 2);
            let run = median.and_then(|(_, run, _)| *run);
            Point {
                scenario,
                workload: group[0].workload,
                system,
                backend,
                cores,
                pps: median.map(|(pps, _, _)| *pps),
                loss_percent: run.map(|r| r.summary.loss_percent),
                latency_p50_ns: run.and_then(|r| r.summary.latency_p50_ns),
                latency_p99_ns: run.and_then(|r| r.summary.latency_p99_ns),
                latency_cdf: run.map(|r| r.latency_cdf.clone()).unwrap_or_default(),
                runs: measured.len() as u32,
                failures,
                management: median.and_then(|(_, _, management)| management.cloned()),
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Repetition `repetition` of a UDP echo scenario on `system`,
    /// measured at `pps` (for the report's tests too).
    pub(crate) fn measured(system: System, repetition: u32, pps: f64) -> Measurement {
        Measurement {
            scenario: "udp".into(),
            workload: Workload::UdpEcho,
            system,
            backend: Backend::Tap,
            cores: 1,
            repetition,
            outcome: Outcome::Measured {
                pps,
                run: None,
                management: None,
            },
        }
    }

    #[test]
    fn keeps_the_median_and_the_failures() {
        let mut measurements = vec![
            measured(System::LinuxGuest, 0, 30.0),
            measured(System::LinuxGuest, 1, 10.0),
            measured(System::LinuxGuest, 2, 20.0),
            measured(System::WarpcoreQemu, 0, 500.0),
        ];
        measurements.push(Measurement {
            outcome: Outcome::Failed {
                reason: "no ready line".into(),
            },
            ..measured(System::WarpcoreQemu, 1, 0.0)
        });
        let points = aggregate(&measurements);
        assert_eq!(points.len(), 2);
        assert_eq!(
            (points[0].system, points[0].pps, points[0].runs),
            (System::LinuxGuest, Some(20.0), 3)
        );
        assert_eq!(points[1].pps, Some(500.0));
        assert_eq!(points[1].failures, ["no ready line"]);
        // The same system on another backend is a point of its own.
        measurements.push(Measurement {
            backend: Backend::VhostUser,
            ..measured(System::LinuxGuest, 0, 1000.0)
        });
        let points = aggregate(&measurements);
        assert_eq!(points.len(), 3);
        assert_eq!(
            (points[2].backend, points[2].pps),
            (Backend::VhostUser, Some(1000.0))
        );
    }

    /// A udp-latency run at `pps` with this p99.
    fn latency_run(repetition: u32, pps: f64, p99_ns: u64) -> Measurement {
        let summary = loadgen::tracker::Summary {
            sent: 100,
            received: 100,
            lost: 0,
            loss_percent: 0.0,
            duplicates: 0,
            reordered: 0,
            foreign: 0,
            latency_p50_ns: Some(p99_ns / 10),
            latency_p90_ns: Some(p99_ns / 2),
            latency_p99_ns: Some(p99_ns),
            latency_p999_ns: Some(p99_ns * 2),
            latency_max_ns: Some(p99_ns * 3),
        };
        let run = RunResult {
            summary,
            send_seconds: 1.0,
            sent_pps: pps,
            offered_pps: Some(pps as u64),
            received_pps: pps,
            latency_cdf: Vec::new(),
            vhost_user: None,
            vhost_user_receive: None,
            tcp_client: None,
        };
        Measurement {
            workload: Workload::UdpLatency,
            outcome: Outcome::Measured {
                pps,
                run: Some(Box::new(run)),
                management: None,
            },
            ..measured(System::WarpcoreQemu, repetition, pps)
        }
    }

    #[test]
    fn fixed_rate_keeps_the_median_latency() {
        // The fastest run by a hair has the worst tail: a median by rate
        // would report its 1638 µs, the median p99 is 172 µs.
        let points = aggregate(&[
            latency_run(0, 12_270.2, 1_638_399),
            latency_run(1, 12_269.9, 172_031),
            latency_run(2, 12_270.0, 67_071),
        ]);
        assert_eq!(points[0].latency_p99_ns, Some(172_031));
        assert_eq!(points[0].pps, Some(12_269.9));
        assert_eq!(points[0].runs, 3);
    }

    #[test]
    fn all_failed_has_no_rate() {
        let points = aggregate(&[Measurement {
            outcome: Outcome::Failed {
                reason: "qemu missing".into(),
            },
            ..measured(System::QemuCeiling, 0, 0.0)
        }]);
        assert_eq!(points[0].pps, None);
        assert_eq!(points[0].runs, 0);
    }
}
