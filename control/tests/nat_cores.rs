//! The NAT example through the whole pipeline: an echo request from the
//! inside leaves masqueraded from 10.0.2.1, and its reply, addressed to
//! us, is claimed from the local stack and translated back. On two cores
//! the request lands on core 0 and the reply on core 1: the masquerade
//! identifier is chosen so that the reply's flow is owned by the core that
//! chose it, so both directions meet there; a reply to an identifier
//! nobody bound is dropped once, on its owner.

mod support;

use core::net::Ipv4Addr;
use services::wire::{IcmpPacket, Ipv4Packet};
use support::routed::*;
use support::*;

const SPEC: &str = include_str!("../../examples/nat.toml");

const NAT: Ipv4Addr = OUTSIDE;

/// The echo identifier and addresses of an echo frame, with its checksums
/// checked.
fn read_echo(frame: &[u8]) -> (Ipv4Addr, Ipv4Addr, u16) {
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    assert!(ip.verify_checksum());
    let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum());
    (ip.source(), ip.destination(), icmp.echo_ident())
}

/// The cores of the NAT example.
fn cores(count: usize) -> Vec<Harness> {
    routed_cores(SPEC, count)
}

/// Injects `bytes` on interface `from`, polls once, returns what left on
/// `to`.
fn through(core: &mut Harness, from: usize, to: usize, bytes: &[u8]) -> Option<Vec<u8>> {
    core.inject(from, bytes);
    core.executor.poll_once();
    core.take(to)
}

#[test]
fn an_echo_is_masqueraded_and_its_reply_to_us_translated_back() {
    let mut cores = cores(1);
    let core = &mut cores[0];
    let out = through(core, 0, 1, &echo(8, (LEFT, B.1), A, 77)).expect("the request left on eth1");
    let (source, destination, ident) = read_echo(&out);
    assert_eq!((source, destination), (NAT, B.1));
    assert!((20000..=29999).contains(&ident));
    let back = through(core, 1, 0, &echo(0, (RIGHT, NAT), B, ident))
        .expect("the reply, claimed from the local stack, left on eth0");
    assert_eq!(read_echo(&back), (B.1, A.1, 77));
    assert_eq!(&back[..6], &A.0.0);
    // Pinging us still gets our own answer: echo requests are not claimed.
    let ours = core
        .exchange(1, &echo(8, (RIGHT, NAT), B, 20001))
        .expect("the appliance answers its own ping");
    assert_eq!(read_echo(&ours), (NAT, B.1, 20001));
    let counters = core.counters();
    assert_eq!(counters.node_events("nat", "masqueraded-flows"), 1);
    assert_eq!(counters.node_events("nat", "translated"), 2);
}

#[test]
fn both_directions_meet_on_the_core_that_chose_the_identifier() {
    const FLOWS: u16 = 16;
    let mut cores = cores(2);
    let mut owners = [0u64; 2];
    for id in 1..=FLOWS {
        cores[0].inject(0, &echo(8, (LEFT, B.1), A, id));
        cores[0].executor.poll_once();
        settle(&mut cores);
        let owner = (0..2)
            .find(|core| cores[*core].take(1).is_some_and(|_| true))
            .expect("the request left through eth1 of one core");
        owners[owner] += 1;
        // Read the identifier again from a fresh request of the same flow.
        cores[owner].inject(0, &echo(8, (LEFT, B.1), A, id));
        cores[owner].executor.poll_once();
        let out = cores[owner].take(1).expect("same flow, same core");
        let (_, _, ident) = read_echo(&out);

        cores[1].inject(1, &echo(0, (RIGHT, NAT), B, ident));
        cores[1].executor.poll_once();
        settle(&mut cores);
        let Some(reply) = cores[owner].take(0) else {
            for (index, core) in cores.iter().enumerate() {
                eprintln!("core {index}: {:?}", all_drops(&core.counters()));
            }
            panic!("the reply was not translated on the owner {owner} (ident {ident})");
        };
        assert_eq!(read_echo(&reply), (B.1, A.1, id));
        assert!(cores[1 - owner].take(0).is_none(), "sent twice");
    }
    // Replies to identifiers nobody bound: dropped once, on their owner.
    for ident in 29990..=29999 {
        cores[1].inject(1, &echo(0, (RIGHT, NAT), B, ident));
        cores[1].executor.poll_once();
        settle(&mut cores);
        assert!(cores[0].take(0).is_none() && cores[1].take(0).is_none());
    }
    let counters = [cores[0].counters(), cores[1].counters()];
    let event = |core: usize, name| counters[core].node_events("nat", name);
    for core in 0..2 {
        assert_eq!(event(core, "masqueraded-flows"), owners[core]);
        assert_eq!(counters[core].node_drops("nat", "ring-full"), 0);
        assert_eq!(counters[core].node_drops("nat", "invalid"), 0);
    }
    let no_mapping: u64 = (0..2)
        .map(|core| counters[core].node_drops("nat", "no-mapping"))
        .sum();
    assert_eq!(no_mapping, 10);
    let (off, into): (u64, u64) = (
        (0..2).map(|core| event(core, "handed-off")).sum(),
        (0..2).map(|core| event(core, "handed-in")).sum(),
    );
    assert!(off > 0, "no packet landed on the core that does not own it");
    assert_eq!(off, into);
    assert_eq!(owners[0] + owners[1], u64::from(FLOWS));
}
