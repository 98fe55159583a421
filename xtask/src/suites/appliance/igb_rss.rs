//! `appliance/igb-rss`: QEMU's 82576 with one queue pair per core and RSS
//! programmed with our Toeplitz key. Every flow's datagrams must be echoed
//! by exactly the core that `igb::rss::toeplitz_hash` (the driver's own
//! code, checked against Microsoft's vectors) and the redirection table
//! predict, for flows that land on both cores. Then the cores idle with no
//! tick (each queue's MSI-X vector wakes its core) and a datagram to each
//! wakes it by packet. Last, the link goes down and up again (`set_link`
//! in QEMU's monitor): the link vector wakes core 0, whose pair counts
//! each change and says the state, and the echo answers again.

use crate::net::devices::Lan;
use crate::qemu::monitor::MonitorSocket;
use crate::qemu::session::QemuSession;
use crate::spec_file::{self, example};
use crate::suites::idle_checks::{delta, idle_moves, quiet_window};
use crate::suites::traffic::{check_echo, udp_client, wait_reachable};
use anyhow::{Result, ensure};
use igb::rss::{WARPCORE_RSS_KEY, ipv4_flow_input, toeplitz_hash};

/// Flows per round: flow `f` of a round sends `2^f` datagrams, so the
/// number a core echoed in the round, read in binary, names exactly the
/// flows it served.
const FLOWS_PER_ROUND: u16 = 8;
/// Rounds (24 flows in all).
const ROUNDS: u16 = 3;
/// The first flow's source port; flow `n` sends from this + `n`.
const FIRST_SOURCE_PORT: u16 = 41_000;
/// The namespace's address and the appliance's (examples/echo-igb.toml).
const CLIENT: [u8; 4] = [10, 0, 0, 1];
const APPLIANCE: [u8; 4] = [10, 0, 0, 2];
/// The echo port.
const ECHO_PORT: u16 = 7;

/// The core (queue) our hash and table predict for a flow from `port`.
fn predicted_core(port: u16, cores: u16) -> usize {
    let input = ipv4_flow_input(CLIENT, APPLIANCE, port, ECHO_PORT);
    let hash = toeplitz_hash(&WARPCORE_RSS_KEY, &input);
    usize::from(igb::redirection_table(cores).queue(hash))
}

/// examples/echo-igb.toml with `queues = 2` on two cores: 24 UDP flows in
/// three rounds of eight; after each round, each core's `udp-echo`
/// received count must have moved by exactly the sum of `2^f` over the
/// round's flows `f` the hash sends to it.
pub fn rss_lands_each_flow_on_its_predicted_core() -> Result<()> {
    let text = spec_file::with_queues(&std::fs::read_to_string(example("echo-igb.toml"))?, 2)?;
    let spec = spec_file::temporary("igb-rss", &text)?;
    let lan = Lan::create(1, false, Some("10.0.0.1/24"))?;
    let monitor = MonitorSocket::new("igb-rss");
    let booted = QemuSession::boot_appliance_with(
        &spec,
        2,
        &lan.netns,
        &lan.tap_names(),
        2,
        monitor.qemu_args(),
    );
    let _ = std::fs::remove_file(&spec);
    let mut session = booted?;
    let result = (|| -> Result<()> {
        wait_reachable(&lan.netns, "10.0.0.2", 20)?;
        ensure!(
            session.log().contains("2 queue pairs"),
            "the igb function did not get 2 queue pairs"
        );
        let target = format!("10.0.0.2:{ECHO_PORT}");
        let mut flows_per_core = [0u32; 2];
        for round in 0..ROUNDS {
            let before = session.counters()?;
            let mut predicted = [0u64; 2];
            for flow in 0..FLOWS_PER_ROUND {
                let port = FIRST_SOURCE_PORT + round * FLOWS_PER_ROUND + flow;
                let count = 1u32 << flow;
                let output = udp_client(
                    &lan.netns,
                    &[
                        "echo",
                        &target,
                        "1",
                        &count.to_string(),
                        "--source-port",
                        &port.to_string(),
                    ],
                )?;
                check_echo(&output, count as usize)?;
                let core = predicted_core(port, 2);
                predicted[core] += u64::from(count);
                flows_per_core[core] += 1;
            }
            let after = session.counters()?;
            for (core, expected) in (0u32..).zip(predicted) {
                let echoed = |counters: &crate::counters::Counters| {
                    counters.sum(Some(core), &[("node", "udp-echo"), ("stat", "received")])
                };
                let moved = echoed(&after) - echoed(&before);
                eprintln!(
                    "xtask: [appliance] igb rss round {round}: core {core} echoed flows \
                     {moved:08b} (bit f = flow f), predicted {expected:08b}"
                );
                ensure!(
                    moved == expected,
                    "round {round}: core {core} echoed {moved:08b} (bit f: flow f of \
                     ports {}..), the Toeplitz hash predicts {expected:08b}",
                    FIRST_SOURCE_PORT + round * FLOWS_PER_ROUND
                );
            }
        }
        ensure!(
            flows_per_core.iter().all(|flows| *flows > 0),
            "the hash put all flows on one core ({flows_per_core:?}): pick other ports"
        );
        let counters = session.counters()?;
        for queue in 0..2u32 {
            let name = format!("igb0.q{queue}");
            let stat = |stat: &str| counters.sum(Some(queue), &[("nic", &name), ("stat", stat)]);
            let received = stat("rx_packets");
            // The device's own per-queue registers, beside the driver's
            // count: QEMU 10.0's 82576 model keeps none per queue (only
            // per-pool ones, in VMDq mode), so they read 0 there.
            eprintln!(
                "xtask: [appliance] core {queue} {name} rx_packets={received} tx_packets={} \
                 device_queue_rx_packets={} device_queue_tx_packets={} device_queue_rx_drops={}",
                stat("tx_packets"),
                stat("device_queue_rx_packets"),
                stat("device_queue_tx_packets"),
                stat("device_queue_rx_drops"),
            );
            ensure!(received > 0, "{name} on core {queue} received nothing");
        }
        eprintln!(
            "xtask: [appliance] igb rss: {} flows on core 0, {} on core 1, each on its predicted core",
            flows_per_core[0], flows_per_core[1]
        );
        idle_cores_wake_on_packet(&mut session, &lan, &target)?;
        link_changes_are_signalled(&mut session, &monitor, &lan)
    })();
    result.map_err(|error| error.context(format!("console:\n{}", session.log())))
}

