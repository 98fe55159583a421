//! `GET /api/v1/capture` end to end over a `StreamHarness`, with taps of
//! the app's capture board standing in for the cores: the query's rules,
//! one capture at a time, the pcap stream and its trailer, and every way
//! a capture ends.

use crate::ManagementApp;
use crate::tests::{Client, MS, TOKEN, config, get, split_head};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};
use dataplane::capture::{Direction, PortTap};
use dataplane::{Batch, CaptureBoard, Mempool};
use services::tcp::{CloseReason, StreamHarness, TcpApp};

/// An app with the token whose capture board has a tap for core 0's
/// `eth0` (the only interface of the echo spec), and that board.
fn app() -> (ManagementApp, Arc<CaptureBoard>, PortTap) {
    let (mut config, _) = config(Some(TOKEN));
    let board = Arc::new(CaptureBoard::new());
    config.capture = Arc::clone(&board);
    config.unix_offset_ns = 1_700_000_000 * 1_000 * MS;
    let tap = board.tap(0, 0);
    (ManagementApp::new(config), board, tap)
}

/// A burst of frames of `lengths` bytes, each filled with its index.
fn burst(pool: &Mempool, lengths: &[usize]) -> Batch {
    let mut batch = Batch::new();
    for (index, length) in lengths.iter().enumerate() {
        let mut packet = pool.alloc().unwrap();
        packet.append(*length).unwrap().fill(index as u8);
        batch.push(packet).unwrap();
    }
    batch
}

/// A chunked body: its data, joined, and its trailer fields (`None` while
/// the last chunk has not come).
fn dechunk(mut bytes: &[u8]) -> (Vec<u8>, Option<Vec<(String, String)>>) {
    let mut data = Vec::new();
    loop {
        let Some(line_end) = bytes.windows(2).position(|pair| pair == b"\r\n") else {
            return (data, None);
        };
        let size = usize::from_str_radix(core::str::from_utf8(&bytes[..line_end]).unwrap(), 16)
            .expect("a chunk size");
        let rest = &bytes[line_end + 2..];
        if size == 0 {
            let text = core::str::from_utf8(rest).unwrap();
            let end = text.find("\r\n\r\n").map_or(0, |end| end + 2);
            let fields = text[..end]
                .split("\r\n")
                .filter(|line| !line.is_empty())
                .map(|line| {
                    let (name, value) = line.split_once(": ").unwrap();
                    (String::from(name), String::from(value))
                })
                .collect();
            return (data, Some(fields));
        }
        assert_eq!(&rest[size..size + 2], b"\r\n", "no CRLF after a chunk");
        data.extend_from_slice(&rest[..size]);
        bytes = &rest[size + 2..];
    }
}

/// One pcap record: timestamp (ns), original length, the bytes.
type Record = (u64, u32, Vec<u8>);

/// Reads a pcap file: checks its global header (nanosecond magic, 2.4,
/// Ethernet, `snaplen`) and returns its records.
fn read_pcap(bytes: &[u8], snaplen: u32) -> Vec<Record> {
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(word(0), 0xa1b2_3c4d);
    assert_eq!(&bytes[4..8], &[2, 0, 4, 0]);
    assert_eq!((word(16), word(20)), (snaplen, 1));
    let mut records = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let timestamp = u64::from(word(at)) * 1_000 * MS + u64::from(word(at + 4));
        let captured = word(at + 8) as usize;
        let original = word(at + 12);
        records.push((
            timestamp,
            original,
            bytes[at + 16..at + 16 + captured].to_vec(),
        ));
        at += 16 + captured;
    }
    assert_eq!(at, bytes.len(), "a record cut short");
    records
}

fn trailer<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.as_str())
}

#[test]
fn bad_queries_are_answered_400_and_arm_nothing() {
    let (app, board, _tap) = app();
    let mut client = Client::new(app, 1 << 16);
    for (query, says) in [
        ("", "interface is required: one of eth0"),
        ("count=5", "interface is required"),
        ("interface=eth9", "no interface `eth9`: the spec has eth0"),
        ("interface=eth0&count=0", "count must be"),
        ("interface=eth0&count=1000001", "count must be"),
        (
            "interface=eth0&count=99999999999999999999999",
            "count must be",
        ),
        ("interface=eth0&count=-3", "count must be"),
        ("interface=eth0&seconds=-1", "seconds must be"),
        ("interface=eth0&seconds=abc", "seconds must be"),
        ("interface=eth0&seconds=0", "seconds must be"),
        ("interface=eth0&seconds=3601", "seconds must be"),
        ("interface=eth0&seconds=1.5", "seconds must be"),
        ("interface=eth0&snaplen=0", "snaplen must be"),
        ("interface=eth0&snaplen=1515", "snaplen must be"),
        ("interface=%zz", "percent-encoded"),
        ("interface=eth0&cout=5", "unknown parameter `cout`"),
    ] {
        let response = client.one(&get(
            &alloc::format!("/api/v1/capture?{query}"),
            Some(TOKEN),
        ));
        assert_eq!(response.status, 400, "{query}");
        assert!(response.body.contains(says), "{query}: {}", response.body);
        assert!(response.body.starts_with("{\"error\":\"query\""));
        assert!(!board.is_armed(), "{query}");
    }
    let response = client.one(&get("/api/v1/capture?interface=eth0", None));
    assert_eq!(response.status, 401);
    assert!(!board.is_armed());
}

