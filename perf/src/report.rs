//! The report: `results.json`, `results.csv`, SVG plots and `summary.md`.

use crate::plots;
use crate::results::{Measurement, Point};
use crate::scenario::{System, Workload};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// One criterion microbenchmark row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MicroRow {
    /// Criterion group, like `ring_cross_thread`.
    pub group: String,
    /// Implementation, like `warpcore` or `rtrb`.
    pub implementation: String,
    /// Median nanoseconds per item.
    pub ns_per_item: f64,
}

/// Pipeline capacity measured inside the appliance with no NIC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticRow {
    /// Who turns echoes into requests: `core` (a generator core) or `local`
    /// (each pipeline core for itself).
    #[serde(default = "core_generator")]
    pub generator: String,
    /// Pipeline cores.
    pub cores: u32,
    /// Million packets per second through all of them.
    pub mpps: f64,
    /// TSC cycles per packet per core.
    pub cycles_per_packet: f64,
}

/// Reports written before the local generator existed measured this one.
fn core_generator() -> String {
    "core".into()
}

/// An idle system: what it costs the host doing nothing, and how fast it
/// answers when something finally comes (`workload = "idle"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleRow {
    /// Scenario name.
    pub scenario: String,
    /// The system.
    pub system: System,
    /// vCPUs.
    pub cores: u32,
    /// Which repetition, from 0.
    pub repetition: u32,
    /// Seconds the host CPU was measured over.
    pub seconds: f64,
    /// QEMU's user + system time over those seconds (`/proc/<pid>/stat`),
    /// in percent of one host CPU; `None` when the run failed.
    pub host_cpu_percent: Option<f64>,
    /// Round trip of the first UDP echo after 10 s without traffic, one
    /// per sample, in nanoseconds.
    pub first_packet_ns: Vec<u64>,
    /// Median round trip of the echoes sent right after each first one
    /// (the system awake), in nanoseconds.
    pub warm_packet_ns: Option<u64>,
    /// What the system said about its idle time over the CPU window
    /// (warpcore: wake-ups by cause and timer interrupts), or why the run
    /// failed.
    pub detail: String,
}

/// A deterministic instruction count from callgrind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstructionRow {
    /// What was counted, like `macswap`.
    pub benchmark: String,
    /// Instructions per packet.
    pub instructions_per_packet: f64,
}

