//! `ManagementApp`: the management plane's HTTP/1.1 server as a
//! [`TcpApp`], with keep-alive and pipelining; bad input is answered with
//! a status code, never a panic.
//!
//! Received bytes are copied into the session (at most [`MAX_INPUT`]) and
//! used from there; a response is built whole (a `/metrics` scrape is
//! rendered once per request into a session-owned buffer, an allocation
//! per scrape) and written across `writable` calls as the send buffer
//! drains, or it streams (`crate::stream`: a head, then a feed pumped on
//! the connection's timer as the client takes its output). One response
//! is in flight per connection; requests behind it wait in the session.
//! Requests beyond the app's budget (`crate::budget`, 1000 a second) wait
//! for their turn, so that the core stays the data path's.

use crate::auth::{RETRY_AFTER_SECONDS, TokenGuard, Verdict, sha256};
use crate::budget::{REQUEST_BURST, REQUESTS_PER_SECOND, RequestBudget};
use crate::capture::{self, CaptureFeed, CaptureQuery};
use crate::config::ManagementConfig;
use crate::json::push_string;
use crate::modules::MAX_MODULE_BYTES;
use crate::response::{HTML, JSON, Reply, TEXT};
use crate::session::MODULE_PREFIX;
use crate::session::{Endpoint, ManagementSession, Pending, Reading};
use crate::status::GENERATION;
use crate::stream::{
    Answer, Framing, MAX_STREAMS, Pumped, STREAMS_RETRY_AFTER_SECONDS, StreamReply, StreamSlots,
    Streaming, millis_until,
};
use crate::{LogRing, log_stream, logs, metrics, modules, plan, status};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;
use core::net::SocketAddrV4;
use dataplane::CountersBoard;
use dataplane::capture::{ArmError, CaptureBoard, TcpFlow};
use services::Registry;
use services::http::RequestError;
use services::http::chunked::ChunkDecoder;
use services::http::config::DEFAULT_MAX_HEADER_BYTES;
use services::http::request::{
    BodyFraming, Method, RequestHead, Version, field_values, parse_head,
};
use services::http::response::{CONTINUE, ConnectionField};
use services::tcp::{CloseReason, Stream, TcpApp};

/// Largest request head: the HTTP server's default `max_header_bytes`.
pub const MAX_HEAD_BYTES: usize = DEFAULT_MAX_HEADER_BYTES;

/// Largest `PUT` body (a spec): 64 KiB; larger ones are answered 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Most received bytes a connection keeps unused: a head and a module
/// upload's body (with the right token; else [`MAX_REQUEST_INPUT`]), and
/// room for chunk framing.
pub const MAX_INPUT: usize = MAX_HEAD_BYTES + MAX_MODULE_BYTES + 4096;

/// Most received bytes a connection keeps while it is not reading the
/// body of a module upload whose token was right.
pub const MAX_REQUEST_INPUT: usize = MAX_HEAD_BYTES + MAX_BODY_BYTES + 4096;

/// The most input a connection may keep while `reading`.
fn input_bound(reading: &Reading) -> usize {
    match reading {
        Reading::Body(pending, _) | Reading::Chunked(pending, _)
            if pending.endpoint == Endpoint::Module && pending.early.is_none() =>
        {
            MAX_INPUT
        }
        _ => MAX_REQUEST_INPUT,
    }
}

/// A connection idle this long is closed, unless the spec says otherwise
/// (`[management] idle_timeout_ms`).
pub const IDLE_TIMEOUT_MS: u32 = control::spec::DEFAULT_IDLE_TIMEOUT_MS;

/// Most pumps of one stream per call from the stack: a feed that always
/// has more and a client that takes everything at once still hand the
/// core back (the next pump is due 1 ms later).
const PUMPS_PER_CALL: u32 = 16;

/// The status page at `/`: HTML with inline CSS and JS, no build step.
/// It polls `/metrics` (no token) and, given the token, shows the spec
/// and status.
const INDEX: &str = include_str!("page/index.html");

/// The management plane's server on core 0.
pub struct ManagementApp {
    spec_text: String,
    spec: control::Spec,
    etag: String,
    board: Arc<CountersBoard>,
    guard: TokenGuard,
    registry: Registry,
    build_info: (&'static str, &'static str),
    started_ns: Option<u64>,
    idle_timeout_ms: u32,
    logs: &'static LogRing,
    streams: StreamSlots,
    capture: Arc<CaptureBoard>,
    unix_offset_ns: u64,
    budget: RequestBudget,
    controller: Option<control::reconcile::Controller>,
    clock: fn() -> u64,
}

impl core::fmt::Debug for ManagementApp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ManagementApp")
            .field("etag", &self.etag)
            .field("build_info", &self.build_info)
            .finish_non_exhaustive()
    }
}

