//! What a kernel scenario's outcome must look like: exit status, serial
//! lines and figures, one check per scenario kind.

use crate::qemu::scenario::{ScenarioOutcome, exit_status};
use anyhow::{Result, ensure};

/// Every core reported its executor, the ready line names them all, exit was success.
pub fn check_boot(outcome: &ScenarioOutcome, cores: u32) -> Result<()> {
    ensure!(
        outcome.succeeded(),
        "expected success, got {}",
        outcome.describe_exit()
    );
    let ready_cores = outcome.ready_field("cores");
    ensure!(
        ready_cores == Some(&*cores.to_string()),
        "ready line reports cores={ready_cores:?}, expected {cores}"
    );
    for core in 0..cores {
        let needle = format!("core {core} executor running");
        ensure!(outcome.serial_log.contains(&needle), "missing `{needle}`");
    }
    ensure!(
        outcome
            .serial_log
            .contains(&format!("scenario boot: PASS cores={cores}")),
        "missing the boot PASS line"
    );
    Ok(())
}

/// The kernel reported a page fault at `address` with CR2 and exited with the
/// exception status.
pub fn check_page_fault(outcome: &ScenarioOutcome, address: u64) -> Result<()> {
    ensure!(
        outcome.exit_code == Some(exit_status::EXCEPTION),
        "expected the exception exit status 39, got {}",
        outcome.describe_exit()
    );
    let line = outcome
        .serial_log
        .lines()
        .find(|line| line.starts_with("EXCEPTION #PF page fault vector=14"))
        .ok_or_else(|| anyhow::anyhow!("no page-fault report on the console"))?;
    let cr2 = format!("cr2={address:#018x}");
    ensure!(
        line.contains(&cr2),
        "page-fault report lacks `{cr2}`: {line}"
    );
    ensure!(
        outcome.serial_log.contains("  rax="),
        "page-fault report lacks the register dump"
    );
    Ok(())
}

/// The expected PCI function was found and the scenario passed.
pub fn check_pci(outcome: &ScenarioOutcome) -> Result<()> {
    ensure!(
        outcome.succeeded(),
        "expected success, got {}",
        outcome.describe_exit()
    );
    ensure!(
        outcome.serial_log.contains("scenario pci: PASS"),
        "missing the pci PASS line"
    );
    Ok(())
}

/// The igb driver reset QEMU's 82576, read the MAC QEMU was given, saw the
/// link come up and enabled queue pair 0.
pub fn check_igb(outcome: &ScenarioOutcome) -> Result<()> {
    ensure!(
        outcome.succeeded(),
        "expected success, got {}",
        outcome.describe_exit()
    );
    for line in [
        "reset, mac 52:54:00:12:34:56",
        "scenario igb: link up 1000 Mb/s full duplex",
        "scenario igb: queue pair 0 enabled",
        "scenario igb: PASS",
    ] {
        ensure!(outcome.serial_log.contains(line), "missing `{line}`");
    }
    Ok(())
}

/// Core 0 and core 1 exchanged every message and both checked each one.
pub fn check_pingpong(outcome: &ScenarioOutcome, messages: u64) -> Result<()> {
    ensure!(
        outcome.succeeded(),
        "expected success, got {}",
        outcome.describe_exit()
    );
    let summary = format!(
        "scenario pingpong: messages={messages} echoed={messages} errors=0 core1_errors=0 "
    );
    ensure!(outcome.serial_log.contains(&summary), "missing `{summary}`");
    ensure!(
        outcome.serial_log.contains("scenario pingpong: PASS"),
        "missing the pingpong PASS line"
    );
    Ok(())
}

/// The pool was exhausted and refilled locally and through core 1 without a leak.
pub fn check_mempool(outcome: &ScenarioOutcome) -> Result<()> {
    ensure!(
        outcome.succeeded(),
        "expected success, got {}",
        outcome.describe_exit()
    );
    for needle in [
        "local rounds of",
        "came back remotely",
        "scenario mempool: PASS",
    ] {
        ensure!(outcome.serial_log.contains(needle), "missing `{needle}`");
    }
    Ok(())
}

