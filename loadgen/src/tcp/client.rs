//! The TCP load: N connections, each with one request outstanding, over
//! smoltcp on loadgen's frames. Closed loop by default; with a rate each
//! connection sends on a fixed schedule and latency counts from the
//! scheduled send time, so a slow reply also charges the requests it
//! delayed (no coordinated omission), as `tcp-load` does on kernel sockets.
//!
//! smoltcp's `Interface` finds a segment's socket by walking every socket
//! it has, and its egress walks them all on every poll. So connections
//! are split into shards of [`CONNECTIONS_PER_SHARD`], each an interface
//! and socket set of its own with the same MAC and address: a frame goes
//! to the shard that owns its destination port (ARP replies to all of
//! them), and only shards with frames, due requests or due timers are
//! polled. The per-request cost then stays that of a 16-socket stack
//! whatever the connection count.

use super::device::QueueDevice;
use super::protocol::{self, Protocol, ReplyError};
use crate::port::FramePort;
use crate::run::RunResult;
use crate::socket::FRAME_BUFFER;
use crate::tracker::Summary;
use anyhow::{Result, bail};
use hdrhistogram::Histogram;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Connections per smoltcp interface (see the module's summary).
pub const CONNECTIONS_PER_SHARD: usize = 16;
/// Bytes of each socket's receive and send buffers (a reply or request is
/// tens of bytes; one is outstanding at a time).
const SOCKET_BUFFER: usize = 4096;
/// Frames read from the port at once.
const RECEIVE_BURST: usize = 64;
/// The first local port; connection `i` of `N` owns the ports
/// `FIRST_PORT + i + k * N` for `k < PORT_SPAN / N` and uses them in turn
/// ([`local_port`]), so no two connections ever share one.
const FIRST_PORT: u16 = 20_000;
const PORT_SPAN: u32 = 40_000;
/// The longest sleep on the port when nothing is due.
const MAX_SLEEP: Duration = Duration::from_millis(1);
/// How long one handshake may take before its connection tries again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long all connections together may take to be established before
/// the load (a guest whose driver is up may not serve yet).
pub const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a failed connection waits before it connects again (as
/// `tcp-load`), so a server that refuses or resets is not met with SYNs
/// at the round-trip rate.
pub const RECONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// What to ask, of whom, how fast and for how long.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Our MAC (smoltcp answers ARP for `source_ip` with it).
    pub source_mac: [u8; 6],
    /// Our address.
    pub source_ip: Ipv4Addr,
    /// The prefix length of our address's network (the server is on it).
    pub prefix_len: u8,
    /// The server's address.
    pub destination_ip: Ipv4Addr,
    /// The server's port.
    pub port: u16,
    /// What to ask.
    pub protocol: Protocol,
    /// Connections, each with one request outstanding.
    pub connections: u32,
    /// Measured seconds of load (after `warmup`).
    pub duration: Duration,
    /// Load before the measured part, not counted.
    pub warmup: Duration,
    /// Requests per second over all connections; `None`: closed loop.
    pub rate: Option<u64>,
    /// Stop after this many counted requests (all connections together).
    pub count: Option<u64>,
    /// How long one reply may take before the connection counts an error
    /// and reconnects.
    pub reply_timeout: Duration,
    /// Seeds smoltcp's initial sequence numbers.
    pub seed: u64,
    /// How long to poll the port for frames before sleeping on it when
    /// nothing is due; `None`: the port's own rule
    /// ([`FramePort::poll_before_sleep`]).
    pub poll_before_sleep: Option<Duration>,
}

/// What the client counted besides the requests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientCounters {
    /// Connections opened (the first ones and reconnections).
    pub connects: u64,
    /// Requests or handshakes that failed (timeout, error reply, reset);
    /// their connection reconnected.
    pub failures: u64,
    /// Frames from the port that no shard takes (not ARP or IPv4).
    pub foreign_frames: u64,
    /// IPv4 frames from the port too short or malformed for a shard to
    /// take (a TCP segment without its ports, a bad header length):
    /// dropped before smoltcp, which would drop them uncounted.
    #[serde(default)]
    pub malformed_frames: u64,
    /// smoltcp polls, over all shards.
    pub polls: u64,
    /// Replies taken during the load, counted or not (warm-up too).
    pub replies: u64,
    /// CPU time of the data thread during the load.
    pub cpu_ns: u64,
    /// Of it, the time spent polling the port for frames before a sleep:
    /// the client's own work per request is the difference over
    /// `replies`.
    pub spin_ns: u64,
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// SYN sent, waiting for the handshake.
    Connecting,
    /// The preamble (a `get` load's `set`) sent, waiting for its reply.
    Preamble,
    /// Waiting for its next slot.
    Idle,
    /// A request outstanding since its slot `sent_at`.
    Waiting,
    /// Failed and reset; connects again at its `deadline`.
    Backoff,
    /// Sends nothing more.
    Done,
}

