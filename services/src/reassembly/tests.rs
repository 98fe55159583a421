//! Reassembly on byte fixtures: orders, duplicates, overlaps, limits.

use super::*;
use crate::wire::checksum;
use alloc::vec;

const SOURCE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const DESTINATION: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// The payload of the test datagram: `len` bytes counting up.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|index| (index * 7 + 3) as u8).collect()
}

/// A header with `options` extra bytes, for `payload_len` bytes of payload.
fn header(ident: u16, options: usize, payload_len: usize, fragment: u16) -> Vec<u8> {
    let header_len = 20 + options;
    let mut bytes = vec![0u8; header_len];
    bytes[0] = 0x40 | (header_len / 4) as u8;
    bytes[2..4].copy_from_slice(&((header_len + payload_len) as u16).to_be_bytes());
    bytes[4..6].copy_from_slice(&ident.to_be_bytes());
    bytes[6..8].copy_from_slice(&fragment.to_be_bytes());
    bytes[8] = 64;
    bytes[9] = 17;
    bytes[12..16].copy_from_slice(&SOURCE.octets());
    bytes[16..20].copy_from_slice(&DESTINATION.octets());
    for (index, byte) in bytes[20..].iter_mut().enumerate() {
        *byte = if index == 0 { 1 } else { 0 }; // NOPs... then EOL
    }
    let value = checksum::checksum(&bytes);
    bytes[10..12].copy_from_slice(&value.to_be_bytes());
    bytes
}

/// The fragment of `data` at `[start, end)`, with MF unless `last`.
fn fragment(ident: u16, data: &[u8], start: usize, end: usize, last: bool) -> Vec<u8> {
    let flags = if last { 0 } else { 0x2000 };
    let mut bytes = header(ident, 0, end - start, flags | (start / 8) as u16);
    bytes.extend_from_slice(&data[start..end]);
    bytes
}

/// The whole datagram as it must come out.
fn whole(ident: u16, data: &[u8]) -> Vec<u8> {
    let mut bytes = header(ident, 0, data.len(), 0);
    bytes.extend_from_slice(data);
    bytes
}

fn table(datagrams: usize) -> Reassembly {
    Reassembly::new(ReassemblyLimits {
        datagrams,
        max_bytes: 65535,
    })
}

fn held(outcome: Outcome) {
    assert!(
        matches!(outcome, Outcome::Held { evicted: false }),
        "{outcome:?}"
    );
}

fn complete(outcome: Outcome) -> Vec<u8> {
    match outcome {
        Outcome::Complete(packet) => packet.payload().to_vec(),
        other => panic!("not complete: {other:?}"),
    }
}

#[test]
fn fragments_in_order_make_the_datagram() {
    let data = payload(4008);
    let mut table = table(4);
    held(table.insert(&fragment(1, &data, 0, 1480, false), 0));
    held(table.insert(&fragment(1, &data, 1480, 2960, false), 0));
    let datagram = complete(table.insert(&fragment(1, &data, 2960, 4008, true), 0));
    assert_eq!(datagram, whole(1, &data));
    assert_eq!(table.in_progress(), 0);
}

#[test]
fn fragments_in_any_order_make_the_same_datagram() {
    let data = payload(3000);
    let cuts = [(0, 1000, false), (1000, 2000, false), (2000, 3000, true)];
    for order in [[2, 1, 0], [1, 2, 0], [0, 2, 1], [2, 0, 1]] {
        let mut table = table(4);
        for &index in &order[..2] {
            let (start, end, last) = cuts[index];
            held(table.insert(&fragment(9, &data, start, end, last), 0));
        }
        let (start, end, last) = cuts[order[2]];
        let datagram = complete(table.insert(&fragment(9, &data, start, end, last), 0));
        assert_eq!(datagram, whole(9, &data), "{order:?}");
    }
}