/// The `synthetic cores=N key=value ...` line of a `test=synthetic` run.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticLine {
    /// Pipeline cores (the generator core not counted).
    pub cores: u32,
    /// `core` (core 0 turns echoes into requests) or `local` (each
    /// pipeline core does); lines from before the local mode say neither.
    pub generator: String,
    /// Echoes in the measured window.
    pub packets: u64,
    /// Million echoes per second through all pipeline cores.
    pub mpps: f64,
    /// TSC cycles per packet of one pipeline core (busy polls only).
    pub cycles_per_packet: f64,
    /// Share of the window the pipeline cores had packets, in percent.
    pub busy_percent: u64,
    /// Requests the generator sent.
    pub generated: u64,
    /// Correct echoes that came back.
    pub echoed: u64,
    /// Wrong frames that came back.
    pub errors: u64,
    /// Packets the pipeline cores dropped.
    pub drops: u64,
}

impl SyntheticLine {
    /// Finds and parses the result line in a serial log.
    pub fn find(serial_log: &str) -> Result<Self> {
        let line = serial_log
            .lines()
            .find(|line| line.starts_with("synthetic cores="))
            .ok_or_else(|| anyhow::anyhow!("no `synthetic cores=` line on the console"))?;
        let field = |name: &str| -> Result<&str> {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
                .ok_or_else(|| anyhow::anyhow!("`{line}` lacks `{name}=`"))
        };
        let number = |name: &str| -> Result<u64> {
            field(name)?
                .parse()
                .map_err(|error| anyhow::anyhow!("`{name}` in `{line}`: {error}"))
        };
        let real = |name: &str| -> Result<f64> {
            field(name)?
                .parse()
                .map_err(|error| anyhow::anyhow!("`{name}` in `{line}`: {error}"))
        };
        Ok(Self {
            cores: number("cores")? as u32,
            generator: field("generator").unwrap_or("core").to_owned(),
            packets: number("packets")?,
            mpps: real("mpps")?,
            cycles_per_packet: real("cycles_per_packet")?,
            busy_percent: number("busy_percent")?,
            generated: number("generated")?,
            echoed: number("echoed")?,
            errors: number("errors")?,
            drops: number("drops")?,
        })
    }
}

/// Every request (exactly `packets` of them when given) came back as a
/// correct echo from the `pipelines` pipeline cores with `generator`
/// turning echoes around, and nothing was dropped.
pub fn check_synthetic(
    outcome: &ScenarioOutcome,
    pipelines: u32,
    generator: &str,
    packets: Option<u64>,
) -> Result<()> {
    ensure!(
        outcome.succeeded(),
        "expected success, got {}",
        outcome.describe_exit()
    );
    let line = SyntheticLine::find(&outcome.serial_log)?;
    ensure!(
        line.cores == pipelines,
        "{} pipeline cores, expected {pipelines}",
        line.cores
    );
    ensure!(
        line.generator == generator,
        "generator={}, expected {generator}",
        line.generator
    );
    let expected = packets.unwrap_or(line.generated);
    ensure!(
        expected > 0 && line.generated == expected && line.echoed == expected,
        "{} of {} requests echoed, expected {expected}",
        line.echoed,
        line.generated
    );
    ensure!(
        line.errors == 0 && line.drops == 0,
        "{} wrong echoes, {} drops",
        line.errors,
        line.drops
    );
    if generator == "local" {
        // The local mode runs tickless until the drain: a pipeline core that
        // took timer interrupts in the window had the host's main loop and
        // its own vCPU thread woken for nothing.
        let cores: Vec<&str> = outcome
            .serial_log
            .lines()
            .filter_map(|line| line.trim_end().strip_prefix("synthetic core="))
            .collect();
        ensure!(
            cores.len() == pipelines as usize,
            "{} `synthetic core=` lines, expected {pipelines}",
            cores.len()
        );
        for fields in cores {
            let ticks = fields
                .split_whitespace()
                .find_map(|word| word.strip_prefix("window_timer_interrupts="));
            ensure!(
                ticks == Some("0"),
                "pipeline core {fields}: expected no timer interrupts in the measured window"
            );
        }
    }
    ensure!(
        outcome.serial_log.contains("scenario synthetic: PASS"),
        "missing the synthetic PASS line"
    );
    Ok(())
}

