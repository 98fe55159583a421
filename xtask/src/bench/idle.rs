//! The idle benchmark (`workload = "idle"`): a system boots on a tap and
//! gets no traffic. Measured: QEMU's host CPU (user + system time from
//! `/proc/<pid>/stat`) over the scenario's `duration_secs`, and then, three
//! times, the round trip of the first UDP echo after 10 s of silence and of
//! the echoes right behind it. For warpcore, the counters dump before and
//! after the CPU window says what woke its cores meanwhile.

use crate::bench::harness::Tools;
use crate::bench::systems::{echo_spec_text, linux_guest};
use crate::counters::Counters;
use crate::net::devices::Lan;
use crate::qemu::session::QemuSession;
use crate::spec_file;
use crate::suites::traffic::{udp_client, wait_reachable};
use anyhow::{Context, Result, bail};
use perf::report::IdleRow;
use perf::scenario::{Scenario, System, Workload};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The appliance's (and the Linux guest's) MAC in the echo setup.
const ECHO_MAC: &str = "02:00:00:00:00:01";
/// Quiet time after boot and the first echo, before the CPU window opens.
const SETTLE: Duration = Duration::from_secs(5);
/// Silence before each first-packet sample.
const IDLE_BEFORE_PACKET: Duration = Duration::from_secs(10);
/// First-packet samples per run.
const SAMPLES: usize = 3;
/// Echoes timed right after each first one.
const FOLLOWING: &str = "9";
/// Tries for the first echo after boot, a second apart.
const ECHO_ATTEMPTS: usize = 30;

/// Measures every idle scenario on every system it names.
pub fn measure_idle_all(tools: &Tools, scenarios: &[Scenario]) -> Vec<IdleRow> {
    let mut rows = Vec::new();
    for scenario in scenarios
        .iter()
        .filter(|scenario| scenario.workload == Workload::Idle)
    {
        for &cores in &scenario.cores {
            for &system in &scenario.systems {
                for repetition in 0..scenario.repetitions {
                    let started = Instant::now();
                    let row = measure_idle(tools, scenario, system, cores, repetition)
                        .unwrap_or_else(|error| IdleRow {
                            scenario: scenario.name.clone(),
                            system,
                            cores,
                            repetition,
                            seconds: 0.0,
                            host_cpu_percent: None,
                            first_packet_ns: Vec::new(),
                            warm_packet_ns: None,
                            detail: format!("failed: {error:#}"),
                        });
                    eprintln!(
                        "xtask: [bench] {} {cores}c {} #{repetition}: host CPU {} first packet {:?} ns ({} ; {:.0} s)",
                        scenario.name,
                        system.name(),
                        row.host_cpu_percent
                            .map_or_else(|| "failed".into(), |cpu| format!("{cpu:.3} %")),
                        row.first_packet_ns,
                        row.detail.lines().next().unwrap_or(""),
                        started.elapsed().as_secs_f64()
                    );
                    rows.push(row);
                }
            }
        }
    }
    rows
}

/// One idle run of `system` on `cores` vCPUs.
fn measure_idle(
    tools: &Tools,
    scenario: &Scenario,
    system: System,
    cores: u32,
    repetition: u32,
) -> Result<IdleRow> {
    let lan = Lan::create(1, cores > 1, Some("10.0.0.1/24"))?;
    let mut session = match system {
        System::WarpcoreQemu | System::WarpcoreQemuPoll | System::WarpcoreQemuHaltpoll => {
            let text =
                crate::bench::systems::with_idle(&echo_spec_text(cores)?, system.appliance_idle());
            let spec = spec_file::temporary(&format!("bench-idle-{}", system.name()), &text)?;
            let booted = QemuSession::boot_appliance(
                &spec,
                cores,
                &lan.netns,
                &lan.tap_names(),
                cores as u16,
            );
            let _ = std::fs::remove_file(&spec);
            booted?
        }
        System::LinuxGuest => linux_guest(
            tools,
            scenario,
            cores,
            &lan.netns,
            &lan.tap_names(),
            &[ECHO_MAC],
            "wc.mode=echo wc.eth0=10.0.0.2/24",
        )?,
        other => bail!("the idle workload runs in QEMU, not on {}", other.name()),
    };
    let warpcore = system != System::LinuxGuest;
    wait_reachable(&lan.netns, "10.0.0.2", 30)?;
    first_echo(&lan)?;
    std::thread::sleep(SETTLE);
    let before = if warpcore {
        Some(session.counters()?)
    } else {
        None
    };
    let pid = session.pid();
    let ticks_before = cpu_ticks(pid)?;
    let window_start = Instant::now();
    std::thread::sleep(Duration::from_secs(scenario.duration_secs));
    let ticks_after = cpu_ticks(pid)?;
    let seconds = window_start.elapsed().as_secs_f64();
    let after = if warpcore {
        Some(session.counters()?)
    } else {
        None
    };
    let host_cpu_percent =
        (ticks_after - ticks_before) as f64 / clock_ticks_per_second() / seconds * 100.0;
    let detail = match (&before, &after) {
        (Some(before), Some(after)) => idle_detail(before, after),
        _ => String::new(),
    };
    let mut first_packet_ns = Vec::with_capacity(SAMPLES);
    let mut warm = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        std::thread::sleep(IDLE_BEFORE_PACKET);
        let (first, then) = echo_round_trips(&lan)?;
        first_packet_ns.push(first);
        warm.push(then);
    }
    warm.sort_unstable();
    drop(session);
    Ok(IdleRow {
        scenario: scenario.name.clone(),
        system,
        cores,
        repetition,
        seconds,
        host_cpu_percent: Some(host_cpu_percent),
        first_packet_ns,
        warm_packet_ns: warm.get(warm.len() / 2).copied(),
        detail,
    })
}

