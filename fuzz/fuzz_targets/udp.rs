//! Fuzzes `UdpPacket::new_checked`, its accessors and checksum round trip.
#![forbid(unsafe_code)]
#![no_main]

use core::net::Ipv4Addr;
use libfuzzer_sys::fuzz_target;
use services::wire::UdpPacket;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let source = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
    let destination = Ipv4Addr::new(data[4], data[5], data[6], data[7]);
    let mut bytes = data[8..].to_vec();
    let Ok(mut udp) = UdpPacket::new_checked(&mut bytes[..]) else {
        return;
    };
    let length = usize::from(udp.length());
    assert!(8 <= length && length <= data.len() - 8);
    assert_eq!(udp.payload().len(), length - 8);
    let _ = (udp.source_port(), udp.destination_port(), udp.verify_checksum(source, destination));
    udp.fill_checksum(source, destination);
    assert!(udp.verify_checksum(source, destination));
    assert_ne!(udp.checksum(), 0);
    udp.swap_ports();
    assert!(udp.verify_checksum(destination, source));
});
