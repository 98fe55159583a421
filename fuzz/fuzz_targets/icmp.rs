//! Fuzzes `IcmpPacket::new_checked`, its accessors and checksum round trip.
#![forbid(unsafe_code)]
#![no_main]

use libfuzzer_sys::fuzz_target;
use services::wire::IcmpPacket;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    let Ok(mut message) = IcmpPacket::new_checked(&mut bytes[..]) else {
        assert!(data.len() < 8);
        return;
    };
    let _ = (
        message.msg_type(),
        message.code(),
        message.checksum(),
        message.echo_ident(),
        message.echo_sequence(),
        message.is_error(),
        message.verify_checksum(),
        message.payload(),
    );
    message.fill_checksum();
    assert!(message.verify_checksum());
});
