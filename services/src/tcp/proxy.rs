//! `tcp-proxy`: listens on a port and, for every client, opens a
//! connection to one backend from the same core (`Stream::connect`), then
//! splices the two both ways, half-closes included. The first app that
//! opens connections, and the one the active-open tests drive.
//!
//! The two connections of a pair are two sessions of the app; bytes move
//! between them through a bounded pipe per direction (one copy: the stack
//! lends one connection's received bytes, the other's send buffer takes
//! them when it is called). What a full pipe cannot take stays with the
//! stack, whose receive window shrinks: the fast side waits for the slow
//! one, memory per pair stays bounded.

use super::app::{CloseReason, ConnectError, ConnectionId, Stream, TcpApp};
use crate::registry::{BuildContext, TcpServiceKind, UdpPort};
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddrV4;
use serde::Deserialize;

/// Which connection of a pair a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The one a client opened to us.
    Client,
    /// The one we opened to the backend.
    Backend,
}

/// A session: its pair and side.
#[derive(Debug, Clone, Copy)]
pub struct ProxySession {
    pair: u32,
    side: Side,
}

/// One direction's bytes on their way.
#[derive(Debug, Default)]
struct Pipe {
    bytes: VecDeque<u8>,
    /// The side that fills it sent FIN: pass it on once drained.
    finished: bool,
}

/// A client, its backend connection, and the bytes between them.
#[derive(Debug)]
struct Pair {
    generation: u32,
    client: Option<ConnectionId>,
    backend: Option<ConnectionId>,
    /// The backend connection is asked for and not yet open or failed.
    connecting: bool,
    /// Client to backend.
    upstream: Pipe,
    /// Backend to client.
    downstream: Pipe,
    /// A side ended badly (reset, timed out, never opened): the other is
    /// reset when next called.
    abort: bool,
    /// A side could not put everything in its pipe: resume it when the
    /// pipe drains, so that the stack lends its bytes again.
    client_blocked: bool,
    backend_blocked: bool,
}

impl Pair {
    fn pipe_from(&mut self, side: Side) -> &mut Pipe {
        match side {
            Side::Client => &mut self.upstream,
            Side::Backend => &mut self.downstream,
        }
    }

    fn pipe_to(&mut self, side: Side) -> &mut Pipe {
        match side {
            Side::Client => &mut self.downstream,
            Side::Backend => &mut self.upstream,
        }
    }

    fn id(&self, side: Side) -> Option<ConnectionId> {
        match side {
            Side::Client => self.client,
            Side::Backend => self.backend,
        }
    }

    fn blocked(&mut self, side: Side) -> &mut bool {
        match side {
            Side::Client => &mut self.client_blocked,
            Side::Backend => &mut self.backend_blocked,
        }
    }

    fn gone(&self) -> bool {
        self.client.is_none() && self.backend.is_none() && !self.connecting
    }
}

fn other(side: Side) -> Side {
    match side {
        Side::Client => Side::Backend,
        Side::Backend => Side::Client,
    }
}

/// The proxy on one core.
#[derive(Debug)]
pub struct TcpProxy {
    backend: SocketAddrV4,
    pipe_limit: usize,
    pairs: Vec<Option<Pair>>,
    free: Vec<u32>,
    generations: Vec<u32>,
    /// Connections to call back ([`TcpApp::resume`]) at the next poll.
    ready: Vec<ConnectionId>,
}

impl TcpProxy {
    /// A proxy to `backend` holding up to `pipe_limit` bytes per direction
    /// of each pair.
    pub fn new(backend: SocketAddrV4, pipe_limit: usize) -> Self {
        Self {
            backend,
            pipe_limit: pipe_limit.max(1),
            pairs: Vec::new(),
            free: Vec::new(),
            generations: Vec::new(),
            ready: Vec::new(),
        }
    }

    /// Pairs open now (a client, its backend, or both).
    pub fn pairs(&self) -> usize {
        self.pairs.iter().filter(|pair| pair.is_some()).count()
    }

    /// The token a backend connection carries: its pair and generation.
    fn token(pair: u32, generation: u32) -> u64 {
        u64::from(generation) << 32 | u64::from(pair)
    }

    fn pair_of_token(&mut self, token: u64) -> Option<(u32, &mut Pair)> {
        let index = token as u32;
        let pair = self.pairs.get_mut(index as usize)?.as_mut()?;
        (pair.generation == (token >> 32) as u32).then_some((index, pair))
    }

    fn release_if_gone(&mut self, index: u32) {
        if self.pairs[index as usize].as_ref().is_some_and(Pair::gone) {
            self.pairs[index as usize] = None;
            self.generations[index as usize] = self.generations[index as usize].wrapping_add(1);
            self.free.push(index);
        }
    }

