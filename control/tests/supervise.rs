//! Supervision on a core built from a spec: the test-only `faulty-echo`
//! panics on a marked datagram, the core's other services keep answering,
//! and `faulty-echo` is rebuilt from its spec after its backoff.

mod support;

use control::{CoreLinks, Spec};
use dataplane::ServiceState;
use dataplane::supervise::CATCH_UNWIND;
use services::Registry;
use services::faulty_echo::FaultyEchoKind;
use support::{Harness, OUR_IP, OURS, PEER, PEER_IP, advance_clock, udp_frame};

const SPEC: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"loopback\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n\
    [[service]]\nkind = \"udp-echo\"\nport = 7\n\
    [[service]]\nkind = \"faulty-echo\"\nport = 9\n\
    [supervision]\ninitial_backoff_ms = 50\n";

fn harness() -> Harness {
    let mut registry = Registry::with_builtin();
    registry.register::<FaultyEchoKind>().unwrap();
    let spec = Spec::parse(SPEC, &registry).unwrap();
    let mut links = CoreLinks::new();
    links.insert_shared(CATCH_UNWIND);
    let mut harness = Harness::on_core(&spec, 0, links);
    harness.learn((PEER, PEER_IP));
    harness
}

/// Sends `payload` to our UDP `port`; true when it came back.
fn echoed(harness: &mut Harness, port: u16, payload: &[u8]) -> bool {
    let frame = udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (40_000, port), 64, payload);
    harness.exchange(0, &frame).is_some()
}

#[test]
fn a_panicking_service_is_rebuilt_from_its_spec_while_the_others_answer() {
    let mut harness = harness();
    let faulty = harness
        .counters()
        .nodes
        .iter()
        .position(|node| node.name == "faulty-echo")
        .unwrap();
    assert!(echoed(&mut harness, 9, b"hello"));

    assert!(!echoed(&mut harness, 9, b"PANIC now"));
    let counters = harness.counters();
    let supervision = &counters.nodes[faulty].supervision;
    assert_eq!(supervision.state(), ServiceState::Backoff);
    assert_eq!(
        (supervision.panics.get(), supervision.dropped.get()),
        (1, 1)
    );
    assert!(echoed(&mut harness, 7, b"still here"));
    assert!(!echoed(&mut harness, 9, b"hello"));

    advance_clock(50_000_000);
    assert!(echoed(&mut harness, 9, b"hello"));
    let counters = harness.counters();
    let supervision = &counters.nodes[faulty].supervision;
    assert_eq!(supervision.state(), ServiceState::Running);
    assert_eq!(supervision.restarts.get(), 1);

    // The second failure in a row waits twice as long.
    assert!(!echoed(&mut harness, 9, b"PANIC again"));
    assert_eq!(
        harness.counters().nodes[faulty].supervision.backoff_ms(),
        100
    );
    assert!(echoed(&mut harness, 7, b"still here"));
}