/// The strong `ETag` of a spec text: the first 16 hexadecimal digits of
/// its SHA-256, quoted.
pub fn spec_etag(spec_text: &str) -> String {
    let digest = sha256(spec_text.as_bytes());
    let mut etag = String::from("\"");
    for byte in &digest[..8] {
        let _ = write!(etag, "{byte:02x}");
    }
    etag.push('"');
    etag
}

/// True when the query holds `dryRun=true`.
fn dry_run(query: &[u8]) -> bool {
    query
        .split(|byte| *byte == b'&')
        .any(|pair| pair == b"dryRun=true")
}

impl ManagementApp {
    /// A server for `config`.
    pub fn new(config: ManagementConfig) -> Self {
        Self {
            etag: spec_etag(&config.spec_text),
            spec_text: config.spec_text,
            spec: config.spec,
            board: config.board,
            guard: TokenGuard::new(config.token_sha256),
            registry: config.registry,
            build_info: config.build_info,
            started_ns: config.started_ns,
            idle_timeout_ms: config.idle_timeout_ms,
            logs: config.logs,
            streams: StreamSlots::new(MAX_STREAMS),
            capture: config.capture,
            unix_offset_ns: config.unix_offset_ns,
            budget: RequestBudget::new(REQUESTS_PER_SECOND, REQUEST_BURST),
            controller: config.controller,
            clock: config.clock,
        }
    }

    /// The spec served: the one being applied, else the running one.
    fn spec(&self) -> &control::Spec {
        self.controller
            .as_ref()
            .map_or(&self.spec, |controller| controller.spec())
    }

    /// The text of [`spec`](Self::spec).
    fn spec_text(&self) -> &str {
        self.controller
            .as_ref()
            .map_or(&self.spec_text, |controller| controller.spec_text())
    }

    /// The generation of [`spec`](Self::spec).
    fn generation(&self) -> u64 {
        self.controller
            .as_ref()
            .map_or(GENERATION, control::reconcile::Controller::generation)
    }

    /// The controller, for status and metrics.
    pub fn controller(&self) -> Option<&control::reconcile::Controller> {
        self.controller.as_ref()
    }

    /// Moves the change in flight on (acks, rollback, its end), keeping
    /// the `ETag` in step with the spec served.
    fn step_controller(&mut self) {
        let Some(controller) = &mut self.controller else {
            return;
        };
        if !controller.reconciling() {
            return;
        }
        controller.step((self.clock)());
        let etag = spec_etag(controller.spec_text());
        if etag != self.etag {
            self.etag = etag;
        }
    }

    /// Answers at most `per_second` requests a second, in bursts of
    /// `burst` (by default [`REQUESTS_PER_SECOND`] and [`REQUEST_BURST`]).
    pub fn with_request_budget(mut self, per_second: u32, burst: u32) -> Self {
        self.budget = RequestBudget::new(per_second, burst);
        self
    }

    /// Connections whose next request waits for the request budget.
    pub fn requests_waiting(&self) -> u32 {
        self.budget.waiting()
    }

    /// Streaming responses open now.
    pub fn streams_open(&self) -> usize {
        self.streams.open()
    }

    /// The running spec's `ETag`, quoted.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// Writes what is pending, pumps the stream in progress, and serves
    /// the requests in the session's input until it runs out or the send
    /// buffer is full.
    fn serve(&mut self, session: &mut ManagementSession, io: &mut Stream<'_>) {
        let mut pumps = 0;
        loop {
            if session.closed {
                return;
            }
            if session.written < session.output.len() {
                let wrote = io.write(&session.output[session.written..]);
                session.written += wrote;
                if wrote > 0 {
                    match session.streaming.as_mut() {
                        Some(streaming) => streaming.last_progress_ns = io.now_ns(),
                        // The idle timeout is for a client that takes
                        // nothing: a response on its way starts it again
                        // (nginx's `send_timeout` likewise), so a long one
                        // to a slow or busy client is not reset halfway.
                        None => io.set_timeout(self.idle_timeout_ms),
                    }
                }
                if session.written < session.output.len() {
                    io.want_writable();
                    self.arm_stream_timer(session, io);
                    return;
                }
            }
            session.output.clear();
            session.written = 0;
            if let Some(streaming) = session.streaming.as_mut() {
                if session.peer_closed {
                    // The client is gone: free its stream slot now.
                    session.streaming = None;
                    session.close_after_output = true;
                    session.reading = Reading::Stopped;
                    session.input.clear();
                    continue;
                }
                let now_ns = io.now_ns();
                if now_ns < streaming.due_ns() || pumps == PUMPS_PER_CALL {
                    self.arm_stream_timer(session, io);
                    return;
                }
                pumps += 1;
                if streaming.pump(&mut session.output, now_ns) == Pumped::Done {
                    if streaming.close_after {
                        session.close_after_output = true;
                        session.reading = Reading::Stopped;
                    } else {
                        io.set_timeout(self.idle_timeout_ms);
                    }
                    session.streaming = None;
                }
                continue;
            }
            if session.close_after_output {
                Self::close(session, io);
                return;
            }
            if !self.step(session, io) {
                if session.peer_closed && session.output.is_empty() && !session.budget_wait {
                    // What is left can never become a whole request.
                    Self::close(session, io);
                }
                return;
            }
        }
    }

