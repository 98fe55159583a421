//! `count-lb FLOWS PACKETS`: an `lb` node over 3 backends (Maglev table of
//! 65 537 slots) steers PACKETS TCP packets of FLOWS client flows to the
//! VIP (each copied fresh from its flow's template: a 40-byte copy is part
//! of the count), then as many backend replies back to the VIP: the Maglev
//! lookup, the pin and both incremental rewrites, as the node does. Made
//! to run under `valgrind --tool=callgrind` at two packet counts; the
//! difference over the packets between is the cost of a packet.
#![forbid(unsafe_code)]

use services::lb::{Endpoint, LoadBalancer, MaglevTable, PinTable, Steered};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::process::ExitCode;

/// A 40-byte IPv4 TCP ACK from `source` to `destination` (checksums 0:
/// the rewrite updates whatever is there).
fn segment(source: Endpoint, destination: Endpoint) -> [u8; 40] {
    let mut ip = [0u8; 40];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&source.address.octets());
    ip[16..20].copy_from_slice(&destination.address.octets());
    ip[20..22].copy_from_slice(&source.port.to_be_bytes());
    ip[22..24].copy_from_slice(&destination.port.to_be_bytes());
    ip[32] = 5 << 4;
    ip[33] = 0x10;
    ip
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: count-lb FLOWS PACKETS";
    let (Some(flows), Some(packets)) = (
        args.first().and_then(|text| text.parse::<u32>().ok()),
        args.get(1).and_then(|text| text.parse::<u64>().ok()),
    ) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    if !(1..=60_000).contains(&flows) {
        eprintln!("FLOWS from 1 to 60000\n{usage}");
        return ExitCode::from(2);
    }
    let vip = Endpoint {
        address: Ipv4Addr::new(10, 0, 2, 100),
        port: 80,
    };
    let backends: Vec<Endpoint> = (2..5)
        .map(|host| Endpoint {
            address: Ipv4Addr::new(10, 0, 2, host),
            port: 8000,
        })
        .collect();
    let table = MaglevTable::new(&backends, 65_537);
    let mut node = LoadBalancer::new(vip, backends.clone(), table, PinTable::new(65_536));
    let requests: Vec<[u8; 40]> = (0..flows)
        .map(|flow| {
            let client = Endpoint {
                address: Ipv4Addr::from_bits(0x0a00_0100 | (flow >> 14)),
                port: 1024 + (flow & 0x3fff) as u16,
            };
            segment(client, vip)
        })
        .collect();
    let reply = segment(
        backends[1],
        Endpoint {
            address: Ipv4Addr::new(10, 0, 1, 2),
            port: 4000,
        },
    );
    let mut steered = 0u64;
    for index in 0..packets {
        let mut ip = requests[(index % u64::from(flows)) as usize];
        if let Ok(Steered::Backend { .. }) = node.steer(black_box(&mut ip), 1) {
            steered += 1;
        }
        let mut back = reply;
        if let Ok(Steered::Reply) = node.steer(black_box(&mut back), 1) {
            steered += 1;
        }
    }
    if steered != 2 * packets {
        eprintln!("count-lb: {steered} of {} packets steered", 2 * packets);
        return ExitCode::FAILURE;
    }
    println!("count-lb: {flows} flows, {packets} requests and {packets} replies");
    ExitCode::SUCCESS
}
