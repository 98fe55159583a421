//! The management app end to end over a `StreamHarness`: every endpoint,
//! its token rules, and the scrape checked as Prometheus 0.0.4.

use crate::auth::sha256;
use crate::session::ManagementSession;
use crate::{ManagementApp, ManagementConfig};
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};
use dataplane::CountersBoard;
use dataplane::stats::{CoreCounters, NodeCounters};
use services::Registry;
use services::tcp::{StreamHarness, TcpApp};

pub(crate) const SPEC: &str = include_str!("../../examples/echo.toml");
pub(crate) const TOKEN: &str = "s3cret-token";
const NS: u64 = 1_000_000_000;

/// Two cores; core 0 with per-port `eth` nodes (one name twice), `ipv4`
/// with drop reasons, `tcp` with events, and a node whose name needs
/// escaping.
fn board() -> (Arc<CountersBoard>, Arc<CoreCounters>) {
    let mut core0 = CoreCounters::default();
    for _ in 0..2 {
        core0.nodes.push(NodeCounters {
            name: "eth",
            drop_reasons: &["not-for-us"],
            ..NodeCounters::default()
        });
    }
    core0.nodes.push(NodeCounters {
        name: "ipv4",
        drop_reasons: &["bad-checksum", "ttl-expired"],
        ..NodeCounters::default()
    });
    core0.nodes.push(NodeCounters {
        name: "tcp",
        event_names: &["accepted", "retransmits"],
        ..NodeCounters::default()
    });
    core0.nodes.push(NodeCounters {
        name: "odd\"name\\with\nnewline",
        ..NodeCounters::default()
    });
    core0.polls.add(100);
    core0.idle_polls.add(25);
    core0.nodes[0].received.add(3);
    core0.nodes[1].received.add(4);
    core0.nodes[2].drops[1].add(6);
    core0.nodes[3].events[0].add(2);
    let core0 = Arc::new(core0);
    let board = Arc::new(CountersBoard::new(2));
    board.register(0, core0.clone());
    board.register(1, Arc::new(CoreCounters::default()));
    (board, core0)
}

/// A ring (leaked, as the platforms' is static) holding four records.
fn log_ring() -> &'static crate::LogRing {
    let ring = alloc::boxed::Box::leak(alloc::boxed::Box::new(crate::LogRing::new()));
    ring.push(
        10,
        log::Level::Info,
        "kernel",
        format_args!("core 0 appliance running"),
    );
    ring.push(
        20,
        log::Level::Warn,
        "net",
        format_args!("link \"eth0\" flapped"),
    );
    ring.push(
        30,
        log::Level::Debug,
        "tcp",
        format_args!("accepted 10.0.0.1"),
    );
    ring.push(40, log::Level::Error, "net", format_args!("link eth0 down"));
    ring
}

pub(crate) fn config(token: Option<&str>) -> (ManagementConfig, Arc<CoreCounters>) {
    let registry = Registry::with_builtin();
    let (board, core0) = board();
    let config = ManagementConfig {
        spec_text: SPEC.to_string(),
        spec: control::Spec::parse(SPEC, &registry).unwrap(),
        board,
        token_sha256: token.map(|token| sha256(token.as_bytes())),
        registry,
        build_info: ("0.1.0", "hosted"),
        started_ns: Some(0),
        idle_timeout_ms: crate::app::IDLE_TIMEOUT_MS,
        logs: log_ring(),
        capture: Arc::new(dataplane::CaptureBoard::new()),
        unix_offset_ns: 0,
        controller: None,
        clock: || 0,
    };
    (config, core0)
}

fn app_with(token: Option<&str>) -> (ManagementApp, Arc<CoreCounters>) {
    let (config, core0) = config(token);
    (ManagementApp::new(config), core0)
}

/// One connection to an app, over a send buffer of `limit` bytes.
pub(crate) struct Client {
    pub(crate) app: ManagementApp,
    pub(crate) session: ManagementSession,
    pub(crate) harness: StreamHarness,
}

impl Client {
    pub(crate) fn new(app: ManagementApp, limit: usize) -> Self {
        let mut harness = StreamHarness::new(limit);
        let mut app = app;
        let peer = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
        let session = app.accept(peer, &mut harness.stream()).unwrap();
        Self {
            app,
            session,
            harness,
        }
    }

    /// Sends `bytes` in one piece; drains the send buffer (calling
    /// `writable`) until the app writes nothing more; returns what it sent.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> Vec<u8> {
        let consumed = self
            .app
            .data(&mut self.session, bytes, &mut self.harness.stream());
        assert_eq!(consumed, bytes.len());
        self.drain()
    }

    pub(crate) fn drain(&mut self) -> Vec<u8> {
        let mut sent = Vec::new();
        loop {
            let piece = self.harness.take_sent();
            if piece.is_empty() {
                return sent;
            }
            sent.extend(piece);
            self.app
                .writable(&mut self.session, &mut self.harness.stream());
        }
    }

    pub(crate) fn one(&mut self, request: &str) -> Response {
        let mut responses = parse_responses(&self.send(request.as_bytes()));
        assert_eq!(responses.len(), 1, "{request}");
        responses.remove(0)
    }
}

#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) fields: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Response {
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Splits a byte stream into responses (each with Content-Length).
pub(crate) fn parse_responses(mut bytes: &[u8]) -> Vec<Response> {
    let mut responses = Vec::new();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .expect("a whole head")
            + 4;
        let head = core::str::from_utf8(&bytes[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let fields: Vec<(String, String)> = lines
            .filter(|line| !line.is_empty())
            .map(|line| {
                let (name, value) = line.split_once(": ").unwrap();
                (name.to_string(), value.to_string())
            })
            .collect();
        let length: usize = fields
            .iter()
            .find(|(name, _)| name == "Content-Length")
            .map(|(_, value)| value.parse().unwrap())
            .unwrap();
        let body = String::from_utf8(bytes[end..end + length].to_vec()).unwrap();
        bytes = &bytes[end + length..];
        if status != 100 {
            responses.push(Response {
                status,
                fields,
                body,
            });
        }
    }
    responses
}

pub(crate) fn get(path: &str, token: Option<&str>) -> String {
    let mut request = alloc::format!("GET {path} HTTP/1.1\r\nHost: a\r\n");
    if let Some(token) = token {
        request += &alloc::format!("Authorization: Bearer {token}\r\n");
    }
    request + "\r\n"
}

pub(crate) fn put(path: &str, token: &str, if_match: Option<&str>, body: &str) -> String {
    let mut request = alloc::format!(
        "PUT {path} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(tag) = if_match {
        request += &alloc::format!("If-Match: {tag}\r\n");
    }
    request + "\r\n" + body
}

fn is_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && characters.all(|rest| rest.is_ascii_alphanumeric() || rest == '_' || rest == ':')
}