    /// Sets a streaming session's timer: the next pump when its output is
    /// sent, else the end of the client's grace to take it.
    fn arm_stream_timer(&self, session: &ManagementSession, io: &mut Stream<'_>) {
        let Some(streaming) = &session.streaming else {
            return;
        };
        let deadline_ns = if session.written < session.output.len() {
            streaming
                .last_progress_ns
                .saturating_add(u64::from(self.idle_timeout_ms) * 1_000_000)
        } else {
            streaming.due_ns()
        };
        io.set_timeout(millis_until(deadline_ns, io.now_ns()));
    }

    /// Closes our side after what was written.
    fn close(session: &mut ManagementSession, io: &mut Stream<'_>) {
        io.close();
        session.closed = true;
        session.reading = Reading::Stopped;
        session.input = Vec::new();
    }

    /// Answers `reply` and closes after it (a refused request: what
    /// follows it cannot be trusted to be framed right).
    fn refuse(session: &mut ManagementSession, reply: Reply) {
        reply.write(&mut session.output, ConnectionField::Close, false);
        session.close_after_output = true;
        session.reading = Reading::Stopped;
        session.input.clear();
    }

    /// Refuses a request the parser or chunk decoder refused.
    fn refuse_error(session: &mut ManagementSession, error: RequestError) {
        let status = error.status();
        let body = services::http::response::error_body(status);
        Self::refuse(session, Reply::new(status, TEXT, body));
    }

    /// Takes one step: reads a head, a body, or answers. False when it
    /// waits for more bytes.
    fn step(&mut self, session: &mut ManagementSession, io: &mut Stream<'_>) -> bool {
        match core::mem::take(&mut session.reading) {
            Reading::Head => {
                // Empty lines between requests are ignored (RFC 9112 2.2).
                let blank = session
                    .input
                    .iter()
                    .take_while(|byte| matches!(byte, b'\r' | b'\n'))
                    .count();
                if blank > 0 && session.scanner == Default::default() {
                    session.input.drain(..blank);
                }
                if session.input.is_empty() {
                    return false;
                }
                match session.scanner.scan(&session.input, MAX_HEAD_BYTES) {
                    Ok(None) => false,
                    Err(error) => {
                        Self::refuse_error(session, error);
                        true
                    }
                    Ok(Some(length)) => {
                        // A whole head: answering it takes a token of the
                        // budget, or the request waits (left in `input`,
                        // scanned again on the retry).
                        let now_ns = io.now_ns();
                        if let Err(wait_ns) = self.budget.take(now_ns, session.budget_wait) {
                            session.budget_wait = true;
                            io.set_timeout(millis_until(now_ns.saturating_add(wait_ns), now_ns));
                            return false;
                        }
                        session.budget_wait = false;
                        let head_bytes: Vec<u8> = session.input.drain(..length).collect();
                        match parse_head(&head_bytes) {
                            Ok(head) => self.start(session, &head, &head_bytes, io),
                            Err(error) => Self::refuse_error(session, error),
                        }
                        true
                    }
                }
            }
            Reading::Body(mut pending, length) => {
                if session.input.len() < length {
                    session.reading = Reading::Body(pending, length);
                    return false;
                }
                pending.body.extend(session.input.drain(..length));
                self.answer(session, pending);
                true
            }
            Reading::Chunked(mut pending, mut decoder) => loop {
                match decoder.decode(&session.input) {
                    Err(error) => {
                        Self::refuse_error(session, error);
                        return true;
                    }
                    Ok(decoded) => {
                        pending.body.extend_from_slice(&session.input[decoded.data]);
                        session.input.drain(..decoded.consumed);
                        if decoder.is_done() {
                            self.answer(session, pending);
                            return true;
                        }
                        if decoded.consumed == 0 {
                            session.reading = Reading::Chunked(pending, decoder);
                            return false;
                        }
                    }
                }
            },
            Reading::Stopped => {
                session.reading = Reading::Stopped;
                session.input.clear();
                false
            }
        }
    }