/// Both cores entered with interrupts on, core 1 took ticks while running
/// and none after stopping its timer, and every one of core 0's one-shot
/// sleeps ended by its own timer (`kernel/src/scenarios/timer.rs`).
pub fn check_timer(outcome: &ScenarioOutcome) -> Result<()> {
    ensure!(
        outcome.succeeded(),
        "expected success, got {}",
        outcome.describe_exit()
    );
    for needle in [
        "scenario timer: core 1 interrupts_on_entry=true ",
        " ticks_after_stop=0",
        "scenario timer: core 0 interrupts_on_entry=true one_shot_wakeups=25",
        "scenario timer: PASS",
    ] {
        ensure!(outcome.serial_log.contains(needle), "missing `{needle}`");
    }
    Ok(())
}

/// The sleeps of the timer scenario whose timer expires before the `hlt`
/// (after its 5 plain ones): the only ones `timer_halt=interrupts-on` arms
/// in the wrong order.
const TIMER_STALLED_SLEEPS: std::ops::Range<u64> = 5..25;

/// The timer scenario's control (`timer_halt=interrupts-on`) failed the one
/// way it must: core 1's watchdog woke core 0 from a stalled sleep whose
/// timer ran its handler before the `hlt`. Any other end (a success, a QEMU
/// timeout, an exception, another FAIL line such as `needs 2 cores` or a
/// rejected `timer_halt`) is rejected: it would not show the lost wake-up.
pub fn check_timer_lost_wakeup(outcome: &ScenarioOutcome) -> Result<()> {
    ensure!(
        !outcome.timed_out && outcome.exit_code == Some(exit_status::FAILURE),
        "expected the scenario's failure exit, got {}",
        outcome.describe_exit()
    );
    const PREFIX: &str =
        "scenario timer: FAIL core 0 stayed asleep past its one-shot timer (sleep ";
    const SUFFIX: &str = "): woken by the watchdog";
    let sleep = outcome
        .serial_log
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix(PREFIX)?.strip_suffix(SUFFIX))
        .ok_or_else(|| anyhow::anyhow!("no `{PREFIX}N{SUFFIX}` line"))?;
    let sleep: u64 = sleep
        .parse()
        .map_err(|_| anyhow::anyhow!("watchdog line names sleep `{sleep}`, not a number"))?;
    ensure!(
        TIMER_STALLED_SLEEPS.contains(&sleep),
        "sleep {sleep} lost its wake-up, expected one of the stalled sleeps {TIMER_STALLED_SLEEPS:?}"
    );
    Ok(())
}

/// The `synthetic slices=` line of a run with `synthetic_slice_ms`: its
/// slice count and the packets per second of the slices with every
/// pipeline core and with one alone, in Mpps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlicesLine {
    /// Slices in the measured window.
    pub slices: u64,
    /// Mpps while one pipeline core ran alone (each in turn).
    pub one_core_mpps: f64,
    /// Mpps while every pipeline core ran.
    pub all_cores_mpps: f64,
}

impl SlicesLine {
    /// Finds and parses the line in a serial log.
    pub fn find(log: &str) -> Result<Self> {
        let line = log
            .lines()
            .map(str::trim_end)
            .find(|line| line.starts_with("synthetic slices="))
            .ok_or_else(|| anyhow::anyhow!("no `synthetic slices=` line on the console"))?;
        let field = |name: &str| -> Result<f64> {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
                .and_then(|value| value.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("`{line}`: no number for {name}"))
        };
        Ok(Self {
            slices: field("slices")? as u64,
            one_core_mpps: field("one_core_mpps")?,
            all_cores_mpps: field("all_cores_mpps")?,
        })
    }
}

/// A sliced run (`synthetic_slice_ms`) measured at least `slices` slices
/// (one fewer than the window holds can happen: core 0 may wake for the
/// last slice after the window's end) and both kinds moved packets.
pub fn check_slices(outcome: &ScenarioOutcome, slices: u64) -> Result<()> {
    let line = SlicesLine::find(&outcome.serial_log)?;
    ensure!(
        line.slices >= slices,
        "{} slices, expected at least {slices}",
        line.slices
    );
    ensure!(
        line.one_core_mpps > 0.0 && line.all_cores_mpps > 0.0,
        "a kind of slice moved nothing: {line:?}"
    );
    Ok(())
}