/// `at` in UTC to the second, as reports stamp their creation:
/// `2026-11-22T00:21:09Z` (RFC 3339).
pub fn utc_timestamp(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Everything one `cargo xtask bench` run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Report {
    /// When it ran (UTC, as the harness's clock said).
    pub created: String,
    /// The command that made it.
    pub command: String,
    /// Medians per scenario, system and core count.
    pub points: Vec<Point>,
    /// Every run.
    pub measurements: Vec<Measurement>,
    /// Criterion microbenchmarks.
    pub micro: Vec<MicroRow>,
    /// In-guest synthetic pipeline capacity.
    pub synthetic: Vec<SyntheticRow>,
    /// callgrind instructions per packet.
    pub instructions: Vec<InstructionRow>,
    /// Idle systems: host CPU and first-packet latency.
    #[serde(default)]
    pub idle: Vec<IdleRow>,
    /// Anything a reader must know (skipped systems, environment).
    pub notes: Vec<String>,
}

/// The warpcore system a peer is compared with: the one in the same
/// environment (QEMU guests against the appliance, host peers against the
/// hosted runtime).
pub fn reference_for(system: System) -> Option<System> {
    match system {
        System::LinuxGuest | System::QemuCeiling => Some(System::WarpcoreQemu),
        System::LinuxHost => Some(System::WarpcoreHosted),
        // The same appliance busy-polling: the ratio is what halting when
        // idle costs (or not) at peak.
        System::WarpcoreQemuPoll | System::WarpcoreQemuHaltpoll => Some(System::WarpcoreQemu),
        // DPDK on the same veth and PMD type as warpcore's driver.
        System::TestpmdAfXdp | System::WarpcoreAfXdpPoll => Some(System::WarpcoreAfXdp),
        System::TestpmdAfPacket | System::WarpcoreAfPacketPoll | System::WarpcoreAfPacketRing => {
            Some(System::WarpcoreAfPacket)
        }
        // testpmd's engine against loadgen's, into the same dropping guest.
        System::TestpmdVhostCeiling => Some(System::QemuCeiling),
        System::WarpcoreQemu
        | System::WarpcoreHosted
        | System::WarpcoreAfXdp
        | System::WarpcoreAfPacket => None,
    }
}

fn rate(pps: Option<f64>) -> String {
    match pps {
        None => "failed".into(),
        Some(pps) if pps >= 1e6 => format!("{:.2} M", pps / 1e6),
        Some(pps) => format!("{:.1} k", pps / 1e3),
    }
}

fn micros(nanoseconds: Option<u64>) -> String {
    nanoseconds.map_or_else(|| "-".into(), |ns| format!("{:.0} µs", ns as f64 / 1e3))
}

/// The ratio of the reference warpcore system's rate to `point`'s (on the
/// same backend); for `http-latency` and `udp-latency`, where both are
/// offered the same rate, the ratio of `point`'s p99 latency to warpcore's
/// (how many times lower warpcore's is).
pub fn warpcore_ratio(points: &[Point], point: &Point) -> Option<f64> {
    if point.workload == Workload::UdpEchoManagementLoad {
        // The system under the management load against itself alone.
        let alone = point.management.as_ref()?.alone_pps;
        return (alone > 0.0).then(|| point.pps.unwrap_or(0.0) / alone);
    }
    let reference = reference_for(point.system)?;
    let ours = points.iter().find(|p| {
        p.scenario == point.scenario
            && p.cores == point.cores
            && p.system == reference
            && p.backend == point.backend
    })?;
    if matches!(point.workload, Workload::HttpLatency | Workload::UdpLatency) {
        let ours = ours.latency_p99_ns.filter(|ns| *ns > 0)?;
        return Some(point.latency_p99_ns? as f64 / ours as f64);
    }
    let theirs = point.pps.filter(|pps| *pps > 0.0)?;
    Some(ours.pps? / theirs)
}

/// The ratio column's header for `workload`.
fn ratio_header(workload: Workload) -> &'static str {
    match workload {
        Workload::HttpLatency | Workload::UdpLatency => "system p99 ÷ warpcore p99",
        Workload::UdpEchoManagementLoad => "under load ÷ alone",
        _ => "warpcore ÷ system",
    }
}