    /// A head was read: routes it, judges its token, and reads its body
    /// (or answers at once).
    fn start(
        &mut self,
        session: &mut ManagementSession,
        head: &RequestHead,
        bytes: &[u8],
        io: &mut Stream<'_>,
    ) {
        let connection = match (head.keep_alive, head.version) {
            (false, _) => ConnectionField::Close,
            (true, Version::Http10) => ConnectionField::KeepAlive,
            (true, Version::Http11) => ConnectionField::Absent,
        };
        let mut pending = Pending {
            endpoint: Endpoint::Index,
            put: head.method == Method::Put,
            delete: head.method == Method::Delete,
            module_name: Vec::new(),
            head_only: head.method == Method::Head,
            connection,
            verdict: Verdict::Allowed,
            precondition_failed: false,
            dry_run: dry_run(head.query(bytes)),
            query: Vec::new(),
            version: head.version,
            peer: io.peer(),
            last_event_id: field_values(bytes, b"last-event-id")
                .next()
                .and_then(|value| core::str::from_utf8(value.trim_ascii()).ok())
                .and_then(|value| value.parse().ok()),
            now_ns: io.now_ns(),
            early: None,
            body: Vec::new(),
        };
        let early = match Endpoint::from_path(head.path(bytes)) {
            None => Some(Reply::text(404, "404 Not Found\n")),
            Some(endpoint) => {
                pending.endpoint = endpoint;
                if endpoint.reads_query() {
                    pending.query = head.query(bytes).to_vec();
                }
                if endpoint == Endpoint::Module {
                    pending.module_name = head.path(bytes)[MODULE_PREFIX.len()..].to_vec();
                }
                let allowed = match head.method {
                    Method::Get | Method::Head => endpoint != Endpoint::Module,
                    Method::Put => matches!(endpoint, Endpoint::Spec | Endpoint::Module),
                    Method::Delete => endpoint == Endpoint::Module,
                    _ => false,
                };
                if !allowed {
                    Some(Reply::text(405, "405 Method Not Allowed\n").with_allow(endpoint.allow()))
                } else if endpoint.protected() {
                    let authorization = field_values(bytes, b"authorization").next();
                    pending.verdict = self.guard.check(authorization, io.now_ns());
                    let guessed = authorization.and_then(crate::auth::bearer_token).is_some();
                    if pending.verdict == Verdict::Denied && guessed {
                        // At most `MAX_FAILURES` lines per lockout period.
                        let path = String::from_utf8_lossy(head.path(bytes));
                        if self.guard.locked(io.now_ns()) {
                            log::warn!(
                                "wrong token from {} for {path}: the API refuses tokens for {RETRY_AFTER_SECONDS} s",
                                pending.peer
                            );
                        } else {
                            log::warn!("wrong token from {} for {path}", pending.peer);
                        }
                    }
                    pending.precondition_failed = pending.put
                        && field_values(bytes, b"if-match").next().is_some()
                        && !field_values(bytes, b"if-match").any(|value| self.if_match(value));
                    None
                } else {
                    None
                }
            }
        };
        pending.early = early.or_else(|| Self::refusal(&pending));
        // A module may be larger than a spec, once its token is right:
        // a connection without one keeps the smaller input bound.
        let max_body = if pending.endpoint == Endpoint::Module && pending.early.is_none() {
            MAX_MODULE_BYTES
        } else {
            MAX_BODY_BYTES
        };
        let length = match head.framing {
            BodyFraming::None => {
                self.answer(session, pending);
                return;
            }
            BodyFraming::Length(length) if length > max_body as u64 => {
                // A refused module upload says why (401...), not 413.
                let reply = match pending.early.take() {
                    Some(early) if pending.endpoint == Endpoint::Module => early,
                    _ => Reply::text(413, "413 Content Too Large\n"),
                };
                Self::refuse(session, reply);
                return;
            }
            BodyFraming::Length(length) => Some(length as usize),
            BodyFraming::Chunked => None,
        };
        if head.expect_continue {
            match pending.early.take() {
                // The client waits for our word before sending the body:
                // answer now, and close rather than wait for a body that
                // may never come.
                Some(reply) => {
                    Self::refuse(session, reply);
                    return;
                }
                None => session.output.extend_from_slice(CONTINUE),
            }
        }
        // With an early reply, the body is read and thrown away first.
        session.reading = match length {
            Some(length) => Reading::Body(pending, length),
            None => Reading::Chunked(pending, ChunkDecoder::new(max_body as u64, MAX_HEAD_BYTES)),
        };
    }