    /// Moves what waits for `side` into its send buffer, passes a FIN on
    /// once the pipe is drained, resets it when the pair went bad.
    fn flush(&mut self, session: &ProxySession, io: &mut Stream<'_>) {
        let Some(pair) = self.pairs[session.pair as usize].as_mut() else {
            io.abort();
            return;
        };
        if pair.abort {
            io.abort();
            return;
        }
        let pipe = pair.pipe_to(session.side);
        let mut moved = 0;
        while !pipe.bytes.is_empty() {
            let (front, _) = pipe.bytes.as_slices();
            let length = front.len();
            let written = io.write(front);
            pipe.bytes.drain(..written);
            moved += written;
            if written < length {
                break;
            }
        }
        if !pipe.bytes.is_empty() {
            io.want_writable();
        } else if pipe.finished {
            io.close();
        }
        let source = other(session.side);
        if moved > 0
            && core::mem::take(pair.blocked(source))
            && let Some(id) = pair.id(source)
        {
            self.ready.push(id);
        }
    }

    /// Resumes the other side of `session`'s pair (its pipe has news).
    fn wake_other(&mut self, session: &ProxySession) {
        if let Some(pair) = self.pairs[session.pair as usize].as_ref()
            && let Some(id) = pair.id(other(session.side))
        {
            self.ready.push(id);
        }
    }
}

impl TcpApp for TcpProxy {
    type Session = ProxySession;

    fn accept(&mut self, _peer: SocketAddrV4, io: &mut Stream<'_>) -> Option<ProxySession> {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.pairs.push(None);
                self.generations.push(0);
                (self.pairs.len() - 1) as u32
            }
        };
        let generation = self.generations[index as usize];
        self.pairs[index as usize] = Some(Pair {
            generation,
            client: Some(io.id()),
            backend: None,
            connecting: true,
            upstream: Pipe::default(),
            downstream: Pipe::default(),
            abort: false,
            client_blocked: false,
            backend_blocked: false,
        });
        io.connect(self.backend, Self::token(index, generation));
        Some(ProxySession {
            pair: index,
            side: Side::Client,
        })
    }

    fn connected(&mut self, token: u64, io: &mut Stream<'_>) -> Option<ProxySession> {
        let (index, pair) = self.pair_of_token(token)?;
        pair.connecting = false;
        if pair.client.is_none() || pair.abort {
            // The client left while we dialled: nobody to serve.
            self.release_if_gone(index);
            return None;
        }
        pair.backend = Some(io.id());
        let session = ProxySession {
            pair: index,
            side: Side::Backend,
        };
        self.flush(&session, io);
        Some(session)
    }

    fn connect_failed(&mut self, token: u64, _error: ConnectError) {
        let Some((index, pair)) = self.pair_of_token(token) else {
            return;
        };
        pair.connecting = false;
        pair.abort = true;
        if let Some(client) = pair.client {
            self.ready.push(client);
        }
        self.release_if_gone(index);
    }

    fn data(&mut self, session: &mut ProxySession, data: &[u8], io: &mut Stream<'_>) -> usize {
        let limit = self.pipe_limit;
        let Some(pair) = self.pairs[session.pair as usize].as_mut() else {
            return data.len();
        };
        let pipe = pair.pipe_from(session.side);
        let taken = data.len().min(limit.saturating_sub(pipe.bytes.len()));
        pipe.bytes.extend(&data[..taken]);
        if taken < data.len() {
            // The rest waits in the stack, unlent (so that its FIN is not
            // told before it), until the pipe drains and we resume it.
            *pair.blocked(session.side) = true;
            io.pause_reading(true);
        }
        if taken > 0 {
            self.wake_other(session);
        }
        taken
    }

    fn writable(&mut self, session: &mut ProxySession, io: &mut Stream<'_>) {
        self.flush(session, io);
    }

    fn resume(&mut self, session: &mut ProxySession, io: &mut Stream<'_>) {
        self.flush(session, io);
        let limit = self.pipe_limit;
        if let Some(pair) = self.pairs[session.pair as usize].as_mut()
            && pair.pipe_from(session.side).bytes.len() < limit
        {
            io.pause_reading(false);
        }
    }

    /// The side sent FIN: pass it on once its bytes are through; this
    /// side's own sending goes on (half-close).
    fn read_closed(&mut self, session: &mut ProxySession, _io: &mut Stream<'_>) {
        if let Some(pair) = self.pairs[session.pair as usize].as_mut() {
            pair.pipe_from(session.side).finished = true;
            self.wake_other(session);
        }
    }

    fn poll(&mut self, ready: &mut Vec<ConnectionId>) {
        ready.append(&mut self.ready);
    }

    fn closed(&mut self, session: ProxySession, reason: CloseReason) {
        let Some(pair) = self.pairs[session.pair as usize].as_mut() else {
            return;
        };
        match session.side {
            Side::Client => pair.client = None,
            Side::Backend => pair.backend = None,
        }
        if reason != CloseReason::Closed {
            pair.abort = true;
        }
        // The other side finishes what it was sending, or is reset.
        let other_id = pair.id(other(session.side));
        let pipe = pair.pipe_from(session.side);
        pipe.finished = true;
        if let Some(id) = other_id {
            self.ready.push(id);
        }
        self.release_if_gone(session.pair);
    }
}

