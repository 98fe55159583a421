//! The TCP stack end to end: `build_core` with a `tcp-echo` service on a
//! loopback NIC, segments from a peer in, segments out, counters checked.

mod support;

use services::malformed_segments;
use services::wire::tcp::{TcpFlags, TcpOptions};
use support::segments::{PEER_ISN, Peer};
use support::*;

/// The echo interface of the pipeline tests with a TCP echo on port 7.
const TCP_SPEC: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"loopback\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n\
    [[service]]\nkind = \"tcp-echo\"\nport = 7\n";

#[test]
fn handshake_negotiates_the_options_of_the_syn() {
    let mut peer = Peer::new(TCP_SPEC, 40000, 7);
    let syn_ack = peer.syn();
    assert_eq!(syn_ack.source_port, 7);
    assert_eq!(syn_ack.destination_port, 40000);
    assert_eq!(syn_ack.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(syn_ack.acknowledgment, PEER_ISN + 1);
    assert_eq!(syn_ack.window, u16::MAX);
    assert_eq!(syn_ack.payload, b"");
    assert_eq!(syn_ack.options.mss, Some(1460));
    // A 256 KiB receive buffer needs a scale of 3 to be offered whole.
    assert_eq!(syn_ack.options.window_scale, Some(3));
    assert_eq!(syn_ack.options.timestamps.unwrap().1, 1000);
    assert_eq!(peer.event("connections-accepted"), 0);
    assert!(peer.send(TcpFlags::ACK, b"").is_empty());
    assert_eq!(peer.event("connections-accepted"), 1);
}

#[test]
fn data_comes_back_acknowledged() {
    let mut peer = Peer::new(TCP_SPEC, 40000, 7);
    let syn_ack = peer.connect();
    let replies = peer.send(TcpFlags::PSH | TcpFlags::ACK, b"hello");
    assert_eq!(replies.len(), 1, "{replies:?}");
    let echo = &replies[0];
    assert_eq!(echo.payload, b"hello");
    assert_eq!(echo.flags, TcpFlags::PSH | TcpFlags::ACK);
    assert_eq!(echo.sequence, syn_ack.sequence.wrapping_add(1));
    assert_eq!(echo.acknowledgment, PEER_ISN + 1 + 5);
    // The whole 256 KiB receive buffer, scaled by 3.
    assert_eq!(echo.window, 32768);
    assert_eq!(echo.options.timestamps.unwrap().1, peer.timestamp);
    assert_eq!(peer.event("bytes-in"), 5);
    assert_eq!(peer.event("bytes-out"), 5);
}

/// RFC 6691: the MSS counts our options, so that a full segment with
/// timestamps still fits the 1500-byte link (1448 bytes of payload, a
/// 1514-byte frame), not MSS bytes plus options.
#[test]
fn full_segments_leave_room_for_the_options() {
    let spec = format!(
        "{TCP_SPEC}[[service]]\nkind = \"http\"\nport = 80\nroutes = [{{ path = \"/bytes\", generate = \"pattern\" }}]\n"
    );
    let mut peer = Peer::new(&spec, 40000, 80);
    peer.connect();
    let replies = peer.send(
        TcpFlags::ACK | TcpFlags::PSH,
        b"GET /bytes?n=5000 HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let lengths: Vec<usize> = replies
        .iter()
        .map(|segment| segment.payload.len())
        .collect();
    assert!(lengths.iter().sum::<usize>() > 5000, "{lengths:?}");
    assert!(lengths.iter().all(|length| *length <= 1448), "{lengths:?}");
    assert_eq!(lengths[0], 1448, "{lengths:?}");
}

#[test]
fn peer_closing_first_ends_without_time_wait() {
    let mut peer = Peer::new(TCP_SPEC, 40000, 7);
    let syn_ack = peer.connect();
    let replies = peer.send(TcpFlags::FIN | TcpFlags::ACK, b"");
    // The echo app closes when the peer does: our FIN rides on the ACK.
    assert_eq!(replies.len(), 1, "{replies:?}");
    let fin = &replies[0];
    assert_eq!(fin.flags, TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(fin.sequence, syn_ack.sequence.wrapping_add(1));
    assert_eq!(fin.acknowledgment, PEER_ISN + 2);
    assert_eq!(fin.payload, b"");
    peer.acknowledgment = fin.sequence.wrapping_add(1);
    assert_eq!(peer.event("connections-closed"), 0);
    assert!(peer.send(TcpFlags::ACK, b"").is_empty());
    assert_eq!(peer.event("connections-closed"), 1);
    assert_eq!(peer.event("time-wait-entered"), 0);
    // Gone, not in TIME-WAIT: another ACK finds no connection and is reset.
    let replies = peer.send(TcpFlags::ACK, b"");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].flags, TcpFlags::RST);
    assert_eq!(replies[0].sequence, peer.acknowledgment);
    assert_eq!(peer.drops("no-connection"), 1);
    assert_eq!(peer.drops("time-wait"), 0);
}

#[test]
fn closed_port_answers_with_reset() {
    let mut peer = Peer::new(TCP_SPEC, 40000, 9);
    let header = peer.header(TcpFlags::SYN, support::segments::syn_options(1000));
    let replies = peer.exchange(&header, b"");
    assert_eq!(replies.len(), 1, "{replies:?}");
    let reset = &replies[0];
    assert_eq!(reset.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!((reset.source_port, reset.destination_port), (9, 40000));
    assert_eq!(reset.sequence, 0);
    assert_eq!(reset.acknowledgment, PEER_ISN + 1);
    assert_eq!(reset.options, TcpOptions::default());
    assert_eq!(peer.drops("port-closed"), 1);

    peer.acknowledgment = 0x2345_6789;
    let header = peer.header(TcpFlags::ACK, TcpOptions::default());
    let replies = peer.exchange(&header, b"");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].flags, TcpFlags::RST);
    assert_eq!(replies[0].sequence, 0x2345_6789);
    assert_eq!(peer.drops("port-closed"), 2);
    assert_eq!(peer.event("resets-sent"), 2);
}

