//! loadgen's TCP client against an in-process HTTP server on smoltcp,
//! over a wire of two frame queues: every request answered once, the
//! counts exact, also with more connections than one shard holds (so ARP
//! replies must reach every shard and segments the shard of their port);
//! and against servers that misbehave: one that goes silent (its TCP still
//! acknowledges), one that listens late (SYNs answered with resets), one
//! whose replies come in pieces, never end or say they are endless.

use loadgen::port::FramePort;
use loadgen::socket::FRAME_BUFFER;
use loadgen::tcp::client::{
    CONNECTIONS_PER_SHARD, ClientCounters, RECONNECT_BACKOFF, TcpConfig, run_tcp,
};
use loadgen::tcp::device::QueueDevice;
use loadgen::tcp::protocol::Protocol;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use std::collections::VecDeque;
use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x64];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const REPLY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

type Queue = Arc<Mutex<VecDeque<Vec<u8>>>>;

/// The client's end of the wire.
struct WirePort {
    to_server: Queue,
    to_client: Queue,
}

impl FramePort for WirePort {
    fn mac(&self) -> [u8; 6] {
        CLIENT_MAC
    }

    fn send_batch(&self, frames: &[Vec<u8>]) -> io::Result<usize> {
        self.to_server
            .lock()
            .unwrap()
            .extend(frames.iter().cloned());
        Ok(frames.len())
    }

    fn recv_batch(
        &self,
        buffers: &mut [[u8; FRAME_BUFFER]],
        lengths: &mut [usize],
    ) -> io::Result<usize> {
        let mut queue = self.to_client.lock().unwrap();
        let mut count = 0;
        while count < buffers.len() {
            let Some(frame) = queue.pop_front() else {
                break;
            };
            buffers[count][..frame.len()].copy_from_slice(&frame);
            lengths[count] = frame.len();
            count += 1;
        }
        Ok(count)
    }

    fn wait_readable(&self, timeout: Duration) -> io::Result<()> {
        std::thread::sleep(timeout.min(Duration::from_micros(50)));
        Ok(())
    }

    fn describe(&self) -> String {
        "in-process wire".into()
    }
}

/// How the in-process server behaves.
#[derive(Clone, Copy)]
struct Behaviour {
    /// Requests answered before the server goes silent (its TCP still
    /// acknowledges what comes); `None`: all.
    answer_first: Option<u64>,
    /// No socket listens before this (SYNs are answered with resets).
    listen_after: Duration,
    /// How each reply after the first `whole_first` is sent.
    reply: Reply,
    /// Replies sent whole before `reply` applies.
    whole_first: u64,
    /// How long after its request each reply goes.
    reply_delay: Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            answer_first: None,
            listen_after: Duration::ZERO,
            reply: Reply::Whole,
            whole_first: 0,
            reply_delay: Duration::ZERO,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// [`REPLY`] in one segment.
    Whole,
    /// [`REPLY`] in two segments, a server poll apart.
    Split,
    /// A header that never ends, streamed for as long as the connection
    /// lasts.
    Endless,
    /// A header saying the body is `u64::MAX` bytes long.
    HugeLength,
}

/// What the server saw.
#[derive(Debug, Default)]
struct ServerTally {
    /// Requests answered.
    answered: u64,
    /// Established connections the client closed or reset.
    closed: u64,
}

/// One of the server's sockets.
struct Listener {
    handle: SocketHandle,
    pending: Vec<u8>,
    /// When the replies to its whole requests are due.
    due: VecDeque<Instant>,
    /// What is still to go of a split reply.
    tail: Vec<u8>,
    established: bool,
    /// An endless reply is being streamed.
    streaming: bool,
}