struct Connection {
    index: u32,
    handle: SocketHandle,
    local_port: u16,
    generation: u32,
    phase: Phase,
    /// The next request's slot (closed loop: when it may go).
    next_slot: Instant,
    /// The outstanding request's slot, and whether it counts.
    sent_at: Instant,
    counted: bool,
    /// When the outstanding request (or the handshake) fails by time; in
    /// [`Phase::Backoff`], when it connects again.
    deadline: Instant,
    reply: Vec<u8>,
}

/// One smoltcp interface with its share of the connections.
struct Shard {
    interface: Interface,
    device: QueueDevice,
    sockets: SocketSet<'static>,
    connections: Vec<Connection>,
    /// When smoltcp wants to be polled next, at the latest.
    poll_at: Option<Instant>,
    /// When its first idle connection's slot comes.
    next_due: Option<Instant>,
    /// When its first connection that waits (handshake, reply, backoff)
    /// runs out of time: smoltcp has no timer for a request the server
    /// acknowledged and never answered, so this one must wake the shard.
    next_deadline: Option<Instant>,
}

/// The run's fixed times.
#[derive(Clone, Copy)]
struct Clock {
    origin: Instant,
    measured_from: Instant,
    end: Instant,
    interval: Option<Duration>,
}

impl Clock {
    fn smoltcp(&self, now: Instant) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(
            now.saturating_duration_since(self.origin).as_micros() as i64
        )
    }

    fn std(&self, at: smoltcp::time::Instant) -> Instant {
        self.origin + Duration::from_micros(at.total_micros().max(0) as u64)
    }
}

/// What the run measured so far.
struct Tally {
    sent: u64,
    latency: Histogram<u64>,
    counters: ClientCounters,
    /// What the first failed request said, for messages.
    first_failure: Option<String>,
}

/// The histogram's largest latency (100 s); a slower reply is recorded as
/// this, never dropped (it would then count as lost).
const LATENCY_MAX_NS: u64 = 100_000_000_000;

/// Runs the TCP load of `config` through `port` and returns loadgen's
/// figures: requests as probes, failed requests as lost.
pub fn run_tcp(
    port: &dyn FramePort,
    config: &TcpConfig,
) -> Result<(RunResult, ClientCounters, Option<String>)> {
    if config.connections == 0 || config.connections as usize > PORT_SPAN as usize {
        bail!("--connections must be between 1 and {PORT_SPAN}");
    }
    // The data thread sleeps until each connection's slot: with Linux's
    // default timer slack of 50 µs its own oversleep would be charged to
    // the server from the slot (as tcp-load, best effort; the file names
    // the thread-group leader, which loadgen's data thread is).
    let _ = std::fs::write("/proc/self/timerslack_ns", "1");
    let mut client = Client::new(config)?;
    client.connect(port)?;
    let stopped = client.load(port)?;
    // The measured part: its whole duration, or up to the last request of
    // a --count that ran out first.
    let seconds = stopped
        .min(client.clock.end)
        .saturating_duration_since(client.clock.measured_from)
        .as_secs_f64()
        .max(1e-3);
    let tally = client.tally;
    if tally.latency.is_empty() {
        bail!(
            "no replies ({} sent, {} failed; first failure: {})",
            tally.sent,
            tally.counters.failures,
            tally.first_failure.as_deref().unwrap_or("none")
        );
    }
    Ok((
        result(&tally, seconds, config.rate),
        tally.counters,
        tally.first_failure,
    ))
}

struct Client<'c> {
    config: &'c TcpConfig,
    shards: Vec<Shard>,
    /// The shard of each local port.
    shard_of_port: Box<[u16]>,
    tally: Tally,
    requests: Vec<Vec<u8>>,
    clock: Clock,
    /// Frames read from the port, one burst (allocated once: 128 KiB).
    buffers: Box<[[u8; FRAME_BUFFER]]>,
}

