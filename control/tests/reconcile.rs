//! Reconcile end to end on one core: a running graph with a TCP
//! connection and a learnt peer gets a new spec through its control ring;
//! what did not change carries on, what cannot be built rolls back.

mod support;

use control::Spec;
use control::reconcile::{ACK_TIMEOUT_NS, Boards, Controller, CoreControl, channels, live};
use dataplane::{Executor, ExecutorBuilder};
use services::Registry;
use services::wire::tcp::TcpFlags;
use std::sync::Arc;
use support::segments::Peer;
use support::*;

const BASE: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"loopback\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n\
    [[service]]\nkind = \"tcp-echo\"\nport = 7\n\
    [[service]]\nkind = \"udp-echo\"\nport = 9\n";

fn parse(text: &str) -> Spec {
    Spec::parse(text, &Registry::with_builtin()).unwrap()
}

/// A controller of one core and that core's control.
fn controller(text: &str) -> (Controller, CoreControl) {
    let spec = Arc::new(parse(text));
    let (ends, mut controls) = channels(&spec, 1);
    let controller = Controller::new(spec, text.to_owned(), ends, Boards::default());
    (controller, controls.remove(0))
}

/// Lets `control` carry out its commands on the harness's executor.
fn apply(peer: &mut Peer, control: &mut CoreControl) {
    let placeholder = ExecutorBuilder::new().build().unwrap();
    let executor: Executor = std::mem::replace(&mut peer.harness.executor, placeholder);
    peer.harness.executor = control.apply(executor);
}

#[test]
fn an_unrelated_service_comes_and_goes_and_the_connection_and_cache_stay() {
    let (mut controller, mut control) = controller(BASE);
    let mut peer = Peer::new(BASE, 40000, 7);
    peer.connect();
    assert_eq!(
        peer.send(TcpFlags::PSH | TcpFlags::ACK, b"one")[0].payload,
        b"one"
    );
    let polls = peer.harness.counters().polls.get();

    let added = format!("{BASE}[[service]]\nkind = \"udp-echo\"\nport = 11\n");
    assert!(live::restart_needed(&parse(BASE), &parse(&added)).is_none());
    assert_eq!(controller.start(parse(&added), added.clone(), 0), Ok(2));
    assert!(controller.reconciling());
    assert_eq!(controller.spec_text(), added);
    apply(&mut peer, &mut control);
    assert!(controller.step(0));
    assert_eq!(controller.observed_generation(), 2);
    let [ready, reconciling, degraded] = controller.conditions();
    assert!(ready.status && !reconciling.status && !degraded.status);

    // The same connection answers, straight away: the ARP cache knows
    // the peer (no request first).
    let replies = peer.send(TcpFlags::PSH | TcpFlags::ACK, b"two");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].payload, b"two");
    let counters = peer.harness.counters();
    assert_eq!(counters.graph_swaps.get(), 1);
    assert!(
        counters.polls.get() > polls,
        "the counters go on from before"
    );
    assert_eq!(counters.node_events("tcp", "connections-accepted"), 1);
    // The new service answers.
    let request = udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (5000, 11), 64, b"new");
    let reply = peer.harness.exchange(0, &request);
    let reply = reply.unwrap_or_else(|| {
        panic!(
            "no echo on port 11: {:?}",
            all_drops(&peer.harness.counters())
                .into_iter()
                .filter(|(_, v)| *v > 0)
                .collect::<Vec<_>>()
        )
    });
    assert!(reply.ends_with(b"new"));

    // And goes again; the connection still stays.
    assert_eq!(controller.start(parse(BASE), BASE.to_owned(), 0), Ok(3));
    apply(&mut peer, &mut control);
    assert!(controller.step(0));
    assert_eq!(
        peer.send(TcpFlags::PSH | TcpFlags::ACK, b"three")[0].payload,
        b"three"
    );
    assert_eq!(peer.harness.counters().graph_swaps.get(), 2);
    assert!(peer.harness.exchange(0, &request).is_some_and(|reply| {
        // ICMP port unreachable now, not an echo.
        !reply.ends_with(b"new")
    }));
}

#[test]
fn a_removed_app_takes_its_connections_with_it() {
    let (mut controller, mut control) = controller(BASE);
    let mut peer = Peer::new(BASE, 40000, 7);
    peer.connect();
    let without = BASE.replace(
        "kind = \"tcp-echo\"\nport = 7",
        "kind = \"tcp-echo\"\nport = 8",
    );
    controller
        .start(parse(&without), without.clone(), 0)
        .unwrap();
    apply(&mut peer, &mut control);
    assert!(controller.step(0));
    let replies = peer.send(TcpFlags::PSH | TcpFlags::ACK, b"gone");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0].flags.contains(TcpFlags::RST));
    assert_eq!(peer.event("connections-aborted"), 1);
}