#[test]
fn a_duplicate_is_ignored_and_a_partial_overlap_drops_the_datagram() {
    let data = payload(2400);
    let mut table = table(4);
    held(table.insert(&fragment(2, &data, 0, 800, false), 0));
    held(table.insert(&fragment(2, &data, 800, 1600, false), 0));
    // Inside the run 0..1600 made of two fragments: a duplicate.
    assert!(matches!(
        table.insert(&fragment(2, &data, 400, 1200, false), 0),
        Outcome::Rejected(FragmentError::Duplicate)
    ));
    assert_eq!(table.in_progress(), 1);
    assert_eq!(
        complete(table.insert(&fragment(2, &data, 1600, 2400, true), 0)),
        whole(2, &data)
    );
    // Partly over received data: the whole datagram goes.
    held(table.insert(&fragment(3, &data, 0, 800, false), 0));
    assert!(matches!(
        table.insert(&fragment(3, &data, 400, 1600, false), 0),
        Outcome::Rejected(FragmentError::Overlap)
    ));
    assert_eq!(table.in_progress(), 0);
    held(table.insert(&fragment(3, &data, 1600, 2400, true), 0));
}

#[test]
fn a_contradicted_end_drops_the_datagram() {
    let data = payload(2400);
    let mut table = table(4);
    held(table.insert(&fragment(4, &data, 1600, 2400, true), 0));
    // A second "last" fragment with another end.
    assert!(matches!(
        table.insert(&fragment(4, &data, 800, 1200, true), 0),
        Outcome::Rejected(FragmentError::Overlap)
    ));
    assert_eq!(table.in_progress(), 0);
    // Data past a known end.
    held(table.insert(&fragment(5, &data, 800, 1600, true), 0));
    assert!(matches!(
        table.insert(&fragment(5, &data, 1600, 2400, false), 0),
        Outcome::Rejected(FragmentError::Overlap)
    ));
    // A last fragment ending before data already received.
    held(table.insert(&fragment(6, &data, 1600, 2400, false), 0));
    assert!(matches!(
        table.insert(&fragment(6, &data, 800, 1600, true), 0),
        Outcome::Rejected(FragmentError::Overlap)
    ));
}

#[test]
fn bad_lengths_and_oversized_fragments_are_refused() {
    let data = payload(70000);
    let mut table = table(4);
    // Not the last, not a multiple of 8.
    assert!(matches!(
        table.insert(&fragment(6, &data, 0, 13, false), 0),
        Outcome::Rejected(FragmentError::BadLength)
    ));
    // Empty.
    assert!(matches!(
        table.insert(&fragment(6, &data, 8, 8, true), 0),
        Outcome::Rejected(FragmentError::BadLength)
    ));
    // The ping of death: the last fragment ends past 65535.
    assert!(matches!(
        table.insert(&fragment(6, &data, 65528, 65528 + 100, true), 0),
        Outcome::Rejected(FragmentError::TooLarge)
    ));
    assert_eq!(table.in_progress(), 0);
    // The largest datagram there is fits exactly.
    let data = payload(65515);
    let mut start = 0;
    while start + 1480 < data.len() {
        held(table.insert(&fragment(7, &data, start, start + 1480, false), 0));
        start += 1480;
    }
    let datagram = complete(table.insert(&fragment(7, &data, start, data.len(), true), 0));
    assert_eq!(datagram.len(), 65535);
    assert_eq!(datagram, whole(7, &data));
}

#[test]
fn a_smaller_max_bytes_refuses_larger_datagrams() {
    let mut table = Reassembly::new(ReassemblyLimits {
        datagrams: 2,
        max_bytes: 1000,
    });
    let data = payload(2000);
    assert!(matches!(
        table.insert(&fragment(8, &data, 976, 1200, true), 0),
        Outcome::Rejected(FragmentError::TooLarge)
    ));
    held(table.insert(&fragment(8, &data, 0, 488, false), 0));
    assert_eq!(
        complete(table.insert(&fragment(8, &data[..980], 488, 980, true), 0)),
        whole(8, &data[..980])
    );
    assert_eq!(table.pool().unwrap().buffer_len(), 1000);
}