/// The summary table in Markdown.
pub fn summary_markdown(report: &Report) -> String {
    let mut text = String::from("# warpcore benchmark report\n\n");
    let _ = writeln!(
        text,
        "- created: {}\n- command: `{}`",
        report.created, report.command
    );
    for note in &report.notes {
        let _ = writeln!(text, "- {note}");
    }
    let mut scenarios: Vec<&str> = Vec::new();
    for point in &report.points {
        if !scenarios.contains(&point.scenario.as_str()) {
            scenarios.push(&point.scenario);
        }
    }
    for scenario in scenarios {
        let workload = report
            .points
            .iter()
            .find(|p| p.scenario == scenario)
            .map_or(Workload::UdpEcho, |p| p.workload);
        if workload == Workload::UdpEchoManagementLoad {
            management_load_table(&mut text, scenario, &report.points);
            continue;
        }
        let loss = if workload.is_tcp() { "errors" } else { "loss" };
        let _ = writeln!(
            text,
            "\n## {scenario}\n\n| system | backend | cores | {} | {loss} | p50 | p99 | {} |\n|---|---|---:|---:|---:|---:|---:|---:|",
            workload.rate_unit(),
            ratio_header(workload),
        );
        for point in report.points.iter().filter(|p| p.scenario == scenario) {
            let ratio = warpcore_ratio(&report.points, point)
                .map_or_else(|| "-".into(), |r| format!("{r:.2}x"));
            let loss = point
                .loss_percent
                .map_or_else(|| "-".into(), |l| format!("{l:.2} %"));
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {loss} | {} | {} | {ratio} |",
                point.system.name(),
                point.backend.name(),
                point.cores,
                rate(point.pps),
                micros(point.latency_p50_ns),
                micros(point.latency_p99_ns),
            );
            for failure in &point.failures {
                let _ = writeln!(
                    text,
                    "|  | | | failed: {} | | | | |",
                    failure.replace('|', "/").replace('\n', " ")
                );
            }
        }
        if !workload.is_tcp() && !matches!(workload, Workload::HttpLatency | Workload::UdpLatency) {
            repetitions_markdown(&mut text, scenario, &report.measurements);
        }
    }
    idle_markdown(&mut text, &report.idle);
    if !report.synthetic.is_empty() {
        text.push_str("\n## In-guest synthetic pipeline (no NIC)\n\n| generator | cores | Mpps | cycles/packet/core | ÷ 1 core |\n|---|---:|---:|---:|---:|\n");
        for row in &report.synthetic {
            let one_core = report
                .synthetic
                .iter()
                .find(|other| other.generator == row.generator && other.cores == 1);
            let scaling = match one_core {
                Some(one) if row.cores != 1 && one.mpps > 0.0 => {
                    format!("{:.2}x", row.mpps / one.mpps)
                }
                _ => "-".into(),
            };
            let _ = writeln!(
                text,
                "| {} | {} | {:.2} | {:.1} | {scaling} |",
                row.generator, row.cores, row.mpps, row.cycles_per_packet
            );
        }
    }
    if !report.instructions.is_empty() {
        text.push_str("\n## Instructions per packet (callgrind)\n\n| benchmark | instructions/packet |\n|---|---:|\n");
        for row in &report.instructions {
            let _ = writeln!(
                text,
                "| {} | {:.1} |",
                row.benchmark, row.instructions_per_packet
            );
        }
    }
    if !report.micro.is_empty() {
        text.push_str("\n## Microbenchmarks (criterion)\n\n| benchmark | implementation | ns/item | warpcore speed-up |\n|---|---|---:|---:|\n");
        for row in &report.micro {
            let ours = report
                .micro
                .iter()
                .find(|r| r.group == row.group && r.implementation == "warpcore");
            let speedup = ours.map_or_else(
                || "-".into(),
                |ours| format!("{:.2}x", row.ns_per_item / ours.ns_per_item),
            );
            let _ = writeln!(
                text,
                "| {} | {} | {:.2} | {speedup} |",
                row.group, row.implementation, row.ns_per_item
            );
        }
    }
    text
}

