//! `HttpApp`: the HTTP/1.1 server as a [`TcpApp`]: reads requests from the
//! bytes the stack lends, answers them in order (pipelining), keeps
//! connections alive, and closes idle ones.
//!
//! Flow control is the send buffer's: when a response does not fit, the
//! app stops consuming request bytes, asks for `writable`, and goes on
//! from there. The stack keeps the unconsumed bytes and lends them again
//! (with what arrives after them) on the next `data` call.

use super::config::HttpConfig;
use super::counters::HttpCounters;
use super::error::RequestError;
use super::request::{HeadScanner, RequestHead, parse_request};
use super::routes::RouteTable;
use super::session::HttpSession;
use crate::tcp::{CloseReason, Stream, TcpApp};
use core::net::SocketAddrV4;

/// What the server needs of a connection: the part of [`Stream`] it uses,
/// so that a fuzzer or a benchmark can drive the server without a stack.
pub trait Transport {
    /// See [`Stream::write`].
    fn write(&mut self, bytes: &[u8]) -> usize;
    /// See [`Stream::write_with`].
    fn write_with(&mut self, fill: impl FnOnce(&mut [u8]) -> usize) -> usize;
    /// See [`Stream::send_capacity`].
    fn send_capacity(&self) -> usize;
    /// See [`Stream::close`].
    fn close(&mut self);
    /// See [`Stream::abort`].
    fn abort(&mut self);
    /// See [`Stream::want_writable`].
    fn want_writable(&mut self);
    /// See [`Stream::set_timeout`].
    fn set_timeout(&mut self, milliseconds: u32);
}

impl Transport for Stream<'_> {
    fn write(&mut self, bytes: &[u8]) -> usize {
        Stream::write(self, bytes)
    }
    fn write_with(&mut self, fill: impl FnOnce(&mut [u8]) -> usize) -> usize {
        Stream::write_with(self, fill)
    }
    fn send_capacity(&self) -> usize {
        Stream::send_capacity(self)
    }
    fn close(&mut self) {
        Stream::close(self);
    }
    fn abort(&mut self) {
        Stream::abort(self);
    }
    fn want_writable(&mut self) {
        Stream::want_writable(self);
    }
    fn set_timeout(&mut self, milliseconds: u32) {
        Stream::set_timeout(self, milliseconds);
    }
}

/// The HTTP/1.1 server of one core.
#[derive(Debug, Clone)]
pub struct HttpApp {
    pub(super) routes: RouteTable,
    pub(super) max_header_bytes: usize,
    pub(super) max_body_bytes: u64,
    pub(super) idle_timeout_ms: u32,
    pub(super) counters: HttpCounters,
}

impl HttpApp {
    /// A server answering from `config`'s routes.
    pub fn new(config: &HttpConfig) -> Self {
        Self {
            routes: RouteTable::new(config.routes.clone()),
            max_header_bytes: config.max_header_bytes,
            max_body_bytes: config.max_body_bytes,
            idle_timeout_ms: config.idle_timeout_ms,
            counters: HttpCounters::default(),
        }
    }

    /// This core's counters.
    pub fn counters(&self) -> &HttpCounters {
        &self.counters
    }

    /// A new connection's session (what `accept` keeps).
    pub fn open(&mut self, io: &mut impl Transport) -> HttpSession {
        self.counters.connections += 1;
        self.arm_idle_timer(io);
        HttpSession::default()
    }

    /// See [`TcpApp::data`].
    pub fn serve_data(
        &mut self,
        session: &mut HttpSession,
        data: &[u8],
        io: &mut impl Transport,
    ) -> usize {
        let consumed = self.serve(session, data, io);
        self.counters.bytes_received += consumed as u64;
        session.kept = data.len() - consumed;
        if session.peer_closed && !session.busy() && !session.closed {
            // What is left can never become a whole request.
            self.close(session, io);
        }
        self.arm_idle_timer(io);
        consumed
    }

    /// See [`TcpApp::writable`].
    pub fn serve_writable(&mut self, session: &mut HttpSession, io: &mut impl Transport) {
        // Nothing is lent here: kept request bytes come back with `data`.
        self.serve(session, &[], io);
        if session.peer_closed && !session.busy() && session.kept == 0 && !session.closed {
            self.close(session, io);
        }
        self.arm_idle_timer(io);
    }

    /// See [`TcpApp::read_closed`]: the current response is finished
    /// first; without one the connection closes now.
    pub fn serve_read_closed(&mut self, session: &mut HttpSession, io: &mut impl Transport) {
        session.peer_closed = true;
        session.keep_alive = false;
        // Unless a response is being written (with more requests perhaps
        // kept behind it), what is left can never become a request: a
        // body cut short, or part of a head.
        if session.body.is_some() || session.response.is_none() {
            self.close(session, io);
        }
    }

