//! One bounded load run: send probes in bursts (paced, as fast as possible,
//! or within a window of outstanding probes), answer ARP, match replies.

use crate::arp;
use crate::frame::{
    Endpoints, FlowSpread, ProbeTemplate, TranslatedMatch, Workload, build, parse_forwarded,
    parse_reply, parse_translated, tuple_for,
};
use crate::port::FramePort;
use crate::probe::Probe;
use crate::socket::{FRAME_BUFFER, PacketSocket};
use crate::tracker::{Summary, Tracker};
use anyhow::Result;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Largest burst handed to one `sendmmsg`.
pub const MAX_BURST: usize = 64;

/// Longest sleep of a closed-loop run whose window is full: a lost probe
/// frees its slot only after `timeout`, so waking this often is plenty.
const WINDOW_WAIT: Duration = Duration::from_millis(1);

/// What to send, how fast, and for how long at most.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Addresses on the wire.
    pub endpoints: Endpoints,
    /// UDP or ICMP echo.
    pub workload: Workload,
    /// Distinct flows (source ports or ICMP identifiers), round robin.
    pub flows: u16,
    /// Payload bytes per probe (at least the probe header).
    pub payload_len: usize,
    /// Stop after this many probes.
    pub count: u64,
    /// Stop sending after this long.
    pub duration: Duration,
    /// Probes per second, or `None` for as fast as possible.
    pub rate_pps: Option<u64>,
    /// Closed loop: at most this many probes outstanding.
    pub window: Option<u64>,
    /// How long a probe may go unanswered (for the window, and to wait for
    /// stragglers at the end).
    pub timeout: Duration,
    /// Probes per burst.
    pub burst: usize,
    /// Closed loop: send only whole bursts, waiting while the window has
    /// room for fewer probes than a burst. Without it each few replies
    /// let as many probes go, and the two ends of a veth can settle for a
    /// whole run into moving a few frames per system call, or into full
    /// bursts (a rate apart by 1.4x on this host, perf/RESULTS.md).
    pub whole_bursts: bool,
    /// Tells this run's replies from stale ones.
    pub run_id: u32,
    /// Show a progress bar (on a terminal, for runs longer than a few seconds).
    pub progress: bool,
    /// How probes spread over 5-tuples: `flows` round robin, or a new
    /// one per probe.
    pub spread: FlowSpread,
    /// Forwarding through a system that rewrites addresses or ports:
    /// recognise the probes on the receiving interface by payload (and
    /// answer ARP there for its `destinations`).
    pub translated: Option<TranslatedMatch>,
}

/// The figures of a finished run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunResult {
    /// Counts and latency percentiles.
    pub summary: Summary,
    /// Seconds spent sending.
    pub send_seconds: f64,
    /// Probes per second actually sent.
    pub sent_pps: f64,
    /// Probes per second asked for (`None`: as fast as possible).
    pub offered_pps: Option<u64>,
    /// Replies per second over the sending period.
    pub received_pps: f64,
    /// Latency percentiles 0..=100 in 1% steps, (percent, ns), for plots.
    pub latency_cdf: Vec<(f64, u64)>,
    /// The vhost-user device's own counters, in that mode (boxed: most
    /// runs have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost_user: Option<Box<crate::vhost::device::DeviceCounters>>,
    /// The receiving vhost-user device's counters (`--receive-vhost-user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost_user_receive: Option<Box<crate::vhost::device::DeviceCounters>>,
    /// The TCP client's own counters (`--workload http|memcache-*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_client: Option<Box<crate::tcp::client::ClientCounters>>,
}

/// Nanoseconds on the monotonic clock since the first call.
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Where probes come back: as replies on the sending socket, or forwarded by
/// a router onto another port (an interface, or a second vhost-user device).
#[derive(Clone, Copy)]
pub enum ReturnPath<'a> {
    /// Replies come back on the socket that sent the probes.
    Echo,
    /// Probes come out, forwarded, on this port; loadgen answers ARP for
    /// the destination address there.
    Forwarded(&'a dyn FramePort),
}

/// Runs the load described by `config` on `socket`.
pub fn run(socket: &PacketSocket, config: &RunConfig) -> Result<RunResult> {
    run_with_return(socket, ReturnPath::Echo, config)
}