/// Checks `text` as Prometheus text format 0.0.4 and returns its samples,
/// `name{labels}` to value.
fn check_exposition(text: &str) -> BTreeMap<String, u64> {
    let mut helped = Vec::new();
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    assert!(text.ends_with('\n'));
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(is_name(name) && !help.is_empty(), "{line}");
            assert!(!helped.contains(&name.to_string()), "HELP twice: {line}");
            helped.push(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                is_name(name) && matches!(kind, "counter" | "gauge"),
                "{line}"
            );
            assert!(
                typed.insert(name.to_string(), kind.to_string()).is_none(),
                "TYPE twice: {line}"
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{line}");
            }
        } else {
            assert!(!line.starts_with('#'), "{line}");
            let brace = line.find('{').expect("labels");
            let name = &line[..brace];
            assert!(is_name(name), "{line}");
            assert!(
                helped.iter().any(|family| family == name),
                "no HELP before {line}"
            );
            assert!(typed.contains_key(name), "no TYPE before {line}");
            // Labels: key="value" pairs, escapes only \\ \" \n.
            let rest = &line[brace + 1..];
            let mut characters = rest.char_indices().peekable();
            let close = loop {
                let (start, _) = *characters.peek().expect("a closing brace");
                let key_end = rest[start..].find('=').expect("key=") + start;
                assert!(is_name(&rest[start..key_end]), "{line}");
                while characters.next_if(|(index, _)| *index <= key_end).is_some() {}
                assert_eq!(characters.next().map(|(_, c)| c), Some('"'), "{line}");
                loop {
                    match characters.next().expect("a closing quote") {
                        (_, '\\') => {
                            let escaped = characters.next().unwrap().1;
                            assert!(matches!(escaped, '\\' | '"' | 'n'), "{line}");
                        }
                        (_, '"') => break,
                        (_, '\n') => panic!("raw newline in {line}"),
                        _ => {}
                    }
                }
                match characters.next().expect("a comma or a brace") {
                    (_, ',') => continue,
                    (index, '}') => break index,
                    other => panic!("{other:?} in {line}"),
                }
            };
            let (series, value) = (&line[..brace + 1 + close + 1], &rest[close + 1..]);
            let value = value.strip_prefix(' ').expect("a space before the value");
            // Counters and gauges are integers; a `_seconds` family is read
            // back in nanoseconds so that every map of samples stays exact.
            let value: u64 = if name.ends_with("_seconds") {
                let seconds: f64 = value.parse().expect("a decimal value");
                (seconds * 1e9).round() as u64
            } else {
                value.parse().expect("an integer value")
            };
            assert!(
                samples.insert(series.to_string(), value).is_none(),
                "twice: {line}"
            );
        }
    }
    samples
}

/// A NIC queue's counters as a driver would export them.
#[derive(Debug, Default)]
struct QueueCounters {
    rx_packets: dataplane::Counter,
    link_up: dataplane::Counter,
}

impl dataplane::NicCounters for QueueCounters {
    fn counter_entries(&self) -> Vec<(&'static str, u64)> {
        alloc::vec![
            ("rx_packets", self.rx_packets.get()),
            ("link_up", self.link_up.get())
        ]
    }
}

#[test]
fn nic_queue_counters_are_families_per_core_and_queue() {
    let (config, _) = config(None);
    let queues: Vec<Arc<QueueCounters>> = (0..2).map(|_| Arc::default()).collect();
    for (core, queue) in queues.iter().enumerate() {
        let name = alloc::format!("igb0.q{core}");
        config.board.register_nic(core, &name, queue.clone());
    }
    queues[1].rx_packets.add(7);
    queues[0].link_up.add(1);
    let mut client = Client::new(ManagementApp::new(config), 1 << 16);
    let body = client.one(&get("/metrics", None)).body;
    let samples = check_exposition(&body);
    for (series, value) in [
        (
            "warpcore_nic_rx_packets_total{core=\"0\",queue=\"igb0.q0\"}",
            0,
        ),
        (
            "warpcore_nic_rx_packets_total{core=\"1\",queue=\"igb0.q1\"}",
            7,
        ),
        ("warpcore_nic_link_up{core=\"0\",queue=\"igb0.q0\"}", 1),
    ] {
        assert_eq!(samples.get(series), Some(&value), "{series}\n{body}");
    }
    assert!(
        body.contains("# TYPE warpcore_nic_link_up gauge\n"),
        "{body}"
    );
}