    /// See [`TcpApp::timeout`]: an idle connection is closed; one stalled
    /// in the middle of a request or response is reset.
    pub fn serve_timeout(&mut self, session: &mut HttpSession, io: &mut impl Transport) {
        self.counters.idle_timeouts += 1;
        if session.busy() {
            io.abort();
            session.closed = true;
            session.stop_reading = true;
        } else {
            self.close(session, io);
        }
    }

    /// Reads requests and writes responses until the input is used up or
    /// the send buffer is full; returns the bytes consumed.
    fn serve(&mut self, session: &mut HttpSession, data: &[u8], io: &mut impl Transport) -> usize {
        let mut consumed = 0;
        loop {
            if session.closed {
                return data.len();
            }
            if session.response.is_some() {
                if !self.push_response(session, io) {
                    io.want_writable();
                    break;
                }
                session.response = None;
                if session.body.is_none() {
                    self.request_done(session, io);
                }
                continue;
            }
            if session.stop_reading {
                return data.len();
            }
            let rest = &data[consumed..];
            if session.body.is_some() {
                match self.read_body(session, rest, io) {
                    Ok(progress) => {
                        consumed += progress.used;
                        if progress.blocked {
                            io.want_writable();
                            break;
                        }
                        if !progress.done {
                            break;
                        }
                        if !session.busy() {
                            // A streamed echo ends with its request body.
                            self.request_done(session, io);
                        }
                    }
                    Err(error) => {
                        self.refuse(session, error);
                        consumed = data.len();
                    }
                }
                continue;
            }
            // Empty lines between requests are ignored (RFC 9112 2.2).
            let blank = rest
                .iter()
                .take_while(|byte| matches!(byte, b'\r' | b'\n'))
                .count();
            if blank > 0 && session.scanner == Default::default() {
                consumed += blank;
                continue;
            }
            if rest.is_empty() {
                break;
            }
            match self.next_head(session, rest) {
                Ok(None) => break,
                Ok(Some(head)) => {
                    consumed += head.length;
                    self.counters.requests += 1;
                    self.start_request(session, &head, &rest[..head.length], io);
                }
                Err(error) => {
                    self.counters.requests += 1;
                    self.refuse(session, error);
                    consumed = data.len();
                }
            }
        }
        consumed
    }

    /// The request head at the start of `rest`, once it is whole. A head
    /// that arrived whole is parsed in one pass; one split across
    /// arrivals is followed by the scanner (each byte read once however
    /// thinly it trickles in) and parsed when its end is found.
    fn next_head(
        &self,
        session: &mut HttpSession,
        rest: &[u8],
    ) -> Result<Option<RequestHead>, RequestError> {
        if session.scanner == HeadScanner::default()
            && let Some(head) = parse_request(rest, self.max_header_bytes)?
        {
            return Ok(Some(head));
        }
        let Some(length) = session.scanner.scan(rest, self.max_header_bytes)? else {
            return Ok(None);
        };
        match parse_request(&rest[..length], self.max_header_bytes)? {
            Some(head) if head.length == length => Ok(Some(head)),
            _ => Err(RequestError::Malformed),
        }
    }

    /// Answers a refused request with its status; the connection closes
    /// after the answer.
    pub(super) fn refuse(&mut self, session: &mut HttpSession, error: RequestError) {
        self.counters.request_errors.count(error);
        session.body = None;
        session.keep_alive = false;
        session.stop_reading = true;
        session.response = Some(super::session::Outgoing::error(
            error.status(),
            super::response::ConnectionField::Close,
            false,
        ));
    }

    /// A request and its response are complete: close, or wait for the
    /// next request.
    pub(super) fn request_done(&mut self, session: &mut HttpSession, io: &mut impl Transport) {
        if !session.keep_alive || session.stop_reading {
            self.close(session, io);
        }
    }

    /// Closes our side after what was written.
    fn close(&mut self, session: &mut HttpSession, io: &mut impl Transport) {
        io.close();
        session.closed = true;
        session.stop_reading = true;
    }

    /// (Re)starts the idle timer.
    fn arm_idle_timer(&self, io: &mut impl Transport) {
        if self.idle_timeout_ms != 0 {
            io.set_timeout(self.idle_timeout_ms);
        }
    }
}

impl TcpApp for HttpApp {
    type Session = HttpSession;

    fn accept(&mut self, _peer: SocketAddrV4, io: &mut Stream<'_>) -> Option<HttpSession> {
        Some(self.open(io))
    }

    fn data(&mut self, session: &mut HttpSession, data: &[u8], io: &mut Stream<'_>) -> usize {
        self.serve_data(session, data, io)
    }

    fn writable(&mut self, session: &mut HttpSession, io: &mut Stream<'_>) {
        self.serve_writable(session, io);
    }

    fn read_closed(&mut self, session: &mut HttpSession, io: &mut Stream<'_>) {
        self.serve_read_closed(session, io);
    }

    fn timeout(&mut self, session: &mut HttpSession, io: &mut Stream<'_>) {
        self.serve_timeout(session, io);
    }

    fn closed(&mut self, _session: HttpSession, _reason: CloseReason) {}
}
