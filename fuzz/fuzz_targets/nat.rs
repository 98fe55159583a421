//! Fuzzes the NAT path: a sequence of IPv4 packets (separated by `WCFZ`,
//! the first two bytes of each advancing the clock by seconds) through a
//! `nat` node with a small table, two forwarded ports and hairpin, in a
//! graph on a loopback port; and each packet through the translation
//! alone. Invariants: nothing panics (ICMP errors quoting garbage
//! included), and a packet whose IPv4 header checksum held before a
//! rewrite still holds after it, as does an ICMP error's own checksum.
#![forbid(unsafe_code)]
#![no_main]

use core::net::Ipv4Addr;
use dataplane::{ExecutorBuilder, Ipv4Cidr, LoopbackNic, MacAddr, Mempool, Target};
use libfuzzer_sys::fuzz_target;
use services::conntrack::{FiveTuple, FlowPacket, FlowTable, Timeouts};
use services::nat::translate::{rewrite, rewrite_error};
use services::nat::{Forward, Nat, NatSettings};
use services::route::RoutingTable;
use services::wire::checksum::checksum;

fn header_holds(ip: &[u8]) -> bool {
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    checksum(&ip[..header_len]) == 0
}

fuzz_target!(|data: &[u8]| {
    let addresses = [
        Ipv4Cidr::new([10, 0, 1, 1].into(), 24).unwrap(),
        Ipv4Cidr::new([10, 0, 2, 1].into(), 24).unwrap(),
    ];
    let settings = NatSettings {
        outside: 1,
        address: Ipv4Addr::new(10, 0, 2, 1),
        inside: vec![Ipv4Cidr::new([10, 0, 1, 0].into(), 24).unwrap()],
        ports: (20000, 20015),
        hairpin: true,
        forwards: vec![
            Forward { protocol: 6, port: 8080, to: (Ipv4Addr::new(10, 0, 1, 2), 80) },
            Forward { protocol: 17, port: 53, to: (Ipv4Addr::new(10, 0, 1, 2), 53) },
        ],
    };
    let nat = Nat::new(
        FlowTable::new(16, Timeouts::LINUX, 5),
        16,
        settings,
        RoutingTable::new(&addresses, &[]),
        7,
    );
    let mut builder = ExecutorBuilder::new();
    builder.pool(Mempool::with_heap(16, 2048).unwrap());
    let port = builder.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 16)));
    let node = builder.add_node(Box::new(nat));
    builder.route_rx(port, node).unwrap();
    builder.connect(node, "pass", Target::Port(port)).unwrap();
    let mut executor = builder.build().unwrap();
    let to = FiveTuple {
        source: Ipv4Addr::new(10, 0, 2, 1),
        destination: Ipv4Addr::new(10, 0, 2, 2),
        source_port: 20001,
        destination_port: 443,
        protocol: 6,
    };
    let mut rest = data;
    while !rest.is_empty() {
        let end = rest.windows(4).position(|window| window == b"WCFZ").unwrap_or(rest.len());
        let (piece, after) = rest.split_at(end);
        rest = after.get(4..).unwrap_or(&[]);
        let [_high, _low, packet @ ..] = piece else {
            continue;
        };
        if packet.len() > 2000 {
            continue;
        }
        if let Some(mut buffer) = executor.pool().unwrap().alloc() {
            buffer.append(packet.len()).unwrap().copy_from_slice(packet);
            let nic = executor.nic_as::<LoopbackNic>(port).unwrap();
            let _ = nic.inject(buffer);
            executor.poll_once();
            let nic = executor.nic_as::<LoopbackNic>(port).unwrap();
            while nic.take_transmitted().is_some() {}
        }
        let Ok(flow) = FlowPacket::parse(packet) else {
            continue;
        };
        let before = header_holds(packet);
        let mut copy = packet.to_vec();
        let result = match flow.quoted {
            Some(_) => rewrite_error(&mut copy, to.destination, to.source, &to),
            None => rewrite(&mut copy, &{ FiveTuple { protocol: flow.tuple.protocol, ..to } }, false)
                .map(|_| ()),
        };
        if result.is_ok() && before {
            assert!(header_holds(&copy), "a rewrite broke the header checksum");
        }
        if result.is_ok() && flow.quoted.is_some() {
            let header_len = usize::from(packet[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            if checksum(&packet[header_len..total]) == 0 {
                assert_eq!(checksum(&copy[header_len..total]), 0, "the error's checksum broke");
            }
        }
    }
});
