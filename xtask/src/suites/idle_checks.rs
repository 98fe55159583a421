//! Idle checks shared by the appliance and hosted suites, each reading the
//! counters through a closure (the kernel's serial dump, a hosted counters
//! file): a quiet window with few timer wake-ups per core (no periodic
//! tick), kv requests handed across cores waking the sleeping shard through
//! its doorbell, and the `idle = "poll"` spec option keeping cores awake.

use crate::counters::Counters;
use crate::net::netns::Netns;
use crate::suites::management_robustness::count;
use crate::suites::tcp_traffic::{ReadCounters, event, tcp_client};
use anyhow::{Result, ensure};
use std::time::Duration;

/// The quiet window in which the cores' timer wake-ups are counted: at the
/// 1 kHz tick the appliance (and the hosted workers' 1 ms poll timeout)
/// had before hibernation, about 3000 per core.
pub const QUIET: Duration = Duration::from_secs(3);
/// Timer wake-ups a core may take in the quiet window: the few deadlines
/// of an idle system (a stale TCP timer entry, an ARP binding going stale),
/// far from a tick's thousands.
const QUIET_TIMER_LIMIT: u64 = 30;
/// kv sessions run, each a new connection: RSS spreads them over both
/// cores, and their two keys are on one shard or both, so some cross.
const KV_SESSIONS: usize = 4;

/// The change of counter `labels` on `core` between two readings.
pub fn delta(before: &Counters, after: &Counters, core: u32, labels: &[(&str, &str)]) -> u64 {
    after
        .sum(Some(core), labels)
        .saturating_sub(before.sum(Some(core), labels))
}

/// What the idle counters of `cores` cores did between two readings (and
/// the kernel's interrupt counts, when there are), for the log.
pub fn idle_moves(before: &Counters, after: &Counters, cores: u32) -> String {
    let mut text = Vec::new();
    for core in 0..cores {
        let mut moved = Vec::new();
        for (kind, name) in [
            ("interrupts", "timer"),
            ("interrupts", "nic"),
            ("interrupts", "wakeup"),
            ("interrupts", "console"),
            ("idle", "sleeps"),
            ("idle", "wakeups_by_packet"),
            ("idle", "wakeups_by_timer"),
            ("idle", "wakeups_by_doorbell"),
            ("executor", "polls"),
        ] {
            let present = after.lines.iter().any(|line| {
                line.core == core && line.labels == [(kind.to_owned(), name.to_owned())]
            });
            if present {
                moved.push(format!(
                    "{kind}={name} +{}",
                    delta(before, after, core, &[(kind, name)])
                ));
            }
        }
        text.push(format!("core {core}: {}", moved.join(", ")));
    }
    text.join("; ")
}

/// No traffic for [`QUIET`]: each of `cores` cores is woken by its timer
/// (`counter`: the kernel's `interrupts=timer`, or `idle=wakeups_by_timer`
/// hosted) at most [`QUIET_TIMER_LIMIT`] times: there is no periodic tick.
pub fn quiet_window(
    read: &mut ReadCounters,
    cores: u32,
    counter: (&str, &str),
    platform: &str,
) -> Result<()> {
    let before = read()?;
    std::thread::sleep(QUIET);
    let after = read()?;
    eprintln!(
        "xtask: [{platform}] {QUIET:?} without traffic: {}",
        idle_moves(&before, &after, cores)
    );
    for core in 0..cores {
        // A zero must come from a printed counter, not a missing one.
        ensure!(
            after.lines.iter().any(|line| line.core == core
                && line.labels == [(counter.0.to_owned(), counter.1.to_owned())]),
            "core {core} printed no `{}={}` counter",
            counter.0,
            counter.1
        );
        let timer = delta(&before, &after, core, &[counter]);
        ensure!(
            timer <= QUIET_TIMER_LIMIT,
            "core {core}: {}={} moved by {timer} in {QUIET:?} without traffic \
             (at most {QUIET_TIMER_LIMIT}: no periodic tick)",
            counter.0,
            counter.1
        );
    }
    Ok(())
}

/// Rounds of kv sessions tried before a missing doorbell wake-up fails.
const KV_ROUNDS: usize = 4;

/// kv sessions from `client` on both cores: commands whose key the other
/// core owns go over the shards' rings, and a sleeping owner is woken by
/// its doorbell (the answer wakes the origin the same way).
pub fn kv_wakes_the_other_core(
    client: &Netns,
    read: &mut ReadCounters,
    platform: &str,
) -> Result<()> {
    // Which core wakes for what is a race (a core woken by a packet and a
    // doorbell at once counts the packet), so a round may see no doorbell
    // wake-up; a doorbell that never wakes anyone fails every round.
    let mut rung = 0;
    for _ in 0..KV_ROUNDS {
        let before = read()?;
        for _ in 0..KV_SESSIONS {
            let output = tcp_client(client, &["kv", "10.0.0.2:11211"])?;
            let checks = count(&output, "checks")?;
            ensure!(
                count(&output, "passed")? == checks,
                "kv across cores: {output}"
            );
        }
        let after = read()?;
        eprintln!(
            "xtask: [{platform}] kv x{KV_SESSIONS}: {}; connections accepted per core {:?}",
            idle_moves(&before, &after, 2),
            [0, 1].map(|core| {
                event(&after, Some(core), "connections-accepted")
                    - event(&before, Some(core), "connections-accepted")
            })
        );
        rung = (0..2)
            .map(|core| delta(&before, &after, core, &[("idle", "wakeups_by_doorbell")]))
            .sum();
        if rung >= 1 {
            break;
        }
    }
    ensure!(
        rung >= 1,
        "no core was woken by its doorbell while kv requests crossed cores ({KV_ROUNDS} rounds)"
    );
    Ok(())
}

/// With `idle = "poll"`, `cores` cores do not sleep in a window without
/// traffic, and keep polling.
pub fn polling_cores_never_sleep(
    read: &mut ReadCounters,
    cores: u32,
    platform: &str,
) -> Result<()> {
    let before = read()?;
    std::thread::sleep(Duration::from_secs(1));
    let after = read()?;
    eprintln!(
        "xtask: [{platform}] idle = \"poll\", 1 s without traffic: {}",
        idle_moves(&before, &after, cores)
    );
    for core in 0..cores {
        let sleeps = delta(&before, &after, core, &[("idle", "sleeps")]);
        let polls = delta(&before, &after, core, &[("executor", "polls")]);
        ensure!(
            sleeps == 0 && polls > 0,
            "core {core} slept {sleeps} times and polled {polls} times with idle = \"poll\""
        );
    }
    Ok(())
}