    /// The reply to a protected request the token or a precondition
    /// refuses.
    fn refusal(pending: &Pending) -> Option<Reply> {
        match pending.verdict {
            Verdict::Allowed => {}
            Verdict::NoTokenConfigured => {
                return Some(Reply::text(403, "403 Forbidden: no token configured\n"));
            }
            Verdict::Locked => {
                return Some(
                    Reply::text(429, "429 Too Many Requests: too many wrong tokens\n")
                        .with_field("Retry-After", RETRY_AFTER_SECONDS),
                );
            }
            Verdict::Denied => {
                return Some(
                    Reply::text(401, "401 Unauthorized: a bearer token is needed\n")
                        .with_field("WWW-Authenticate", "Bearer"),
                );
            }
        }
        pending.precondition_failed.then(|| {
            Reply::json(
                412,
                String::from("{\"error\":\"precondition failed\",\"message\":\"If-Match does not name the running spec\"}"),
            )
        })
    }

    /// True when an `If-Match` value names the running spec.
    fn if_match(&self, value: &[u8]) -> bool {
        value
            .split(|byte| *byte == b',')
            .map(<[u8]>::trim_ascii)
            .any(|tag| tag == b"*" || tag == self.etag.as_bytes())
    }

    /// The request is whole: writes its reply, or starts its stream.
    fn answer(&mut self, session: &mut ManagementSession, mut pending: Pending) {
        let answer = match pending.early.take() {
            Some(reply) => Answer::Whole(reply),
            None => self.reply(&pending),
        };
        match answer {
            Answer::Whole(reply) => {
                reply.write(&mut session.output, pending.connection, pending.head_only);
            }
            Answer::Stream(stream) => self.start_stream(session, stream, &mut pending),
        }
        if pending.connection == ConnectionField::Close {
            session.close_after_output = true;
            session.reading = Reading::Stopped;
        }
    }

    /// Writes a stream's head and hands its feed to the session (which
    /// `serve` pumps), or answers 503 when every stream slot is taken.
    fn start_stream(
        &mut self,
        session: &mut ManagementSession,
        stream: StreamReply,
        pending: &mut Pending,
    ) {
        let framing = match pending.version {
            Version::Http11 => Framing::Chunked,
            Version::Http10 => Framing::UntilClose,
        };
        if framing == Framing::UntilClose {
            // The close is what ends the body.
            pending.connection = ConnectionField::Close;
        }
        if pending.head_only {
            let output = &mut session.output;
            stream
                .head
                .write_head(output, pending.connection, framing.body_length());
            return;
        }
        let Some(permit) = self.streams.try_take() else {
            Reply::text(503, "503 Service Unavailable: too many streams are open\n")
                .with_field("Retry-After", STREAMS_RETRY_AFTER_SECONDS)
                .write(&mut session.output, pending.connection, false);
            return;
        };
        stream.head.write_head(
            &mut session.output,
            pending.connection,
            framing.body_length(),
        );
        let close_after = pending.connection == ConnectionField::Close;
        session.streaming = Some(Streaming::new(
            stream.feed,
            framing,
            close_after,
            permit,
            pending.now_ns,
        ));
        // The connection closes when the stream ends, not before: the
        // caller's `close_after_output` would close it after the head.
        pending.connection = ConnectionField::Absent;
        if close_after {
            session.reading = Reading::Stopped;
        }
    }

    /// The answer to a whole request whose token and method are right.
    fn reply(&mut self, pending: &Pending) -> Answer {
        match (pending.endpoint, pending.put) {
            (Endpoint::Index, _) => Reply::new(200, HTML, INDEX).into(),
            (Endpoint::Metrics, _) => {
                let mut text = String::with_capacity(16 * 1024);
                metrics::render(&mut text, &self.board, self.build_info);
                if let Some(controller) = &self.controller {
                    metrics::render_reconcile(&mut text, controller);
                }
                let interfaces: Vec<&str> = self
                    .spec()
                    .interfaces
                    .iter()
                    .map(|interface| interface.name.as_str())
                    .collect();
                metrics::render_capture(&mut text, &self.capture, &interfaces);
                Reply::new(200, metrics::CONTENT_TYPE, text.into_bytes()).into()
            }
            (Endpoint::Spec, false) => {
                Reply::new(200, "application/toml", self.spec_text().as_bytes())
                    .with_field("ETag", self.etag.clone())
                    .with_field(
                        "X-Warpcore-Generation",
                        alloc::format!("{}", self.generation()),
                    )
                    .into()
            }
            (Endpoint::Spec, true) => self.put_spec(pending).into(),
            (Endpoint::Status, _) => {
                let mut text = String::new();
                status::render(
                    &mut text,
                    &self.board,
                    self.controller.as_ref(),
                    self.uptime_seconds(pending),
                );
                Reply::json(200, text).into()
            }
            (Endpoint::Logs, _) => match logs::LogQuery::parse(&pending.query) {
                Ok(query) => {
                    let mut text = String::new();
                    logs::render(&mut text, self.logs, &query);
                    Reply::json(200, text).into()
                }
                Err(error) => Self::query_error(error),
            },
            (Endpoint::LogStream, _) => match log_stream::parse_query(&pending.query, self.logs) {
                Ok(query) => {
                    let head = Reply::new(200, log_stream::EVENT_STREAM, Vec::new())
                        .with_field("Cache-Control", "no-store");
                    let feed = log_stream::LogFeed::new(self.logs, query, pending.last_event_id);
                    Answer::Stream(StreamReply::new(head, feed))
                }
                Err(error) => Self::query_error(error),
            },
            (Endpoint::Capture, _) => self.capture(pending),
            (Endpoint::Modules, _) => {
                let mut text = String::new();
                let observed = self.controller.as_ref().map_or(
                    GENERATION,
                    control::reconcile::Controller::observed_generation,
                );
                modules::render(
                    &mut text,
                    self.spec_text(),
                    &self.board,
                    self.generation(),
                    observed,
                );
                Reply::json(200, text).into()
            }
            (Endpoint::Module, _) => self.module(pending).into(),
            #[cfg(test)]
            (Endpoint::TestStream, _) => crate::tests::test_stream(&pending.query),
        }
    }