#[test]
fn a_scrape_is_prometheus_and_moves_with_the_counters() {
    let (app, core0) = app_with(None);
    let mut client = Client::new(app, 700);
    let response = client.one(&get("/metrics", None));
    assert_eq!(response.status, 200);
    assert_eq!(
        response.field("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let before = check_exposition(&response.body);
    for (series, value) in [
        (
            "warpcore_build_info{version=\"0.1.0\",platform=\"hosted\"}",
            1,
        ),
        ("warpcore_polls_total{core=\"0\"}", 100),
        ("warpcore_idle_polls_total{core=\"1\"}", 0),
        ("warpcore_sleeps_total{core=\"1\"}", 0),
        ("warpcore_sleeps_refused_total{core=\"0\"}", 0),
        ("warpcore_wakeups_total{core=\"0\",cause=\"timer\"}", 0),
        ("warpcore_wakeups_total{core=\"1\",cause=\"doorbell\"}", 0),
        (
            "warpcore_halt_poll_windows_total{core=\"0\",outcome=\"caught\"}",
            0,
        ),
        ("warpcore_halt_poll_window_seconds{core=\"1\"}", 0),
        ("warpcore_tx_dropped_packets_total{core=\"0\"}", 0),
        ("warpcore_discarded_packets_total{core=\"1\"}", 0),
        (
            "warpcore_node_packets_total{core=\"0\",node=\"eth\",direction=\"received\"}",
            7,
        ),
        (
            "warpcore_node_packets_total{core=\"0\",node=\"eth\",direction=\"emitted\"}",
            0,
        ),
        (
            "warpcore_drops_total{core=\"0\",node=\"ipv4\",reason=\"ttl-expired\"}",
            6,
        ),
        (
            "warpcore_drops_total{core=\"0\",node=\"ipv4\",reason=\"bad-checksum\"}",
            0,
        ),
        (
            "warpcore_node_events_total{core=\"0\",node=\"tcp\",event=\"accepted\"}",
            2,
        ),
        (
            "warpcore_node_events_total{core=\"0\",node=\"tcp\",event=\"retransmits\"}",
            0,
        ),
        (
            "warpcore_node_invalid_output_packets_total{core=\"0\",node=\"odd\\\"name\\\\with\\nnewline\"}",
            0,
        ),
    ] {
        assert_eq!(
            before.get(series),
            Some(&value),
            "{series}\n{}",
            response.body
        );
    }
    assert!(
        !before
            .keys()
            .any(|series| series.contains("polls_total{core=\"2\""))
    );

    core0.polls.add(5);
    core0.idle.sleeps.add(3);
    core0.idle.wakeups_by_packet.add(2);
    core0.idle.poll_windows_caught.add(6);
    core0.idle.poll_window_ns.set(100_000);
    core0.nodes[1].emitted.add(9);
    core0.nodes[2].drops[0].add(1);
    core0.nodes[3].events[1].add(4);
    let after = check_exposition(&client.one(&get("/metrics", None)).body);
    assert_eq!(after.len(), before.len());
    let moved: BTreeMap<&str, u64> = after
        .iter()
        .filter(|(series, value)| before[*series] != **value)
        .map(|(series, value)| (series.as_str(), value - before[series]))
        .collect();
    let expected: BTreeMap<&str, u64> = [
        ("warpcore_polls_total{core=\"0\"}", 5),
        ("warpcore_sleeps_total{core=\"0\"}", 3),
        ("warpcore_wakeups_total{core=\"0\",cause=\"packet\"}", 2),
        (
            "warpcore_halt_poll_windows_total{core=\"0\",outcome=\"caught\"}",
            6,
        ),
        ("warpcore_halt_poll_window_seconds{core=\"0\"}", 100_000),
        (
            "warpcore_node_packets_total{core=\"0\",node=\"eth\",direction=\"emitted\"}",
            9,
        ),
        (
            "warpcore_drops_total{core=\"0\",node=\"ipv4\",reason=\"bad-checksum\"}",
            1,
        ),
        (
            "warpcore_node_events_total{core=\"0\",node=\"tcp\",event=\"retransmits\"}",
            4,
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(moved, expected);
}

#[test]
fn token_rules_of_every_endpoint() {
    let (app, _) = app_with(None);
    let mut client = Client::new(app, 1 << 16);
    for path in ["/api/v1/spec", "/api/v1/status", "/api/v1/logs"] {
        let response = client.one(&get(path, Some(TOKEN)));
        assert_eq!(response.status, 403, "{path}");
        assert!(response.body.contains("no token configured"));
    }
    assert_eq!(client.one(&get("/metrics", None)).status, 200);
    assert_eq!(client.one(&get("/", None)).status, 200);

    let (app, _) = app_with(Some(TOKEN));
    let mut client = Client::new(app, 1 << 16);
    for path in ["/api/v1/spec", "/api/v1/status", "/api/v1/logs"] {
        for token in [None, Some("wrong")] {
            let response = client.one(&get(path, token));
            assert_eq!(response.status, 401, "{path} {token:?}");
            assert_eq!(response.field("WWW-Authenticate"), Some("Bearer"));
        }
        assert_eq!(client.one(&get(path, Some(TOKEN))).status, 200, "{path}");
    }
    let index = client.one(&get("/", None));
    assert_eq!(index.status, 200);
    assert!(index.body.contains("/metrics"));
    assert_eq!(client.one(&get("/metrics", Some("wrong"))).status, 200);
}

#[test]
fn the_spec_its_etag_and_generation() {
    let (app, _) = app_with(Some(TOKEN));
    let etag = app.etag().to_string();
    assert_eq!(etag.len(), 18);
    assert_eq!(etag, crate::app::spec_etag(SPEC));
    let mut client = Client::new(app, 1 << 16);
    let response = client.one(&get("/api/v1/spec", Some(TOKEN)));
    assert_eq!(response.status, 200);
    assert_eq!(response.body, SPEC);
    assert_eq!(response.field("Content-Type"), Some("application/toml"));
    assert_eq!(response.field("ETag"), Some(etag.as_str()));
    assert_eq!(response.field("X-Warpcore-Generation"), Some("1"));
}

#[test]
fn put_refuses_validates_plans_and_defers() {
    let (app, _) = app_with(Some(TOKEN));
    let etag = app.etag().to_string();
    let mut client = Client::new(app, 1 << 16);
    let more = alloc::format!("{SPEC}\n[[service]]\nkind = \"udp-echo\"\nport = 9\n");

    let response = client.one(&put(
        "/api/v1/spec",
        TOKEN,
        Some("\"0000000000000000\""),
        &more,
    ));
    assert_eq!(response.status, 412);

    let bad = SPEC.replace("02:00:00:00:00:01", "not-a-mac");
    let response = client.one(&put("/api/v1/spec?dryRun=true", TOKEN, Some(&etag), &bad));
    assert_eq!(response.status, 422);
    assert_eq!(response.field("Content-Type"), Some("application/json"));
    assert!(
        response.body.starts_with(
            "{\"error\":\"spec\",\"line\":8,\"field\":\"interface[0].mac\",\"message\":\""
        ),
        "{}",
        response.body
    );

    let response = client.one(&put(
        "/api/v1/spec?x=1&dryRun=true",
        TOKEN,
        Some(&etag),
        &more,
    ));
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        response.body,
        "{\"dryRun\":true,\"valid\":true,\"generation\":1,\"changes\":[{\"action\":\"added\",\"object\":\"service\",\"kind\":\"udp-echo\",\"port\":9}]}"
    );
    let fewer = SPEC.replace("address = \"10.0.0.2/24\"", "address = \"10.0.0.3/24\"");
    let fewer = &fewer[..fewer.find("[[service]]").unwrap()];
    let response = client.one(&put("/api/v1/spec?dryRun=true", TOKEN, None, fewer));
    assert_eq!(
        response.body,
        "{\"dryRun\":true,\"valid\":true,\"generation\":1,\"changes\":[{\"action\":\"changed\",\"object\":\"interface\",\"name\":\"eth0\"},{\"action\":\"removed\",\"object\":\"service\",\"kind\":\"udp-echo\",\"port\":7}]}"
    );

    let response = client.one(&put("/api/v1/spec", TOKEN, Some(&etag), &more));
    assert_eq!(response.status, 409);
    assert!(
        response
            .body
            .contains("\"error\":\"reconcile not available\"")
    );

    let response = client.one(&put("/api/v1/spec", "wrong", Some(&etag), &more));
    assert_eq!(response.status, 401);

    // A chunked body.
    let request = alloc::format!(
        "PUT /api/v1/spec?dryRun=true HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{more}\r\n0\r\n\r\n",
        more.len()
    );
    assert_eq!(client.one(&request).status, 200);

    // Too large: 413, then close.
    let request = alloc::format!(
        "PUT /api/v1/spec HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 70000\r\n\r\n"
    );
    assert_eq!(client.one(&request).status, 413);
    assert!(client.harness.close_requested());
}

#[test]
fn five_wrong_tokens_answer_429_for_ten_seconds() {
    let (app, _) = app_with(Some(TOKEN));
    let mut client = Client::new(app, 1 << 16);
    client.harness.set_now_ns(100 * NS);
    for _ in 0..5 {
        assert_eq!(
            client.one(&get("/api/v1/status", Some("guess"))).status,
            401
        );
    }
    let response = client.one(&get("/api/v1/status", Some(TOKEN)));
    assert_eq!(response.status, 429);
    assert_eq!(response.field("Retry-After"), Some("10"));
    assert_eq!(client.one(&get("/metrics", None)).status, 200);
    client.harness.set_now_ns(110 * NS);
    let response = client.one(&get("/api/v1/status", Some(TOKEN)));
    assert_eq!(response.status, 200);
    assert!(
        response.body.contains("\"uptimeSeconds\":110,"),
        "{}",
        response.body
    );
}

#[test]
fn status_reports_cores_and_services() {
    let (app, _) = app_with(Some(TOKEN));
    let mut client = Client::new(app, 1 << 16);
    client.harness.set_now_ns(42 * NS + 5);
    let response = client.one(&get("/api/v1/status", Some(TOKEN)));
    assert_eq!(response.field("Content-Type"), Some("application/json"));
    assert_eq!(
        response.body,
        "{\"generation\":1,\"observedGeneration\":1,\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"Running\",\"message\":\"the running spec is applied on every core\"},\
         {\"type\":\"Degraded\",\"status\":\"False\",\"reason\":\"ServicesRunning\",\"message\":\"every service runs\"}],\"uptimeSeconds\":42,\"cores\":[\
         {\"core\":0,\"polls\":100,\"idlePolls\":25,\"busyShare\":0.7500,\"services\":[\"eth\",\"ipv4\",\"tcp\",\"odd\\\"name\\\\with\\nnewline\"],\"supervision\":[\
         {\"service\":\"eth\",\"state\":\"running\",\"restarts\":0,\"failures\":0,\"backoffMs\":0},{\"service\":\"ipv4\",\"state\":\"running\",\"restarts\":0,\"failures\":0,\"backoffMs\":0},{\"service\":\"tcp\",\"state\":\"running\",\"restarts\":0,\"failures\":0,\"backoffMs\":0},{\"service\":\"odd\\\"name\\\\with\\nnewline\",\"state\":\"running\",\"restarts\":0,\"failures\":0,\"backoffMs\":0}]},\
         {\"core\":1,\"polls\":0,\"idlePolls\":0,\"busyShare\":0.0000,\"services\":[],\"supervision\":[]}]}"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (app, _) = app_with(None);
    // A small send buffer: the first response blocks the second.
    let mut client = Client::new(app, 300);
    let request = get("/metrics", None) + &get("/", None) + &get("/nowhere", None);
    let responses = parse_responses(&client.send(request.as_bytes()));
    let statuses: Vec<u16> = responses.iter().map(|response| response.status).collect();
    assert_eq!(statuses, [200, 200, 404]);
    assert!(responses[0].body.starts_with("# HELP warpcore_build_info"));
    assert!(!client.harness.close_requested());
}

#[test]
fn a_request_split_byte_by_byte() {
    let (app, _) = app_with(Some(TOKEN));
    let mut client = Client::new(app, 1 << 16);
    let request = get("/api/v1/spec", Some(TOKEN)) + &get("/", None);
    let mut sent = Vec::new();
    for byte in request.as_bytes() {
        sent.extend(client.send(core::slice::from_ref(byte)));
    }
    let responses = parse_responses(&sent);
    assert_eq!(responses.len(), 2);
    assert_eq!(
        (responses[0].status, responses[0].body.as_str()),
        (200, SPEC)
    );
    assert_eq!(responses[1].status, 200);
}

#[test]
fn refusals_by_status() {
    for (request, status, closes) in [
        (&b"\x00\x01garbage\r\n\r\n"[..], 400, true),
        (b"GET / HTTP/1.1\r\n\r\n", 400, true),
        (b"BREW / HTTP/1.1\r\nHost: a\r\n\r\n", 501, true),
        (b"GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n", 404, false),
        (b"DELETE /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 405, false),
        (
            b"PUT /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
            405,
            false,
        ),
        (b"GET / HTTP/1.0\r\n\r\n", 200, true),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            200,
            true,
        ),
    ] {
        let (app, _) = app_with(Some(TOKEN));
        let mut client = Client::new(app, 1 << 16);
        let responses = parse_responses(&client.send(request));
        assert_eq!(responses.len(), 1);
        assert_eq!(responses[0].status, status, "{request:?}");
        assert_eq!(client.harness.close_requested(), closes, "{request:?}");
        if status == 405 {
            assert_eq!(responses[0].field("Allow"), Some("GET, HEAD"));
        }
    }
    let (app, _) = app_with(Some(TOKEN));
    let mut client = Client::new(app, 1 << 16);
    let mut huge = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for _ in 0..400 {
        huge += "X-Filler: aaaaaaaaaaaaaaaaaaaa\r\n";
    }
    let responses = parse_responses(&client.send(huge.as_bytes()));
    assert_eq!(responses[0].status, 431);
    assert!(client.harness.close_requested());
    // Nothing more is read after a refusal.
    assert!(client.send(get("/", None).as_bytes()).is_empty());
}

#[test]
fn the_idle_timeout_is_the_configured_one() {
    let (mut config, _) = config(None);
    config.idle_timeout_ms = 2000;
    let mut client = Client::new(ManagementApp::new(config), 1 << 16);
    assert_eq!(client.harness.timeout_ms(), Some(2000));
    // Half a head, then the timer fires: the stalled connection is reset.
    assert!(client.send(b"GET /metrics HTTP/1.1\r\nHost: a").is_empty());
    assert_eq!(client.harness.timeout_ms(), Some(2000));
    client
        .app
        .timeout(&mut client.session, &mut client.harness.stream());
    assert!(client.harness.aborted());
}

#[test]
fn a_response_on_its_way_restarts_the_idle_timer() {
    let (mut config, _) = config(None);
    config.idle_timeout_ms = 2000;
    // A send buffer much smaller than a scrape: the response goes out over
    // many `writable` calls.
    let mut client = Client::new(ManagementApp::new(config), 64);
    let request = get("/metrics", None);
    client.app.data(
        &mut client.session,
        request.as_bytes(),
        &mut client.harness.stream(),
    );
    assert!(client.harness.wants_writable());
    assert_eq!(client.harness.take_timeout_ms(), Some(2000));
    // The client takes 64 bytes every 1.5 s: each piece written starts the
    // 2 s again, so the response outlives the first timer.
    for step in 1..=3 {
        client.harness.set_now_ns(step * 1500 * MS);
        assert_eq!(client.harness.take_sent().len(), 64);
        client
            .app
            .writable(&mut client.session, &mut client.harness.stream());
        assert_eq!(client.harness.take_timeout_ms(), Some(2000));
    }
    // A call that can write nothing (the client took nothing) leaves the
    // timer as it was.
    client
        .app
        .writable(&mut client.session, &mut client.harness.stream());
    assert_eq!(client.harness.take_timeout_ms(), None);
    // The timer then fires mid-response: the stalled connection is reset.
    client
        .app
        .timeout(&mut client.session, &mut client.harness.stream());
    assert!(client.harness.aborted());
}

#[test]
fn idle_connections_close_and_stalled_ones_reset() {
    let (app, _) = app_with(None);
    let mut client = Client::new(app, 1 << 16);
    assert_eq!(
        client.harness.timeout_ms(),
        Some(crate::app::IDLE_TIMEOUT_MS)
    );
    assert_eq!(client.one(&get("/", None)).status, 200);
    client
        .app
        .timeout(&mut client.session, &mut client.harness.stream());
    assert!(client.harness.close_requested() && !client.harness.aborted());

    let (app, _) = app_with(None);
    let mut client = Client::new(app, 1 << 16);
    assert!(client.send(b"GET / HT").is_empty());
    client
        .app
        .timeout(&mut client.session, &mut client.harness.stream());
    assert!(client.harness.aborted());
    assert!(client.send(b"TP/1.1\r\nHost: a\r\n\r\n").is_empty());
}

#[test]
fn head_and_expect_continue() {
    let (app, _) = app_with(Some(TOKEN));
    let mut client = Client::new(app, 1 << 16);
    let sent = client.send(
        b"HEAD /api/v1/spec HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer s3cret-token\r\n\r\n",
    );
    let text = String::from_utf8(sent).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\n"));
    assert!(text.contains(&alloc::format!("Content-Length: {}\r\n", SPEC.len())));

    let body = "x = 1";
    let head = alloc::format!(
        "PUT /api/v1/spec HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {TOKEN}\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let sent = client.send(head.as_bytes());
    assert_eq!(sent, services::http::response::CONTINUE);
    let response = client.one(body);
    assert_eq!(response.status, 422);
    assert!(
        response.body.contains("\"line\":1,\"field\":\"x\""),
        "{}",
        response.body
    );
    let head =
        "PUT /api/v1/spec HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    assert_eq!(client.one(head).status, 401);
    assert!(client.harness.close_requested());
}

/// `GET /` is the status page, served without a token; `HEAD /` answers
/// its head alone.
#[test]
fn status_page() {
    let (app, _) = app_with(Some(TOKEN));
    let mut client = Client::new(app, 1 << 16);
    let page = client.one(&get("/", None));
    assert_eq!(page.status, 200);
    assert_eq!(page.field("Content-Type"), Some("text/html; charset=utf-8"));
    assert!(page.body.starts_with("<!DOCTYPE html>"));
    for part in [
        "id=\"updated\"",
        "id=\"nodes\"",
        "id=\"token\"",
        "fetch(\"/metrics\"",
        "/api/v1/spec",
        "/api/v1/logs/stream?since=",
        "getReader()",
    ] {
        assert!(page.body.contains(part), "the page lacks {part}");
    }
    let sent = client.send(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    let text = String::from_utf8(sent).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\n"));
    assert!(text.contains(&alloc::format!("Content-Length: {}\r\n", page.body.len())));
}

/// The `seq`s of a `/api/v1/logs` answer, in order.
fn log_seqs(body: &str) -> Vec<u64> {
    body.split("\"seq\":")
        .skip(1)
        .map(|rest| rest.split(',').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn logs_are_searched_newest_first() {
    let (app, _) = app_with(Some(TOKEN));
    let mut client = Client::new(app, 1 << 16);
    let response = client.one(&get("/api/v1/logs", Some(TOKEN)));
    assert_eq!(response.status, 200);
    assert_eq!(response.field("Content-Type"), Some("application/json"));
    assert_eq!(
        response.body,
        "{\"entries\":[\
         {\"seq\":4,\"timeMs\":40,\"level\":\"error\",\"target\":\"net\",\"message\":\"link eth0 down\"},\
         {\"seq\":3,\"timeMs\":30,\"level\":\"debug\",\"target\":\"tcp\",\"message\":\"accepted 10.0.0.1\"},\
         {\"seq\":2,\"timeMs\":20,\"level\":\"warn\",\"target\":\"net\",\"message\":\"link \\\"eth0\\\" flapped\"},\
         {\"seq\":1,\"timeMs\":10,\"level\":\"info\",\"target\":\"kernel\",\"message\":\"core 0 appliance running\"}],\"next\":4}"
    );
    for (query, expected) in [
        ("q=appliance+running", &[1][..]),
        ("q=link%20eth0", &[4]),
        ("q=net", &[4, 2]),
        ("level=warn", &[4, 2]),
        ("level=info&q=link", &[4, 2]),
        ("since=2", &[4, 3]),
        ("limit=1", &[4]),
        ("since=4", &[]),
        ("q=absent", &[]),
    ] {
        let response = client.one(&get(&alloc::format!("/api/v1/logs?{query}"), Some(TOKEN)));
        assert_eq!(response.status, 200, "{query}");
        assert_eq!(
            log_seqs(&response.body),
            expected,
            "{query}: {}",
            response.body
        );
        assert!(response.body.ends_with(",\"next\":4}"), "{query}");
    }
    for query in ["level=loud", "limit=0", "limit=1001", "since=x", "q=%G0"] {
        let response = client.one(&get(&alloc::format!("/api/v1/logs?{query}"), Some(TOKEN)));
        assert_eq!(response.status, 400, "{query}");
        assert!(response.body.starts_with("{\"error\":\"query\""), "{query}");
    }
    let response = client.one(&get("/api/v1/logs?q=running", None));
    assert_eq!(response.status, 401);
    assert!(!response.body.contains("running"));
}

#[test]
fn logs_limit_defaults_to_100_and_caps_at_1000() {
    let (mut config, _) = config(Some(TOKEN));
    let ring = alloc::boxed::Box::leak(alloc::boxed::Box::new(crate::LogRing::new()));
    for index in 0..crate::log_ring::LOG_RING_ENTRIES {
        ring.push(0, log::Level::Info, "t", format_args!("line {index}"));
    }
    config.logs = ring;
    let mut client = Client::new(ManagementApp::new(config), 1 << 20);
    let response = client.one(&get("/api/v1/logs", Some(TOKEN)));
    assert_eq!(log_seqs(&response.body).len(), crate::logs::DEFAULT_LIMIT);
    let response = client.one(&get("/api/v1/logs?limit=1000", Some(TOKEN)));
    assert_eq!(
        log_seqs(&response.body).len(),
        crate::log_ring::LOG_RING_ENTRIES.min(crate::logs::MAX_LIMIT)
    );
}

/// `/test/stream?parts=N&every=MS&bytes=B`: `N` parts of `B` bytes (the
/// first all `a`, the next all `b`...), `MS` apart, the last with `Done`.
struct TestFeed {
    parts: u32,
    every_ms: u32,
    bytes: usize,
    sent: u32,
}

impl crate::stream::Feed for TestFeed {
    fn pump(&mut self, out: &mut Vec<u8>, _now_ns: u64) -> crate::stream::Pumped {
        if self.sent == self.parts {
            return crate::stream::Pumped::Done;
        }
        let letter = b'a' + (self.sent % 26) as u8;
        out.extend(core::iter::repeat_n(letter, self.bytes));
        self.sent += 1;
        if self.sent == self.parts {
            crate::stream::Pumped::Done
        } else {
            crate::stream::Pumped::More {
                wake_after_ms: self.every_ms,
            }
        }
    }
}

/// The test stream a `/test/stream` query asks for.
pub(crate) fn test_stream(query: &[u8]) -> crate::stream::Answer {
    let query = core::str::from_utf8(query).unwrap_or("");
    let number = |name: &str, default: u32| -> u32 {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let feed = TestFeed {
        parts: number("parts", 3),
        every_ms: number("every", 100),
        bytes: number("bytes", 5) as usize,
        sent: 0,
    };
    crate::stream::Answer::Stream(crate::stream::StreamReply::new(
        crate::response::Reply::new(200, "text/plain", Vec::new()),
        feed,
    ))
}

pub(crate) const MS: u64 = 1_000_000;

/// A chunked body from its first byte: the data of each chunk, and the
/// bytes after the last chunk (`None` while it has not come).
pub(crate) fn dechunk(mut bytes: &[u8]) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
    let mut chunks = Vec::new();
    loop {
        let Some(line_end) = bytes.windows(2).position(|pair| pair == b"\r\n") else {
            return (chunks, None);
        };
        let size = usize::from_str_radix(core::str::from_utf8(&bytes[..line_end]).unwrap(), 16)
            .expect("a chunk size");
        let data = &bytes[line_end + 2..];
        if size == 0 {
            assert!(data.starts_with(b"\r\n"), "no empty trailer section");
            return (chunks, Some(data[2..].to_vec()));
        }
        assert_eq!(&data[size..size + 2], b"\r\n", "no CRLF after a chunk");
        chunks.push(data[..size].to_vec());
        bytes = &data[size + 2..];
    }
}

/// The head of a response (through its empty line) and what follows.
pub(crate) fn split_head(bytes: &[u8]) -> (String, &[u8]) {
    let end = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a whole head")
        + 4;
    (
        String::from_utf8(bytes[..end].to_vec()).unwrap(),
        &bytes[end..],
    )
}

impl Client {
    /// Moves the clock to `now_ns` and fires the app's timer; returns what
    /// was sent.
    pub(crate) fn fire(&mut self, now_ns: u64) -> Vec<u8> {
        self.harness.set_now_ns(now_ns);
        self.app
            .timeout(&mut self.session, &mut self.harness.stream());
        self.drain()
    }
}

#[test]
fn a_stream_is_chunked_paced_by_its_timer_and_serves_what_waited() {
    let (app, _) = app_with(None);
    let mut client = Client::new(app, 1 << 16);
    let mut sent = client.send(get("/test/stream?parts=3&every=100&bytes=5", None).as_bytes());
    let (head, _) = split_head(&sent);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
    assert!(!head.contains("Content-Length"), "{head}");
    assert_eq!(client.app.streams_open(), 1);
    // The first part goes at once; the next is 100 ms away.
    assert_eq!(client.harness.timeout_ms(), Some(100));
    // A request sent meanwhile waits, and does not move the timer.
    client.harness.set_now_ns(40 * MS);
    sent.extend(client.send(get("/", None).as_bytes()));
    assert_eq!(client.harness.timeout_ms(), Some(60));
    // Early: nothing to send yet.
    assert!(client.fire(99 * MS).is_empty());
    sent.extend(client.fire(100 * MS));
    let (_, body) = split_head(&sent);
    let (chunks, after) = dechunk(body);
    assert_eq!(chunks, [b"aaaaa".to_vec(), b"bbbbb".to_vec()]);
    assert!(after.is_none());
    sent.extend(client.fire(200 * MS));
    let (_, body) = split_head(&sent);
    let (chunks, after) = dechunk(body);
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks[2], b"ccccc");
    // The stream is done: the waiting request is answered on the same
    // connection, which goes back to its idle timer.
    let responses = parse_responses(&after.expect("the last chunk"));
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 200);
    assert!(responses[0].body.starts_with("<!DOCTYPE html>"));
    assert_eq!(client.app.streams_open(), 0);
    assert!(!client.harness.close_requested());
    assert_eq!(
        client.harness.timeout_ms(),
        Some(crate::app::IDLE_TIMEOUT_MS)
    );
}

#[test]
fn a_stream_to_http_1_0_ends_with_the_close() {
    let (app, _) = app_with(None);
    let mut client = Client::new(app, 1 << 16);
    let mut sent = client.send(b"GET /test/stream?parts=2&every=10&bytes=3 HTTP/1.0\r\n\r\n");
    sent.extend(client.fire(10 * MS));
    let (head, body) = split_head(&sent);
    assert!(head.contains("Connection: close\r\n"), "{head}");
    assert!(!head.contains("Transfer-Encoding") && !head.contains("Content-Length"));
    assert_eq!(body, b"aaabbb");
    assert!(client.harness.close_requested());
    assert_eq!(client.app.streams_open(), 0);
}

#[test]
fn connection_close_ends_the_connection_after_the_last_chunk() {
    let (app, _) = app_with(None);
    let mut client = Client::new(app, 1 << 16);
    let sent = client
        .send(b"GET /test/stream?parts=1&bytes=4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let (head, body) = split_head(&sent);
    assert!(head.contains("Transfer-Encoding: chunked\r\nConnection: close\r\n"));
    assert_eq!(dechunk(body), (vec![b"aaaa".to_vec()], Some(Vec::new())));
    assert!(client.harness.close_requested());
}

#[test]
fn a_stream_waits_for_its_output_to_be_taken() {
    let (mut config, _) = config(None);
    config.idle_timeout_ms = 2000;
    // A send buffer smaller than one part.
    let mut client = Client::new(ManagementApp::new(config), 64);
    let request = get("/test/stream?parts=50&every=0&bytes=100", None);
    let consumed = client.app.data(
        &mut client.session,
        request.as_bytes(),
        &mut client.harness.stream(),
    );
    assert_eq!(consumed, request.len());
    assert!(client.harness.wants_writable());
    // The client takes nothing: however often the timer fires, nothing
    // more is pumped.
    let unsent = client.session.output.len() - client.session.written;
    assert!(unsent > 0);
    assert_eq!(client.harness.timeout_ms(), Some(2000));
    for now in [1, 500, 1999] {
        client.harness.set_now_ns(now * MS);
        client
            .app
            .timeout(&mut client.session, &mut client.harness.stream());
        assert_eq!(client.session.output.len() - client.session.written, unsent);
        assert!(!client.harness.aborted());
    }
    // It takes some: the grace starts again.
    client.harness.set_now_ns(2100 * MS);
    assert_eq!(client.harness.take_sent().len(), 64);
    client
        .app
        .writable(&mut client.session, &mut client.harness.stream());
    assert_eq!(client.harness.timeout_ms(), Some(2000));
    // Then nothing for the idle timeout: reset, slot given back.
    client.harness.set_now_ns(4100 * MS);
    client
        .app
        .timeout(&mut client.session, &mut client.harness.stream());
    assert!(client.harness.aborted());
    assert_eq!(client.app.streams_open(), 0);
}

#[test]
fn a_fast_reader_gets_every_part_and_the_core_is_handed_back() {
    let (app, _) = app_with(None);
    let mut client = Client::new(app, 1 << 16);
    // Parts that are always ready: at most 16 pumps per call from the
    // stack, then the timer (1 ms) brings the rest.
    let request = get("/test/stream?parts=40&every=0&bytes=7", None);
    client.app.data(
        &mut client.session,
        request.as_bytes(),
        &mut client.harness.stream(),
    );
    let mut sent = client.harness.take_sent();
    let (_, body) = split_head(&sent);
    assert_eq!(dechunk(body).0.len(), 16);
    assert_eq!(client.harness.timeout_ms(), Some(1));
    for step in 1..=3 {
        sent.extend(client.fire(step * MS));
    }
    let (_, body) = split_head(&sent);
    let (chunks, after) = dechunk(body);
    assert_eq!(chunks.len(), 40);
    assert!(chunks.iter().all(|chunk| chunk.len() == 7));
    assert_eq!(after, Some(Vec::new()));
}

#[test]
fn a_client_that_closes_its_side_ends_its_stream() {
    let (app, _) = app_with(None);
    let mut client = Client::new(app, 1 << 16);
    client.send(get("/test/stream?parts=1000&every=1000", None).as_bytes());
    assert_eq!(client.app.streams_open(), 1);
    client
        .app
        .read_closed(&mut client.session, &mut client.harness.stream());
    assert!(client.harness.close_requested());
    assert_eq!(client.app.streams_open(), 0);
}

#[test]
fn head_of_a_stream_opens_none() {
    let (app, _) = app_with(None);
    let mut client = Client::new(app, 1 << 16);
    let sent = client.send(b"HEAD /test/stream HTTP/1.1\r\nHost: a\r\n\r\n");
    let (head, rest) = split_head(&sent);
    assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
    assert!(rest.is_empty());
    assert_eq!(client.app.streams_open(), 0);
    assert_eq!(client.one(&get("/", None)).status, 200);
}

#[test]
fn streams_beyond_the_limit_are_answered_503() {
    let (mut app, _) = app_with(None);
    let request = get("/test/stream?parts=1000&every=1000", None);
    let mut open = Vec::new();
    for _ in 0..crate::stream::MAX_STREAMS {
        let mut harness = StreamHarness::new(1 << 16);
        let peer = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
        let mut session = app.accept(peer, &mut harness.stream()).unwrap();
        app.data(&mut session, request.as_bytes(), &mut harness.stream());
        assert!(harness.take_sent().starts_with(b"HTTP/1.1 200 OK\r\n"));
        open.push((session, harness));
    }
    assert_eq!(app.streams_open(), crate::stream::MAX_STREAMS);
    let mut client = Client::new(app, 1 << 16);
    let response = client.one(&request);
    assert_eq!(response.status, 503);
    assert_eq!(response.field("Retry-After"), Some("5"));
    // The connection stays usable.
    assert_eq!(client.one(&get("/metrics", None)).status, 200);
    // One stream's connection goes: its slot is free again.
    let (session, _) = open.pop().unwrap();
    client
        .app
        .closed(session, services::tcp::CloseReason::Reset);
    let sent = client.send(request.as_bytes());
    assert!(sent.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert_eq!(client.app.streams_open(), crate::stream::MAX_STREAMS);
}

/// The events of a server-sent event stream's text: each one's fields
/// (`id`, `event`, `data`; comments left out), in order.
fn events(text: &str) -> Vec<Vec<(String, String)>> {
    text.split("\n\n")
        .map(|block| {
            block
                .lines()
                .filter(|line| !line.starts_with(':'))
                .filter_map(|line| line.split_once(": "))
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect::<Vec<_>>()
        })
        .filter(|fields| fields.iter().any(|(name, _)| name == "event"))
        .collect()
}

/// The text of a chunked stream's body sent so far (after its head).
fn stream_text(sent: &[u8]) -> String {
    let (_, body) = split_head(sent);
    String::from_utf8(dechunk(body).0.concat()).unwrap()
}

#[test]
fn the_log_stream_sends_records_as_server_sent_events() {
    let (config, _) = config(Some(TOKEN));
    let ring = config.logs;
    let mut client = Client::new(ManagementApp::new(config), 1 << 16);
    let mut sent =
        client.send(get("/api/v1/logs/stream?since=0&level=warn", Some(TOKEN)).as_bytes());
    let (head, _) = split_head(&sent);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    for field in [
        "Content-Type: text/event-stream\r\n",
        "Transfer-Encoding: chunked\r\n",
        "Cache-Control: no-store\r\n",
    ] {
        assert!(head.contains(field), "{head}");
    }
    let text = stream_text(&sent);
    assert!(
        text.starts_with(": warpcore log stream\nretry: 2000\n\n"),
        "{text}"
    );
    assert_eq!(
        events(&text),
        [
            vec![
                ("id".to_string(), "2".to_string()),
                ("event".to_string(), "log".to_string()),
                (
                    "data".to_string(),
                    "{\"seq\":2,\"timeMs\":20,\"level\":\"warn\",\"target\":\"net\",\"message\":\"link \\\"eth0\\\" flapped\"}".to_string()
                ),
            ],
            vec![
                ("id".to_string(), "4".to_string()),
                ("event".to_string(), "log".to_string()),
                (
                    "data".to_string(),
                    "{\"seq\":4,\"timeMs\":40,\"level\":\"error\",\"target\":\"net\",\"message\":\"link eth0 down\"}".to_string()
                ),
            ],
        ]
    );
    // The stream looks at the ring every 250 ms: a new record arrives;
    // one below the level does not.
    assert_eq!(
        client.harness.timeout_ms(),
        Some(crate::log_stream::POLL_MS)
    );
    ring.push(50, log::Level::Debug, "tcp", format_args!("quiet"));
    ring.push(
        60,
        log::Level::Warn,
        "tcp",
        format_args!("retransmit storm"),
    );
    sent.extend(client.fire(250 * MS));
    let all = events(&stream_text(&sent));
    assert_eq!(all.len(), 3);
    assert_eq!(all[2][0], ("id".to_string(), "6".to_string()));
    assert!(all[2][2].1.contains("\"message\":\"retransmit storm\""));
    assert_eq!(client.app.streams_open(), 1);
}

#[test]
fn the_log_stream_resumes_after_last_event_id_and_ends_at_its_limit() {
    let (app, _) = app_with(Some(TOKEN));
    let mut client = Client::new(app, 1 << 16);
    let request = alloc::format!(
        "GET /api/v1/logs/stream?q=link&limit=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {TOKEN}\r\nLast-Event-ID: 2\r\n\r\n"
    );
    let sent = client.send(request.as_bytes());
    let (_, body) = split_head(&sent);
    let (chunks, after) = dechunk(body);
    let all = events(&String::from_utf8(chunks.concat()).unwrap());
    assert_eq!(all.len(), 1);
    assert_eq!(all[0][0], ("id".to_string(), "4".to_string()));
    // The limit reached, the stream ended and the connection reads again.
    assert_eq!(after, Some(Vec::new()));
    assert_eq!(client.app.streams_open(), 0);
    assert_eq!(client.one(&get("/metrics", None)).status, 200);
    // By default only records logged after the stream opened.
    let sent = client.send(get("/api/v1/logs/stream", Some(TOKEN)).as_bytes());
    assert!(events(&stream_text(&sent)).is_empty());
}

#[test]
fn the_log_stream_needs_the_token_and_a_good_query() {
    let (app, _) = app_with(Some(TOKEN));
    let mut client = Client::new(app, 1 << 16);
    for token in [None, Some("wrong")] {
        let response = client.one(&get("/api/v1/logs/stream", token));
        assert_eq!(response.status, 401, "{token:?}");
    }
    let response = client.one(&get("/api/v1/logs/stream?level=loud", Some(TOKEN)));
    assert_eq!(response.status, 400);
    assert!(response.body.contains("level must be"));
    let response = client.one(&get("/api/v1/logs/stream?limit=0", Some(TOKEN)));
    assert_eq!(response.status, 400);
    assert_eq!(client.app.streams_open(), 0);
    let (app, _) = app_with(None);
    let mut client = Client::new(app, 1 << 16);
    assert_eq!(
        client.one(&get("/api/v1/logs/stream", Some(TOKEN))).status,
        403
    );
}

#[test]
fn requests_beyond_the_budget_wait_their_turn() {
    let (app, _) = app_with(None);
    let mut client = Client::new(app.with_request_budget(1000, 2), 1 << 16);
    let three = get("/metrics", None) + &get("/", None) + &get("/nowhere", None);
    let responses = parse_responses(&client.send(three.as_bytes()));
    let statuses: Vec<u16> = responses.iter().map(|response| response.status).collect();
    assert_eq!(statuses, [200, 200]);
    assert_eq!(client.app.requests_waiting(), 1);
    assert_eq!(client.harness.timeout_ms(), Some(1));
    // The peer's FIN does not drop the waiting request.
    client
        .app
        .read_closed(&mut client.session, &mut client.harness.stream());
    assert!(!client.harness.close_requested());
    let responses = parse_responses(&client.fire(MS));
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 404);
    assert_eq!(client.app.requests_waiting(), 0);
    // Nothing left, the peer gone: closed.
    assert!(client.harness.close_requested());
}

#[test]
fn waiting_connections_take_turns_and_leave_the_queue_when_they_go() {
    let (app, _) = app_with(None);
    let mut app = app.with_request_budget(1000, 1);
    let mut connections: Vec<(ManagementSession, StreamHarness)> = (0..3)
        .map(|_| {
            let mut harness = StreamHarness::new(1 << 16);
            let peer = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
            let session = app.accept(peer, &mut harness.stream()).unwrap();
            (session, harness)
        })
        .collect();
    for (session, harness) in &mut connections {
        app.data(session, get("/", None).as_bytes(), &mut harness.stream());
    }
    let answered: Vec<bool> = connections
        .iter_mut()
        .map(|(_, harness)| !harness.take_sent().is_empty())
        .collect();
    assert_eq!(answered, [true, false, false]);
    assert_eq!(app.requests_waiting(), 2);
    // The second waits one token, the third one more.
    assert_eq!(connections[1].1.timeout_ms(), Some(1));
    assert_eq!(connections[2].1.timeout_ms(), Some(2));
    let (session, _) = connections.remove(2);
    app.closed(session, services::tcp::CloseReason::Reset);
    assert_eq!(app.requests_waiting(), 1);
    let (session, harness) = &mut connections[1];
    harness.set_now_ns(MS);
    app.timeout(session, &mut harness.stream());
    assert!(harness.take_sent().starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert_eq!(app.requests_waiting(), 0);
    assert_eq!(harness.timeout_ms(), Some(crate::app::IDLE_TIMEOUT_MS));
}

#[test]
fn handed_over_segments_are_a_family_per_core() {
    let board = CountersBoard::new(2);
    let mut core1 = CoreCounters::default();
    core1.nodes.push(NodeCounters {
        name: "tcp-handoff",
        event_names: &["handed-over"],
        ..NodeCounters::default()
    });
    core1.nodes[0].events[0].add(5);
    board.register(0, Arc::new(CoreCounters::default()));
    board.register(1, Arc::new(core1));
    let mut text = String::new();
    crate::metrics::render(&mut text, &board, ("0.1.0", "hosted"));
    let samples = check_exposition(&text);
    assert_eq!(
        samples.get("warpcore_tcp_handoff_segments_total{core=\"0\"}"),
        Some(&0)
    );
    assert_eq!(
        samples.get("warpcore_tcp_handoff_segments_total{core=\"1\"}"),
        Some(&5)
    );
    assert_eq!(
        samples.get(
            "warpcore_node_events_total{core=\"1\",node=\"tcp-handoff\",event=\"handed-over\"}"
        ),
        Some(&5)
    );
}