/// Every repetition's rate of `scenario`'s systems, in the order they
/// ran (the table above has their medians), and each one's ratio to the
/// same repetition of the warpcore system it is compared with: with
/// interleaved repetitions those two ran side by side. Written only when
/// some system ran more than once.
fn repetitions_markdown(text: &mut String, scenario: &str, measurements: &[Measurement]) {
    let ran: Vec<&Measurement> = measurements
        .iter()
        .filter(|m| m.scenario == scenario)
        .collect();
    let key = |m: &Measurement| (m.system, m.backend, m.cores);
    let mut groups: Vec<(System, crate::scenario::Backend, u32)> = Vec::new();
    for m in &ran {
        if !groups.contains(&key(m)) {
            groups.push(key(m));
        }
    }
    let count = |group: &(System, crate::scenario::Backend, u32)| {
        ran.iter().filter(|m| key(m) == *group).count()
    };
    if groups.iter().all(|group| count(group) < 2) {
        return;
    }
    let pps_of = |system: System, backend, cores, repetition: u32| {
        ran.iter()
            .find(|m| key(m) == (system, backend, cores) && m.repetition == repetition)
            .and_then(|m| match m.outcome {
                crate::results::Outcome::Measured { pps, .. } => Some(pps),
                crate::results::Outcome::Failed { .. } => None,
            })
    };
    let _ = writeln!(
        text,
        "\nRepetitions of {scenario}, in the order each system ran them:\n\n| system | backend | cores | rate by repetition | warpcore ÷ system by repetition |\n|---|---|---:|---|---|"
    );
    for &(system, backend, cores) in &groups {
        let repetitions: Vec<u32> = ran
            .iter()
            .filter(|m| key(m) == (system, backend, cores))
            .map(|m| m.repetition)
            .collect();
        let rates: Vec<String> = repetitions
            .iter()
            .map(|&repetition| rate(pps_of(system, backend, cores, repetition)))
            .collect();
        let ratios: Vec<String> = match reference_for(system) {
            Some(reference) => repetitions
                .iter()
                .map(|&repetition| {
                    let ours = pps_of(reference, backend, cores, repetition);
                    let theirs = pps_of(system, backend, cores, repetition).filter(|p| *p > 0.0);
                    match (ours, theirs) {
                        (Some(ours), Some(theirs)) => format!("{:.3}x", ours / theirs),
                        _ => "-".into(),
                    }
                })
                .collect(),
            None => Vec::new(),
        };
        let _ = writeln!(
            text,
            "| {} | {} | {cores} | {} | {} |",
            system.name(),
            backend.name(),
            rates.join(", "),
            if ratios.is_empty() {
                "-".into()
            } else {
                ratios.join(", ")
            },
        );
    }
}

/// A `udp-echo-management-load` scenario's table: each system's echo
/// rate alone and under the management load, their ratio, and what the
/// management client got.
fn management_load_table(text: &mut String, scenario: &str, points: &[Point]) {
    let _ = writeln!(
        text,
        "\n## {scenario}\n\n| system | cores | pps alone | pps under management load | {} | loss under load | management requests/s | request errors | connections |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ratio_header(Workload::UdpEchoManagementLoad)
    );
    for point in points.iter().filter(|p| p.scenario == scenario) {
        let ratio =
            warpcore_ratio(points, point).map_or_else(|| "-".into(), |r| format!("{r:.2}x"));
        let loss = point
            .loss_percent
            .map_or_else(|| "-".into(), |l| format!("{l:.2} %"));
        let management = point.management.as_ref();
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {ratio} | {loss} | {} | {} | {} |",
            point.system.name(),
            point.cores,
            rate(management.map(|m| m.alone_pps)),
            rate(point.pps),
            management.map_or_else(|| "-".into(), |m| format!("{:.0}", m.requests_per_second)),
            management.map_or_else(|| "-".into(), |m| m.request_errors.to_string()),
            management.map_or_else(|| "-".into(), |m| m.connections.to_string()),
        );
        for failure in &point.failures {
            let _ = writeln!(
                text,
                "|  | | failed: {} | | | | | | |",
                failure.replace('|', "/").replace('\n', " ")
            );
        }
    }
}

/// The idle table: each system's host CPU, and its ratio to the Linux
/// guest's in the same scenario at the same vCPU count.
fn idle_markdown(text: &mut String, rows: &[IdleRow]) {
    if rows.is_empty() {
        return;
    }
    text.push_str(
        "\n## Idle: host CPU, first packet after 10 s idle\n\n\
         | scenario | system | vCPUs | host CPU | ÷ linux-guest | first packet | then | idle detail |\n\
         |---|---|---:|---:|---:|---:|---:|---|\n",
    );
    for row in rows {
        let linux = rows
            .iter()
            .filter(|other| {
                other.scenario == row.scenario
                    && other.cores == row.cores
                    && other.system == System::LinuxGuest
            })
            .find_map(|other| other.host_cpu_percent);
        let cpu = row
            .host_cpu_percent
            .map_or_else(|| "failed".into(), |cpu| format!("{cpu:.2} %"));
        let ratio = match (row.host_cpu_percent, linux) {
            (Some(ours), Some(linux)) if row.system != System::LinuxGuest && linux > 0.0 => {
                format!("{:.2}x", ours / linux)
            }
            _ => "-".into(),
        };
        let first = if row.first_packet_ns.is_empty() {
            "-".into()
        } else {
            row.first_packet_ns
                .iter()
                .map(|ns| format!("{:.0}", *ns as f64 / 1e3))
                .collect::<Vec<_>>()
                .join(" / ")
                + " µs"
        };
        let _ = writeln!(
            text,
            "| {} | {} | {} | {cpu} | {ratio} | {first} | {} | {} |",
            row.scenario,
            row.system.name(),
            row.cores,
            micros(row.warm_packet_ns),
            row.detail.replace('|', "/").replace('\n', " "),
        );
    }
}

