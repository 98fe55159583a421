//! The TCP app API: what a service author implements to serve a TCP port
//! (`TcpApp`), and the `Stream` through which an app reads and writes one
//! connection with buffers lent by the stack.
//!
//! The stack calls the app from the `tcp` node, on the core the connection
//! lives on, to completion: no locks, no threads, no copies it can avoid.
//! Received bytes are lent straight from the packet buffer when nothing is
//! waiting before them; bytes the app leaves unconsumed are kept and lent
//! again, with what follows, on the next call. Sent bytes are written into
//! the connection's send buffer (which keeps them for retransmission) and
//! copied once into packet buffers as the window opens.

use core::net::SocketAddrV4;

/// Identifies a connection on its core: a slot and a generation, so an id
/// kept past the connection's end never names its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId {
    /// Index of the connection's slot.
    pub slot: u32,
    /// Generation of the slot when the connection took it.
    pub generation: u32,
}

/// Why a connection ended, as [`TcpApp::closed`] is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Both sides sent FIN and every byte was acknowledged.
    Closed,
    /// The peer sent RST.
    Reset,
    /// Retransmissions or keep-alive probes went unanswered.
    TimedOut,
    /// The app aborted it ([`Stream::abort`]).
    Aborted,
}

/// Why a connection an app asked for ([`Stream::connect`]) never opened,
/// as [`TcpApp::connect_failed`] is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    /// The peer answered the SYN with RST (nothing listens there).
    Refused,
    /// The SYN went unanswered through every retransmission.
    TimedOut,
    /// No route leads to the address, or no address of ours is on it.
    NoRoute,
    /// Every ephemeral port of this core is taken for that peer.
    NoPort,
    /// The core holds `max_connections` already.
    TableFull,
    /// The app gave the connection no session ([`TcpApp::connected`]
    /// returned `None`): it was reset.
    NotWanted,
}