#[test]
fn out_of_order_data_is_echoed_once_in_order() {
    let mut peer = Peer::new(TCP_SPEC, 40000, 7);
    let syn_ack = peer.connect();
    let start = peer.sequence;
    peer.sequence = start + 5;
    let replies = peer.send(TcpFlags::PSH | TcpFlags::ACK, b"world");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].flags, TcpFlags::ACK);
    assert_eq!(replies[0].acknowledgment, start);
    assert_eq!(replies[0].sequence, syn_ack.sequence.wrapping_add(1));
    assert_eq!(replies[0].payload, b"");
    assert_eq!(peer.event("out-of-order"), 1);

    peer.sequence = start;
    let replies = peer.send(TcpFlags::ACK, b"hello");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].payload, b"helloworld");
    assert_eq!(replies[0].sequence, syn_ack.sequence.wrapping_add(1));
    assert_eq!(replies[0].acknowledgment, start + 10);
    assert_eq!(peer.event("out-of-order"), 1);
}

#[test]
fn every_malformed_segment_bumps_exactly_its_counter_and_gets_no_reply() {
    let mut peer = Peer::new(TCP_SPEC, 40000, 7);
    let counters = peer.harness.counters();
    let segments = malformed_segments(OURS, OUR_IP, PEER, PEER_IP, 7);
    assert_eq!(segments.len(), 12);
    for segment in &segments {
        let before = all_drops(&counters);
        let expected = counters.node_drops(segment.counter.0, segment.counter.1) + 1;
        assert!(
            peer.harness.exchange(0, &segment.bytes).is_none(),
            "{}: answered",
            segment.name
        );
        assert_eq!(
            counters.node_drops(segment.counter.0, segment.counter.1),
            expected,
            "{}: {:?} did not move by one",
            segment.name,
            segment.counter
        );
        let moved: Vec<_> = before
            .iter()
            .zip(all_drops(&counters))
            .filter(|(old, new)| old.1 != new.1)
            .map(|(_, new)| new.0)
            .collect();
        assert_eq!(
            moved.len(),
            1,
            "{}: counters moved: {moved:?}",
            segment.name
        );
    }
    assert_eq!(counters.executor_drops(), 0);
    assert_eq!(peer.event("connections-accepted"), 0);
}

#[test]
fn a_full_syn_queue_answers_with_cookies_that_open_connections() {
    let mut peer = Peer::new(TCP_SPEC, 10000, 7);
    let mut last = None;
    for port in 10000..11100 {
        peer.port = port;
        last = Some(peer.syn());
        peer.sequence = PEER_ISN;
    }
    assert_eq!(peer.event("syn-cookies-sent"), 1100 - 1024);
    let cookie = last.unwrap();
    assert_eq!(cookie.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(cookie.acknowledgment, PEER_ISN + 1);
    assert_eq!(cookie.options.mss, Some(1460));
    assert_eq!(cookie.options.window_scale, Some(3));
    assert_eq!(cookie.options.timestamps.unwrap().1, 1000);

    peer.sequence = PEER_ISN + 1;
    peer.acknowledgment = cookie.sequence.wrapping_add(1);
    peer.echo = cookie.timestamp();
    assert!(peer.send(TcpFlags::ACK, b"").is_empty());
    assert_eq!(peer.event("syn-cookies-accepted"), 1);
    assert_eq!(peer.event("connections-accepted"), 1);
    assert_eq!(peer.drops("bad-cookie"), 0);

    let replies = peer.send(TcpFlags::PSH | TcpFlags::ACK, b"hello");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].payload, b"hello");
    assert_eq!(replies[0].sequence, cookie.sequence.wrapping_add(1));
    assert_eq!(replies[0].acknowledgment, PEER_ISN + 6);
    assert_eq!(replies[0].destination_port, 11099);
}