/// An HTTP server on smoltcp answering `GET`s as `behaviour` says until
/// `stop` (then one last round for what the client sent last).
fn serve(
    to_server: Queue,
    to_client: Queue,
    stop: Arc<AtomicBool>,
    behaviour: Behaviour,
) -> ServerTally {
    let origin = Instant::now();
    let now = || smoltcp::time::Instant::from_micros(origin.elapsed().as_micros() as i64);
    let mut device = QueueDevice::default();
    let mut interface = Interface::new(
        Config::new(HardwareAddress::Ethernet(EthernetAddress(SERVER_MAC))),
        &mut device,
        now(),
    );
    interface.update_ip_addrs(|addresses| {
        addresses
            .push(IpCidr::new(IpAddress::Ipv4(SERVER_IP), 24))
            .unwrap();
    });
    let mut sockets = SocketSet::new(Vec::new());
    let mut listeners: Vec<Listener> = (0..64)
        .map(|_| {
            let socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 4096]),
                tcp::SocketBuffer::new(vec![0; 4096]),
            );
            Listener {
                handle: sockets.add(socket),
                pending: Vec::new(),
                due: VecDeque::new(),
                tail: Vec::new(),
                established: false,
                streaming: false,
            }
        })
        .collect();
    let mut tally = ServerTally::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_rounds = 3;
    while last_rounds > 0 && Instant::now() < deadline {
        if stop.load(Ordering::Relaxed) {
            last_rounds -= 1;
        }
        device.received.extend(to_server.lock().unwrap().drain(..));
        interface.poll(now(), &mut device, &mut sockets);
        let listening = origin.elapsed() >= behaviour.listen_after;
        for listener in &mut listeners {
            let socket = sockets.get_mut::<tcp::Socket>(listener.handle);
            if socket.state() == tcp::State::Established {
                listener.established = true;
            }
            if !socket.is_open() {
                if listener.established {
                    tally.closed += 1;
                }
                *listener = Listener {
                    handle: listener.handle,
                    pending: Vec::new(),
                    due: VecDeque::new(),
                    tail: Vec::new(),
                    established: false,
                    streaming: false,
                };
                if listening {
                    socket.listen(80).unwrap();
                }
                continue;
            }
            let mut chunk = [0u8; 1024];
            while let Ok(read) = socket.recv_slice(&mut chunk) {
                if read == 0 {
                    break;
                }
                listener.pending.extend_from_slice(&chunk[..read]);
            }
            while let Some(end) = listener.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                listener.pending.drain(..end + 4);
                listener
                    .due
                    .push_back(Instant::now() + behaviour.reply_delay);
            }
            if !listener.tail.is_empty() {
                let tail = std::mem::take(&mut listener.tail);
                assert_eq!(socket.send_slice(&tail).unwrap(), tail.len());
            }
            if listener.streaming && socket.can_send() {
                let _ = socket.send_slice(&[b'x'; 1024]);
            }
            while listener
                .due
                .front()
                .is_some_and(|&due| due <= Instant::now())
            {
                listener.due.pop_front();
                if behaviour
                    .answer_first
                    .is_some_and(|first| tally.answered >= first)
                {
                    continue;
                }
                let reply = if tally.answered < behaviour.whole_first {
                    Reply::Whole
                } else {
                    behaviour.reply
                };
                match reply {
                    Reply::Whole => {
                        assert_eq!(socket.send_slice(REPLY).unwrap(), REPLY.len());
                    }
                    Reply::Split => {
                        let (first, rest) = REPLY.split_at(20);
                        assert_eq!(socket.send_slice(first).unwrap(), first.len());
                        listener.tail = rest.to_vec();
                    }
                    Reply::Endless => {
                        let _ = socket.send_slice(b"HTTP/1.1 200 OK\r\nX-Endless: ");
                        listener.streaming = true;
                    }
                    Reply::HugeLength => {
                        let _ = socket.send_slice(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n",
                        );
                    }
                }
                tally.answered += 1;
            }
        }
        interface.poll(now(), &mut device, &mut sockets);
        to_client.lock().unwrap().extend(device.to_send.drain(..));
        std::thread::sleep(Duration::from_micros(20));
    }
    tally
}

/// What a run against the server gave.
struct Outcome {
    result: loadgen::run::RunResult,
    counters: ClientCounters,
    failure: Option<String>,
    server: ServerTally,
    /// The client's run, wall-clock.
    elapsed: Duration,
}

/// Runs the client of `config` against a fresh server behaving as
/// `behaviour`, with `before` frames already on the wire to the client.
fn run_against(config: &TcpConfig, behaviour: Behaviour, before: Vec<Vec<u8>>) -> Outcome {
    let (to_server, to_client): (Queue, Queue) = Default::default();
    to_client.lock().unwrap().extend(before);
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let (to_server, to_client) = (to_server.clone(), to_client.clone());
        let stop = stop.clone();
        std::thread::spawn(move || serve(to_server, to_client, stop, behaviour))
    };
    let port = WirePort {
        to_server,
        to_client,
    };
    let started = Instant::now();
    let outcome = run_tcp(&port, config);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let server = server.join().unwrap();
    let (result, counters, failure) = outcome.unwrap();
    Outcome {
        result,
        counters,
        failure,
        server,
        elapsed,
    }
}