/// Runs the load described by `config` on `socket`, expecting probes back
/// by `path`.
pub fn run_with_return(
    socket: &PacketSocket,
    path: ReturnPath<'_>,
    config: &RunConfig,
) -> Result<RunResult> {
    run_on(socket, path, config)
}

/// Runs the load described by `config` through `socket` (an AF_PACKET
/// socket or the vhost-user device), expecting probes back by `path`.
pub fn run_on<P: FramePort>(
    socket: &P,
    path: ReturnPath<'_>,
    config: &RunConfig,
) -> Result<RunResult> {
    let mut tracker = Tracker::new(config.run_id);
    let burst = config.burst.clamp(1, MAX_BURST);
    let mut frames: Vec<Vec<u8>> = (0..burst)
        .map(|_| Vec::with_capacity(FRAME_BUFFER))
        .collect();
    let mut buffers = vec![[0u8; FRAME_BUFFER]; MAX_BURST];
    let mut lengths = vec![0usize; MAX_BURST];
    let templates = templates(config);
    let progress = progress_bar(config);
    let timeout_ns = config.timeout.as_nanos() as u64;
    let spin = match path {
        ReturnPath::Echo => socket.poll_before_sleep(),
        ReturnPath::Forwarded(receiver) => receiver.poll_before_sleep(),
    };
    let mut idle_since: Option<Instant> = None;
    let start = Instant::now();

    while tracker.sent() < config.count && start.elapsed() < config.duration {
        let mut allowed = (burst as u64).min(config.count - tracker.sent());
        if let Some(rate) = config.rate_pps {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            allowed = allowed.min(due.saturating_sub(tracker.sent()));
        }
        let mut window_full = false;
        if let Some(window) = config.window {
            let room = window.saturating_sub(tracker.in_flight(now_ns(), timeout_ns));
            let needed = if config.whole_bursts {
                (burst as u64)
                    .min(window)
                    .min(config.count - tracker.sent())
                    .max(1)
            } else {
                1
            };
            window_full = room < needed;
            allowed = if window_full { 0 } else { allowed.min(room) };
        }
        if allowed > 0 {
            let now = now_ns();
            for (offset, frame) in frames.iter_mut().take(allowed as usize).enumerate() {
                let sequence = tracker.sent() + offset as u64;
                if let Some(templates) = &templates {
                    let flow = (sequence % templates.len() as u64) as usize;
                    templates[flow].write(sequence, now, frame);
                    continue;
                }
                let (endpoints, workload, flow) = tuple_for(
                    &config.endpoints,
                    config.workload,
                    config.flows,
                    config.spread,
                    sequence,
                );
                let probe = Probe {
                    run_id: config.run_id,
                    sequence,
                    sent_ns: now,
                };
                build(&endpoints, workload, flow, config.payload_len, probe, frame);
            }
            let sent = socket.send_batch(&frames[..allowed as usize])?;
            if sent == 0 {
                // No room (a full ring): a port that can tell when room
                // comes back sleeps for it, boundedly.
                socket.wait_send_room(WINDOW_WAIT)?;
            }
            for _ in 0..sent {
                tracker.next_sent(now);
            }
            if let Some(bar) = &progress {
                bar.set_position(tracker.sent());
            }
        }
        let received = receive(
            socket,
            path,
            config,
            &mut tracker,
            &mut buffers,
            &mut lengths,
        )?;
        if window_full && received == 0 {
            // Nothing came back to open the window. A port with a host CPU
            // of its own polls on for a while (a sleep and its wake-up add
            // tens of microseconds to every round trip, which a closed loop
            // pays in rate); then, or at once on a port that shares its
            // CPU with the system under test, sleep until a reply arrives.
            // (Pacing keeps spinning: a sleep would turn its steady stream
            // into bursts.)
            let waiting_since = *idle_since.get_or_insert_with(Instant::now);
            if waiting_since.elapsed() < spin {
                std::hint::spin_loop();
            } else {
                idle_since = None;
                match path {
                    ReturnPath::Echo => socket.wait_readable(WINDOW_WAIT)?,
                    // Probes come back on the receiver; ARP on the sending
                    // port waits at most this one sleep.
                    ReturnPath::Forwarded(receiver) => receiver.wait_readable(WINDOW_WAIT)?,
                }
            }
        } else {
            idle_since = None;
            if allowed == 0 && received == 0 {
                std::hint::spin_loop();
            }
        }
    }
    let send_seconds = start.elapsed().as_secs_f64().max(1e-9);
    let received_while_sending = tracker.received();
    let drain_deadline = Instant::now() + config.timeout;
    while tracker.received() < tracker.sent() && Instant::now() < drain_deadline {
        if receive(
            socket,
            path,
            config,
            &mut tracker,
            &mut buffers,
            &mut lengths,
        )? == 0
        {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok(RunResult {
        summary: tracker.summary(),
        send_seconds,
        sent_pps: tracker.sent() as f64 / send_seconds,
        offered_pps: config.rate_pps,
        received_pps: received_while_sending as f64 / send_seconds,
        latency_cdf: tracker.latency_cdf(100),
        vhost_user: None,
        vhost_user_receive: None,
        tcp_client: None,
    })
}

/// Flows whose frames are built once each and patched per probe; more
/// than this and the frames are built whole (their templates would not
/// stay in cache).
const MAX_TEMPLATES: u16 = 4096;

/// One frame template per flow when a probe's frame depends only on its
/// flow (`sequence % flows`) and the probe: round robin over the flows.
/// New flows per probe build every frame.
fn templates(config: &RunConfig) -> Option<Vec<ProbeTemplate>> {
    let flows = config.flows.max(1);
    if !matches!(config.spread, FlowSpread::RoundRobin { .. }) || flows > MAX_TEMPLATES {
        return None;
    }
    Some(
        (0..u64::from(flows))
            .map(|sequence| {
                let (endpoints, workload, flow) = tuple_for(
                    &config.endpoints,
                    config.workload,
                    flows,
                    config.spread,
                    sequence,
                );
                ProbeTemplate::new(
                    &endpoints,
                    workload,
                    flow,
                    config.payload_len,
                    config.run_id,
                )
            })
            .collect(),
    )
}

/// Takes one burst of frames off the socket(s): answers ARP for our
/// addresses, books replies. Returns how many frames arrived.
fn receive<P: FramePort>(
    socket: &P,
    path: ReturnPath<'_>,
    config: &RunConfig,
    tracker: &mut Tracker,
    buffers: &mut [[u8; FRAME_BUFFER]],
    lengths: &mut [usize],
) -> Result<usize> {
    let flows = config.flows.max(1);
    let endpoints = &config.endpoints;
    let mut count = socket.recv_batch(buffers, lengths)?;
    let now = now_ns();
    for (buffer, &length) in buffers.iter().zip(lengths.iter()).take(count) {
        let frame = &buffer[..length];
        if let ReturnPath::Echo = path
            && let Some(reply) = parse_reply(frame, endpoints, config.workload, flows)
        {
            tracker.on_reply(&reply, now);
        } else if let Some(answer) = arp::answer(frame, endpoints.source_mac, endpoints.source_ip) {
            socket.send_batch(&[answer])?;
        }
    }
    if let ReturnPath::Forwarded(receiver) = path {
        let arrived = receiver.recv_batch(buffers, lengths)?;
        let now = now_ns();
        for (buffer, &length) in buffers.iter().zip(lengths.iter()).take(arrived) {
            let frame = &buffer[..length];
            let reply = match &config.translated {
                Some(expected) => {
                    parse_translated(frame, receiver.mac(), endpoints, expected, flows)
                }
                None => parse_forwarded(frame, receiver.mac(), endpoints, config.workload, flows),
            };
            if let Some(reply) = reply {
                tracker.on_reply(&reply, now);
                continue;
            }
            // Next hops loadgen stands in for: the destination, or the
            // load balancer's backends.
            let next_hops = match &config.translated {
                Some(expected) if !expected.destinations.is_empty() => &expected.destinations[..],
                _ => core::slice::from_ref(&endpoints.destination_ip),
            };
            if let Some(answer) = next_hops
                .iter()
                .find_map(|&address| arp::answer(frame, receiver.mac(), address))
            {
                receiver.send_batch(&[answer])?;
            }
        }
        count += arrived;
    }
    Ok(count)
}

fn progress_bar(config: &RunConfig) -> Option<indicatif::ProgressBar> {
    (config.progress && config.duration > Duration::from_secs(3)).then(|| {
        let bar = indicatif::ProgressBar::new(config.count);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} {bar:40} {pos}/{len} probes",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    })
}