#[test]
fn unacknowledged_data_is_sent_again_after_the_timeout() {
    let mut peer = Peer::new(TCP_SPEC, 40000, 7);
    peer.connect();
    let replies = peer.send(TcpFlags::PSH | TcpFlags::ACK, b"hello");
    assert_eq!(replies.len(), 1, "{replies:?}");
    let first = replies[0].clone();
    assert_eq!(peer.event("retransmits"), 0);
    advance_clock(1_100_000_000);
    peer.harness.executor.poll_once();
    let again = peer.transmitted();
    assert_eq!(again.len(), 1, "{again:?}");
    let again = &again[0];
    assert_eq!(again.sequence, first.sequence);
    assert_eq!(again.acknowledgment, first.acknowledgment);
    assert_eq!(again.flags, first.flags);
    assert_eq!(again.payload, b"hello");
    assert_eq!(peer.event("retransmits"), 1);
    assert_eq!(peer.event("rto-expired"), 1);
}

#[test]
fn reset_at_the_next_sequence_ends_the_connection() {
    let mut peer = Peer::new(TCP_SPEC, 40000, 7);
    peer.connect();
    assert!(peer.send(TcpFlags::RST, b"").is_empty());
    assert_eq!(peer.event("connections-reset"), 1);
    assert_eq!(peer.event("challenge-acks"), 0);
    // Gone: data now finds no connection and is reset.
    let replies = peer.send(TcpFlags::PSH | TcpFlags::ACK, b"hello");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].flags, TcpFlags::RST);
}

#[test]
fn reset_elsewhere_in_the_window_gets_a_challenge_ack() {
    let mut peer = Peer::new(TCP_SPEC, 40000, 7);
    let syn_ack = peer.connect();
    let expected = peer.sequence;
    peer.sequence = expected + 100;
    let replies = peer.send(TcpFlags::RST, b"");
    assert_eq!(replies.len(), 1, "{replies:?}");
    let challenge = &replies[0];
    assert_eq!(challenge.flags, TcpFlags::ACK);
    assert_eq!(challenge.sequence, syn_ack.sequence.wrapping_add(1));
    assert_eq!(challenge.acknowledgment, expected);
    assert_eq!(challenge.payload, b"");
    assert_eq!(peer.event("challenge-acks"), 1);
    assert_eq!(peer.event("connections-reset"), 0);
    // Still open: data echoes.
    peer.sequence = expected;
    let replies = peer.send(TcpFlags::PSH | TcpFlags::ACK, b"hello");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].payload, b"hello");
}

#[test]
fn a_segment_on_the_wrong_core_is_passed_to_its_core_and_not_reset() {
    let spec = control::Spec::parse(TCP_SPEC, &services::Registry::with_builtin()).unwrap();
    let mut links = control::core_links(&spec, 2);
    let second = support::Harness::on_core(&spec, 1, links.pop().unwrap());
    let first = support::Harness::on_core(&spec, 0, links.pop().unwrap());
    let mut peer = Peer::with_harness(first, 40000, 7);
    peer.connect();
    assert_eq!(peer.event("connections-accepted"), 1);
    // The same connection's next segment, steered to core 1.
    let mut stray = Peer::with_harness(second, 40000, 7);
    stray.sequence = peer.sequence;
    stray.acknowledgment = peer.acknowledgment;
    stray.timestamp = peer.timestamp;
    let replies = stray.send(TcpFlags::ACK | TcpFlags::PSH, b"astray");
    assert!(
        replies.is_empty(),
        "no RST for a connection core 0 owns: {replies:?}"
    );
    assert_eq!(stray.event("segments-handed-off"), 1);
    assert_eq!(stray.drops("wrong-core"), 0);
    assert_eq!(stray.event("resets-sent"), 0);
    // Core 0 takes it from the ring on its next run and echoes it.
    advance_clock(2_000_000);
    peer.harness.executor.poll_once();
    let echoed = peer.transmitted();
    assert_eq!(echoed.len(), 1, "{echoed:?}");
    assert_eq!(echoed[0].payload, b"astray");
    assert_eq!(peer.event("segments-handed-in"), 1);
    peer.sequence = stray.sequence;
    peer.timestamp = stray.timestamp;
    let echoed = peer.send(TcpFlags::ACK | TcpFlags::PSH, b"hello");
    assert_eq!(echoed.len(), 1);
    assert_eq!(echoed[0].payload, b"hello");
    assert_eq!(peer.event("segments-handed-off"), 0);
}