/// Datagrams sent to the sleeping cores, one process (and so at least a
/// few milliseconds) apart, per core.
const WAKING_DATAGRAMS: u16 = 4;

/// Both cores idle without a tick (at most a few timer wake-ups in the
/// quiet window, where a 1 ms bound would give thousands), then datagrams
/// of flows predicted for each core wake that core by packet: its queue's
/// MSI-X vector reached its local APIC.
fn idle_cores_wake_on_packet(session: &mut QemuSession, lan: &Lan, target: &str) -> Result<()> {
    ensure!(
        session.log().contains("2 wake on packet"),
        "the igb queue pairs did not get an MSI-X vector each"
    );
    let session = std::cell::RefCell::new(session);
    let mut read = || session.borrow_mut().counters();
    quiet_window(&mut read, 2, ("interrupts", "timer"), "appliance")?;
    let before = read()?;
    let mut sent = [0u16; 2];
    for port in (FIRST_SOURCE_PORT + 1000)..(FIRST_SOURCE_PORT + 1100) {
        let core = predicted_core(port, 2);
        if sent[core] == WAKING_DATAGRAMS {
            continue;
        }
        let output = udp_client(
            &lan.netns,
            &["echo", target, "1", "1", "--source-port", &port.to_string()],
        )?;
        check_echo(&output, 1)?;
        std::thread::sleep(std::time::Duration::from_millis(50));
        sent[core] += 1;
        if sent == [WAKING_DATAGRAMS; 2] {
            break;
        }
    }
    let after = read()?;
    eprintln!(
        "xtask: [appliance] igb: {WAKING_DATAGRAMS} datagrams per idle core: {}",
        idle_moves(&before, &after, 2)
    );
    for core in 0..2u32 {
        let by_packet = delta(&before, &after, core, &[("idle", "wakeups_by_packet")]);
        ensure!(
            by_packet >= 1,
            "core {core} was not woken by a packet for its {WAKING_DATAGRAMS} datagrams"
        );
    }
    Ok(())
}

/// How long a link change may take to show in the counters (QEMU's
/// auto-negotiation after `set_link on` takes about 500 ms; a bound, not a
/// check).
const LINK_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// `set_link net0 off`, then `on`, in QEMU's monitor: each time pair 0's
/// `link_changes` must move and `link_up` follow, and core 0 must have
/// taken an interrupt (the idle core learns of it through the link's
/// MSI-X vector, not a tick); afterwards the echo answers again.
fn link_changes_are_signalled(
    session: &mut QemuSession,
    monitor: &MonitorSocket,
    lan: &Lan,
) -> Result<()> {
    ensure!(
        session
            .log()
            .contains("link status change on MSI-X entry 2"),
        "the igb function did not route its link vector"
    );
    let mut monitor = monitor.connect()?;
    let stat = |counters: &crate::counters::Counters, name: &str| {
        counters.sum(Some(0), &[("nic", "igb0.q0"), ("stat", name)])
    };
    let first = session.counters()?;
    ensure!(
        stat(&first, "link_up") == 1,
        "igb0.q0 link_up = {} before the change",
        stat(&first, "link_up")
    );
    let mut changes = stat(&first, "link_changes");
    for (state, up) in [("off", 0), ("on", 1)] {
        let before = session.counters()?;
        let answer = monitor.command(&format!("set_link net0 {state}"))?;
        ensure!(
            !answer.contains("Error") && !answer.contains("not found"),
            "set_link net0 {state}: {answer}"
        );
        let deadline = std::time::Instant::now() + LINK_WAIT;
        let after = loop {
            let now = session.counters()?;
            if (stat(&now, "link_changes") > changes && stat(&now, "link_up") == up)
                || std::time::Instant::now() >= deadline
            {
                break now;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        let interrupts = delta(&before, &after, 0, &[("interrupts", "nic")]);
        eprintln!(
            "xtask: [appliance] igb set_link {state}: link_changes {changes} -> {}, link_up={}, \
             core 0 interrupts=nic +{interrupts}",
            stat(&after, "link_changes"),
            stat(&after, "link_up"),
        );
        ensure!(
            stat(&after, "link_changes") > changes && stat(&after, "link_up") == up,
            "set_link net0 {state}: igb0.q0 link_changes {} (was {changes}), link_up {} \
             (want {up})",
            stat(&after, "link_changes"),
            stat(&after, "link_up")
        );
        ensure!(
            interrupts >= 1,
            "set_link net0 {state}: core 0 took no NIC interrupt (the link vector)"
        );
        changes = stat(&after, "link_changes");
    }
    wait_reachable(&lan.netns, "10.0.0.2", 20)?;
    let output = udp_client(&lan.netns, &["echo", "10.0.0.2:7", "1", "4"])?;
    check_echo(&output, 4)
}
