//! Fuzzes `ArpPacket::new_checked` and its accessors.
#![forbid(unsafe_code)]
#![no_main]

use libfuzzer_sys::fuzz_target;
use services::wire::ArpPacket;
use services::wire::arp::ArpOperation;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if let Ok(mut arp) = ArpPacket::new_checked(&mut bytes[..]) {
        let _ = (arp.is_ethernet_ipv4(), arp.hardware_type(), arp.protocol_type());
        let sender = (arp.sender_mac(), arp.sender_ip());
        let target = (arp.target_mac(), arp.target_ip());
        let operation = arp.operation();
        arp.emit(ArpOperation::REPLY, target, sender);
        assert_eq!(arp.sender_ip(), target.1);
        assert!(arp.is_ethernet_ipv4());
        arp.set_operation(operation);
    } else {
        assert!(data.len() < 28);
    }
});
