//! Every command and its memcached answer, byte for byte.

use super::{exchange, harness};

#[test]
fn set_get_gets_and_multi_get() {
    let mut h = harness();
    assert_eq!(exchange(&mut h, "set a 5 0 3\r\nabc\r\n"), "STORED\r\n");
    assert_eq!(
        exchange(&mut h, "get a\r\n"),
        "VALUE a 5 3\r\nabc\r\nEND\r\n"
    );
    assert_eq!(
        exchange(&mut h, "gets a\r\n"),
        "VALUE a 5 3 1\r\nabc\r\nEND\r\n"
    );
    assert_eq!(exchange(&mut h, "set b 0 0 0\r\n\r\n"), "STORED\r\n");
    assert_eq!(
        exchange(&mut h, "get  a  missing b\r\n"),
        "VALUE a 5 3\r\nabc\r\nVALUE b 0 0\r\n\r\nEND\r\n"
    );
    assert_eq!(exchange(&mut h, "get nothing\n"), "END\r\n");
}

#[test]
fn add_replace_append_prepend() {
    let mut h = harness();
    assert_eq!(exchange(&mut h, "add k 1 0 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(exchange(&mut h, "add k 1 0 1\r\ny\r\n"), "NOT_STORED\r\n");
    assert_eq!(
        exchange(&mut h, "replace none 0 0 1\r\ny\r\n"),
        "NOT_STORED\r\n"
    );
    assert_eq!(exchange(&mut h, "replace k 2 0 1\r\nz\r\n"), "STORED\r\n");
    assert_eq!(exchange(&mut h, "append k 9 0 2\r\n>>\r\n"), "STORED\r\n");
    assert_eq!(exchange(&mut h, "prepend k 9 0 2\r\n<<\r\n"), "STORED\r\n");
    assert_eq!(
        exchange(&mut h, "append none 0 0 1\r\n.\r\n"),
        "NOT_STORED\r\n"
    );
    // append and prepend keep the flags.
    assert_eq!(
        exchange(&mut h, "get k\r\n"),
        "VALUE k 2 5\r\n<<z>>\r\nEND\r\n"
    );
}

#[test]
fn cas_stores_exists_and_not_found() {
    let mut h = harness();
    assert_eq!(exchange(&mut h, "cas k 0 0 1 1\r\nx\r\n"), "NOT_FOUND\r\n");
    exchange(&mut h, "set k 0 0 1\r\nx\r\n");
    assert_eq!(
        exchange(&mut h, "gets k\r\n"),
        "VALUE k 0 1 1\r\nx\r\nEND\r\n"
    );
    assert_eq!(exchange(&mut h, "cas k 0 0 1 7\r\ny\r\n"), "EXISTS\r\n");
    assert_eq!(exchange(&mut h, "cas k 3 0 1 1\r\ny\r\n"), "STORED\r\n");
    assert_eq!(
        exchange(&mut h, "gets k\r\n"),
        "VALUE k 3 1 2\r\ny\r\nEND\r\n"
    );
    assert_eq!(exchange(&mut h, "cas k 0 0 1 1 noreply\r\nz\r\n"), "");
}

#[test]
fn delete_touch_and_incr_decr() {
    let mut h = harness();
    assert_eq!(exchange(&mut h, "delete k\r\n"), "NOT_FOUND\r\n");
    exchange(&mut h, "set k 0 0 2\r\n10\r\n");
    assert_eq!(exchange(&mut h, "incr k 5\r\n"), "15\r\n");
    assert_eq!(exchange(&mut h, "decr k 100\r\n"), "0\r\n");
    assert_eq!(exchange(&mut h, "incr none 1\r\n"), "NOT_FOUND\r\n");
    assert_eq!(
        exchange(&mut h, "incr k x\r\n"),
        "CLIENT_ERROR invalid numeric delta argument\r\n"
    );
    exchange(&mut h, "set max 0 0 20\r\n18446744073709551615\r\n");
    assert_eq!(exchange(&mut h, "incr max 2\r\n"), "1\r\n");
    exchange(&mut h, "set text 0 0 3\r\nabc\r\n");
    assert_eq!(
        exchange(&mut h, "incr text 1\r\n"),
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    );
    assert_eq!(exchange(&mut h, "touch k 100\r\n"), "TOUCHED\r\n");
    assert_eq!(exchange(&mut h, "touch none 100\r\n"), "NOT_FOUND\r\n");
    assert_eq!(
        exchange(&mut h, "touch k soon\r\n"),
        "CLIENT_ERROR invalid exptime argument\r\n"
    );
    assert_eq!(exchange(&mut h, "delete k 0\r\n"), "DELETED\r\n");
    assert_eq!(
        exchange(&mut h, "delete k 5\r\n"),
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
    );
}

#[test]
fn noreply_answers_nothing() {
    let mut h = harness();
    let input = "set k 0 0 1 noreply\r\n7\r\nincr k 1 noreply\r\ntouch k 10 noreply\r\n\
                 add k 0 0 1 noreply\r\nx\r\ndelete none noreply\r\nget k\r\n";
    assert_eq!(exchange(&mut h, input), "VALUE k 0 1\r\n8\r\nEND\r\n");
    assert_eq!(
        exchange(&mut h, "flush_all noreply\r\nget k\r\n"),
        "END\r\n"
    );
}

#[test]
fn version_stats_flush_and_quit() {
    let mut h = harness();
    assert_eq!(
        exchange(&mut h, "version\r\n"),
        "VERSION 1.6.0-warpcore\r\n"
    );
    exchange(&mut h, "set k 0 0 1\r\nx\r\nget k nope\r\n");
    let stats = exchange(&mut h, "stats\r\n");
    for line in [
        "STAT pid 1\r\n",
        "STAT uptime 0\r\n",
        "STAT curr_connections 1\r\n",
        "STAT cmd_get 2\r\n",
        "STAT get_hits 1\r\n",
        "STAT get_misses 1\r\n",
        "STAT cmd_set 1\r\n",
        "STAT curr_items 1\r\n",
        "STAT threads 1\r\n",
        "STAT evictions 0\r\n",
        "STAT limit_maxbytes 1048576\r\n",
    ] {
        assert!(stats.contains(line), "{line:?} not in {stats:?}");
    }
    assert!(stats.ends_with("END\r\n"));
    assert_eq!(exchange(&mut h, "flush_all\r\nget k\r\n"), "OK\r\nEND\r\n");
    assert_eq!(exchange(&mut h, "quit\r\nget k\r\n"), "");
    assert!(h.closed());
}

#[test]
fn errors_as_memcached_words_them() {
    let mut h = harness();
    assert_eq!(exchange(&mut h, "bogus\r\n"), "ERROR\r\n");
    assert_eq!(exchange(&mut h, "get\r\n"), "ERROR\r\n");
    assert_eq!(exchange(&mut h, "set k 0 0\r\n"), "ERROR\r\n");
    assert_eq!(exchange(&mut h, "\r\n"), "ERROR\r\n");
    let long = "k".repeat(251);
    assert_eq!(
        exchange(&mut h, &alloc::format!("get {long}\r\n")),
        "CLIENT_ERROR bad command line format\r\n"
    );
    assert_eq!(
        exchange(&mut h, "set k x 0 1\r\n"),
        "CLIENT_ERROR bad command line format\r\n"
    );
    assert_eq!(
        exchange(&mut h, "set k 0 0 -1\r\n"),
        "CLIENT_ERROR bad command line format\r\n"
    );
    assert_eq!(
        exchange(&mut h, "set k 0 0 1\r\nxy\r\n"),
        "CLIENT_ERROR bad data chunk\r\nERROR\r\n"
    );
    assert_eq!(h.app().counters().protocol_errors, 9);
}

#[test]
fn a_line_without_newline_past_2048_bytes_closes() {
    let mut h = harness();
    assert_eq!(exchange(&mut h, &"x".repeat(2048)), "");
    assert!(!h.closed());
    assert_eq!(exchange(&mut h, "yy"), "CLIENT_ERROR line too long\r\n");
    assert!(h.closed());
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let mut h = harness();
    let input = "set a 0 0 1\r\n1\r\nget a\r\nincr a 1\r\ndelete a\r\nget a\r\nversion\r\n";
    let expected =
        "STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\n2\r\nDELETED\r\nEND\r\nVERSION 1.6.0-warpcore\r\n";
    assert_eq!(exchange(&mut h, input), expected);
    // Byte by byte, the same answers.
    let mut h = harness();
    for byte in input.bytes() {
        h.feed(&[byte]);
    }
    assert_eq!(
        alloc::string::String::from_utf8(h.take_output()).unwrap(),
        expected
    );
}