    /// `GET /api/v1/capture`: arms a capture of the interface the query
    /// names, leaving out the request's own connection, and streams it as
    /// pcap; 400 for a bad query, 409 while another capture runs. `HEAD`
    /// arms nothing.
    fn capture(&self, pending: &Pending) -> Answer {
        let query = match CaptureQuery::parse(&pending.query, self.spec()) {
            Ok(query) => query,
            Err(error) => {
                let mut body = String::from("{\"error\":\"query\",\"message\":");
                push_string(&mut body, &error.message());
                body.push('}');
                return Reply::json(400, body).into();
            }
        };
        let busy = || {
            Reply::json(
                409,
                String::from(
                    "{\"error\":\"capture running\",\"message\":\"another capture is running (one at a time); try again when it ends\"}",
                ),
            )
            .into()
        };
        let armed = if pending.head_only {
            if self.capture.is_armed() {
                return busy();
            }
            None
        } else {
            // The capture's own connection stays out of it: captured, each
            // of its segments would be sent, and captured again.
            let own = self.spec().management.map(|management| TcpFlow {
                peer: pending.peer,
                local_port: management.listen.port(),
            });
            match self.capture.arm(query.interface, query.snaplen, own) {
                Ok(capture) => Some(capture),
                Err(ArmError::Busy) => return busy(),
                Err(error) => {
                    let mut body = String::from("{\"error\":\"query\",\"message\":");
                    push_string(&mut body, &alloc::format!("{error}"));
                    body.push('}');
                    return Reply::json(400, body).into();
                }
            }
        };
        let feed = CaptureFeed::new(
            Arc::clone(&self.capture),
            armed,
            &query,
            pending.now_ns,
            self.unix_offset_ns,
        );
        let head = Reply::new(200, capture::CONTENT_TYPE, Vec::new())
            .with_field("Trailer", capture::TRAILER_FIELDS)
            .with_field(
                "Content-Disposition",
                alloc::format!("attachment; filename=\"{}.pcap\"", query.interface_name),
            );
        Answer::Stream(StreamReply::new(head, feed))
    }

    /// The 400 for a log query the parser refused.
    fn query_error(error: logs::QueryError) -> Answer {
        let mut body = String::from("{\"error\":\"query\",\"message\":");
        push_string(&mut body, error.message());
        body.push('}');
        Reply::json(400, body).into()
    }

    /// Seconds since the instance started.
    fn uptime_seconds(&self, pending: &Pending) -> u64 {
        pending
            .now_ns
            .saturating_sub(self.started_ns.unwrap_or(pending.now_ns))
            / 1_000_000_000
    }

    /// `PUT /api/v1/spec`: validates the body; a plan with `?dryRun=true`.
    /// Each outcome is logged (an operator's audit trail of proposed
    /// specs; only requests with the right token get here).
    fn put_spec(&mut self, pending: &Pending) -> Reply {
        let peer = pending.peer;
        let Ok(text) = core::str::from_utf8(&pending.body) else {
            log::info!("spec from {peer} rejected: the body is not UTF-8");
            let mut body =
                String::from("{\"error\":\"spec\",\"line\":0,\"field\":\"\",\"message\":");
            push_string(&mut body, "the body is not UTF-8");
            body.push('}');
            return Reply::json(422, body);
        };
        let proposed = match control::Spec::parse(text, &self.registry) {
            Ok(spec) => spec,
            Err(error) => {
                log::info!(
                    "spec from {peer} rejected: line {}, field {}: {}",
                    error.line,
                    error.field,
                    error.kind
                );
                let mut body = String::new();
                let _ = write!(
                    body,
                    "{{\"error\":\"spec\",\"line\":{},\"field\":",
                    error.line
                );
                push_string(&mut body, &error.field);
                body.push_str(",\"message\":");
                push_string(&mut body, &alloc::format!("{}", error.kind));
                body.push('}');
                return Reply::json(422, body);
            }
        };
        let changes = plan::changes(self.spec(), &proposed);
        if pending.dry_run {
            let mut body = String::new();
            let _ = write!(
                body,
                "{{\"dryRun\":true,\"valid\":true,\"generation\":{},\"changes\":",
                self.generation()
            );
            log::info!(
                "spec dry run from {peer}: valid, {} change(s)",
                changes.len()
            );
            plan::push_json(&mut body, &changes);
            body.push('}');
            return Reply::new(200, JSON, body.into_bytes());
        }
        self.apply_spec(peer, proposed, text, &changes, pending.now_ns)
    }

