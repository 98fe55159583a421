//! Fuzzes IPv4 reassembly with sequences of fragments: any order, size,
//! overlap, duplicate or timeout. Checks that nothing panics, the table
//! never holds more than its limit, no buffer leaks, every datagram that
//! completes carries exactly the bytes its fragments said, and it survives
//! being fragmented again and reassembled.
#![no_main]

use libfuzzer_sys::fuzz_target;
use services::fragment::Fragmenter;
use services::reassembly::{Outcome, Reassembly, ReassemblyLimits, TIMEOUT_NS};
use services::wire::{Ipv4Packet, checksum};

/// Payload byte `index` of datagram `ident`: fragments of one datagram
/// agree wherever they overlap.
fn pattern(ident: u16, index: usize) -> u8 {
    (index as u8).wrapping_mul(31) ^ (ident as u8).wrapping_add((index >> 8) as u8)
}

/// A fragment of datagram `ident` at `offset` (bytes) with `len` bytes.
fn fragment(ident: u16, offset: usize, len: usize, more: bool, protocol: u8) -> Vec<u8> {
    let mut bytes = vec![0u8; 20 + len];
    bytes[0] = 0x45;
    bytes[2..4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
    bytes[4..6].copy_from_slice(&ident.to_be_bytes());
    let word = (u16::from(more) << 13) | ((offset / 8) as u16 & 0x1fff);
    bytes[6..8].copy_from_slice(&word.to_be_bytes());
    bytes[8] = 64;
    bytes[9] = protocol;
    bytes[12..16].copy_from_slice(&[10, 0, 0, 1]);
    bytes[16..20].copy_from_slice(&[10, 0, 0, 2]);
    for (index, byte) in bytes[20..].iter_mut().enumerate() {
        *byte = pattern(ident, offset + index);
    }
    let value = checksum::checksum(&bytes[..20]);
    bytes[10..12].copy_from_slice(&value.to_be_bytes());
    bytes
}

fn check_complete(datagram: &[u8]) -> u16 {
    let ip = Ipv4Packet::new_checked(datagram).expect("a valid datagram");
    assert!(ip.verify_checksum());
    assert!(!ip.is_fragment());
    assert_eq!(usize::from(ip.total_len()), datagram.len());
    let ident = ip.ident();
    for (index, byte) in ip.payload().iter().enumerate() {
        assert_eq!(*byte, pattern(ident, index), "byte {index}");
    }
    ident
}

fuzz_target!(|data: &[u8]| {
    let Some((&limit, steps)) = data.split_first() else {
        return;
    };
    let limits = ReassemblyLimits {
        datagrams: usize::from(limit % 5),
        max_bytes: if limit & 0x80 != 0 { 65535 } else { 4000 },
    };
    let mut table = Reassembly::new(limits);
    let regular = dataplane::Mempool::with_heap(64, 128).unwrap();
    let mut now = 0u64;
    for step in steps.chunks_exact(5) {
        let ident = u16::from(step[0] & 3);
        let offset = usize::from(u16::from_be_bytes([step[1], step[2]]) & 0x1fff) * 8;
        let len = usize::from(step[3]) * 8 + usize::from(step[4] >> 5);
        let more = step[4] & 1 != 0;
        let protocol = if step[4] & 2 != 0 { 17 } else { 1 };
        if step[4] & 4 != 0 {
            now += TIMEOUT_NS / 3;
        }
        table.expire(now, |buffer, quoted| {
            assert!(quoted.is_empty() || quoted.len() == 28);
            drop(buffer);
        });
        if offset == 0 && !more {
            continue; // not a fragment: ipv4 never hands it over
        }
        let bytes = fragment(ident, offset, len, more, protocol);
        match table.insert(&bytes, now) {
            Outcome::Complete(datagram) => {
                let ident = check_complete(datagram.payload());
                // Out again in fragments, back in whole.
                let mut again = Reassembly::new(ReassemblyLimits::default());
                let mut cutter = Fragmenter::new(datagram.payload(), 1500).unwrap();
                let mut whole = None;
                while !cutter.is_done() {
                    let mut piece = regular.alloc().unwrap();
                    cutter.write_next(&mut piece).unwrap();
                    if datagram.len() <= 1500 {
                        assert_eq!(piece.payload(), datagram.payload());
                        whole = Some(piece.payload().to_vec());
                        continue;
                    }
                    if let Outcome::Complete(packet) = again.insert(piece.payload(), 0) {
                        whole = Some(packet.payload().to_vec());
                    }
                }
                let whole = whole.expect("reassembled again");
                assert_eq!(check_complete(&whole), ident);
                assert_eq!(&whole[20..], &datagram.payload()[20..]);
            }
            Outcome::Held { .. } | Outcome::Rejected(_) => {}
        }
        assert!(table.in_progress() <= limits.datagrams);
        if let Some(pool) = table.pool() {
            assert_eq!(pool.available() + table.in_progress(), pool.capacity());
        }
    }
});