#[test]
fn a_graph_that_cannot_be_built_rolls_back_and_says_why() {
    let (mut controller, mut control) = controller(BASE);
    let mut peer = Peer::new(BASE, 40000, 7);
    peer.connect();
    // Nine UDP ports on one core: the udp stage has eight hook slots.
    let mut crowded = String::from(BASE);
    for port in 20..29 {
        crowded.push_str(&format!(
            "[[service]]\nkind = \"udp-echo\"\nport = {port}\n"
        ));
    }
    controller
        .start(parse(&crowded), crowded.clone(), 0)
        .unwrap();
    apply(&mut peer, &mut control);
    assert!(!controller.step(0), "the rollback is on its way");
    assert!(controller.reconciling());
    assert_eq!(controller.spec_text(), BASE);
    apply(&mut peer, &mut control);
    assert!(controller.step(0));
    assert_eq!(controller.observed_generation(), 2);
    let [ready, _, degraded] = controller.conditions();
    assert!(ready.status);
    assert!(degraded.status);
    assert_eq!(degraded.generation, 2);
    assert!(
        degraded.message.contains("rolled back") && degraded.message.contains("udp:"),
        "{}",
        degraded.message
    );
    assert_eq!(controller.counters().rolled_back, 1);
    assert_eq!(controller.counters().core_failures, 1);
    // The connection lived through the failed build and the rollback.
    assert_eq!(
        peer.send(TcpFlags::PSH | TcpFlags::ACK, b"still")[0].payload,
        b"still"
    );
}

#[test]
fn a_core_that_does_not_answer_in_time_is_rolled_back() {
    let text = BASE;
    let spec = Arc::new(parse(text));
    let (ends, mut controls) = channels(&spec, 2);
    let mut controller = Controller::new(spec, text.to_owned(), ends, Boards::default());
    let mut zero = Peer::new(BASE, 40000, 7);
    let added = format!("{BASE}[[service]]\nkind = \"udp-echo\"\nport = 11\n");
    controller.start(parse(&added), added, 0).unwrap();
    apply(&mut zero, &mut controls[0]);
    assert!(!controller.step(ACK_TIMEOUT_NS / 2));
    assert!(!controller.step(ACK_TIMEOUT_NS + 1), "rolling back");
    apply(&mut zero, &mut controls[0]);
    // Core 1 wakes up at last: the change, then its rollback.
    let mut one = Peer::new(BASE, 40001, 7);
    apply(&mut one, &mut controls[1]);
    assert!(controller.step(ACK_TIMEOUT_NS + 2));
    let [_, _, degraded] = controller.conditions();
    assert!(
        degraded.message.contains("[1] did not acknowledge"),
        "{}",
        degraded.message
    );
    assert_eq!(controller.counters().timeouts, 1);
}

#[test]
fn a_second_change_waits_for_the_first() {
    let (mut controller, _control) = controller(BASE);
    controller.start(parse(BASE), BASE.to_owned(), 0).unwrap();
    assert_eq!(
        controller
            .start(parse(BASE), BASE.to_owned(), 0)
            .unwrap_err()
            .generation,
        2
    );
}

#[test]
fn changes_that_need_a_restart_name_their_field() {
    let base = parse(BASE);
    for (from, to, field) in [
        (
            "mac = \"02:00:00:00:00:01\"",
            "mac = \"02:00:00:00:00:09\"",
            "interface[0].mac",
        ),
        (
            "driver = \"loopback\"",
            "driver = \"tap\"",
            "interface[0].driver",
        ),
        (
            "address = \"10.0.0.2/24\"\n",
            "address = \"10.0.0.2/24\"\nqueues = 2\n",
            "interface[0].queues",
        ),
    ] {
        let changed = parse(&BASE.replace(from, to));
        let needed = live::restart_needed(&base, &changed).expect(field);
        assert_eq!(needed.field, field);
        assert!(needed.message.contains("restart"), "{}", needed.message);
    }
    let tcp = parse(&format!("idle = \"poll\"\n{BASE}"));
    assert_eq!(live::restart_needed(&base, &tcp).unwrap().field, "idle");
    let tcp = parse(&format!("{BASE}[tcp]\nmax_connections = 64\n"));
    assert_eq!(live::restart_needed(&base, &tcp).unwrap().field, "tcp");
    let moved = parse(&BASE.replace("10.0.0.2/24", "10.0.0.3/24"));
    assert!(
        live::restart_needed(&base, &moved).is_none(),
        "addresses change live"
    );
}