impl<'c> Client<'c> {
    fn new(config: &'c TcpConfig) -> Result<Self> {
        let connections = config.connections as usize;
        let shard_count = connections.div_ceil(CONNECTIONS_PER_SHARD);
        let origin = Instant::now();
        let clock = Clock {
            origin,
            measured_from: origin,
            end: origin,
            interval: None,
        };
        let mut shards = Vec::with_capacity(shard_count);
        for shard in 0..shard_count {
            let mut device = QueueDevice::default();
            let mut interface_config = Config::new(HardwareAddress::Ethernet(EthernetAddress(
                config.source_mac,
            )));
            interface_config.random_seed =
                config.seed ^ (shard as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut interface =
                Interface::new(interface_config, &mut device, clock.smoltcp(origin));
            let mut bad_address = false;
            interface.update_ip_addrs(|addresses| {
                bad_address = addresses
                    .push(IpCidr::new(
                        IpAddress::Ipv4(config.source_ip),
                        config.prefix_len,
                    ))
                    .is_err();
            });
            if bad_address {
                bail!("smoltcp took no address");
            }
            shards.push(Shard {
                interface,
                device,
                sockets: SocketSet::new(Vec::new()),
                connections: Vec::new(),
                poll_at: None,
                next_due: None,
                next_deadline: None,
            });
        }
        let mut shard_of_port = vec![0u16; 65_536].into_boxed_slice();
        for index in 0..config.connections {
            let shard_index = index as usize / CONNECTIONS_PER_SHARD;
            let shard = &mut shards[shard_index];
            let mut socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
                tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
            );
            socket.set_nagle_enabled(false);
            let handle = shard.sockets.add(socket);
            let local_port = local_port(index, 0, config.connections);
            shard_of_port[usize::from(local_port)] = shard_index as u16;
            shard.connections.push(Connection {
                index,
                handle,
                local_port,
                generation: 0,
                phase: Phase::Connecting,
                next_slot: origin,
                sent_at: origin,
                counted: false,
                deadline: origin,
                reply: Vec::with_capacity(SOCKET_BUFFER),
            });
        }
        let host = config.destination_ip.to_string();
        Ok(Self {
            config,
            shards,
            shard_of_port,
            tally: Tally {
                sent: 0,
                latency: Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3)?,
                counters: ClientCounters::default(),
                first_failure: None,
            },
            requests: (0..config.connections)
                .map(|index| protocol::request(config.protocol, &host, index))
                .collect(),
            clock,
            buffers: vec![[0u8; FRAME_BUFFER]; RECEIVE_BURST].into_boxed_slice(),
        })
    }

    /// Opens every connection (and sends a `get` load's preamble), then
    /// fixes the schedule from the moment all are established.
    fn connect(&mut self, port: &dyn FramePort) -> Result<()> {
        let now = Instant::now();
        let remote = (
            IpAddress::Ipv4(self.config.destination_ip),
            self.config.port,
        );
        for shard in &mut self.shards {
            for connection in &mut shard.connections {
                let socket = shard.sockets.get_mut::<tcp::Socket>(connection.handle);
                socket.connect(shard.interface.context(), remote, connection.local_port)?;
                connection.deadline = now + CONNECT_TIMEOUT;
                self.tally.counters.connects += 1;
            }
            shard.poll_at = Some(now);
            shard.next_deadline = Some(now + CONNECT_TIMEOUT);
        }
        // Until every connection is Idle, nothing is sent but handshakes
        // and preambles: the schedule has not started.
        self.clock.end = now + ESTABLISH_TIMEOUT;
        self.clock.measured_from = self.clock.end;
        let deadline = now + ESTABLISH_TIMEOUT;
        loop {
            self.step(port, true)?;
            let ready = self
                .shards
                .iter()
                .flat_map(|shard| &shard.connections)
                .all(|connection| connection.phase == Phase::Idle);
            if ready {
                break;
            }
            if Instant::now() >= deadline {
                let waiting = self
                    .shards
                    .iter()
                    .flat_map(|shard| &shard.connections)
                    .filter(|connection| connection.phase != Phase::Idle)
                    .count();
                bail!(
                    "{waiting} of {} connections to {}:{} not established within {ESTABLISH_TIMEOUT:?}",
                    self.config.connections,
                    self.config.destination_ip,
                    self.config.port
                );
            }
        }
        let start = Instant::now();
        let interval = self.config.rate.map(|rate| {
            Duration::from_secs_f64(f64::from(self.config.connections) / rate.max(1) as f64)
        });
        self.clock.measured_from = start + self.config.warmup;
        self.clock.end = self.clock.measured_from + self.config.duration;
        self.clock.interval = interval;
        let connections = f64::from(self.config.connections);
        for shard in &mut self.shards {
            for connection in &mut shard.connections {
                // Staggered schedules, so the connections do not send in step.
                connection.next_slot = start
                    + interval.map_or(Duration::ZERO, |interval| {
                        interval.mul_f64(f64::from(connection.index) / connections)
                    });
            }
            shard.next_due = Some(start);
        }
        Ok(())
    }

    /// Runs the load until its end (or count) and every outstanding reply
    /// came or timed out.
    /// Returns when the last request was answered (or the load ended).
    fn load(&mut self, port: &dyn FramePort) -> Result<Instant> {
        let hard_end = self.clock.end + self.config.reply_timeout + Duration::from_secs(1);
        let cpu_before = thread_cpu_ns();
        loop {
            self.step(port, false)?;
            let busy = self
                .shards
                .iter()
                .flat_map(|shard| &shard.connections)
                .any(|connection| connection.phase != Phase::Done);
            if !busy || Instant::now() >= hard_end {
                break;
            }
        }
        let stopped = Instant::now();
        // Slots a connection never reached (it waited on a slow or silent
        // server until the hard end) were due: sent, and lost.
        for connection in self
            .shards
            .iter_mut()
            .flat_map(|shard| &mut shard.connections)
        {
            if connection.phase != Phase::Done {
                self.tally.sent += unsent_slots(connection, &self.clock);
                connection.phase = Phase::Done;
            }
        }
        if let (Some(before), Some(after)) = (cpu_before, thread_cpu_ns()) {
            self.tally.counters.cpu_ns = after.saturating_sub(before);
        }
        Ok(stopped)
    }

    /// One round: frames in, shards that have work polled and served,
    /// frames out; sleeps on the port when nothing was to do.
    fn step(&mut self, port: &dyn FramePort, connecting: bool) -> Result<()> {
        let mut buffers = std::mem::take(&mut self.buffers);
        let mut lengths = [0usize; RECEIVE_BURST];
        let received = port.recv_batch(&mut buffers, &mut lengths);
        for (buffer, &length) in buffers
            .iter()
            .zip(&lengths)
            .take(*received.as_ref().unwrap_or(&0))
        {
            self.dispatch(&buffer[..length]);
        }
        self.buffers = buffers;
        let received = received?;
        let now = Instant::now();
        for shard_index in 0..self.shards.len() {
            let shard = &self.shards[shard_index];
            let due = shard.device.has_received()
                || shard.poll_at.is_some_and(|at| at <= now)
                || shard.next_due.is_some_and(|at| at <= now)
                || shard.next_deadline.is_some_and(|at| at <= now);
            if due {
                self.serve(shard_index, connecting);
            }
        }
        let sent = self.flush(port)?;
        if received == 0 && sent == 0 {
            self.idle(port)?;
        }
        Ok(())
    }

    /// Hands a frame from the port to the shard(s) it is for.
    fn dispatch(&mut self, frame: &[u8]) {
        if frame.len() < 14 {
            self.tally.counters.foreign_frames += 1;
            return;
        }
        match [frame[12], frame[13]] {
            // ARP: replies teach every shard's neighbour cache; requests
            // are answered once.
            [0x08, 0x06] => {
                let reply = frame.len() >= 22 && frame[20..22] == [0, 2];
                let shards = if reply { self.shards.len() } else { 1 };
                for shard in &mut self.shards[..shards] {
                    shard.device.received.push_back(frame.to_vec());
                }
            }
            [0x08, 0x00] => {
                let shard = match ipv4_tcp_destination_port(frame) {
                    Ok(Some(port)) => usize::from(self.shard_of_port[usize::from(port)]),
                    // Other protocols (an ICMP echo) go to the first shard.
                    Ok(None) => 0,
                    Err(Malformed) => {
                        self.tally.counters.malformed_frames += 1;
                        return;
                    }
                };
                self.shards[shard].device.received.push_back(frame.to_vec());
            }
            _ => self.tally.counters.foreign_frames += 1,
        }
    }

    /// Polls shard `index`'s smoltcp, serves its connections, and polls
    /// again when they wrote.
    fn serve(&mut self, index: usize, connecting: bool) {
        let clock = self.clock;
        let Self {
            shards,
            shard_of_port,
            tally,
            requests,
            config,
            ..
        } = self;
        let shard = &mut shards[index];
        let timestamp = clock.smoltcp(Instant::now());
        shard
            .interface
            .poll(timestamp, &mut shard.device, &mut shard.sockets);
        tally.counters.polls += 1;
        let now = Instant::now();
        let mut wrote = false;
        let mut next_due: Option<Instant> = None;
        let mut next_deadline: Option<Instant> = None;
        let remote = (IpAddress::Ipv4(config.destination_ip), config.port);
        for connection in &mut shard.connections {
            let socket = shard.sockets.get_mut::<tcp::Socket>(connection.handle);
            if connection.phase == Phase::Backoff && now >= connection.deadline && now >= clock.end
            {
                // The load ended while it waited: it sends nothing more.
                tally.sent += unsent_slots(connection, &clock);
                connection.phase = Phase::Done;
            }
            if connection.phase == Phase::Backoff && now >= connection.deadline {
                // The reset went out when the connection failed (the poll
                // after the abort); a fresh port of its own block now.
                connection.generation = connection.generation.wrapping_add(1);
                connection.local_port =
                    local_port(connection.index, connection.generation, config.connections);
                shard_of_port[usize::from(connection.local_port)] = index as u16;
                if socket
                    .connect(shard.interface.context(), remote, connection.local_port)
                    .is_ok()
                {
                    tally.counters.connects += 1;
                }
                connection.phase = Phase::Connecting;
                connection.deadline = now + CONNECT_TIMEOUT;
                wrote = true;
            }
            let outcome = advance(
                connection,
                socket,
                Context {
                    config,
                    clock: &clock,
                    now,
                    connecting,
                    request: &requests[connection.index as usize],
                },
                tally,
                &mut wrote,
            );
            if let Err(failure) = outcome {
                if tally.first_failure.is_none() {
                    tally.first_failure = Some(format!(
                        "connection {} ({:?}): {failure}",
                        connection.index, connection.phase
                    ));
                }
                // A counted request that failed stays sent and unanswered:
                // the lost column.
                tally.counters.failures += 1;
                // The reset goes out on this round's second poll (a
                // `connect` now would wipe the tuple first and leave the
                // server a half-open connection); the connection connects
                // again after a backoff, unless the load is over.
                socket.abort();
                connection.reply.clear();
                wrote = true;
                if now >= clock.end {
                    tally.sent += unsent_slots(connection, &clock);
                    connection.phase = Phase::Done;
                } else {
                    connection.phase = Phase::Backoff;
                    connection.deadline = now + RECONNECT_BACKOFF;
                }
            }
            match connection.phase {
                // While connecting no slot is due: the schedule starts once
                // every connection is established.
                Phase::Idle if !connecting => {
                    next_due = Some(
                        next_due.map_or(connection.next_slot, |due| due.min(connection.next_slot)),
                    );
                }
                Phase::Connecting | Phase::Preamble | Phase::Waiting | Phase::Backoff => {
                    next_deadline = Some(
                        next_deadline
                            .map_or(connection.deadline, |due| due.min(connection.deadline)),
                    );
                }
                Phase::Idle | Phase::Done => {}
            }
        }
        shard.next_due = next_due;
        shard.next_deadline = next_deadline;
        if wrote {
            let timestamp = clock.smoltcp(Instant::now());
            shard
                .interface
                .poll(timestamp, &mut shard.device, &mut shard.sockets);
            tally.counters.polls += 1;
        }
        shard.poll_at = shard
            .interface
            .poll_at(clock.smoltcp(Instant::now()), &shard.sockets)
            .map(|at| clock.std(at));
    }

    /// Hands every shard's frames to the port, oldest first; frames the
    /// port has no room for stay for the next round.
    fn flush(&mut self, port: &dyn FramePort) -> Result<usize> {
        let mut sent = 0;
        for shard in &mut self.shards {
            if shard.device.to_send.is_empty() {
                continue;
            }
            let taken = port.send_batch(&shard.device.to_send)?;
            shard.device.to_send.drain(..taken);
            sent += taken;
        }
        Ok(sent)
    }

    /// Nothing came and nothing went: sleeps on the port until the next
    /// slot, smoltcp timer or reply deadline (at most [`MAX_SLEEP`]),
    /// after polling for the port's [`FramePort::poll_before_sleep`].
    fn idle(&mut self, port: &dyn FramePort) -> Result<()> {
        let now = Instant::now();
        let waiting_for_room = self
            .shards
            .iter()
            .any(|shard| !shard.device.to_send.is_empty());
        if waiting_for_room {
            port.wait_send_room(MAX_SLEEP)?;
            return Ok(());
        }
        let next = self
            .shards
            .iter()
            .flat_map(|shard| [shard.poll_at, shard.next_due, shard.next_deadline])
            .flatten()
            .min();
        let until = next.map_or(now + MAX_SLEEP, |next| next.min(now + MAX_SLEEP));
        if until <= now {
            return Ok(());
        }
        // Spinning is cheaper than a sleep's wake-up when a CPU is ours.
        let spin = self
            .config
            .poll_before_sleep
            .unwrap_or_else(|| port.poll_before_sleep());
        let spin_until = (now + spin).min(until);
        while Instant::now() < spin_until {
            std::hint::spin_loop();
            let mut length = [0usize; 1];
            let mut buffers = std::mem::take(&mut self.buffers);
            let received = port.recv_batch(&mut buffers[..1], &mut length);
            if matches!(received, Ok(1)) {
                self.dispatch(&buffers[0][..length[0]]);
            }
            self.buffers = buffers;
            if received? > 0 {
                break;
            }
        }
        let spun = Instant::now().saturating_duration_since(now);
        self.tally.counters.spin_ns += spun.as_nanos() as u64;
        if spun > Duration::ZERO && Instant::now() < spin_until {
            return Ok(());
        }
        let now = Instant::now();
        if until > now {
            port.wait_readable(until - now)?;
        }
        Ok(())
    }
}