/// The client's configuration for these tests: HTTP to the server,
/// `count` requests or a second of load.
fn config(connections: u32, count: Option<u64>, rate: Option<u64>) -> TcpConfig {
    TcpConfig {
        source_mac: CLIENT_MAC,
        source_ip: Ipv4Addr::new(10, 0, 0, 100),
        prefix_len: 24,
        destination_ip: SERVER_IP,
        port: 80,
        protocol: Protocol::Http,
        connections,
        duration: Duration::from_secs(if count.is_some() { 30 } else { 1 }),
        warmup: Duration::ZERO,
        rate,
        count,
        reply_timeout: Duration::from_secs(5),
        seed: 7,
        poll_before_sleep: None,
    }
}

/// Runs the client against a well-behaved server; returns the client's
/// result and the requests the server answered.
fn against_server(
    connections: u32,
    count: Option<u64>,
    rate: Option<u64>,
) -> (loadgen::run::RunResult, u64) {
    let outcome = run_against(
        &config(connections, count, rate),
        Behaviour::default(),
        Vec::new(),
    );
    assert_eq!(outcome.counters.failures, 0, "{:?}", outcome.failure);
    assert_eq!(u64::from(connections), outcome.counters.connects);
    (outcome.result, outcome.server.answered)
}

#[test]
fn a_counted_closed_loop_gets_every_request_answered_once() {
    let connections = CONNECTIONS_PER_SHARD as u32 * 2 + 3;
    let (result, answered) = against_server(connections, Some(2000), None);
    let summary = &result.summary;
    assert_eq!(
        (summary.sent, summary.received, summary.lost),
        (2000, 2000, 0)
    );
    assert_eq!(answered, 2000);
    assert!(summary.latency_p99_ns.is_some());
    assert_eq!(result.latency_cdf.len(), 101);
}

#[test]
fn a_fixed_rate_sends_on_schedule() {
    // 4 connections at 2000 requests/s for 1 s: 500 slots each.
    let (result, answered) = against_server(4, None, Some(2000));
    let summary = &result.summary;
    assert!(
        (1900..=2000).contains(&summary.sent),
        "sent {} of the 2000 slots",
        summary.sent
    );
    assert_eq!(summary.received, summary.sent);
    assert_eq!(answered, summary.sent);
    assert_eq!(result.offered_pps, Some(2000));
}

#[test]
fn a_silent_server_fails_requests_by_time_and_gets_its_connections_reset() {
    // 2 connections at 40/s for 1 s: 40 slots. The server answers 4
    // requests, then only acknowledges: every later request must fail at
    // its timeout (no frame comes to wake the client), its connection be
    // reset (the server sees every failed one closed) and reconnect, and
    // every slot be counted, sent or not.
    let mut config = config(2, None, Some(40));
    config.reply_timeout = Duration::from_millis(200);
    let behaviour = Behaviour {
        answer_first: Some(4),
        ..Behaviour::default()
    };
    let outcome = run_against(&config, behaviour, Vec::new());
    let summary = &outcome.result.summary;
    assert_eq!(outcome.server.answered, 4);
    assert_eq!(summary.sent, 40, "every slot of the schedule counts");
    assert_eq!((summary.received, summary.lost), (4, 36));
    assert!(
        outcome.counters.failures >= 4,
        "{} failures: the timeout never fired",
        outcome.counters.failures
    );
    assert!(outcome.counters.connects > 2);
    assert_eq!(
        outcome.server.closed, outcome.counters.failures,
        "every failed connection is reset at the server, none left half-open"
    );
    assert!(
        outcome
            .failure
            .as_deref()
            .unwrap_or("")
            .contains("no reply in time"),
        "{:?}",
        outcome.failure
    );
}