#[test]
fn a_capture_streams_received_and_sent_frames_as_pcap_until_its_count() {
    let (app, board, mut tap) = app();
    let pool = Mempool::with_heap(16, 0).unwrap();
    let mut client = Client::new(app, 1 << 20);
    client.harness.set_now_ns(5 * MS);
    let mut sent = client.send(
        get(
            "/api/v1/capture?interface=eth0&count=3&seconds=10&snaplen=64",
            Some(TOKEN),
        )
        .as_bytes(),
    );
    let (head, _) = split_head(&sent);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: application/vnd.tcpdump.pcap\r\n"));
    assert!(head.contains("Transfer-Encoding: chunked\r\n"));
    assert!(head.contains("Trailer: X-Warpcore-Capture-Frames, "));
    assert!(board.is_armed());
    // The core sees two frames in, one out, then one more in: past the
    // count.
    tap.observe(Direction::Received, &burst(&pool, &[60, 100]), 6 * MS);
    tap.observe(Direction::Sent, &burst(&pool, &[42]), 6 * MS);
    tap.observe(Direction::Received, &burst(&pool, &[70]), 6 * MS);
    sent.extend(client.fire(7 * MS));
    let (_, body) = split_head(&sent);
    let (data, fields) = dechunk(body);
    let fields = fields.expect("the capture ended at its count");
    assert_eq!(trailer(&fields, "X-Warpcore-Capture-Frames"), Some("3"));
    assert_eq!(trailer(&fields, "X-Warpcore-Capture-Dropped"), Some("0"));
    assert_eq!(trailer(&fields, "X-Warpcore-Capture-End"), Some("count"));
    let records = read_pcap(&data, 64);
    let unix = 1_700_000_000 * 1_000 * MS;
    assert_eq!(
        records,
        [
            (unix + 6 * MS, 60, alloc::vec![0; 60]),
            (unix + 6 * MS, 100, alloc::vec![1; 64]),
            (unix + 6 * MS, 42, alloc::vec![0; 42]),
        ]
    );
    assert!(!board.is_armed(), "the count disarms");
    assert_eq!(client.app.streams_open(), 0);
    // Another capture may start now, on the same connection.
    let again = client.send(get("/api/v1/capture?interface=eth0&count=1", Some(TOKEN)).as_bytes());
    assert!(again.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(board.is_armed());
}

#[test]
fn a_capture_ends_after_its_seconds_with_what_was_copied() {
    let (app, board, mut tap) = app();
    let pool = Mempool::with_heap(16, 0).unwrap();
    let mut client = Client::new(app, 1 << 20);
    let mut sent =
        client.send(get("/api/v1/capture?interface=eth0&seconds=2", Some(TOKEN)).as_bytes());
    // Quiet: polled every millisecond, nothing sent but the header.
    assert_eq!(client.harness.timeout_ms(), Some(1));
    sent.extend(client.fire(500 * MS));
    tap.observe(Direction::Received, &burst(&pool, &[60]), 1999 * MS);
    // Time is up before the frame was read: it is sent all the same.
    sent.extend(client.fire(2000 * MS));
    let (_, body) = split_head(&sent);
    let (data, fields) = dechunk(body);
    let fields = fields.expect("the capture ended at its time");
    assert_eq!(trailer(&fields, "X-Warpcore-Capture-End"), Some("time"));
    assert_eq!(trailer(&fields, "X-Warpcore-Capture-Frames"), Some("1"));
    assert_eq!(read_pcap(&data, 256).len(), 1);
    assert!(!board.is_armed());
    // A tap that saw the word late writes nothing anyone reads.
    tap.observe(Direction::Received, &burst(&pool, &[60]), 2001 * MS);
}

#[test]
fn one_capture_at_a_time_and_none_outlives_its_connection() {
    let (mut app, board, _tap) = app();
    let request = get("/api/v1/capture?interface=eth0&seconds=60", Some(TOKEN));
    let mut harness = StreamHarness::new(1 << 16);
    let peer = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
    let mut session = app.accept(peer, &mut harness.stream()).unwrap();
    app.data(&mut session, request.as_bytes(), &mut harness.stream());
    assert!(harness.take_sent().starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(board.is_armed());
    let mut second = Client::new(app, 1 << 16);
    let response = second.one(&request);
    assert_eq!(response.status, 409);
    assert!(response.body.contains("another capture is running"));
    // HEAD arms nothing, and says 409 too while one runs.
    let head = second.send(b"HEAD /api/v1/capture?interface=eth0 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer s3cret-token\r\n\r\n");
    assert!(head.starts_with(b"HTTP/1.1 409 "));
    // The first connection goes: its capture goes with it.
    second.app.closed(session, CloseReason::Reset);
    assert!(!board.is_armed());
    let head = second.send(b"HEAD /api/v1/capture?interface=eth0 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer s3cret-token\r\n\r\n");
    let (head, rest) = split_head(&head);
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n") && rest.is_empty(),
        "{head}"
    );
    assert!(!board.is_armed(), "HEAD arms nothing");
    // A client that closes its side ends its capture too.
    second.send(request.as_bytes());
    assert!(board.is_armed());
    second
        .app
        .read_closed(&mut second.session, &mut second.harness.stream());
    assert!(!board.is_armed());
}

#[test]
fn a_full_ring_s_drops_are_counted_in_the_trailer_and_metrics() {
    let (mut config, _) = config(Some(TOKEN));
    // A ring of 32 words: two records of 3 + 8 words fit, not five.
    let board = Arc::new(CaptureBoard::with_ring_words(32).unwrap());
    config.capture = Arc::clone(&board);
    let mut tap = board.tap(0, 0);
    let pool = Mempool::with_heap(16, 0).unwrap();
    let mut client = Client::new(ManagementApp::new(config), 1 << 20);
    let mut sent = client.send(
        get(
            "/api/v1/capture?interface=eth0&count=5&seconds=1",
            Some(TOKEN),
        )
        .as_bytes(),
    );
    tap.observe(Direction::Received, &burst(&pool, &[64; 5]), MS);
    sent.extend(client.fire(1000 * MS));
    let (_, body) = split_head(&sent);
    let (data, fields) = dechunk(body);
    let fields = fields.expect("the capture ended");
    assert_eq!(read_pcap(&data, 256).len(), 2);
    assert_eq!(trailer(&fields, "X-Warpcore-Capture-Frames"), Some("2"));
    assert_eq!(trailer(&fields, "X-Warpcore-Capture-Dropped"), Some("3"));
    assert_eq!(trailer(&fields, "X-Warpcore-Capture-End"), Some("time"));
    let scrape = client.one(&get("/metrics", None)).body;
    assert!(
        scrape.contains("warpcore_capture_frames_total{core=\"0\",interface=\"eth0\"} 2\n"),
        "{scrape}"
    );
    assert!(
        scrape.contains("warpcore_capture_dropped_frames_total{core=\"0\",interface=\"eth0\"} 3\n")
    );
    assert!(scrape.contains("warpcore_capture_active{interface=\"eth0\"} 0\n"));
}

/// An IPv4 TCP segment between `from` and `to` (ports in the TCP header).
fn segment(from: SocketAddrV4, to: SocketAddrV4) -> Vec<u8> {
    let mut frame = alloc::vec![0u8; 54];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    frame[14] = 0x45;
    frame[23] = 6;
    frame[26..30].copy_from_slice(&from.ip().octets());
    frame[30..34].copy_from_slice(&to.ip().octets());
    frame[34..36].copy_from_slice(&from.port().to_be_bytes());
    frame[36..38].copy_from_slice(&to.port().to_be_bytes());
    frame
}

#[test]
fn the_capture_leaves_its_own_connection_out() {
    let (mut config, _) = config(Some(TOKEN));
    let spec = alloc::format!(
        "{}\n[management]\nlisten = \"10.0.0.2:8080\"\n",
        config.spec_text
    );
    config.spec = control::Spec::parse(&spec, &services::Registry::with_builtin()).unwrap();
    config.spec_text = spec;
    let board = Arc::new(CaptureBoard::new());
    config.capture = Arc::clone(&board);
    let mut tap = board.tap(0, 0);
    let mut client = Client::new(ManagementApp::new(config), 1 << 20);
    let mut sent =
        client.send(get("/api/v1/capture?interface=eth0&count=2", Some(TOKEN)).as_bytes());
    // The client's connection (192.0.2.1:40000 to port 8080), both ways,
    // and another connection of the same client to the same port.
    let ours = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 8080);
    let client_end = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
    let other_end = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40001);
    let pool = Mempool::with_heap(16, 0).unwrap();
    let mut batch = Batch::new();
    for frame in [
        segment(client_end, ours),
        segment(ours, client_end),
        segment(other_end, ours),
        segment(ours, other_end),
    ] {
        let mut packet = pool.alloc().unwrap();
        packet.append(frame.len()).unwrap().copy_from_slice(&frame);
        batch.push(packet).unwrap();
    }
    tap.observe(Direction::Received, &batch, MS);
    sent.extend(client.fire(2 * MS));
    let (_, body) = split_head(&sent);
    let (data, fields) = dechunk(body);
    assert!(fields.is_some(), "the two other frames end it");
    let records = read_pcap(&data, 256);
    let ports: Vec<(u16, u16)> = records
        .iter()
        .map(|(_, _, bytes)| {
            (
                u16::from_be_bytes([bytes[34], bytes[35]]),
                u16::from_be_bytes([bytes[36], bytes[37]]),
            )
        })
        .collect();
    assert_eq!(ports, [(40001, 8080), (8080, 40001)]);
}