/// What [`advance`] reads besides the connection.
struct Context<'a> {
    config: &'a TcpConfig,
    clock: &'a Clock,
    now: Instant,
    connecting: bool,
    request: &'a [u8],
}

/// A request that failed.
#[derive(Debug)]
pub enum Failure {
    /// Its reply (or the handshake) took too long.
    Timeout,
    /// The server answered wrong.
    Reply(ReplyError),
    /// The connection closed or was reset.
    Closed,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout => write!(formatter, "no reply in time"),
            Self::Reply(error) => write!(formatter, "{error}"),
            Self::Closed => write!(formatter, "the connection closed or was reset"),
        }
    }
}

/// Moves one connection as far as it goes now: handshake, preamble, the
/// next request when its slot came, the reply when it is whole.
fn advance(
    connection: &mut Connection,
    socket: &mut tcp::Socket<'_>,
    context: Context<'_>,
    tally: &mut Tally,
    wrote: &mut bool,
) -> Result<(), Failure> {
    let Context {
        config,
        clock,
        now,
        connecting,
        request,
    } = context;
    loop {
        match connection.phase {
            Phase::Done | Phase::Backoff => return Ok(()),
            Phase::Connecting => {
                if socket.may_send() {
                    match protocol::preamble(config.protocol, connection.index) {
                        Some(preamble) => {
                            send(socket, &preamble)?;
                            *wrote = true;
                            connection.deadline = now + config.reply_timeout;
                            connection.phase = Phase::Preamble;
                        }
                        None => connection.phase = Phase::Idle,
                    }
                    continue;
                }
                if !socket.is_open() {
                    return Err(Failure::Closed);
                }
                if now >= connection.deadline {
                    return Err(Failure::Timeout);
                }
                return Ok(());
            }
            Phase::Preamble => {
                if !read_reply(connection, socket, Protocol::MemcacheSet)? {
                    return waiting(connection, socket, now);
                }
                connection.phase = Phase::Idle;
            }
            Phase::Idle => {
                if connecting {
                    return Ok(());
                }
                let out_of_count = config.count.is_some_and(|count| tally.sent >= count);
                // With a rate, a connection behind its schedule at the end
                // still sends the slots before it (late, and charged from
                // the slot): it ends when its next slot is past the end.
                let slot = match clock.interval {
                    Some(_) => connection.next_slot,
                    None => now,
                };
                if slot >= clock.end || out_of_count {
                    connection.phase = Phase::Done;
                    return Ok(());
                }
                if slot > now {
                    return Ok(());
                }
                send(socket, request)?;
                *wrote = true;
                connection.sent_at = slot;
                connection.counted = slot >= clock.measured_from;
                tally.sent += u64::from(connection.counted);
                if let Some(interval) = clock.interval {
                    connection.next_slot += interval;
                }
                connection.deadline = now + config.reply_timeout;
                connection.phase = Phase::Waiting;
            }
            Phase::Waiting => {
                if !read_reply(connection, socket, config.protocol)? {
                    return waiting(connection, socket, now);
                }
                tally.counters.replies += 1;
                if connection.counted {
                    let latency = now.saturating_duration_since(connection.sent_at);
                    let nanoseconds = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
                    tally.latency.saturating_record(nanoseconds.max(1));
                }
                connection.phase = Phase::Idle;
            }
        }
    }
}

