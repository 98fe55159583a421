//! The firewall on two cores: a flow's request arrives on core 0 and its
//! reply on core 1 (as when the NIC steers the two directions to
//! different queues). Each flow has one owner core (a symmetric hash of
//! its tuple); the core that is not the owner hands its packet over a
//! ring, so the owner tracks both directions, the default-drop policy
//! lets the reply through as established, and both leave from the owner.

mod support;

use dataplane::MacAddr;
use support::routed::*;
use support::*;

const SPEC: &str = include_str!("../../examples/firewall.toml");

/// Both cores of the firewall example.
fn two_cores() -> [Harness; 2] {
    let mut cores = routed_cores(SPEC, 2);
    let second = cores.pop().unwrap();
    let first = cores.pop().unwrap();
    [first, second]
}

#[test]
fn both_directions_of_a_flow_meet_on_its_owner_core() {
    const FLOWS: u16 = 16;
    let mut cores = two_cores();
    let mut owners = [0u64; 2];
    for id in 1..=FLOWS {
        cores[0].inject(0, &echo(8, (LEFT, B.1), A, id));
        cores[0].executor.poll_once();
        settle(&mut cores);
        let owner = (0..2)
            .find(|core| cores[*core].take(1).is_some())
            .expect("the request left through eth1 of one core");
        assert!(cores[1 - owner].take(1).is_none(), "sent twice");
        owners[owner] += 1;

        cores[1].inject(1, &echo(0, (RIGHT, A.1), B, id));
        cores[1].executor.poll_once();
        settle(&mut cores);
        let reply = cores[owner]
            .take(0)
            .expect("the reply passed, from the owner");
        assert_eq!(&reply[..6], &A.0.0);
        assert_eq!(reply[34], 0, "an echo reply");
        assert!(
            cores[1 - owner].take(0).is_none(),
            "the other core sent it too"
        );
    }
    let counters = [cores[0].counters(), cores[1].counters()];
    let event = |core: usize, name| counters[core].node_events("firewall", name);
    for core in 0..2 {
        assert_eq!(event(core, "flows-created"), owners[core]);
        // Request and reply of each owned flow: rule-1 then rule-0.
        assert_eq!(event(core, "rule-1"), owners[core]);
        assert_eq!(
            event(core, "rule-0"),
            owners[core],
            "the replies established"
        );
        assert_eq!(event(core, "default-policy"), 0);
        assert_eq!(counters[core].node_drops("firewall", "denied"), 0);
        assert_eq!(counters[core].node_drops("firewall", "ring-full"), 0);
        // Core 0 hands over the requests of core 1's flows and takes in
        // the replies of its own; core 1 the other way round.
        assert_eq!(event(core, "handed-off"), owners[1 - core]);
        assert_eq!(event(core, "handed-in"), owners[core]);
    }
    assert_eq!(owners[0] + owners[1], u64::from(FLOWS));
}

#[test]
fn a_reply_without_its_request_is_dropped_on_the_owner() {
    let mut cores = two_cores();
    for id in 100..108 {
        cores[1].inject(1, &echo(0, (RIGHT, A.1), B, id));
        cores[1].executor.poll_once();
        settle(&mut cores);
        assert!(cores[0].take(0).is_none() && cores[1].take(0).is_none());
    }
    let drops: u64 = (0..2)
        .map(|core| cores[core].counters().node_drops("firewall", "denied"))
        .sum();
    let handed: u64 = (0..2)
        .map(|core| cores[core].counters().node_events("firewall", "handed-off"))
        .sum();
    assert_eq!(drops, 8, "each judged once, on its owner");
    assert_eq!(
        handed,
        cores[0].counters().node_events("firewall", "handed-in"),
        "what core 1 handed over, core 0 took in"
    );
}

/// An ARP reply that the NIC steers to core 0 answers core 1's request:
/// core 0 passes the binding over, and what core 1 held for it leaves.
#[test]
fn an_arp_reply_landing_on_the_other_core_resolves_for_the_asker() {
    let spec = control::Spec::parse(ECHO_SPEC, &services::Registry::with_builtin()).unwrap();
    let mut links = control::core_links(&spec, 2);
    let second = links.pop().unwrap();
    let first = links.pop().unwrap();
    let mut cores = [
        Harness::on_core(&spec, 0, first),
        Harness::on_core(&spec, 1, second),
    ];
    // An ICMP error is a fresh buffer without a reply hint: it waits.
    let closed = udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (40000, 9), 64, b"x");
    let request = cores[1].exchange(0, &closed).expect("core 1 asks");
    assert_eq!(&request[..6], &MacAddr::BROADCAST.0);
    let reply = arp_frame(2, (PEER, PEER_IP), (OURS, OUR_IP), OURS);
    assert!(cores[0].exchange(0, &reply).is_none());
    assert!(cores[1].take(0).is_none(), "not before core 1 runs");
    settle(&mut cores);
    let sent = cores[1].take(0).expect("the held error, now resolved");
    assert_eq!(&sent[..6], &PEER.0);
    assert_eq!((sent[34], sent[35]), (3, 3), "port unreachable");
    assert_eq!(
        cores[1].counters().node_drops("arp", "resolution-timeout"),
        0
    );
}
