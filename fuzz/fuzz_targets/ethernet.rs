//! Fuzzes `EthernetFrame::new_checked` and its accessors.
#![forbid(unsafe_code)]
#![no_main]

use libfuzzer_sys::fuzz_target;
use services::wire::EthernetFrame;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if let Ok(mut frame) = EthernetFrame::new_checked(&mut bytes[..]) {
        let (destination, source, ethertype) = (frame.destination(), frame.source(), frame.ethertype());
        assert_eq!(frame.payload().len(), data.len() - 14);
        frame.set_destination(source);
        frame.set_source(destination);
        frame.set_ethertype(ethertype);
        assert_eq!(frame.destination(), source);
        let _ = frame.payload_mut();
    } else {
        assert!(data.len() < 14);
    }
});