/// A connection still waiting for its reply: fine, unless it took too
/// long or the connection closed.
fn waiting(connection: &Connection, socket: &tcp::Socket<'_>, now: Instant) -> Result<(), Failure> {
    if !socket.may_recv() {
        return Err(Failure::Closed);
    }
    if now >= connection.deadline {
        return Err(Failure::Timeout);
    }
    Ok(())
}

/// Writes all of `bytes` into the socket's send buffer (one request fits
/// with room to spare: nothing else is outstanding).
fn send(socket: &mut tcp::Socket<'_>, bytes: &[u8]) -> Result<(), Failure> {
    match socket.send_slice(bytes) {
        Ok(written) if written == bytes.len() => Ok(()),
        _ => Err(Failure::Closed),
    }
}

/// Reads what arrived; true once the connection's buffer holds exactly one
/// whole reply (then cleared).
fn read_reply(
    connection: &mut Connection,
    socket: &mut tcp::Socket<'_>,
    protocol: Protocol,
) -> Result<bool, Failure> {
    let mut chunk = [0u8; 1024];
    while socket.can_recv() {
        let read = socket.recv_slice(&mut chunk).map_err(|_| Failure::Closed)?;
        if read == 0 {
            break;
        }
        connection.reply.extend_from_slice(&chunk[..read]);
    }
    match protocol::exactly_one_reply(protocol, &connection.reply) {
        Ok(true) => {
            connection.reply.clear();
            Ok(true)
        }
        Ok(false) => Ok(false),
        Err(error) => Err(Failure::Reply(error)),
    }
}