    /// `PUT` or `DELETE /api/v1/modules/<name>`: the spec served with the
    /// module's `wasm` service put in (replacing one of that name) or
    /// taken out, checked here (the module validated and translated on
    /// this core, not the data cores) and applied as a new generation
    /// like `PUT /api/v1/spec`. 400 for a bad name or query, 404 for an
    /// unknown module to remove, 422 with the engine's reason for a
    /// module the check refuses (nothing running changes).
    fn module(&mut self, pending: &Pending) -> Reply {
        let peer = pending.peer;
        let name = String::from_utf8_lossy(&pending.module_name).into_owned();
        if !modules::valid_name(&name) {
            return Self::module_error(
                400,
                &alloc::format!("`{name}` is not a module name: [a-z0-9-], 1 to 32 characters"),
            );
        }
        let current = String::from(self.spec_text());
        let without = modules::without_block(&current, &name);
        let (text, upload) = if pending.delete {
            let Some(without) = without else {
                return Self::module_error(404, &alloc::format!("no hot-loaded module `{name}`"));
            };
            (without, None)
        } else {
            let settings = match modules::ModuleSettings::parse(&pending.query) {
                Ok(settings) => settings,
                Err(message) => return Self::module_error(400, &message),
            };
            if pending.body.is_empty() {
                return Self::module_error(400, "the body is empty: send the module's bytes");
            }
            let digest = sha256(&pending.body);
            let reference = modules::reference(&name, &digest);
            let block = modules::block(&name, &reference, pending.body.len(), &digest, &settings);
            let base = without.unwrap_or_else(|| current.clone());
            (modules::with_block(&base, &block), Some(reference))
        };
        if let Some(reference) = &upload {
            warpcore_wasm::uploads::store_upload(reference, Arc::new(pending.body.clone()));
        }
        let forget_unused = |served: &str| {
            warpcore_wasm::uploads::retain_uploads(|reference| {
                served.contains(reference) || current.contains(reference)
            });
        };
        let proposed = match control::Spec::parse(&text, &self.registry) {
            Ok(spec) => spec,
            Err(error) => {
                forget_unused(&current);
                let message = alloc::format!("{}", error.kind);
                log::info!("module {name} from {peer} refused: {message}");
                let mut body = String::from("{\"error\":\"module\",\"field\":");
                push_string(&mut body, &error.field);
                body.push_str(",\"message\":");
                push_string(&mut body, &message);
                body.push('}');
                return Reply::json(422, body);
            }
        };
        let changes = plan::changes(self.spec(), &proposed);
        if pending.dry_run {
            forget_unused(&current);
            let mut body = String::from("{\"dryRun\":true,\"valid\":true,\"changes\":");
            plan::push_json(&mut body, &changes);
            body.push('}');
            return Reply::new(200, JSON, body.into_bytes());
        }
        let what = if pending.delete { "removal" } else { "upload" };
        log::info!("module {name} {what} from {peer}: checked, applying");
        let reply = self.apply_spec(peer, proposed, &text, &changes, pending.now_ns);
        forget_unused(self.spec_text());
        reply
    }

    /// A module request's error answer: `{"error":"module","message"}`.
    fn module_error(status: u16, message: &str) -> Reply {
        let mut body = String::from("{\"error\":\"module\",\"message\":");
        push_string(&mut body, message);
        body.push('}');
        Reply::json(status, body)
    }

