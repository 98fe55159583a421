//! `count-nat FLOWS|new PACKETS`: sends PACKETS UDP datagrams from the
//! inside through a `nat` node (masquerade, a 65 536-flow table) in a
//! one-node graph on a loopback port, in bursts of 32, cycling over FLOWS
//! flows (whose bindings the first pass makes), or with `new` every
//! datagram a flow of its own (a binding, a port search and a conntrack
//! entry each). Made to run under `valgrind --tool=callgrind` at two
//! packet counts: the difference per packet is the cost of translating
//! one (with the graph's per-packet share and a 64-byte copy into the
//! buffer), or of opening one new flow.
#![forbid(unsafe_code)]

use dataplane::{ExecutorBuilder, Ipv4Cidr, LoopbackNic, MacAddr, Mempool, Target};
use services::conntrack::{FlowTable, Timeouts};
use services::nat::{Nat, NatSettings};
use services::route::RoutingTable;
use services::wire::Ipv4Packet;
use services::wire::UdpPacket;
use std::net::Ipv4Addr;
use std::process::ExitCode;

const BURST: usize = 32;
const CAPACITY: usize = 65_536;

/// Datagram `index`'s source: 10.0.1.(1 + index / 40000 % 250), port
/// 20000 + index % 40000.
fn source(index: u64) -> (Ipv4Addr, u16) {
    let host = 1 + (index / 40_000 % 250) as u8;
    (
        Ipv4Addr::new(10, 0, 1, host),
        20_000 + (index % 40_000) as u16,
    )
}

fn datagram(buffer: &mut [u8], from: (Ipv4Addr, u16)) {
    let server = Ipv4Addr::new(10, 0, 2, 2);
    {
        let mut udp = UdpPacket::new_unchecked(&mut buffer[20..]);
        udp.set_source_port(from.1);
        udp.set_destination_port(9);
    }
    buffer[24..26].copy_from_slice(&8u16.to_be_bytes());
    UdpPacket::new_unchecked(&mut buffer[20..]).fill_checksum(from.0, server);
    Ipv4Packet::new_unchecked(&mut buffer[..]).emit_header(from.0, server, 17, 8, 64);
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: count-nat FLOWS|new PACKETS";
    let (Some(mode), Some(packets)) = (
        args.first(),
        args.get(1).and_then(|text| text.parse::<u64>().ok()),
    ) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let flows = match mode.as_str() {
        "new" => None,
        text => match text.parse::<u64>() {
            Ok(flows) if (1..=CAPACITY as u64 / 2).contains(&flows) => Some(flows),
            _ => {
                eprintln!("FLOWS from 1 to {}\n{usage}", CAPACITY / 2);
                return ExitCode::from(2);
            }
        },
    };
    if flows.is_none() && packets > CAPACITY as u64 / 2 {
        eprintln!("at most {} new flows\n{usage}", CAPACITY / 2);
        return ExitCode::from(2);
    }
    let addresses = [
        Ipv4Cidr::new([10, 0, 1, 1].into(), 24).unwrap(),
        Ipv4Cidr::new([10, 0, 2, 1].into(), 24).unwrap(),
    ];
    let nat = Nat::new(
        FlowTable::new(CAPACITY, Timeouts::LINUX, 1),
        CAPACITY,
        NatSettings {
            outside: 1,
            address: Ipv4Addr::new(10, 0, 2, 1),
            inside: vec![],
            ports: (1024, 32767),
            hairpin: false,
            forwards: vec![],
        },
        RoutingTable::new(&addresses, &[]),
        2,
    );
    let mut builder = ExecutorBuilder::new();
    builder.pool(Mempool::with_heap(256, 2048).unwrap());
    let port = builder.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 64)));
    let node = builder.add_node(Box::new(nat));
    builder.route_rx(port, node).unwrap();
    builder.connect(node, "pass", Target::Port(port)).unwrap();
    let mut executor = builder.build().unwrap();
    // With FLOWS, every flow's binding is made before the counted part.
    let warm = flows.unwrap_or(0);
    let mut sent = 0u64;
    let mut translated = 0u64;
    let mut index = 0u64;
    while sent < warm + packets {
        let burst = (warm + packets - sent).min(BURST as u64);
        for _ in 0..burst {
            let flow = match flows {
                Some(flows) => index % flows,
                None => index,
            };
            index += 1;
            let mut packet = executor.pool().unwrap().alloc().unwrap();
            datagram(packet.append(28).unwrap(), source(flow));
            let nic = executor.nic_as::<LoopbackNic>(port).unwrap();
            if nic.inject(packet).is_err() {
                eprintln!("count-nat: the loopback ring is full");
                return ExitCode::FAILURE;
            }
        }
        sent += burst;
        executor.poll_once();
        let nic = executor.nic_as::<LoopbackNic>(port).unwrap();
        while let Some(packet) = nic.take_transmitted() {
            if packet.payload()[12..16] == [10, 0, 2, 1] {
                translated += 1;
            }
        }
    }
    if translated != warm + packets {
        eprintln!(
            "count-nat: {translated} of {} datagrams translated",
            warm + packets
        );
        return ExitCode::FAILURE;
    }
    println!("count-nat: {mode} flows, {packets} datagrams translated");
    ExitCode::SUCCESS
}