/// The calling thread's time on a CPU so far (`/proc/thread-self/schedstat`,
/// nanoseconds), if the kernel says.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Connection `index`'s local port in its `generation`-th connection: the
/// `generation % (PORT_SPAN / connections)`-th of its own block, so it is
/// `index` modulo `connections` and no other connection's, ever.
fn local_port(index: u32, generation: u32, connections: u32) -> u16 {
    let per_connection = (PORT_SPAN / connections.max(1)).max(1);
    let offset = index + connections * (generation % per_connection);
    FIRST_PORT + (offset % PORT_SPAN) as u16
}

/// Slots of connection `connection`'s schedule from its next one up to
/// the end that count: with a rate, those it never sent (it ends behind
/// its schedule), which are then counted sent and unanswered.
fn unsent_slots(connection: &Connection, clock: &Clock) -> u64 {
    clock.interval.map_or(0, |interval| {
        slots_between(
            connection.next_slot,
            interval,
            clock.measured_from,
            clock.end,
        )
    })
}

/// How many of the slots `next + k * interval` (k = 0, 1, ...) fall in
/// `[from, end)`: a schedule's slots left unsent at its end that count
/// (`tcp-load` uses it too).
pub fn slots_between(next: Instant, interval: Duration, from: Instant, end: Instant) -> u64 {
    let interval = interval.as_nanos().max(1);
    let first = next.max(from);
    if first >= end {
        return 0;
    }
    let skipped = (first - next).as_nanos().div_ceil(interval);
    let before_end = (end - next).as_nanos().div_ceil(interval);
    u64::try_from(before_end.saturating_sub(skipped)).unwrap_or(u64::MAX)
}

