//! Fuzzes the management plane's server: arbitrary bytes through
//! `ManagementApp` over a `StreamHarness`, cut into pieces, with the send
//! buffer drained, the app's timer fired and the clock moved at arbitrary
//! moments. Nothing may panic, consume more than it was lent, or write
//! anything but responses.
#![forbid(unsafe_code)]
#![no_main]

use dataplane::CountersBoard;
use dataplane::stats::{CoreCounters, NodeCounters};
use libfuzzer_sys::fuzz_target;
use management::{ManagementApp, ManagementConfig};
use services::tcp::{StreamHarness, TcpApp};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

const SPEC: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"virtio\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n\n[[service]]\nkind = \"udp-echo\"\nport = 7\n";

fn app() -> ManagementApp {
    let mut core = CoreCounters::default();
    core.nodes.push(NodeCounters {
        name: "tcp",
        drop_reasons: &["bad-checksum"],
        event_names: &["accepted"],
        ..NodeCounters::default()
    });
    let board = Arc::new(CountersBoard::new(1));
    board.register(0, Arc::new(core));
    let registry = control::registry();
    ManagementApp::new(ManagementConfig {
        spec_text: SPEC.to_string(),
        spec: control::Spec::parse(SPEC, &registry).expect("the fixture parses"),
        board,
        // The token is "t".
        token_sha256: management::auth::parse_sha256_hex(
            "e3b98a4da31a127d4bde6e43033f66ba274cab0eb7eb1c70ec41402bf6273dd8",
        ),
        registry,
        build_info: ("fuzz", "hosted"),
        started_ns: Some(0),
        idle_timeout_ms: management::app::IDLE_TIMEOUT_MS,
        logs: &LOGS,
        capture: Arc::new(dataplane::CaptureBoard::new()),
        unix_offset_ns: 0,
        controller: None,
        clock: || 0,
    })
}

/// The log ring `/api/v1/logs` searches.
static LOGS: management::LogRing = management::LogRing::new();

fuzz_target!(|input: &[u8]| {
    let Some((&control, mut data)) = input.split_first() else {
        return;
    };
    let mut app = app();
    let mut harness = StreamHarness::new(64 + usize::from(control) * 16);
    let peer = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
    let Some(mut session) = app.accept(peer, &mut harness.stream()) else {
        return;
    };
    let mut sent = Vec::new();
    let mut now = 0u64;
    // What the app left unconsumed, lent again with what follows.
    let mut kept = Vec::new();
    // Each piece: a length byte, then that many bytes (the rest at the end).
    while let Some((&length, rest)) = data.split_first() {
        let length = usize::from(length).min(rest.len());
        let (piece, rest) = rest.split_at(length);
        data = rest;
        kept.extend_from_slice(piece);
        let consumed = app.data(&mut session, &kept, &mut harness.stream());
        assert!(consumed <= kept.len());
        kept.drain(..consumed);
        if length % 3 == 0 {
            sent.extend(harness.take_sent());
            app.writable(&mut session, &mut harness.stream());
        }
        if length % 5 == 1 {
            // The app's timer fires: a stream (`/api/v1/logs/stream`) is
            // pumped, an idle connection closed.
            app.timeout(&mut session, &mut harness.stream());
        }
        now += u64::from(control) * 100_000_000;
        harness.set_now_ns(now);
    }
    app.read_closed(&mut session, &mut harness.stream());
    for _ in 0..10_000 {
        let piece = harness.take_sent();
        if piece.is_empty() {
            break;
        }
        sent.extend(piece);
        app.writable(&mut session, &mut harness.stream());
    }
    assert!(sent.is_empty() || sent.starts_with(b"HTTP/1.1 "));
});