/// FNV-1a, as the kernel's spec scenario computes it.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The kernel saw exactly the bytes of the spec file as its first PVH module.
pub fn check_spec(outcome: &ScenarioOutcome, spec: &[u8]) -> Result<()> {
    ensure!(
        outcome.succeeded(),
        "expected success, got {}",
        outcome.describe_exit()
    );
    let expected = format!(
        "scenario spec: module bytes={} fnv1a={:#018x}",
        spec.len(),
        fnv1a(spec)
    );
    ensure!(
        outcome.serial_log.contains(&expected),
        "missing `{expected}`"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn synthetic_line_parses_and_checks() {
        let log = "boot\nsynthetic cores=2 packets=100 seconds=1.000 mpps=0.250 \
            cycles_per_packet=1620.5 busy_percent=97 generated=120 echoed=120 errors=0 \
            drops=0 unsolicited=2\nscenario synthetic: PASS\n";
        let line = SyntheticLine::find(log).unwrap();
        assert_eq!(line.cores, 2);
        assert_eq!(line.packets, 100);
        assert_eq!(line.mpps, 0.25);
        assert_eq!(line.cycles_per_packet, 1620.5);
        assert_eq!((line.generated, line.echoed, line.errors), (120, 120, 0));
        assert!(SyntheticLine::find("synthetic cores=1 packets=x").is_err());
        assert!(SyntheticLine::find("nothing here").is_err());
        let outcome = |log: &str| ScenarioOutcome {
            exit_code: Some(exit_status::SUCCESS),
            serial_log: log.into(),
            timed_out: false,
            ready_after: None,
            elapsed: Duration::ZERO,
        };
        assert_eq!(line.generator, "core", "lines without generator= are core");
        check_synthetic(&outcome(log), 2, "core", Some(120)).unwrap();
        check_synthetic(&outcome(log), 2, "core", None).unwrap();
        assert!(
            check_synthetic(&outcome(log), 1, "core", Some(120)).is_err(),
            "core count"
        );
        assert!(
            check_synthetic(&outcome(log), 2, "local", Some(120)).is_err(),
            "generator mode"
        );
        assert!(
            check_synthetic(&outcome(log), 2, "core", Some(121)).is_err(),
            "lost echo"
        );
        let per_core = "synthetic core=1 packets=50 busy_cycles=9 cycles_per_packet=0.1 window_timer_interrupts=0\n\
            synthetic core=2 packets=50 busy_cycles=9 cycles_per_packet=0.1 window_timer_interrupts=0\n";
        let local = format!(
            "{per_core}{}",
            log.replace("cores=2", "cores=2 generator=local")
        );
        check_synthetic(&outcome(&local), 2, "local", None).unwrap();
        let ticked = local.replacen("window_timer_interrupts=0", "window_timer_interrupts=3", 1);
        assert!(
            check_synthetic(&outcome(&ticked), 2, "local", None).is_err(),
            "ticks in the local mode's window"
        );
        let one_core = local.replacen("synthetic core=2", "synthetic lane=2", 1);
        assert!(
            check_synthetic(&outcome(&one_core), 2, "local", None).is_err(),
            "a pipeline core's line missing"
        );
        let lost = local.replace("echoed=120", "echoed=119");
        assert!(
            check_synthetic(&outcome(&lost), 2, "local", None).is_err(),
            "lost echo, window mode"
        );
        let sliced = format!(
            "{local}synthetic slices=6 slice_ms=50 one_core_mpps=3.012 all_cores_mpps=6.105\n"
        );
        let line = SlicesLine::find(&sliced).unwrap();
        assert_eq!(line.slices, 6);
        assert_eq!((line.one_core_mpps, line.all_cores_mpps), (3.012, 6.105));
        check_slices(&outcome(&sliced), 6).unwrap();
        check_slices(&outcome(&sliced), 5).unwrap();
        assert!(check_slices(&outcome(&sliced), 7).is_err(), "slice count");
        assert!(check_slices(&outcome(&local), 6).is_err(), "no slices line");
        let idle = sliced.replace("one_core_mpps=3.012", "one_core_mpps=0.000");
        assert!(check_slices(&outcome(&idle), 6).is_err(), "an empty kind");
        let bad = log.replace("errors=0", "errors=1");
        assert!(
            check_synthetic(&outcome(&bad), 2, "core", Some(120)).is_err(),
            "wrong echo"
        );
    }

    #[test]
    fn timer_check_needs_every_finding() {
        let outcome = |log: &str, exit_code| ScenarioOutcome {
            exit_code: Some(exit_code),
            serial_log: log.into(),
            timed_out: false,
            ready_after: None,
            elapsed: Duration::ZERO,
        };
        let log =
            "scenario timer: core 1 interrupts_on_entry=true ticks_running=1 ticks_after_stop=0
            scenario timer: core 0 interrupts_on_entry=true one_shot_wakeups=25
            scenario timer: PASS
";
        check_timer(&outcome(log, exit_status::SUCCESS)).unwrap();
        for (from, to, why) in [
            (
                "core 1 interrupts_on_entry=true",
                "core 1 interrupts_on_entry=false",
                "core 1 entered with interrupts off",
            ),
            (
                "core 0 interrupts_on_entry=true",
                "core 0 interrupts_on_entry=false",
                "core 0 entered with interrupts off",
            ),
            (
                "ticks_after_stop=0",
                "ticks_after_stop=1",
                "a tick after the stop",
            ),
            (
                "one_shot_wakeups=25",
                "one_shot_wakeups=24",
                "a sleep missing",
            ),
            (
                "scenario timer: PASS",
                "scenario timer: FAIL",
                "no PASS line",
            ),
        ] {
            let bad = log.replace(from, to);
            assert!(
                check_timer(&outcome(&bad, exit_status::SUCCESS)).is_err(),
                "{why}"
            );
        }
        assert!(
            check_timer(&outcome(log, exit_status::FAILURE)).is_err(),
            "failure exit"
        );
    }

    #[test]
    fn timer_control_check_needs_the_lost_wakeup() {
        let outcome = |log: &str, exit_code, timed_out| ScenarioOutcome {
            exit_code,
            serial_log: log.into(),
            timed_out,
            ready_after: None,
            elapsed: Duration::from_secs(if timed_out { 60 } else { 3 }),
        };
        let lost = "warpcore ready cores=2
scenario timer: FAIL core 0 stayed asleep past its one-shot timer (sleep 5): woken by the watchdog
";
        check_timer_lost_wakeup(&outcome(lost, Some(exit_status::FAILURE), false)).unwrap();
        let later = lost.replace("(sleep 5)", "(sleep 24)");
        check_timer_lost_wakeup(&outcome(&later, Some(exit_status::FAILURE), false)).unwrap();
        let plain = lost.replace("(sleep 5)", "(sleep 2)");
        for (log, exit_code, timed_out, why) in [
            ("warpcore ready cores=2\n", None, true, "a QEMU timeout"),
            (lost, None, true, "the line, then a timeout"),
            (
                "warpcore ready cores=2\nscenario timer: FAIL needs 2 cores (core 1 is the watchdog)\n",
                Some(exit_status::FAILURE),
                false,
                "a failure for another reason",
            ),
            (
                "scenario timer: FAIL timer_halt takes interrupts-off or interrupts-on, not `interrupt-on`\n",
                Some(exit_status::FAILURE),
                false,
                "a mistyped switch",
            ),
            (
                lost,
                Some(exit_status::EXCEPTION),
                false,
                "an exception exit",
            ),
            (
                "scenario timer: PASS\n",
                Some(exit_status::SUCCESS),
                false,
                "a success",
            ),
            (
                plain.as_str(),
                Some(exit_status::FAILURE),
                false,
                "a plain sleep lost",
            ),
        ] {
            assert!(
                check_timer_lost_wakeup(&outcome(log, exit_code, timed_out)).is_err(),
                "{why}"
            );
        }
    }
}
