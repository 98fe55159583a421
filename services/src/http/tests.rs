//! The server against `StreamHarness`: whole exchanges byte for byte, split
//! and pipelined requests, every refusal, back-pressure and idle timeout.

use super::config::HttpConfig;
use super::pattern;
use super::{HttpApp, RequestError};
use crate::http::session::HttpSession;
use crate::tcp::StreamHarness;
use crate::tcp::TcpApp;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};

const CONFIG: &str = r#"
port = 80
max_header_bytes = 512
max_body_bytes = 100000
routes = [
  { path = "/", body = "hello from warpcore\n", content_type = "text/plain" },
  { path = "/index.html", file = "index.html" },
  { path = "/bytes", generate = "pattern" },
  { path = "/echo", echo = true },
]
"#;

/// A connection to the server, with the stack's part played by hand:
/// unconsumed bytes are kept and lent again, `writable` is called while
/// the app asks for it.
struct Connection {
    app: HttpApp,
    session: HttpSession,
    stream: StreamHarness,
    kept: Vec<u8>,
}

impl Connection {
    fn new(send_buffer: usize) -> Self {
        let config: HttpConfig = toml::from_str(CONFIG).unwrap();
        let mut app = HttpApp::new(&config);
        let mut stream = StreamHarness::new(send_buffer);
        let peer = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
        let session = app.accept(peer, &mut stream.stream()).unwrap();
        assert_eq!(stream.requests.timeout_ms, Some(30_000), "idle timer armed");
        Self {
            app,
            session,
            stream,
            kept: Vec::new(),
        }
    }

    /// Lends the kept bytes and `bytes` to `data`.
    fn send(&mut self, bytes: &[u8]) {
        self.kept.extend_from_slice(bytes);
        let consumed = self
            .app
            .data(&mut self.session, &self.kept, &mut self.stream.stream());
        assert!(consumed <= self.kept.len());
        self.kept.drain(..consumed);
    }

    /// Takes what was sent, then (while the app wants it) drains the send
    /// buffer, calls `writable` and lends the kept bytes again, as the
    /// stack would; everything sent, and how many `writable` rounds.
    fn receive(&mut self) -> (Vec<u8>, usize) {
        let mut received = self.stream.take_sent();
        let mut rounds = 0;
        while self.stream.requests.want_writable {
            rounds += 1;
            assert!(rounds < 100_000, "no progress");
            self.stream.requests.want_writable = false;
            self.app
                .writable(&mut self.session, &mut self.stream.stream());
            if !self.kept.is_empty() && !self.stream.requests.want_writable {
                self.send(&[]);
            }
            received.extend(self.stream.take_sent());
        }
        (received, rounds)
    }

    /// Sends `bytes` and returns the answers.
    fn exchange(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.send(bytes);
        self.receive().0
    }

    fn closing(&self) -> bool {
        self.stream.requests.close
    }
}

/// A response as the client sees it.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Splits `bytes` into responses (bodies by Content-Length or chunked;
/// `head_only` for answers to HEAD).
fn responses(mut bytes: &[u8], head_only: bool) -> Vec<Response> {
    let mut all = Vec::new();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .expect("a whole head")
            + 4;
        let head = core::str::from_utf8(&bytes[..end - 4]).unwrap();
        bytes = &bytes[end..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
        let status = status_line[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line.split_once(": ").unwrap();
                (name.into(), value.into())
            })
            .collect();
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if status == 100 {
            all.push(response);
            continue;
        }
        if head_only {
        } else if response.header("transfer-encoding") == Some("chunked") {
            loop {
                let line_end = bytes.windows(2).position(|w| w == b"\r\n").unwrap();
                let size_text = core::str::from_utf8(&bytes[..line_end]).unwrap();
                let size = usize::from_str_radix(size_text, 16).unwrap();
                bytes = &bytes[line_end + 2..];
                if size == 0 {
                    assert_eq!(&bytes[..2], b"\r\n");
                    bytes = &bytes[2..];
                    break;
                }
                response.body.extend_from_slice(&bytes[..size]);
                assert_eq!(&bytes[size..size + 2], b"\r\n");
                bytes = &bytes[size + 2..];
            }
        } else {
            let length: usize = response.header("content-length").unwrap().parse().unwrap();
            response.body = bytes[..length].to_vec();
            bytes = &bytes[length..];
        }
        all.push(response);
    }
    all
}

fn one(bytes: &[u8]) -> Response {
    let mut all = responses(bytes, false);
    assert_eq!(all.len(), 1, "one response");
    all.remove(0)
}

#[test]
fn get_root_byte_for_byte() {
    let mut connection = Connection::new(65536);
    let sent = connection.exchange(b"GET / HTTP/1.1\r\nHost: warpcore\r\n\r\n");
    assert_eq!(
        sent,
        b"HTTP/1.1 200 OK\r\nServer: warpcore\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\nhello from warpcore\n"
    );
    assert!(!connection.closing());
    let counters = connection.app.counters();
    assert_eq!(
        (
            counters.connections,
            counters.requests,
            counters.responses_2xx
        ),
        (1, 1, 1)
    );
    assert_eq!(counters.bytes_sent, sent.len() as u64);
    assert_eq!(counters.bytes_received, 34);
}