/// A TCP server: one instance per core for one port. `Session` is the app's
/// state for one connection; the stack keeps it beside the connection and
/// lends it back on every call.
///
/// ```ignore
/// struct Hello;
/// impl TcpApp for Hello {
///     type Session = ();
///     fn accept(&mut self, _peer: SocketAddrV4, _io: &mut Stream<'_>) -> Option<()> { Some(()) }
///     fn data(&mut self, _: &mut (), data: &[u8], io: &mut Stream<'_>) -> usize {
///         io.write(b"hello\n");
///         io.close();
///         data.len()
///     }
/// }
/// ```
pub trait TcpApp: 'static {
    /// The app's state for one connection.
    type Session;

    /// A connection was established with `peer`: its session, or `None` to
    /// refuse it (the stack resets it).
    fn accept(&mut self, peer: SocketAddrV4, io: &mut Stream<'_>) -> Option<Self::Session>;

    /// Bytes arrived, in order. Returns how many the app consumed; the rest
    /// is lent again, followed by what arrives next, on the next call (the
    /// receive window shrinks by what is kept).
    fn data(&mut self, session: &mut Self::Session, data: &[u8], io: &mut Stream<'_>) -> usize;

    /// The send buffer has room again, after the app asked with
    /// [`Stream::want_writable`].
    fn writable(&mut self, _session: &mut Self::Session, _io: &mut Stream<'_>) {}

    /// The peer closed its side (FIN): no more data will arrive. The app
    /// may still write; by default it closes its side too.
    fn read_closed(&mut self, _session: &mut Self::Session, io: &mut Stream<'_>) {
        io.close();
    }

    /// The timer the app set with [`Stream::set_timeout`] fired. By default
    /// the connection is closed.
    fn timeout(&mut self, _session: &mut Self::Session, io: &mut Stream<'_>) {
        io.close();
    }

    /// The app asked (through [`TcpApp::poll`]) to be called back for this
    /// connection: work it waited for elsewhere (another core) is done.
    fn resume(&mut self, _session: &mut Self::Session, _io: &mut Stream<'_>) {}

    /// Called once per run of the `tcp` node, after its burst and on its
    /// tick: the app pushes onto `ready` the connections it wants
    /// [`TcpApp::resume`]d.
    fn poll(&mut self, _ready: &mut alloc::vec::Vec<ConnectionId>) {}

    /// When the app next needs [`TcpApp::poll`] although no packet comes,
    /// on the platform clock (a time already past: now, and the core does
    /// not sleep), or `None`: only when packets come. Asked when the core
    /// is about to sleep, after it told other cores so: an app fed by rings
    /// from other cores answers "now" when one holds something, and has
    /// their producers ring the core's doorbell (`Producer::notify`) so
    /// that it wakes for the next. Timers of a connection go through
    /// [`Stream::set_timeout`], not here.
    fn next_poll_ns(&self) -> Option<u64> {
        None
    }

    /// The connection is gone; `session` is dropped after this.
    fn closed(&mut self, _session: Self::Session, _reason: CloseReason) {}

    /// A connection the app opened ([`Stream::connect`] with `token`) is
    /// established: its session, or `None` to reset it. It lives on this
    /// core, like the connection that asked for it.
    fn connected(&mut self, _token: u64, _io: &mut Stream<'_>) -> Option<Self::Session> {
        None
    }

    /// The connection asked for with `token` never opened.
    fn connect_failed(&mut self, _token: u64, _error: ConnectError) {}

    /// The ends of links to other cores the app holds (`kv`'s shard
    /// rings), taken out of a failed app for the one rebuilt from its
    /// spec, which [`adopt_links`](TcpApp::adopt_links) them. None by
    /// default.
    fn take_links(&mut self) -> Option<alloc::boxed::Box<dyn core::any::Any>> {
        None
    }

    /// Takes the links a failed app of the same kind gave up. Ignored by
    /// default.
    fn adopt_links(&mut self, _links: alloc::boxed::Box<dyn core::any::Any>) {}
}

/// What an app may do with one connection while the stack lends it.
#[derive(Debug)]
pub struct Stream<'a> {
    pub(super) id: ConnectionId,
    pub(super) peer: SocketAddrV4,
    pub(super) now_ns: u64,
    pub(super) send: &'a mut super::buffer::SendBuffer,
    pub(super) requests: &'a mut Requests,
}

/// What an app asked of its connection during one call.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Requests {
    /// Send FIN once the send buffer drains.
    pub(crate) close: bool,
    /// Reset the connection now.
    pub(crate) abort: bool,
    /// Call `writable` when the send buffer has room.
    pub(crate) want_writable: bool,
    /// Stop or restart reading (the receive window closes).
    pub(crate) pause_reading: Option<bool>,
    /// Set (`Some(ms)`) or clear (`Some(0)`) the app's timer.
    pub(crate) timeout_ms: Option<u32>,
    /// Open a connection to this address, the app's token with it.
    pub(crate) connect: Option<(SocketAddrV4, u64)>,
    /// Hold the ACK owed for what arrived: the answer follows shortly.
    pub(crate) hold_ack: bool,
}

impl Stream<'_> {
    /// This connection's id (keep it to be resumed later).
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// The peer's address and port.
    pub fn peer(&self) -> SocketAddrV4 {
        self.peer
    }

    /// The platform clock, in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Bytes the send buffer has room for now.
    pub fn send_capacity(&self) -> usize {
        self.send.free()
    }

    /// Queues as much of `bytes` as fits and returns how much that was.
    pub fn write(&mut self, bytes: &[u8]) -> usize {
        self.send.write(bytes)
    }

    /// Lends the send buffer's free space (one contiguous part of it) to
    /// `fill`, which writes into it and returns how many bytes it wrote:
    /// the app formats straight into the buffer the stack sends from.
    pub fn write_with(&mut self, fill: impl FnOnce(&mut [u8]) -> usize) -> usize {
        self.send.write_with(fill)
    }

    /// Sends FIN after everything written so far (the app's half-close).
    pub fn close(&mut self) {
        self.requests.close = true;
    }

    /// Resets the connection now; unsent data is thrown away.
    pub fn abort(&mut self) {
        self.requests.abort = true;
    }

    /// Asks for [`TcpApp::writable`] when the send buffer has room.
    pub fn want_writable(&mut self) {
        self.requests.want_writable = true;
    }

    /// Stops (`true`) or resumes (`false`) reading: while paused, received
    /// data is kept, unlent, and the receive window closes as it fills.
    pub fn pause_reading(&mut self, paused: bool) {
        self.requests.pause_reading = Some(paused);
    }

    /// Opens a connection from this core to `remote` (one per call; a
    /// later call in the same callback replaces it). Its SYN leaves on this
    /// core's transmit queue from an ephemeral port this core owns, so
    /// that the answers come back here (see the README's "Active open");
    /// the app hears [`TcpApp::connected`] or [`TcpApp::connect_failed`]
    /// with `token`.
    pub fn connect(&mut self, remote: SocketAddrV4, token: u64) {
        self.requests.connect = Some((remote, token));
    }

    /// The answer to what arrived is on its way (another core prepares
    /// it) and will be written within a millisecond or two: the stack
    /// holds the bare ACK it owes, so that the ACK leaves with the answer
    /// (one segment instead of two). A delayed ACK as RFC 9293 3.8.6.3
    /// allows, bounded tighter: sent alone after
    /// [`ACK_HOLD_MS`](super::connection::ACK_HOLD_MS) at most, and at
    /// once when two full-sized segments are unacknowledged or the
    /// connection is not established.
    pub fn hold_ack(&mut self) {
        self.requests.hold_ack = true;
    }

    /// Calls [`TcpApp::timeout`] after `milliseconds` (0 clears the timer).
    /// Setting it again moves it.
    pub fn set_timeout(&mut self, milliseconds: u32) {
        self.requests.timeout_ms = Some(milliseconds);
    }
}