/// An IPv4 frame too short or malformed to go to a shard.
struct Malformed;

/// The TCP destination port of an IPv4 frame (`None`: another protocol),
/// or [`Malformed`] when its header or the TCP ports are not whole.
fn ipv4_tcp_destination_port(frame: &[u8]) -> Result<Option<u16>, Malformed> {
    let ip = frame.get(14..).ok_or(Malformed)?;
    let first = *ip.first().ok_or(Malformed)?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < 20 || ip.len() < header_len {
        return Err(Malformed);
    }
    let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if total_len < header_len || total_len > ip.len() {
        return Err(Malformed);
    }
    if ip[9] != 6 {
        return Ok(None);
    }
    let port = ip
        .get(header_len + 2..header_len + 4)
        .filter(|_| total_len >= header_len + 20)
        .ok_or(Malformed)?;
    Ok(Some(u16::from_be_bytes([port[0], port[1]])))
}

/// loadgen's figures: requests as probes, failures as lost.
fn result(tally: &Tally, seconds: f64, rate: Option<u64>) -> RunResult {
    let latency = &tally.latency;
    let received = latency.len();
    let quantile = |q: f64| (!latency.is_empty()).then(|| latency.value_at_quantile(q));
    let lost = tally.sent.saturating_sub(received);
    RunResult {
        summary: Summary {
            sent: tally.sent,
            received,
            lost,
            loss_percent: lost as f64 * 100.0 / tally.sent.max(1) as f64,
            duplicates: 0,
            reordered: 0,
            foreign: tally.counters.foreign_frames,
            latency_p50_ns: quantile(0.5),
            latency_p90_ns: quantile(0.9),
            latency_p99_ns: quantile(0.99),
            latency_p999_ns: quantile(0.999),
            latency_max_ns: (!latency.is_empty()).then(|| latency.max()),
        },
        send_seconds: seconds,
        sent_pps: tally.sent as f64 / seconds,
        offered_pps: rate,
        received_pps: received as f64 / seconds,
        latency_cdf: if latency.is_empty() {
            Vec::new()
        } else {
            (0..=100)
                .map(|percent| {
                    let quantile = f64::from(percent) / 100.0;
                    (f64::from(percent), latency.value_at_quantile(quantile))
                })
                .collect()
        },
        vhost_user: None,
        vhost_user_receive: None,
        tcp_client: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_ports_never_collide_between_connections() {
        // 256 does not divide 40 000: the old `(i + g * N) % 40 000` gave
        // connection i + 64's port at generation g + 156 to connection i.
        for connections in [1u32, 3, 7, 256, 1000, 30_000, PORT_SPAN] {
            let per_connection = PORT_SPAN / connections;
            let mut owner = vec![u32::MAX; 65_536];
            for index in (0..connections).step_by((connections as usize / 300).max(1)) {
                for generation in 0..per_connection.min(400) + 3 {
                    let port = local_port(index, generation, connections);
                    assert!((FIRST_PORT..FIRST_PORT + PORT_SPAN as u16).contains(&port));
                    let slot = &mut owner[usize::from(port)];
                    assert!(
                        *slot == u32::MAX || *slot == index,
                        "{connections} connections: port {port} of {index} and {slot}"
                    );
                    *slot = index;
                }
            }
        }
    }

    #[test]
    fn unsent_slots_count_the_schedule_left_before_the_end() {
        let origin = Instant::now();
        let at = |ms: u64| origin + Duration::from_millis(ms);
        let clock = Clock {
            origin,
            measured_from: at(100),
            end: at(1000),
            interval: Some(Duration::from_millis(10)),
        };
        let mut connection = Connection {
            index: 0,
            handle: SocketSet::new(Vec::new()).add(tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 1]),
                tcp::SocketBuffer::new(vec![0; 1]),
            )),
            local_port: FIRST_PORT,
            generation: 0,
            phase: Phase::Idle,
            next_slot: at(955),
            sent_at: origin,
            counted: false,
            deadline: origin,
            reply: Vec::new(),
        };
        // 955, 965, ..., 995.
        assert_eq!(unsent_slots(&connection, &clock), 5);
        connection.next_slot = at(1000);
        assert_eq!(unsent_slots(&connection, &clock), 0);
        // Warm-up slots (before 100 ms) do not count: 105, ..., 995.
        connection.next_slot = at(5);
        assert_eq!(unsent_slots(&connection, &clock), 90);
        let closed_loop = Clock {
            interval: None,
            ..clock
        };
        assert_eq!(unsent_slots(&connection, &closed_loop), 0);
    }
}