/// The first echo after boot: the Linux guest answers pings before its
/// echo server runs (the port is closed meanwhile), so it is retried,
/// once a second, a bounded number of times.
fn first_echo(lan: &Lan) -> Result<()> {
    let mut last = None;
    for _ in 0..ECHO_ATTEMPTS {
        match echo_round_trips(lan) {
            Ok(_) => return Ok(()),
            Err(error) => last = Some(error),
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no echo attempt")))
        .with_context(|| format!("no UDP echo in {ECHO_ATTEMPTS} attempts"))
}

/// Times one UDP echo and the ones right behind it from the namespace:
/// (first, median of the rest) in nanoseconds.
fn echo_round_trips(lan: &Lan) -> Result<(u64, u64)> {
    let output = udp_client(&lan.netns, &["rtt", "10.0.0.2:7", FOLLOWING])?;
    let value = |key: &str| -> Result<u64> {
        output
            .split_whitespace()
            .find_map(|word| word.strip_prefix(key))
            .context("no such field")?
            .parse()
            .with_context(|| format!("`{key}` in `{output}`"))
    };
    Ok((value("first_ns=")?, value("then_ns=")?))
}

/// User + system clock ticks of process `pid` and its threads so far.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_cpu_ticks(&text).with_context(|| format!("{path}: `{text}`"))
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line; the
/// command name in parentheses may hold spaces, so fields are counted
/// from its closing parenthesis.
fn parse_cpu_ticks(stat: &str) -> Result<u64> {
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no `)` after the command name")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    let field = |number: usize| -> Result<u64> {
        Ok(fields.get(number - 3).context("too few fields")?.parse()?)
    };
    Ok(field(14)? + field(15)?)
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// What moved between two warpcore counters dumps among the idle and
/// interrupt counters, summed over cores: `idle: sleeps +12, ...`.
fn idle_detail(before: &Counters, after: &Counters) -> String {
    let totals = |counters: &Counters| {
        let mut totals: BTreeMap<String, u64> = BTreeMap::new();
        for line in &counters.lines {
            if let [(kind, name)] = line.labels.as_slice()
                && (kind == "idle" || kind == "interrupts")
            {
                *totals.entry(format!("{kind}={name}")).or_default() += line.value;
            }
        }
        totals
    };
    let (before, after) = (totals(before), totals(after));
    let moved: Vec<String> = after
        .iter()
        .filter_map(|(name, value)| {
            let delta = value - before.get(name).copied().unwrap_or(0).min(*value);
            (delta > 0).then(|| format!("{name} +{delta}"))
        })
        .collect();
    if moved.is_empty() {
        "no wake-ups".into()
    } else {
        moved.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_past_the_command_name() {
        let stat = "4242 (qemu system) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 75 0 0 20 0 5 0 1000 100000 200 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), 325);
        assert!(parse_cpu_ticks("4242 (qemu) S 1").is_err());
    }

    #[test]
    fn the_detail_lists_what_moved() {
        let dump = |halts: u64, timer: u64| {
            Counters::parse_dump(&format!(
                "counter core=0 idle=sleeps value={halts}\n\
                 counter core=1 idle=sleeps value=1\n\
                 counter core=0 interrupts=timer value={timer}\n\
                 counter core=0 executor=polls value=99\n\
                 counters end\n"
            ))
            .unwrap()
        };
        assert_eq!(idle_detail(&dump(5, 2), &dump(9, 2)), "idle=sleeps +4");
        assert_eq!(idle_detail(&dump(5, 2), &dump(5, 2)), "no wake-ups");
    }
}