#[test]
fn a_file_and_head() {
    let mut connection = Connection::new(65536);
    let file = one(&connection.exchange(b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_eq!(file.status, 200);
    assert_eq!(
        file.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(file.body, include_bytes!("assets/index.html"));
    let sent = connection.exchange(b"HEAD /index.html HTTP/1.1\r\nHost: a\r\n\r\n");
    let head = responses(&sent, true).remove(0);
    assert_eq!(
        head.header("content-length"),
        Some(&*alloc::format!("{}", file.body.len()))
    );
    assert!(sent.ends_with(b"\r\n\r\n") && !sent.ends_with(b"</html>\n"));
    let sent = connection.exchange(b"HEAD /bytes?n=99 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(sent.ends_with(b"Transfer-Encoding: chunked\r\n\r\n"));
}

#[test]
fn keep_alive_by_version_and_connection() {
    let mut connection = Connection::new(65536);
    for _ in 0..2 {
        let response = one(&connection.exchange(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert_eq!(
            (response.status, response.header("connection")),
            (200, None)
        );
        assert!(!connection.closing());
    }
    let response =
        one(&connection.exchange(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
    assert_eq!(response.header("connection"), Some("close"));
    assert!(connection.closing());
    assert!(
        connection
            .exchange(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .is_empty()
    );

    let mut old = Connection::new(65536);
    let response = one(&old.exchange(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    assert_eq!(response.header("connection"), Some("keep-alive"));
    assert!(!old.closing());
    let response = one(&old.exchange(b"GET / HTTP/1.0\r\n\r\n"));
    assert_eq!(response.header("connection"), Some("close"));
    assert!(old.closing());
}

#[test]
fn three_pipelined_requests_answered_in_order() {
    let mut connection = Connection::new(65536);
    let sent = connection.exchange(
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n\
          POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    );
    let all = responses(&sent, false);
    let statuses: Vec<u16> = all.iter().map(|response| response.status).collect();
    assert_eq!(statuses, [200, 404, 200]);
    assert_eq!(all[2].body, b"abc");
    assert!(connection.kept.is_empty() && !connection.closing());
}

#[test]
fn pipelined_requests_wait_for_room() {
    // Room for about one answer at a time: the rest stays with the stack.
    let mut connection = Connection::new(120);
    let request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut burst = Vec::new();
    for _ in 0..5 {
        burst.extend_from_slice(request);
    }
    connection.send(&burst);
    assert!(!connection.kept.is_empty(), "stopped consuming");
    assert!(connection.stream.requests.want_writable);
    let (sent, rounds) = connection.receive();
    assert!(rounds >= 4, "{rounds}");
    let all = responses(&sent, false);
    assert_eq!(all.len(), 5);
    assert!(
        all.iter()
            .all(|response| response.body == b"hello from warpcore\n")
    );
}

#[test]
fn a_request_split_byte_by_byte() {
    let mut connection = Connection::new(65536);
    let request = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nwarp\r\n4\r\ncore\r\n0\r\nTrailer: 1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut sent = Vec::new();
    for byte in request {
        connection.send(&[*byte]);
        sent.extend(connection.receive().0);
    }
    let all = responses(&sent, false);
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].status, &all[0].body[..]), (200, &b"warpcore"[..]));
    assert_eq!(all[0].header("content-length"), Some("8"));
    assert_eq!(all[1].body, b"hello from warpcore\n");
    assert!(connection.kept.is_empty());
}

#[test]
fn a_chunked_body_is_echoed_with_its_length() {
    let mut connection = Connection::new(65536);
    let response = one(&connection.exchange(
        b"PUT /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n",
    ));
    assert_eq!((response.status, &response.body[..]), (200, &b"hello!"[..]));
    assert_eq!(
        response.header("content-type"),
        Some("application/octet-stream")
    );
    let empty = one(&connection.exchange(b"POST /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_eq!((empty.status, empty.body.len()), (200, 0));
}

#[test]
fn a_large_echo_streams_through_a_small_buffer() {
    let mut connection = Connection::new(1000);
    let body: Vec<u8> = (0..50_000u32)
        .map(|i| pattern::byte(u64::from(i) * 3))
        .collect();
    let mut request = Vec::from(
        &b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 50000\r\n\r\n"
            [..],
    );
    request.extend_from_slice(&body);
    let (head, rest) = request.split_at(80);
    connection.send(head);
    let mut sent = connection.receive().0;
    connection.send(rest);
    let (more, rounds) = connection.receive();
    sent.extend(more);
    assert!(rounds > 10, "{rounds}");
    let all = responses(&sent, false);
    assert_eq!(all[0].status, 100, "100 Continue first");
    assert_eq!((all[1].status, all[1].body == body), (200, true));
}

#[test]
fn a_ten_megabyte_pattern_in_many_rounds() {
    let mut connection = Connection::new(64 * 1024);
    connection.send(b"GET /bytes?n=10485760 HTTP/1.1\r\nHost: a\r\n\r\n");
    let (sent, rounds) = connection.receive();
    assert!(rounds >= 160, "{rounds}");
    let response = one(&sent);
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.body.len(), 10_485_760);
    assert!(
        response
            .body
            .iter()
            .enumerate()
            .all(|(index, byte)| *byte == pattern::byte(index as u64))
    );
    assert!(!connection.closing());
    // HTTP/1.0 gets the same bytes with their length.
    let response = one(&connection.exchange(b"GET /bytes?n=5000 HTTP/1.0\r\n\r\n"));
    assert_eq!(response.header("content-length"), Some("5000"));
    assert_eq!(response.body[4999], pattern::byte(4999));
    assert!(connection.closing());
}

#[test]
fn routing_answers_keep_the_connection() {
    let mut connection = Connection::new(65536);
    let response = one(&connection.exchange(b"DELETE / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_eq!(
        (response.status, response.header("allow")),
        (405, Some("GET, HEAD"))
    );
    let response = one(&connection.exchange(b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_eq!(
        (response.status, response.header("allow")),
        (405, Some("POST, PUT"))
    );
    let response =
        one(&connection.exchange(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"));
    assert_eq!(response.status, 405, "its body is read and thrown away");
    let response = one(&connection.exchange(b"GET /missing HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_eq!(
        (response.status, &response.body[..]),
        (404, &b"404 Not Found\n"[..])
    );
    let response = one(&connection.exchange(b"GET /bytes?n=x HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_eq!(response.status, 400);
    assert!(!connection.closing());
    assert_eq!(connection.app.counters().responses_4xx, 5);
}

#[test]
fn every_refusal_answers_and_closes() {
    let long_target = alloc::format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(600));
    let big_header = alloc::format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "b".repeat(600)
    );
    let cases: [(&[u8], u16, RequestError); 9] = [
        (b"GET /\r\n\r\n", 400, RequestError::Malformed),
        (b"GET / HTTP/1.1\r\n\r\n", 400, RequestError::MissingHost),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, RequestError::BadFraming),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100001\r\n\r\n", 413, RequestError::BodyTooLarge),
        (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n186a1\r\n", 413, RequestError::BodyTooLarge),
        (long_target.as_bytes(), 414, RequestError::TargetTooLong),
        (big_header.as_bytes(), 431, RequestError::HeadersTooLarge),
        (b"BREW / HTTP/1.1\r\nHost: a\r\n\r\n", 501, RequestError::UnknownMethod),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, RequestError::UnsupportedVersion),
    ];
    for (request, status, error) in cases {
        let mut connection = Connection::new(65536);
        let sent = connection.exchange(request);
        let response = one(&sent);
        let text = core::str::from_utf8(request).unwrap();
        assert_eq!(response.status, status, "{text}");
        assert_eq!(response.header("connection"), Some("close"), "{text}");
        assert!(connection.closing(), "{text}");
        assert_eq!(
            connection.app.counters().request_errors.get(error),
            1,
            "{text}"
        );
        assert_eq!(connection.app.counters().request_errors.total(), 1);
        // Whatever follows is ignored.
        assert!(
            connection
                .exchange(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                .is_empty()
        );
    }
    let mut connection = Connection::new(65536);
    let response = one(&connection
        .exchange(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"));
    assert_eq!(response.status, 400, "a malformed chunk");
}

#[test]
fn an_idle_connection_is_closed() {
    let mut connection = Connection::new(65536);
    connection.exchange(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(connection.stream.requests.timeout_ms, Some(30_000));
    connection
        .app
        .timeout(&mut connection.session, &mut connection.stream.stream());
    assert!(connection.closing() && !connection.stream.requests.abort);
    assert_eq!(connection.app.counters().idle_timeouts, 1);

    // Stalled in the middle of a body: reset.
    let mut stalled = Connection::new(65536);
    stalled.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    stalled
        .app
        .timeout(&mut stalled.session, &mut stalled.stream.stream());
    assert!(stalled.stream.requests.abort);
}

#[test]
fn the_peer_closing_its_side() {
    let mut connection = Connection::new(65536);
    connection.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HT");
    connection
        .app
        .read_closed(&mut connection.session, &mut connection.stream.stream());
    assert!(connection.closing(), "the rest can never be a request");
    assert_eq!(responses(&connection.receive().0, false).len(), 1);

    // A response still being written is finished first.
    let mut busy = Connection::new(1000);
    busy.send(b"GET /bytes?n=100000 HTTP/1.1\r\nHost: a\r\n\r\n");
    busy.app
        .read_closed(&mut busy.session, &mut busy.stream.stream());
    assert!(!busy.closing());
    let response = one(&busy.receive().0);
    assert_eq!(response.body.len(), 100_000);
    assert!(busy.closing());
}
