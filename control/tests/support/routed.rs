//! Two subnets routed by the appliance, for the tests of `ipv4:forward`
//! services on several cores (firewall, NAT): the example specs' hosts
//! and ports, ICMP echo frames between them, and the cores of a spec with
//! the cross-core links the platform makes, each knowing both hosts.

use super::{Harness, advance_clock, arp_frame};
use core::net::Ipv4Addr;
use dataplane::MacAddr;
use services::wire::{EtherType, EthernetFrame, IcmpPacket, Ipv4Packet};

/// Our port on 10.0.1.0/24 (eth0).
pub const LEFT: MacAddr = MacAddr([2, 0, 0, 0, 1, 1]);
/// Our port on 10.0.2.0/24 (eth1).
pub const RIGHT: MacAddr = MacAddr([2, 0, 0, 0, 2, 1]);
/// Our address on eth1 (the NAT's outside address).
pub const OUTSIDE: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
/// The host on eth0's subnet.
pub const A: (MacAddr, Ipv4Addr) = (MacAddr([2, 0xaa, 0, 0, 0, 1]), Ipv4Addr::new(10, 0, 1, 2));
/// The host on eth1's subnet.
pub const B: (MacAddr, Ipv4Addr) = (MacAddr([2, 0xbb, 0, 0, 0, 1]), Ipv4Addr::new(10, 0, 2, 2));

/// An ICMP echo request (`kind` 8) or reply (0) from `from` to the
/// address `to.1`, in a frame to the MAC `to.0` (the router's port).
pub fn echo(kind: u8, to: (MacAddr, Ipv4Addr), from: (MacAddr, Ipv4Addr), id: u16) -> Vec<u8> {
    let mut bytes = vec![0u8; 14 + 20 + 16];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    frame.set_destination(to.0);
    frame.set_source(from.0);
    frame.set_ethertype(EtherType::IPV4);
    let icmp = &mut bytes[34..];
    icmp[0] = kind;
    icmp[4..6].copy_from_slice(&id.to_be_bytes());
    icmp[6..8].copy_from_slice(&1u16.to_be_bytes());
    icmp[8..].copy_from_slice(b"warpcore");
    IcmpPacket::new_unchecked(&mut bytes[34..]).fill_checksum();
    Ipv4Packet::new_unchecked(&mut bytes[14..]).emit_header(from.1, to.1, 1, 16, 64);
    bytes
}

/// `count` cores of `spec` (an example's text; its virtio ports become
/// loopback), with the cross-core links the platform makes, each knowing
/// both hosts' MACs.
pub fn routed_cores(spec: &str, count: usize) -> Vec<Harness> {
    let text = spec.replace("virtio", "loopback");
    let spec = control::Spec::parse(&text, &services::Registry::with_builtin()).unwrap();
    let links = control::core_links(&spec, count);
    let mut cores: Vec<Harness> = links
        .into_iter()
        .enumerate()
        .map(|(core, links)| Harness::on_core(&spec, core, links))
        .collect();
    let ask =
        |(mac, ip), ours| arp_frame(1, (mac, ip), (MacAddr([0; 6]), ours), MacAddr::BROADCAST);
    for core in &mut cores {
        core.exchange(0, &ask(A, Ipv4Addr::new(10, 0, 1, 1)))
            .expect("ARP reply on eth0");
        core.exchange(1, &ask(B, OUTSIDE))
            .expect("ARP reply on eth1");
    }
    cores
}

/// Lets every core run a housekeeping poll, which takes in what the
/// other cores handed over.
pub fn settle(cores: &mut [Harness]) {
    advance_clock(2_000_000);
    for core in cores.iter_mut() {
        core.executor.poll_once();
    }
}
