//! `Listener`: a [`TcpApp`] and its sessions behind one object-safe trait,
//! so that one `tcp` node serves apps of different kinds on its ports.

use super::app::{CloseReason, ConnectError, ConnectionId, Stream, TcpApp};
use alloc::vec::Vec;
use core::net::SocketAddrV4;

/// A TCP app with its sessions, kind erased. Sessions are kept by the
/// connection's slot: the stack calls with the slot it gave on `accept`.
pub trait Listener {
    /// The app's kind, like `http`.
    fn name(&self) -> &'static str;
    /// See [`TcpApp::accept`]; false refuses the connection.
    fn accept(&mut self, slot: u32, peer: SocketAddrV4, io: &mut Stream<'_>) -> bool;
    /// See [`TcpApp::data`].
    fn data(&mut self, slot: u32, data: &[u8], io: &mut Stream<'_>) -> usize;
    /// See [`TcpApp::writable`].
    fn writable(&mut self, slot: u32, io: &mut Stream<'_>);
    /// See [`TcpApp::read_closed`].
    fn read_closed(&mut self, slot: u32, io: &mut Stream<'_>);
    /// See [`TcpApp::timeout`].
    fn timeout(&mut self, slot: u32, io: &mut Stream<'_>);
    /// See [`TcpApp::resume`].
    fn resume(&mut self, slot: u32, io: &mut Stream<'_>);
    /// See [`TcpApp::poll`].
    fn poll(&mut self, ready: &mut Vec<ConnectionId>);
    /// See [`TcpApp::next_poll_ns`].
    fn next_poll_ns(&self) -> Option<u64>;
    /// See [`TcpApp::closed`]; the session is dropped.
    fn closed(&mut self, slot: u32, reason: CloseReason);
    /// Sessions open now.
    fn sessions(&self) -> usize;
    /// See [`TcpApp::connected`]; false resets the connection.
    fn connected(&mut self, slot: u32, token: u64, io: &mut Stream<'_>) -> bool;
    /// See [`TcpApp::connect_failed`].
    fn connect_failed(&mut self, token: u64, error: ConnectError);
    /// See [`TcpApp::take_links`].
    fn take_links(&mut self) -> Option<alloc::boxed::Box<dyn core::any::Any>> {
        None
    }
    /// See [`TcpApp::adopt_links`].
    fn adopt_links(&mut self, _links: alloc::boxed::Box<dyn core::any::Any>) {}
}

/// A [`TcpApp`] and its sessions by connection slot.
pub struct Hosted<A: TcpApp> {
    name: &'static str,
    app: A,
    sessions: Vec<Option<A::Session>>,
    open: usize,
}

impl<A: TcpApp> Hosted<A> {
    /// Hosts `app` under the kind name `name`.
    pub fn new(name: &'static str, app: A) -> Self {
        Self {
            name,
            app,
            sessions: Vec::new(),
            open: 0,
        }
    }

    /// The app itself (tests look at it).
    pub fn app(&self) -> &A {
        &self.app
    }

    /// Keeps `session` for the connection in `slot`.
    fn keep(&mut self, slot: u32, session: A::Session) {
        let index = slot as usize;
        if self.sessions.len() <= index {
            self.sessions.resize_with(index + 1, || None);
        }
        if self.sessions[index].replace(session).is_none() {
            self.open += 1;
        }
    }

    /// Runs `call` on the session in `slot`, if there is one.
    fn with_session<R>(
        &mut self,
        slot: u32,
        call: impl FnOnce(&mut A, &mut A::Session) -> R,
    ) -> Option<R> {
        let session = self.sessions.get_mut(slot as usize)?.as_mut()?;
        Some(call(&mut self.app, session))
    }
}

impl<A: TcpApp> Listener for Hosted<A> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn take_links(&mut self) -> Option<alloc::boxed::Box<dyn core::any::Any>> {
        self.app.take_links()
    }

    fn adopt_links(&mut self, links: alloc::boxed::Box<dyn core::any::Any>) {
        self.app.adopt_links(links);
    }

    fn accept(&mut self, slot: u32, peer: SocketAddrV4, io: &mut Stream<'_>) -> bool {
        let Some(session) = self.app.accept(peer, io) else {
            return false;
        };
        self.keep(slot, session);
        true
    }

    fn connected(&mut self, slot: u32, token: u64, io: &mut Stream<'_>) -> bool {
        let Some(session) = self.app.connected(token, io) else {
            return false;
        };
        self.keep(slot, session);
        true
    }

    fn connect_failed(&mut self, token: u64, error: ConnectError) {
        self.app.connect_failed(token, error);
    }

    fn data(&mut self, slot: u32, data: &[u8], io: &mut Stream<'_>) -> usize {
        // No session (a bug): consume, so that nothing piles up.
        self.with_session(slot, |app, session| app.data(session, data, io))
            .unwrap_or(data.len())
    }

    fn writable(&mut self, slot: u32, io: &mut Stream<'_>) {
        self.with_session(slot, |app, session| app.writable(session, io));
    }

    fn read_closed(&mut self, slot: u32, io: &mut Stream<'_>) {
        self.with_session(slot, |app, session| app.read_closed(session, io));
    }

    fn timeout(&mut self, slot: u32, io: &mut Stream<'_>) {
        self.with_session(slot, |app, session| app.timeout(session, io));
    }

    fn resume(&mut self, slot: u32, io: &mut Stream<'_>) {
        self.with_session(slot, |app, session| app.resume(session, io));
    }

    fn poll(&mut self, ready: &mut Vec<ConnectionId>) {
        self.app.poll(ready);
    }

    fn next_poll_ns(&self) -> Option<u64> {
        self.app.next_poll_ns()
    }

    fn closed(&mut self, slot: u32, reason: CloseReason) {
        let session = self.sessions.get_mut(slot as usize).and_then(Option::take);
        if let Some(session) = session {
            self.open -= 1;
            self.app.closed(session, reason);
        }
    }

    fn sessions(&self) -> usize {
        self.open
    }
}
