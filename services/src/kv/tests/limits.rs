//! The store's limits: eviction of the least recently used under the
//! memory limit, items too large, expiry on the platform clock.

use super::exchange;
use crate::kv::harness::KvHarness;
use crate::kv::store::item_size;

#[test]
fn least_recently_used_items_are_evicted() {
    // Room for three items of a 1-byte key and 100-byte value.
    let one = item_size(1, 100);
    let mut h = KvHarness::new(3 * one + one / 2, 3 * one);
    let value = "v".repeat(100);
    for key in ["a", "b", "c"] {
        let set = alloc::format!("set {key} 0 0 100\r\n{value}\r\n");
        assert_eq!(exchange(&mut h, &set), "STORED\r\n");
    }
    // `a` is used, so `b` is the least recently used when `d` comes.
    exchange(&mut h, "get a\r\n");
    exchange(&mut h, &alloc::format!("set d 0 0 100\r\n{value}\r\n"));
    assert_eq!(exchange(&mut h, "get b\r\n"), "END\r\n");
    let got = exchange(&mut h, "get a c d\r\n");
    assert_eq!(got.matches("VALUE").count(), 3, "{got}");
    assert_eq!(h.app().counters().evictions, 1);
    assert_eq!(h.app().items(), 3);
}

#[test]
fn an_item_too_large_is_refused_and_its_block_swallowed() {
    let mut h = KvHarness::new(1 << 20, 4096);
    exchange(&mut h, "set k 0 0 1\r\nx\r\n");
    let big = "z".repeat(5000);
    // The block arrives in two pieces; both are thrown away.
    h.feed(alloc::format!("set k 0 0 5000\r\n{}", &big[..1000]).as_bytes());
    assert_eq!(
        exchange(&mut h, &alloc::format!("{}\r\nget k\r\n", &big[1000..])),
        "SERVER_ERROR object too large for cache\r\nEND\r\n"
    );
    // An append past the limit is refused by the store.
    exchange(
        &mut h,
        &alloc::format!("set k 0 0 3000\r\n{}\r\n", &big[..3000]),
    );
    assert_eq!(
        exchange(
            &mut h,
            &alloc::format!("append k 0 0 3000\r\n{}\r\n", &big[..3000])
        ),
        "SERVER_ERROR object too large for cache\r\n"
    );
}

#[test]
fn a_data_block_may_arrive_in_pieces() {
    let mut h = KvHarness::new(1 << 20, 64 * 1024);
    let value = "q".repeat(40_000);
    let input = alloc::format!("set big 1 0 40000\r\n{value}\r\nget big\r\n");
    for piece in input.as_bytes().chunks(1500) {
        h.feed(piece);
    }
    let expected = alloc::format!("STORED\r\nVALUE big 1 40000\r\n{value}\r\nEND\r\n");
    assert_eq!(
        alloc::string::String::from_utf8(h.take_output()).unwrap(),
        expected
    );
}

#[test]
fn items_expire_on_the_platform_clock() {
    const SECOND: u64 = 1_000_000_000;
    let mut h = KvHarness::new(1 << 20, 64 * 1024);
    h.set_now_ns(100 * SECOND);
    exchange(&mut h, "set soon 0 10 1\r\na\r\nset never 0 0 1\r\nb\r\n");
    exchange(&mut h, "set gone 0 -1 1\r\nc\r\n");
    // Absolute: seconds since boot (our epoch), 40 days.
    exchange(&mut h, "set absolute 0 3456000 1\r\nd\r\n");
    assert_eq!(exchange(&mut h, "get gone\r\n"), "END\r\n");
    h.set_now_ns(109 * SECOND);
    assert_eq!(
        exchange(&mut h, "get soon\r\n"),
        "VALUE soon 0 1\r\na\r\nEND\r\n"
    );
    h.set_now_ns(110 * SECOND);
    assert_eq!(exchange(&mut h, "get soon\r\n"), "END\r\n");
    assert_eq!(exchange(&mut h, "touch never 5\r\n"), "TOUCHED\r\n");
    h.set_now_ns(3_455_999 * SECOND);
    assert_eq!(
        exchange(&mut h, "get never absolute\r\n"),
        "VALUE absolute 0 1\r\nd\r\nEND\r\n"
    );
    h.set_now_ns(3_456_000 * SECOND);
    assert_eq!(exchange(&mut h, "get absolute\r\n"), "END\r\n");
}

#[test]
fn a_delayed_flush_takes_items_stored_before_it() {
    const SECOND: u64 = 1_000_000_000;
    let mut h = KvHarness::new(1 << 20, 64 * 1024);
    exchange(&mut h, "set old 0 0 1\r\na\r\n");
    assert_eq!(exchange(&mut h, "flush_all 10\r\n"), "OK\r\n");
    h.set_now_ns(5 * SECOND);
    assert_eq!(
        exchange(&mut h, "get old\r\n"),
        "VALUE old 0 1\r\na\r\nEND\r\n"
    );
    h.set_now_ns(10 * SECOND);
    exchange(&mut h, "set new 0 0 1\r\nb\r\n");
    assert_eq!(
        exchange(&mut h, "get old new\r\n"),
        "VALUE new 0 1\r\nb\r\nEND\r\n"
    );
}