#[test]
fn the_first_fragments_options_stay_in_the_header() {
    let data = payload(1600);
    let mut first = header(10, 4, 800, 0x2000);
    first.extend_from_slice(&data[..800]);
    let mut table = table(2);
    held(table.insert(&first, 0));
    let datagram = complete(table.insert(&fragment(10, &data, 800, 1600, true), 0));
    let mut expected = header(10, 4, 1600, 0);
    expected.extend_from_slice(&data);
    assert_eq!(datagram, expected);
}

#[test]
fn a_full_table_evicts_its_oldest_datagram_and_memory_stays_bounded() {
    let data = payload(1600);
    let mut table = table(4);
    let capacity = table.pool().unwrap().capacity();
    for ident in 0..1000u16 {
        let outcome = table.insert(&fragment(ident, &data, 0, 800, false), u64::from(ident));
        match outcome {
            Outcome::Held { evicted } => assert_eq!(evicted, ident >= 4, "{ident}"),
            other => panic!("{other:?}"),
        }
        assert!(table.in_progress() <= 4);
    }
    let pool = table.pool().unwrap();
    assert_eq!(pool.capacity(), capacity);
    assert_eq!(pool.stats().exhausted, 0);
    assert_eq!(pool.available(), 0);
    assert_eq!(pool.stats().allocations, 4);
    // The newest survive: 996..1000 complete.
    let datagram = complete(table.insert(&fragment(999, &data, 800, 1600, true), 1000));
    assert_eq!(datagram, whole(999, &data));
}

#[test]
fn datagrams_time_out_with_their_quote() {
    let data = payload(1600);
    let mut table = table(4);
    assert_eq!(table.next_expiry_ns(), None);
    held(table.insert(&fragment(12, &data, 800, 1600, true), 5));
    held(table.insert(&fragment(11, &data, 0, 800, false), 0));
    assert_eq!(table.next_expiry_ns(), Some(TIMEOUT_NS));
    let mut expired = Vec::new();
    table.expire(TIMEOUT_NS - 1, |_, quoted| expired.push(quoted.to_vec()));
    assert!(expired.is_empty());
    table.expire(TIMEOUT_NS + 5, |packet, quoted| {
        assert_eq!(packet.headroom(), 0, "the large buffer");
        expired.push(quoted.to_vec())
    });
    assert_eq!(expired.len(), 2);
    let first = fragment(11, &data, 0, 800, false);
    assert!(expired.contains(&first[..28].to_vec()));
    assert!(expired.contains(&Vec::new()), "no first fragment, no quote");
    assert_eq!(table.in_progress(), 0);
    assert_eq!(table.next_expiry_ns(), None);
    assert_eq!(table.pool().unwrap().available(), 4);
}

#[test]
fn without_datagrams_every_fragment_is_refused() {
    let data = payload(1600);
    let mut table = table(0);
    assert!(table.pool().is_none());
    assert!(matches!(
        table.insert(&fragment(13, &data, 0, 800, false), 0),
        Outcome::Rejected(FragmentError::NoRoom)
    ));
}

#[test]
fn too_many_holes_drop_the_datagram() {
    let data = payload(8 * 80);
    let mut table = table(1);
    for index in 0..MAX_RUNS {
        let start = index * 16;
        held(table.insert(&fragment(14, &data, start, start + 8, false), 0));
    }
    let start = MAX_RUNS * 16;
    assert!(matches!(
        table.insert(&fragment(14, &data, start, start + 8, false), 0),
        Outcome::Rejected(FragmentError::NoRoom)
    ));
    assert_eq!(table.in_progress(), 0);
}

#[test]
fn small_datagrams_move_to_a_regular_buffer() {
    let regular = Mempool::with_heap(2, 64).unwrap();
    let data = payload(1000);
    let mut table = table(1);
    held(table.insert(&fragment(15, &data, 0, 504, false), 0));
    let Outcome::Complete(packet) = table.insert(&fragment(15, &data, 504, 1000, true), 0) else {
        panic!("not complete");
    };
    assert_eq!(packet.headroom(), 0);
    let moved = into_regular_buffer(packet, || regular.alloc());
    assert_eq!(moved.headroom(), 64);
    assert_eq!(moved.payload(), &whole(15, &data)[..]);
    assert_eq!(table.pool().unwrap().available(), 1);
}