    /// A valid spec to apply: 409 naming the field when it needs a
    /// restart, 409 while another change is on its way, else 202 with
    /// the new generation (the controller goes on from there; the
    /// status says how it ends).
    fn apply_spec(
        &mut self,
        peer: SocketAddrV4,
        proposed: control::Spec,
        text: &str,
        changes: &[plan::Change],
        now_ns: u64,
    ) -> Reply {
        let Some(controller) = &mut self.controller else {
            log::info!("spec from {peer} is valid but not applied: no controller to reconcile it");
            return Reply::json(
                409,
                String::from(
                    "{\"error\":\"reconcile not available\",\"message\":\"applying a spec needs the controller; use ?dryRun=true to validate\"}",
                ),
            );
        };
        if let Some(needed) = control::reconcile::live::restart_needed(controller.spec(), &proposed)
        {
            controller.refused();
            log::info!("spec from {peer} refused: {}", needed.message);
            let mut body = String::from("{\"error\":\"restart required\",\"field\":");
            push_string(&mut body, &needed.field);
            body.push_str(",\"message\":");
            push_string(&mut body, &needed.message);
            body.push('}');
            return Reply::json(409, body);
        }
        match controller.start(proposed, String::from(text), now_ns) {
            Ok(generation) => {
                log::info!(
                    "spec from {peer} accepted: generation {generation}, {} change(s)",
                    changes.len()
                );
                self.etag = spec_etag(text);
                let mut body = String::new();
                let _ = write!(body, "{{\"generation\":{generation},\"changes\":");
                plan::push_json(&mut body, changes);
                body.push('}');
                Reply::new(202, JSON, body.into_bytes())
            }
            Err(busy) => {
                log::info!(
                    "spec from {peer} refused: generation {} is still being applied",
                    busy.generation
                );
                let mut body = String::from("{\"error\":\"reconciling\",\"message\":");
                push_string(
                    &mut body,
                    &alloc::format!(
                        "generation {} is still being applied; try again when /api/v1/status shows it observed",
                        busy.generation
                    ),
                );
                body.push('}');
                Reply::json(409, body).with_field("Retry-After", "1")
            }
        }
    }
}

impl TcpApp for ManagementApp {
    type Session = ManagementSession;

    /// Moves a change in flight on: the cores' acks come in over their
    /// rings, not through a connection.
    fn poll(&mut self, _ready: &mut Vec<services::tcp::ConnectionId>) {
        self.step_controller();
    }

    /// While a change is on its way: now (the core polls until it ends,
    /// a few milliseconds; every step has a bound).
    fn next_poll_ns(&self) -> Option<u64> {
        self.controller
            .as_ref()
            .filter(|controller| controller.reconciling())
            .map(|_| 0)
    }

    fn accept(&mut self, _peer: SocketAddrV4, io: &mut Stream<'_>) -> Option<ManagementSession> {
        self.started_ns.get_or_insert(io.now_ns());
        io.set_timeout(self.idle_timeout_ms);
        Some(ManagementSession::default())
    }

    fn data(&mut self, session: &mut ManagementSession, data: &[u8], io: &mut Stream<'_>) -> usize {
        if session.closed || matches!(session.reading, Reading::Stopped) {
            return data.len();
        }
        io.set_timeout(self.idle_timeout_ms);
        // Served as it comes: a head read may raise the bound (a module
        // upload's body), so what the bound left is offered again.
        let mut taken = 0;
        loop {
            let room = input_bound(&session.reading).saturating_sub(session.input.len());
            let more = (data.len() - taken).min(room);
            if more == 0 {
                return taken;
            }
            session.input.extend_from_slice(&data[taken..taken + more]);
            taken += more;
            self.serve(session, io);
            if session.closed || matches!(session.reading, Reading::Stopped) {
                return data.len();
            }
        }
    }

    fn writable(&mut self, session: &mut ManagementSession, io: &mut Stream<'_>) {
        self.serve(session, io);
    }

    fn read_closed(&mut self, session: &mut ManagementSession, io: &mut Stream<'_>) {
        session.peer_closed = true;
        self.serve(session, io);
    }

    /// A streaming session is pumped (or reset, when its client took
    /// nothing for the idle timeout). Otherwise an idle connection is
    /// closed; one stalled in the middle of a request or a response is
    /// reset.
    fn timeout(&mut self, session: &mut ManagementSession, io: &mut Stream<'_>) {
        if session.budget_wait {
            // Its turn: the request waiting for the budget is tried again
            // (and waits again if it must).
            io.set_timeout(self.idle_timeout_ms);
            self.serve(session, io);
            return;
        }
        if let Some(streaming) = &session.streaming {
            let unsent = session.written < session.output.len();
            let stalled_ns = io.now_ns().saturating_sub(streaming.last_progress_ns);
            if !unsent || stalled_ns < u64::from(self.idle_timeout_ms) * 1_000_000 {
                self.serve(session, io);
                return;
            }
            session.streaming = None;
            io.abort();
            session.closed = true;
            session.reading = Reading::Stopped;
            return;
        }
        let busy = !session.input.is_empty() || session.written < session.output.len();
        if busy {
            io.abort();
            session.closed = true;
            session.reading = Reading::Stopped;
        } else {
            Self::close(session, io);
        }
    }

    fn closed(&mut self, session: ManagementSession, _reason: CloseReason) {
        if session.budget_wait {
            self.budget.leave();
        }
    }
}
