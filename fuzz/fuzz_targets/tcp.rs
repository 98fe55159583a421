//! Fuzzes `TcpPacket::new_checked`, its accessors, `parse_options`, the
//! checksum round trip, and `TcpHeader` emit → parse from fuzz-chosen
//! fields.
#![forbid(unsafe_code)]
#![no_main]

use core::net::Ipv4Addr;
use libfuzzer_sys::fuzz_target;
use services::wire::tcp::{
    HEADER_LEN, MAX_WINDOW_SCALE, MAX_WRITTEN_LEN, TcpFlags, TcpHeader, TcpOptions, TcpPacket,
    parse_options, write_options,
};

/// Reads fields from the input, zeros once it runs out.
struct Fields<'a> {
    bytes: &'a [u8],
}

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let len = N.min(self.bytes.len());
        out[..len].copy_from_slice(&self.bytes[..len]);
        self.bytes = &self.bytes[len..];
        out
    }

    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take())
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take())
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let source = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
    let destination = Ipv4Addr::new(data[4], data[5], data[6], data[7]);
    let segment = &data[8..];

    // Options from any bytes: an error or values within their limits.
    if let Ok(options) = parse_options(segment) {
        assert!(
            options
                .window_scale
                .is_none_or(|shift| shift <= MAX_WINDOW_SCALE)
        );
    }

    header_round_trip(source, destination, segment);

    let mut bytes = segment.to_vec();
    let Ok(mut tcp) = TcpPacket::new_checked(&mut bytes[..]) else {
        return;
    };
    let header_len = tcp.header_len();
    assert!(HEADER_LEN <= header_len && header_len <= segment.len());
    assert_eq!(tcp.options().len(), header_len - HEADER_LEN);
    assert_eq!(tcp.payload().len(), segment.len() - header_len);
    let _ = (
        tcp.source_port(),
        tcp.destination_port(),
        tcp.sequence_number(),
        tcp.acknowledgment_number(),
        tcp.flags(),
        tcp.window(),
        tcp.checksum(),
        tcp.urgent_pointer(),
        tcp.verify_checksum(source, destination),
    );
    if let Ok(header) = TcpHeader::parse(&tcp) {
        assert_eq!(Ok(header.options), parse_options(tcp.options()));
        assert!(header.header_len() <= HEADER_LEN + MAX_WRITTEN_LEN);
    }
    tcp.fill_checksum(source, destination);
    assert!(tcp.verify_checksum(source, destination));
    tcp.swap_ports();
    assert!(tcp.verify_checksum(destination, source));
});

/// Emits a header from fields taken from `input`, with a payload, and
/// checks that it parses back to the same fields and that its checksum
/// verifies.
fn header_round_trip(source: Ipv4Addr, destination: Ipv4Addr, input: &[u8]) {
    let mut fields = Fields { bytes: input };
    let present = fields.u8();
    let mut header = TcpHeader {
        source_port: fields.u16(),
        destination_port: fields.u16(),
        sequence: fields.u32(),
        acknowledgment: fields.u32(),
        flags: TcpFlags(fields.u8()),
        window: fields.u16(),
        options: TcpOptions {
            mss: Some(fields.u16()).filter(|_| present & 1 != 0),
            window_scale: Some(fields.u8()).filter(|_| present & 2 != 0),
            sack_permitted: present & 4 != 0,
            timestamps: Some((fields.u32(), fields.u32())).filter(|_| present & 8 != 0),
            sack_blocks: Default::default(),
        },
    };
    let payload = fields.bytes;
    let header_len = header.header_len();
    let mut bytes = vec![0u8; header_len + payload.len()];
    header.emit(&mut bytes);
    bytes[header_len..].copy_from_slice(payload);
    let mut tcp = TcpPacket::new_checked(&mut bytes[..]).expect("an emitted header checks");
    assert_eq!(tcp.header_len(), header_len);
    assert_eq!(tcp.payload(), payload);
    tcp.fill_checksum(source, destination);
    assert!(tcp.verify_checksum(source, destination));
    if let Some(shift) = header.options.window_scale.as_mut() {
        *shift = (*shift).min(MAX_WINDOW_SCALE);
    }
    assert_eq!(TcpHeader::parse(&tcp), Ok(header));
    let mut options = [0u8; MAX_WRITTEN_LEN];
    let len = write_options(&mut options, &header.options);
    assert_eq!(&options[..len], tcp.options());
}
