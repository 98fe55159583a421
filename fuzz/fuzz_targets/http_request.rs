//! Fuzzes the HTTP/1.1 server: the head scanner and parser fed at
//! arbitrary split points (the same answer as in one piece), the chunked
//! decoder likewise (the same body), and whole connections through
//! `HttpApp` over an in-memory transport whose send buffer is small and
//! drained at arbitrary moments. Nothing may panic, consume more than it
//! was lent, or write anything but responses.
#![forbid(unsafe_code)]
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use services::http::chunked::ChunkDecoder;
use services::http::request::{HeadScanner, parse_head, parse_request};
use services::http::{HttpApp, HttpConfig, Transport};

const CONFIG: &str = r#"
port = 80
max_header_bytes = 512
max_body_bytes = 4096
routes = [
  { path = "/", body = "hello from warpcore\n", content_type = "text/plain" },
  { path = "/index.html", file = "index.html" },
  { path = "/bytes", generate = "pattern" },
  { path = "/echo", echo = true },
]
"#;

/// A send buffer of `limit` bytes that keeps what was written.
struct Memory {
    sent: Vec<u8>,
    limit: usize,
    closed: bool,
    aborted: bool,
    want_writable: bool,
}

impl Transport for Memory {
    fn write(&mut self, bytes: &[u8]) -> usize {
        let count = bytes.len().min(self.send_capacity());
        self.sent.extend_from_slice(&bytes[..count]);
        count
    }
    fn write_with(&mut self, fill: impl FnOnce(&mut [u8]) -> usize) -> usize {
        let start = self.sent.len();
        self.sent.resize(self.limit, 0);
        let written = fill(&mut self.sent[start..]).min(self.limit - start);
        self.sent.truncate(start + written);
        written
    }
    fn send_capacity(&self) -> usize {
        self.limit - self.sent.len()
    }
    fn close(&mut self) {
        self.closed = true;
    }
    fn abort(&mut self) {
        self.aborted = true;
    }
    fn want_writable(&mut self) {
        self.want_writable = true;
    }
    fn set_timeout(&mut self, _milliseconds: u32) {}
}

/// Piece lengths from a seed: 1 to 64 bytes, a xorshift's choice.
struct Splits(u32);

impl Iterator for Splits {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        Some(1 + (self.0 % 64) as usize)
    }
}

/// The head scanner incrementally and in one piece agree; a head found
/// parses without panicking, its offsets inside it.
fn scanner(input: &[u8], seed: u32) {
    let whole = HeadScanner::default().scan(input, 512);
    let mut scanner = HeadScanner::default();
    let mut end = 0;
    let mut incremental = Ok(None);
    for piece in Splits(seed) {
        end = (end + piece).min(input.len());
        incremental = scanner.scan(&input[..end], 512);
        if !matches!(incremental, Ok(None)) || end == input.len() {
            break;
        }
    }
    assert_eq!(incremental, whole);
    if let Ok(Some(length)) = whole {
        let head = &input[..length];
        if let Ok(parsed) = parse_head(head) {
            assert_eq!(parsed.length, length);
            assert!(parsed.target_start < parsed.target_end && parsed.target_end <= length);
            let _ = (parsed.path(head), parsed.query(head));
            // The one-pass parser the server tries first agrees.
            assert_eq!(parse_request(input, 512), Ok(Some(parsed)));
        }
    }
    // A head the one-pass parser accepts is the one the scanner finds,
    // parsed the same way.
    if let Ok(Some(parsed)) = parse_request(input, 512) {
        assert_eq!(whole, Ok(Some(parsed.length)));
        assert_eq!(parse_head(&input[..parsed.length]), Ok(parsed));
    }
}

/// Decodes `input` as a chunked body in pieces: the body, or the error.
fn chunked(input: &[u8], splits: impl Iterator<Item = usize>) -> (Result<Vec<u8>, ()>, usize) {
    let mut decoder = ChunkDecoder::new(4096, 512);
    let mut body = Vec::new();
    let mut start = 0;
    for piece in splits {
        let end = (start + piece).min(input.len());
        let mut part = &input[start..end];
        while !part.is_empty() && !decoder.is_done() {
            let Ok(decoded) = decoder.decode(part) else {
                return (Err(()), start);
            };
            assert!(decoded.consumed <= part.len() && decoded.data.end <= decoded.consumed);
            body.extend_from_slice(&part[decoded.data]);
            start += decoded.consumed;
            part = &part[decoded.consumed..];
        }
        if decoder.is_done() || end == input.len() {
            break;
        }
    }
    assert!(body.len() as u64 <= decoder.body_bytes());
    if decoder.is_done() {
        assert_eq!(decoder.body_bytes(), body.len() as u64);
    }
    (Ok(body), start)
}

/// A whole connection: input lent in pieces with the unconsumed bytes
/// lent again, the send buffer drained now and then.
fn connection(input: &[u8], seed: u32, limit: usize) {
    static TEMPLATE: OnceLock<HttpApp> = OnceLock::new();
    let mut app = TEMPLATE
        .get_or_init(|| {
            let config: HttpConfig = toml::from_str(CONFIG).expect("the fuzz config parses");
            HttpApp::new(&config)
        })
        .clone();
    let mut io = Memory {
        sent: Vec::new(),
        limit,
        closed: false,
        aborted: false,
        want_writable: false,
    };
    let mut session = app.open(&mut io);
    let mut output = Vec::new();
    let mut kept = Vec::new();
    let mut start = 0;
    let mut splits = Splits(seed ^ 0x9e37_79b9);
    for round in 0..2_000 {
        if io.closed || io.aborted {
            break;
        }
        let piece = splits.next().unwrap_or(1);
        let end = (start + piece).min(input.len());
        kept.extend_from_slice(&input[start..end]);
        start = end;
        let consumed = app.serve_data(&mut session, &kept, &mut io);
        assert!(consumed <= kept.len());
        kept.drain(..consumed);
        // The peer reads (acknowledges) on some rounds only.
        if round % 3 != 1 || start == input.len() {
            output.append(&mut io.sent);
            if io.want_writable {
                io.want_writable = false;
                app.serve_writable(&mut session, &mut io);
            }
        }
        if start == input.len() && !io.want_writable && consumed == 0 && io.sent.is_empty() {
            break;
        }
    }
    output.append(&mut io.sent);
    if !output.is_empty() {
        assert!(output.starts_with(b"HTTP/1.1 "), "only responses are written");
    }
    let counters = app.counters();
    assert!(counters.request_errors.total() <= counters.requests);
    assert!(counters.responses_2xx + counters.responses_4xx + counters.responses_5xx <= counters.requests);
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let seed = u32::from(data[0]) << 8 | u32::from(data[1]) | 1;
    let limit = 64 + usize::from(data[2]) * 8;
    let input = &data[3..];
    scanner(input, seed);
    let (whole, whole_used) = chunked(input, core::iter::once(usize::MAX / 2));
    let (pieces, pieces_used) = chunked(input, Splits(seed));
    assert_eq!(whole.is_ok(), pieces.is_ok());
    if let (Ok(whole), Ok(pieces)) = (whole, pieces) {
        assert_eq!((whole, whole_used), (pieces, pieces_used));
    }
    connection(input, seed, limit);
});