#[test]
fn a_server_that_listens_late_is_met_with_spaced_reconnects() {
    // Nothing listens for 300 ms: every SYN is answered with a reset, and
    // each connection tries again no sooner than the backoff.
    let connections = 4;
    let behaviour = Behaviour {
        listen_after: Duration::from_millis(300),
        ..Behaviour::default()
    };
    let outcome = run_against(&config(connections, Some(200), None), behaviour, Vec::new());
    let summary = &outcome.result.summary;
    assert_eq!(
        (summary.sent, summary.received, summary.lost),
        (200, 200, 0)
    );
    assert!(outcome.counters.failures > 0, "the early SYNs were reset");
    let attempts_bound = u64::from(connections)
        * (outcome.elapsed.as_millis() / RECONNECT_BACKOFF.as_millis() + 1) as u64;
    assert!(
        outcome.counters.connects <= attempts_bound,
        "{} connects in {:?}: reconnects closer than the backoff",
        outcome.counters.connects,
        outcome.elapsed
    );
}

#[test]
fn replies_in_two_segments_are_taken_whole() {
    let behaviour = Behaviour {
        reply: Reply::Split,
        ..Behaviour::default()
    };
    let outcome = run_against(&config(3, Some(300), None), behaviour, Vec::new());
    let summary = &outcome.result.summary;
    assert_eq!(
        (summary.sent, summary.received, summary.lost),
        (300, 300, 0)
    );
    assert_eq!(outcome.counters.failures, 0, "{:?}", outcome.failure);
}

#[test]
fn replies_that_never_end_or_are_too_long_fail_without_growing() {
    for reply in [Reply::Endless, Reply::HugeLength] {
        let mut config = config(2, None, Some(20));
        config.duration = Duration::from_millis(500);
        let behaviour = Behaviour {
            reply,
            // One whole reply first, so that the run has a latency.
            whole_first: 1,
            ..Behaviour::default()
        };
        let outcome = run_against(&config, behaviour, Vec::new());
        assert!(outcome.counters.failures > 0);
        assert!(
            outcome
                .failure
                .as_deref()
                .unwrap_or("")
                .contains("a reply longer than 65536 bytes"),
            "{:?}",
            outcome.failure
        );
        assert_eq!(outcome.server.closed, outcome.counters.failures);
    }
}

#[test]
fn malformed_ipv4_frames_are_counted_and_dropped() {
    let ethernet = |payload: &[u8]| {
        let mut frame = CLIENT_MAC.to_vec();
        frame.extend(SERVER_MAC);
        frame.extend([0x08, 0x00]);
        frame.extend(payload);
        frame
    };
    let mut short_tcp = vec![0x45, 0, 0, 22, 0, 0, 0, 0, 64, 6, 0, 0];
    short_tcp.extend([10, 0, 0, 2, 10, 0, 0, 100, 0x4e, 0x20]);
    let malformed = vec![
        ethernet(&[0x45, 0, 0]), // a header cut short
        ethernet(&[0x43; 40]),   // header length 12 bytes
        ethernet(&[0x65; 40]),   // IP version 6 in IPv4
        ethernet(&short_tcp),    // TCP without its ports
    ];
    let outcome = run_against(&config(2, Some(50), None), Behaviour::default(), malformed);
    assert_eq!(outcome.counters.malformed_frames, 4);
    assert_eq!(outcome.counters.failures, 0, "{:?}", outcome.failure);
    assert_eq!(outcome.result.summary.received, 50);
}

#[test]
fn a_rate_behind_its_schedule_at_the_end_still_sends_every_slot() {
    // One connection at 100/s for 500 ms (50 slots) against replies that
    // take 30 ms: it falls behind, and the slots it had not reached at the
    // end go late (charged from their slots), not silently dropped.
    let mut config = config(1, None, Some(100));
    config.duration = Duration::from_millis(500);
    let behaviour = Behaviour {
        reply_delay: Duration::from_millis(30),
        ..Behaviour::default()
    };
    let outcome = run_against(&config, behaviour, Vec::new());
    let summary = &outcome.result.summary;
    assert_eq!((summary.sent, summary.received, summary.lost), (50, 50, 0));
    assert_eq!(outcome.counters.failures, 0, "{:?}", outcome.failure);
    // The last slot waited for the 49 before it.
    assert!(summary.latency_max_ns.unwrap() >= 49 * 30_000_000 - 500_000_000);
}
