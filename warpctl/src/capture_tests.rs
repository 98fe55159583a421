use super::*;
use crate::cli::Cli;
use crate::commands::run_with;
use crate::fake_server::{FakeServer, response};
use clap::Parser;

/// A pcap stream of `frames` (each its bytes), nanosecond magic.
fn pcap(frames: &[&[u8]]) -> Vec<u8> {
    let mut bytes = vec![
        0x4d, 0x3c, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0,
    ];
    for (index, frame) in frames.iter().enumerate() {
        bytes.extend_from_slice(&(index as u32).to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&(frame.len() as u32 + 10).to_le_bytes());
        bytes.extend_from_slice(frame);
    }
    bytes
}

/// A chunked 200 carrying `body` in chunks of `piece` bytes, then the
/// last chunk with `trailer` (or, without one, nothing: the stream cut).
fn pcap_response(body: &[u8], piece: usize, trailer: Option<&str>) -> Vec<u8> {
    let mut bytes = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.tcpdump.pcap\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for chunk in body.chunks(piece) {
        bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        bytes.extend_from_slice(chunk);
        bytes.extend_from_slice(b"\r\n");
    }
    if let Some(trailer) = trailer {
        bytes.extend_from_slice(format!("0\r\n{trailer}\r\n").as_bytes());
    }
    bytes
}

fn run_against(server: &FakeServer, args: &str) -> (Result<(), String>, Vec<u8>, String) {
    let cli = Cli::try_parse_from(
        [
            "warpctl",
            "--server",
            &server.endpoint().to_string(),
            "--token",
            "secret",
        ]
        .into_iter()
        .chain(args.split_whitespace()),
    )
    .unwrap();
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    let result = run_with(&cli, &mut out, &mut notes).map_err(|error| error.to_string());
    (result, out, String::from_utf8(notes).unwrap())
}

#[test]
fn the_counter_counts_records_however_the_bytes_are_cut() {
    let stream = pcap(&[b"abc", b"", &[7u8; 300]]);
    for piece in [1, 2, 5, 16, 17, 1000] {
        let mut counter = PcapCounter::default();
        for part in stream.chunks(piece) {
            counter.feed(part).unwrap();
        }
        assert_eq!(counter.frames(), 3, "{piece}");
        assert!(counter.is_whole(), "{piece}");
    }
    let mut cut = PcapCounter::default();
    cut.feed(&stream[..stream.len() - 1]).unwrap();
    assert!(!cut.is_whole());
    let mut empty = PcapCounter::default();
    empty.feed(&stream[..24]).unwrap();
    assert!(empty.is_whole() && empty.frames() == 0);
    let mut html = PcapCounter::default();
    assert!(matches!(
        html.feed(b"<html><body>"),
        Err(CaptureError::NotPcap(_))
    ));
}

#[test]
fn a_capture_writes_the_stream_and_summarises_its_trailer() {
    let stream = pcap(&[&[1u8; 60], &[2u8; 98]]);
    let server = FakeServer::start(vec![pcap_response(
        &stream,
        50,
        Some(
            "X-Warpcore-Capture-Frames: 2\r\nX-Warpcore-Capture-Dropped: 0\r\nX-Warpcore-Capture-End: count\r\n",
        ),
    )]);
    let (result, out, notes) = run_against(&server, "capture -i eth0 -c 2 --seconds 10 -s 128");
    assert_eq!(result, Ok(()));
    assert_eq!(out, stream);
    assert_eq!(
        notes,
        "warpctl: capturing on eth0\nwarpctl: 2 frames, 0 dropped (count reached) on eth0\n"
    );
    let request = server.request();
    assert!(
        request.starts_with(
            "GET /api/v1/capture?interface=eth0&count=2&seconds=10&snaplen=128 HTTP/1.1\r\n"
        ),
        "{request}"
    );
    assert!(request.contains("Authorization: Bearer secret\r\n"));
}

#[test]
fn a_capture_goes_to_a_file_and_json_summarises() {
    let stream = pcap(&[b"frame"]);
    let server = FakeServer::start(vec![pcap_response(
        &stream,
        7,
        Some("X-Warpcore-Capture-Dropped: 3\r\nX-Warpcore-Capture-End: time\r\n"),
    )]);
    let path = std::env::temp_dir().join(format!("warpctl-capture-{}.pcap", std::process::id()));
    let (result, out, notes) = run_against(
        &server,
        &format!("capture -i eth0 -o json -w {}", path.display()),
    );
    assert_eq!(result, Ok(()));
    assert!(out.is_empty());
    assert_eq!(std::fs::read(&path).unwrap(), stream);
    let _ = std::fs::remove_file(&path);
    let summary: serde_json::Value = serde_json::from_str(&notes).unwrap();
    assert_eq!(summary["frames"], 1);
    assert_eq!(summary["dropped"], 3);
    assert_eq!(summary["end"], "time");
}

#[test]
fn refusals_and_a_cut_stream_name_their_cause() {
    let server = FakeServer::start(vec![
        response(
            "400 Bad Request",
            &[("Content-Type", "application/json")],
            r#"{"error":"query","message":"no interface `eth9`: the spec has eth0"}"#,
        ),
        response(
            "409 Conflict",
            &[("Content-Type", "application/json")],
            r#"{"error":"capture running","message":"another capture is running (one at a time); try again when it ends"}"#,
        ),
        response("401 Unauthorized", &[], "401 Unauthorized\n"),
        pcap_response(&pcap(&[b"one", b"two"]), 40, None),
    ]);
    let (result, _, _) = run_against(&server, "capture -i eth9");
    assert_eq!(
        result,
        Err(
            "the appliance refused the request (400): no interface `eth9`: the spec has eth0"
                .into()
        )
    );
    let (result, _, _) = run_against(&server, "capture -i eth0");
    assert!(result.unwrap_err().contains("another capture is running"));
    let (result, _, _) = run_against(&server, "capture -i eth0");
    assert!(result.unwrap_err().contains("refused the token"));
    let (result, out, _) = run_against(&server, "capture -i eth0");
    assert_eq!(
        result,
        Err(
            "the capture stream was cut after 2 frames (the file is a valid pcap up to there)"
                .into()
        )
    );
    assert_eq!(out, pcap(&[b"one", b"two"]));
}

#[test]
fn an_output_that_cannot_be_made_asks_nothing() {
    let server = FakeServer::start(Vec::new());
    let (result, _, notes) = run_against(&server, "capture -i eth0 -w /nonexistent/dir/out.pcap");
    let error = result.unwrap_err();
    assert!(
        error.starts_with("cannot create /nonexistent/dir/out.pcap: "),
        "{error}"
    );
    assert!(notes.is_empty());
}