/// One CSV row per point.
pub fn csv(report: &Report) -> String {
    let mut text = String::from(
        "scenario,workload,system,backend,cores,pps,loss_percent,p50_ns,p99_ns,runs,warpcore_ratio\n",
    );
    let optional = |value: Option<String>| value.unwrap_or_default();
    for point in &report.points {
        let _ = writeln!(
            text,
            "{},{},{},{},{},{},{},{},{},{},{}",
            point.scenario,
            serde_json::to_value(point.workload)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            point.system.name(),
            point.backend.name(),
            point.cores,
            optional(point.pps.map(|p| format!("{p:.1}"))),
            optional(point.loss_percent.map(|l| format!("{l:.4}"))),
            optional(point.latency_p50_ns.map(|n| n.to_string())),
            optional(point.latency_p99_ns.map(|n| n.to_string())),
            point.runs,
            optional(warpcore_ratio(&report.points, point).map(|r| format!("{r:.3}"))),
        );
    }
    text
}

/// Writes every file of the report into `dir` (created if missing).
pub fn write(report: &Report, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), text)
            .with_context(|| format!("writing {}", dir.join(name).display()))
    };
    write("results.json", serde_json::to_string_pretty(report)?)?;
    write("results.csv", csv(report))?;
    write("summary.md", summary_markdown(report))?;
    plots::write_all(report, dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Outcome, aggregate};
    use crate::scenario::Backend;

    /// A fixture: two QEMU systems and the ceiling, one failed host peer.
    fn fixture() -> Report {
        let measurement = |system, pps: Option<f64>| Measurement {
            scenario: "udp-echo".into(),
            workload: Workload::UdpEcho,
            system,
            backend: Backend::Tap,
            cores: 1,
            repetition: 0,
            outcome: match pps {
                Some(pps) => Outcome::Measured {
                    pps,
                    run: None,
                    management: None,
                },
                None => Outcome::Failed {
                    reason: "no | tap".into(),
                },
            },
        };
        let measurements = vec![
            measurement(System::WarpcoreQemu, Some(600_000.0)),
            measurement(System::LinuxGuest, Some(20_000.0)),
            measurement(System::QemuCeiling, Some(1_000_000.0)),
            measurement(System::LinuxHost, None),
        ];
        Report {
            created: "2026-11-22T00:00:00Z".into(),
            command: "cargo xtask bench --quick".into(),
            points: aggregate(&measurements),
            measurements,
            micro: vec![
                MicroRow {
                    group: "ring".into(),
                    implementation: "warpcore".into(),
                    ns_per_item: 2.0,
                },
                MicroRow {
                    group: "ring".into(),
                    implementation: "rtrb".into(),
                    ns_per_item: 3.0,
                },
            ],
            synthetic: vec![
                SyntheticRow {
                    generator: "core".into(),
                    cores: 1,
                    mpps: 12.5,
                    cycles_per_packet: 80.0,
                },
                SyntheticRow {
                    generator: "core".into(),
                    cores: 2,
                    mpps: 20.0,
                    cycles_per_packet: 90.0,
                },
            ],
            instructions: vec![InstructionRow {
                benchmark: "macswap".into(),
                instructions_per_packet: 31.5,
            }],
            idle: vec![
                IdleRow {
                    scenario: "idle".into(),
                    system: System::WarpcoreQemu,
                    cores: 2,
                    repetition: 0,
                    seconds: 30.0,
                    host_cpu_percent: Some(0.15),
                    first_packet_ns: vec![450_000, 520_000],
                    warm_packet_ns: Some(200_000),
                    detail: "timer 3 | packet 2".into(),
                },
                IdleRow {
                    scenario: "idle".into(),
                    system: System::LinuxGuest,
                    cores: 2,
                    repetition: 0,
                    seconds: 30.0,
                    host_cpu_percent: Some(0.3),
                    first_packet_ns: vec![900_000],
                    warm_packet_ns: None,
                    detail: String::new(),
                },
            ],
            notes: vec!["TCG".into()],
        }
    }

    #[test]
    fn timestamps_are_civil_utc_dates() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // A leap day, and the last second of a year.
        let leap_day = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_661);
        assert_eq!(utc_timestamp(leap_day), "2000-02-29T01:01:01Z");
        let year_end = UNIX_EPOCH + Duration::from_secs(1_798_761_599);
        assert_eq!(utc_timestamp(year_end), "2026-12-31T23:59:59Z");
        let now = utc_timestamp(std::time::SystemTime::now());
        assert!(now.starts_with("20") && now.len() == 20, "{now}");
    }

    #[test]
    fn summary_has_ratios_failures_and_sections() {
        let text = summary_markdown(&fixture());
        assert!(
            text.contains("| warpcore-qemu | tap | 1 | 600.0 k | - | - | - | - |"),
            "{text}"
        );
        assert!(
            text.contains("| linux-guest | tap | 1 | 20.0 k | - | - | - | 30.00x |"),
            "{text}"
        );
        assert!(
            text.contains("| qemu-ceiling | tap | 1 | 1.00 M | - | - | - | 0.60x |"),
            "{text}"
        );
        assert!(text.contains("| linux-host | tap | 1 | failed |"), "{text}");
        assert!(text.contains("failed: no / tap"), "{text}");
        assert!(text.contains("| core | 1 | 12.50 | 80.0 | - |"), "{text}");
        assert!(
            text.contains("| core | 2 | 20.00 | 90.0 | 1.60x |"),
            "{text}"
        );
        assert!(text.contains("| macswap | 31.5 |"));
        assert!(
            text.contains(
                "| idle | warpcore-qemu | 2 | 0.15 % | 0.50x | 450 / 520 µs | 200 µs | timer 3 / packet 2 |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| idle | linux-guest | 2 | 0.30 % | - | 900 µs | - |  |"),
            "{text}"
        );
        assert!(text.contains("| ring | rtrb | 3.00 | 1.50x |"));
    }

    #[test]
    fn management_load_rows_compare_each_system_with_itself_alone() {
        let measurement = |system, pps, alone_pps| Measurement {
            scenario: "udp-echo-management-load".into(),
            workload: Workload::UdpEchoManagementLoad,
            system,
            backend: Backend::Tap,
            cores: 1,
            repetition: 0,
            outcome: Outcome::Measured {
                pps,
                run: None,
                management: Some(Box::new(crate::results::ManagementLoad {
                    alone_pps,
                    requests_per_second: 4321.4,
                    request_errors: 2,
                    connections: 64,
                })),
            },
        };
        let measurements = vec![
            measurement(System::WarpcoreQemu, 18_000.0, 20_000.0),
            measurement(System::WarpcoreHosted, 150_000.0, 100_000.0),
        ];
        let report = Report {
            points: aggregate(&measurements),
            measurements,
            ..Report::default()
        };
        let text = summary_markdown(&report);
        assert!(
            text.contains("| system | cores | pps alone | pps under management load | under load ÷ alone | loss under load | management requests/s | request errors | connections |"),
            "{text}"
        );
        assert!(
            text.contains("| warpcore-qemu | 1 | 20.0 k | 18.0 k | 0.90x | - | 4321 | 2 | 64 |"),
            "{text}"
        );
        assert!(
            text.contains("| warpcore-hosted | 1 | 100.0 k | 150.0 k | 1.50x |"),
            "{text}"
        );
        assert!(csv(&report).contains(
            "udp-echo-management-load,udp-echo-management-load,warpcore-qemu,tap,1,18000.0,,,,1,0.900"
        ));
        let json = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn repetitions_are_listed_in_run_order_with_their_ratios() {
        let measurement = crate::results::tests::measured;
        // Interleaved: A B A B A(failed) B.
        let mut measurements = vec![
            measurement(System::WarpcoreAfXdp, 0, 400_000.0),
            measurement(System::TestpmdAfXdp, 0, 380_000.0),
            measurement(System::WarpcoreAfXdp, 1, 300_000.0),
            measurement(System::TestpmdAfXdp, 1, 320_000.0),
        ];
        measurements.push(Measurement {
            outcome: Outcome::Failed {
                reason: "boom".into(),
            },
            ..measurement(System::WarpcoreAfXdp, 2, 0.0)
        });
        measurements.push(measurement(System::TestpmdAfXdp, 2, 350_000.0));
        let report = Report {
            points: aggregate(&measurements),
            measurements,
            ..Report::default()
        };
        let text = summary_markdown(&report);
        assert!(
            text.contains("| warpcore-af-xdp | tap | 1 | 400.0 k, 300.0 k, failed | - |"),
            "{text}"
        );
        assert!(
            text.contains(
                "| testpmd-af-xdp | tap | 1 | 380.0 k, 320.0 k, 350.0 k | 1.053x, 0.938x, - |"
            ),
            "{text}"
        );
        // One repetition each: no such table.
        let single = Report {
            measurements: report.measurements[..2].to_vec(),
            points: aggregate(&report.measurements[..2]),
            ..Report::default()
        };
        assert!(!summary_markdown(&single).contains("Repetitions of"));
    }

    #[test]
    fn latency_rows_compare_p99s_at_the_same_rate() {
        let point = |system, p99_ns| Point {
            scenario: "http-latency".into(),
            workload: Workload::HttpLatency,
            system,
            backend: Backend::Tap,
            cores: 1,
            pps: Some(4_000.0),
            loss_percent: Some(0.0),
            latency_p50_ns: Some(100_000),
            latency_p99_ns: Some(p99_ns),
            latency_cdf: Vec::new(),
            runs: 1,
            failures: Vec::new(),
            management: None,
        };
        let report = Report {
            points: vec![
                point(System::WarpcoreQemu, 300_000),
                point(System::LinuxGuest, 15_000_000),
            ],
            ..Report::default()
        };
        assert_eq!(
            warpcore_ratio(&report.points, &report.points[1]),
            Some(50.0)
        );
        let text = summary_markdown(&report);
        assert!(
            text.contains(
                "| system | backend | cores | requests/s | errors | p50 | p99 | system p99 ÷ warpcore p99 |"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "| linux-guest | tap | 1 | 4.0 k | 0.00 % | 100 µs | 15000 µs | 50.00x |"
            ),
            "{text}"
        );
    }

    #[test]
    fn csv_and_files_are_written() {
        let report = fixture();
        let csv = csv(&report);
        assert_eq!(csv.lines().count(), 5);
        assert!(
            csv.contains("udp-echo,udp-echo,linux-guest,tap,1,20000.0,,,,1,30.000"),
            "{csv}"
        );
        let dir = std::env::temp_dir().join(format!("perf-report-{}", std::process::id()));
        write(&report, &dir).unwrap();
        for file in ["results.json", "results.csv", "summary.md", "pps.svg"] {
            assert!(dir.join(file).is_file(), "{file} missing");
        }
        let back: Report =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(back, report);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
