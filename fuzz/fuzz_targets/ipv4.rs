//! Fuzzes `Ipv4Packet::new_checked`: after it, no accessor panics, the
//! lengths are consistent and the incremental TTL update matches a full
//! checksum recomputation.
#![forbid(unsafe_code)]
#![no_main]

use libfuzzer_sys::fuzz_target;
use services::wire::{Ipv4Packet, checksum};

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    let Ok(mut packet) = Ipv4Packet::new_checked(&mut bytes[..]) else {
        return;
    };
    let header_len = packet.header_len();
    let total_len = usize::from(packet.total_len());
    assert!(20 <= header_len && header_len <= total_len && total_len <= data.len());
    assert_eq!(packet.payload().len(), total_len - header_len);
    let _ = (
        packet.version(),
        packet.dscp_ecn(),
        packet.ident(),
        packet.is_fragment(),
        packet.fragment_offset(),
        packet.protocol(),
        packet.source(),
        packet.destination(),
        packet.header(),
    );
    if packet.verify_checksum() && packet.ttl() > 1 {
        packet.decrement_ttl();
        assert!(packet.verify_checksum(), "incremental update broke the checksum");
    }
    packet.fill_checksum();
    assert!(packet.verify_checksum());
    assert_eq!(checksum::checksum(packet.header()), 0);
    packet.swap_addresses();
    assert!(packet.verify_checksum());
    let _ = packet.payload_mut();
});