/// `tcp-proxy`'s table: `port = 8080`, `backend = "10.0.0.1:8000"`, and
/// optionally `buffer` (bytes held per direction of each pair, default
/// 64 KiB).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpProxyConfig {
    /// The TCP port clients connect to.
    pub port: UdpPort,
    /// The backend's address and port, like `10.0.0.1:8000`.
    pub backend: String,
    /// Bytes held per direction of each pair.
    #[serde(default = "default_buffer")]
    pub buffer: usize,
}

fn default_buffer() -> usize {
    64 * 1024
}

impl TcpProxyConfig {
    /// The backend's address, or why `backend` is not one.
    pub fn backend_address(&self) -> Result<SocketAddrV4, String> {
        let address: SocketAddrV4 = self.backend.parse().map_err(|_| {
            alloc::format!(
                "expected an IPv4 address and port like \"10.0.0.1:8000\", got \"{}\"",
                self.backend
            )
        })?;
        if address.port() == 0 || address.ip().is_unspecified() || address.ip().is_broadcast() {
            return Err(alloc::format!(
                "\"{}\" cannot be connected to (port 0, 0.0.0.0 or broadcast)",
                self.backend
            ));
        }
        Ok(address)
    }
}

/// `tcp-proxy`: splices every client of its port with a connection of
/// its own to `backend`.
#[derive(Debug)]
pub struct TcpProxyKind;

impl TcpServiceKind for TcpProxyKind {
    const NAME: &'static str = "tcp-proxy";
    type Config = TcpProxyConfig;
    type App = TcpProxy;

    fn port(config: &TcpProxyConfig) -> u16 {
        config.port.0
    }

    fn check(
        config: &TcpProxyConfig,
        _spec: &crate::registry::SpecSummary<'_>,
    ) -> Result<(), String> {
        config.backend_address()?;
        if !(1..=16 * 1024 * 1024).contains(&config.buffer) {
            return Err(alloc::format!(
                "buffer: expected 1 to 16777216 bytes, got {}",
                config.buffer
            ));
        }
        Ok(())
    }

    fn build(config: &TcpProxyConfig, _context: &BuildContext<'_>) -> TcpProxy {
        // `check` refused a bad address before any core builds.
        let backend = config
            .backend_address()
            .unwrap_or(SocketAddrV4::new(core::net::Ipv4Addr::LOCALHOST, 1));
        TcpProxy::new(backend, config.buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::StreamHarness;

    #[test]
    fn bytes_cross_in_order_within_the_pipe_limit_and_a_fin_follows_them() {
        let backend = SocketAddrV4::new(core::net::Ipv4Addr::new(10, 0, 0, 1), 8000);
        let mut proxy = TcpProxy::new(backend, 4);
        let mut client = StreamHarness::new(64);
        let mut session = proxy.accept(backend, &mut client.stream()).unwrap();
        let (remote, token) = client.connect_requested().unwrap();
        assert_eq!(remote, backend);
        assert_eq!(proxy.data(&mut session, b"hello", &mut client.stream()), 4);
        assert_eq!(client.reading_paused(), Some(true));
        let mut upstream = StreamHarness::new(64);
        let mut backend_session = proxy.connected(token, &mut upstream.stream()).unwrap();
        assert_eq!(upstream.take_sent(), b"hell");
        let mut ready = Vec::new();
        proxy.poll(&mut ready);
        assert_eq!(ready.len(), 1, "the blocked client is resumed");
        proxy.resume(&mut session, &mut client.stream());
        assert_eq!(client.reading_paused(), Some(false));
        assert_eq!(proxy.data(&mut session, b"o", &mut client.stream()), 1);
        proxy.read_closed(&mut session, &mut client.stream());
        assert!(
            !client.close_requested(),
            "half-close: the client may still be answered"
        );
        assert!(!upstream.close_requested());
        proxy.resume(&mut backend_session, &mut upstream.stream());
        assert_eq!(upstream.take_sent(), b"o");
        assert!(upstream.close_requested(), "the FIN follows the last byte");
    }

    #[test]
    fn a_backend_that_cannot_be_reached_resets_its_client() {
        let backend = SocketAddrV4::new(core::net::Ipv4Addr::new(10, 0, 0, 1), 8000);
        let mut proxy = TcpProxy::new(backend, 64);
        let mut client = StreamHarness::new(64);
        let mut session = proxy.accept(backend, &mut client.stream()).unwrap();
        let (_, token) = client.connect_requested().unwrap();
        proxy.connect_failed(token, ConnectError::Refused);
        let mut ready = Vec::new();
        proxy.poll(&mut ready);
        assert_eq!(ready.len(), 1);
        proxy.resume(&mut session, &mut client.stream());
        assert!(client.aborted());
        proxy.closed(session, CloseReason::Aborted);
        assert_eq!(proxy.pairs(), 0);
    }

    #[test]
    fn a_bad_backend_is_refused_with_its_text() {
        let config = TcpProxyConfig {
            port: UdpPort(8080),
            backend: "10.0.0.1".into(),
            buffer: 10,
        };
        assert!(config.backend_address().unwrap_err().contains("10.0.0.1"));
    }
}
