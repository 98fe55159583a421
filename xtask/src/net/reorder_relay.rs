//! `cargo xtask __reorder-relay`: moves Ethernet frames between two
//! interfaces through AF_PACKET sockets, in userspace, and reorders the way
//! toward the appliance: about one TCP data segment in `hold_one_in` is held
//! back and sent after the next one to three frames, or after
//! [`HOLD_LIMIT`] when none follow. Every frame is forwarded; none is lost
//! or duplicated here. The kernels the tests run on have no netem qdisc,
//! hence this relay.
//!
//! The tests run it inside the namespace holding both interfaces through
//! [`ReorderRelay::start`] (`ip netns exec NS xtask __reorder-relay ...`).
//! It prints `reorder-relay ready` once both sockets are open, runs until
//! its stdin closes or `--seconds` pass, and then prints one summary line
//! of `key=value` words (see [`RelayCounts`]). Every loop is bounded in
//! count and time.
//!
//! A veth sends TCP segments with the checksum left to the hardware
//! (`CHECKSUM_PARTIAL`), and an AF_PACKET socket reads them that way, so
//! the relay fills in the TCP checksum of every IPv4 segment it forwards
//! toward the appliance.

use crate::net::netns::Netns;
use anyhow::{Context, Result, bail, ensure};
use loadgen::socket::{FRAME_BUFFER, PacketSocket, wait_readable};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wire::ethernet::{EtherType, EthernetFrame};
use wire::ipv4::{Ipv4Packet, protocol};
use wire::tcp::TcpPacket;

/// Longest a held frame waits when no frame follows it.
pub const HOLD_LIMIT: Duration = Duration::from_millis(5);
/// Most frames that overtake a held one.
const MAX_OVERTAKING: u32 = 3;
/// Frames read from one socket at once.
const BATCH: usize = 32;
/// How long the relay sleeps waiting for a frame (and so how late a held
/// frame may be released past [`HOLD_LIMIT`]).
const POLL: Duration = Duration::from_millis(1);
/// How long one frame may wait for room in a socket's queue.
const SEND_TIMEOUT: Duration = Duration::from_millis(200);
/// How long the relay gets to report after its stdin closes.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the relay did, from its summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCounts {
    /// Frames forwarded toward the appliance.
    pub to_appliance: u64,
    /// Frames forwarded toward the client.
    pub to_client: u64,
    /// Frames held back (and so overtaken by later ones).
    pub held: u64,
    /// Held frames released because frames overtook them.
    pub released_after_frames: u64,
    /// Held frames released by [`HOLD_LIMIT`].
    pub released_after_time: u64,
    /// Frames a socket would not take within [`SEND_TIMEOUT`].
    pub send_failed: u64,
}

impl RelayCounts {
    /// The summary line the relay prints.
    fn line(&self) -> String {
        format!(
            "reorder-relay to-appliance={} to-client={} held={} released-after-frames={} \
             released-after-time={} send-failed={}",
            self.to_appliance,
            self.to_client,
            self.held,
            self.released_after_frames,
            self.released_after_time,
            self.send_failed
        )
    }

    /// Parses [`Self::line`].
    fn parse(text: &str) -> Result<Self> {
        let line = text
            .lines()
            .find(|line| line.starts_with("reorder-relay to-appliance="))
            .with_context(|| format!("no summary from the relay in `{}`", text.trim()))?;
        let field = |key: &str| -> Result<u64> {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
                .with_context(|| format!("no {key}= in `{line}`"))?
                .parse()
                .with_context(|| format!("{key}= is not a number in `{line}`"))
        };
        Ok(Self {
            to_appliance: field("to-appliance")?,
            to_client: field("to-client")?,
            held: field("held")?,
            released_after_frames: field("released-after-frames")?,
            released_after_time: field("released-after-time")?,
            send_failed: field("send-failed")?,
        })
    }
}

/// The reordering toward the appliance, apart from the sockets: frames go
/// in with [`Reorderer::push`] and [`Reorderer::expire`], and come out in
/// the order to send them.
struct Reorderer {
    hold_one_in: u32,
    random: u64,
    held: Option<Held>,
    counts: RelayCounts,
}

/// A frame held back, and what releases it.
struct Held {
    frame: Vec<u8>,
    since: Instant,
    overtaking_left: u32,
}

impl Reorderer {
    /// Holds about one TCP data segment in `hold_one_in`, choosing with a
    /// generator seeded by `seed` (so a run can be repeated).
    fn new(hold_one_in: u32, seed: u64) -> Self {
        Self {
            hold_one_in: hold_one_in.max(1),
            random: seed | 1,
            held: None,
            counts: RelayCounts::default(),
        }
    }

    /// xorshift64: good enough to scatter the held frames.
    fn next_random(&mut self) -> u64 {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        self.random
    }

    /// Takes `frame`, arrived at `now`, and appends to `out` what to send.
    fn push(&mut self, frame: Vec<u8>, now: Instant, out: &mut Vec<Vec<u8>>) {
        if self.held.is_none() && carries_tcp_data(&frame) {
            let roll = self.next_random();
            if roll.is_multiple_of(u64::from(self.hold_one_in)) {
                let overtaking_left = 1 + ((roll >> 32) % u64::from(MAX_OVERTAKING)) as u32;
                self.held = Some(Held {
                    frame,
                    since: now,
                    overtaking_left,
                });
                self.counts.held += 1;
                return;
            }
        }
        out.push(frame);
        if let Some(held) = &mut self.held {
            held.overtaking_left -= 1;
            if held.overtaking_left == 0 {
                out.extend(self.held.take().map(|held| held.frame));
                self.counts.released_after_frames += 1;
            }
        }
    }

    /// Appends the held frame to `out` once it has waited [`HOLD_LIMIT`].
    fn expire(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        if self
            .held
            .as_ref()
            .is_some_and(|held| now.duration_since(held.since) >= HOLD_LIMIT)
        {
            out.extend(self.held.take().map(|held| held.frame));
            self.counts.released_after_time += 1;
        }
    }

    /// Appends the held frame to `out` whatever its age (the relay stops).
    fn flush(&mut self, out: &mut Vec<Vec<u8>>) {
        if let Some(held) = self.held.take() {
            out.push(held.frame);
            self.counts.released_after_time += 1;
        }
    }
}

/// True for an IPv4 TCP segment with payload in an Ethernet frame.
fn carries_tcp_data(frame: &[u8]) -> bool {
    tcp_segment(frame).is_some_and(|(ip_header, segment)| {
        TcpPacket::new_checked(&frame[ip_header..ip_header + segment])
            .is_ok_and(|tcp| !tcp.payload().is_empty())
    })
}

/// Where an IPv4 TCP segment (not a fragment) starts in `frame`, and its
/// length; `None` for anything else.
fn tcp_segment(frame: &[u8]) -> Option<(usize, usize)> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EtherType::IPV4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
    if ip.protocol() != protocol::TCP || ip.is_fragment() {
        return None;
    }
    let start = wire::ethernet::HEADER_LEN + ip.header_len();
    Some((start, ip.payload().len()))
}

/// Writes the TCP checksum of an IPv4 segment in `frame`; leaves anything
/// else alone.
fn fill_tcp_checksum(frame: &mut [u8]) {
    let Some((start, length)) = tcp_segment(frame) else {
        return;
    };
    let Ok(ip) = Ipv4Packet::new_checked(&frame[wire::ethernet::HEADER_LEN..]) else {
        return;
    };
    let (source, destination) = (ip.source(), ip.destination());
    if let Ok(mut tcp) = TcpPacket::new_checked(&mut frame[start..start + length]) {
        tcp.fill_checksum(source, destination);
    }
}

/// Sends `frames` in order out of `socket`, each waiting at most
/// [`SEND_TIMEOUT`] for room; returns how many it could not send.
fn send_all(socket: &PacketSocket, frames: &[Vec<u8>]) -> Result<u64> {
    let mut failed = 0;
    let mut next = 0;
    let mut deadline = Instant::now() + SEND_TIMEOUT;
    while next < frames.len() {
        let sent = match socket.send_batch(&frames[next..]) {
            Ok(sent) => sent,
            Err(error) if error.raw_os_error() == Some(EMSGSIZE) => {
                eprintln!(
                    "reorder-relay: {} refused a {}-byte frame: {error}",
                    socket.interface(),
                    frames[next].len()
                );
                failed += 1;
                next += 1;
                continue;
            }
            Err(error) => {
                return Err(error).with_context(|| format!("sending on {}", socket.interface()));
            }
        };
        if sent > 0 {
            next += sent;
            deadline = Instant::now() + SEND_TIMEOUT;
        } else if Instant::now() >= deadline {
            failed += 1;
            next += 1;
            deadline = Instant::now() + SEND_TIMEOUT;
        } else {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    Ok(failed)
}

/// Linux's EMSGSIZE: a frame longer than the interface's MTU allows
/// (counted in `send-failed` and skipped, as a switch would drop it).
const EMSGSIZE: i32 = 90;

/// Reads what `socket` has (one batch) into owned frames.
fn receive(
    socket: &PacketSocket,
    buffers: &mut [[u8; FRAME_BUFFER]],
    lengths: &mut [usize],
) -> Result<Vec<Vec<u8>>> {
    let count = socket
        .recv_batch(buffers, lengths)
        .with_context(|| format!("receiving on {}", socket.interface()))?;
    Ok(buffers[..count]
        .iter()
        .zip(&lengths[..count])
        .map(|(buffer, length)| buffer[..(*length).min(FRAME_BUFFER)].to_vec())
        .collect())
}

/// `cargo xtask __reorder-relay CLIENT_SIDE APPLIANCE_SIDE`: relays until
/// stdin closes or `seconds` pass, reordering toward APPLIANCE_SIDE, then
/// prints the summary line.
pub fn run(client_side: &str, appliance_side: &str, hold_one_in: u32, seconds: u64) -> Result<()> {
    let client = PacketSocket::open(client_side)?;
    let appliance = PacketSocket::open(appliance_side)?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop_on_eof = Arc::clone(&stop);
    // The thread ends when stdin closes; the process does not wait for it.
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        while std::io::stdin().read(&mut sink).is_ok_and(|read| read > 0) {}
        // Ordering: Relaxed, the flag carries no data with it.
        stop_on_eof.store(true, Ordering::Relaxed);
    });
    println!("reorder-relay ready");
    let seed = std::process::id().into();
    let mut reorderer = Reorderer::new(hold_one_in, seed);
    let mut buffers = vec![[0u8; FRAME_BUFFER]; BATCH];
    let mut lengths = [0usize; BATCH];
    let mut out = Vec::with_capacity(BATCH + 1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    // Ordering: Relaxed, see the store.
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        wait_readable(&[&client, &appliance], POLL)?;
        let now = Instant::now();
        out.clear();
        for mut frame in receive(&client, &mut buffers, &mut lengths)? {
            fill_tcp_checksum(&mut frame);
            reorderer.push(frame, now, &mut out);
        }
        reorderer.expire(now, &mut out);
        reorderer.counts.to_appliance += out.len() as u64;
        reorderer.counts.send_failed += send_all(&appliance, &out)?;
        let toward_client = receive(&appliance, &mut buffers, &mut lengths)?;
        reorderer.counts.to_client += toward_client.len() as u64;
        reorderer.counts.send_failed += send_all(&client, &toward_client)?;
    }
    out.clear();
    reorderer.flush(&mut out);
    reorderer.counts.to_appliance += out.len() as u64;
    reorderer.counts.send_failed += send_all(&appliance, &out)?;
    println!("{}", reorderer.counts.line());
    Ok(())
}

/// A running relay; killed on drop if [`ReorderRelay::finish`] was not
/// called.
pub struct ReorderRelay {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl ReorderRelay {
    /// Starts the relay in `netns` between `client_side` and
    /// `appliance_side` (both there), holding about one data segment in
    /// `hold_one_in`, for at most `seconds`; returns once it is relaying.
    pub fn start(
        netns: &Netns,
        client_side: &str,
        appliance_side: &str,
        hold_one_in: u32,
        seconds: u64,
    ) -> Result<Self> {
        let me = std::env::current_exe().context("locating the xtask binary")?;
        let mut command = netns.command(&me.to_string_lossy());
        command
            .arg("__reorder-relay")
            .args([client_side, appliance_side])
            .args(["--hold-one-in", &hold_one_in.to_string()])
            .args(["--seconds", &seconds.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = command.spawn().context("starting the reorder relay")?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().context("no relay stdout")?);
        let mut relay = Self {
            child,
            stdin,
            stdout,
        };
        // The relay prints this line or exits (closing stdout), so the
        // read ends either way.
        let mut line = String::new();
        relay.stdout.read_line(&mut line)?;
        ensure!(
            line.trim() == "reorder-relay ready",
            "the reorder relay did not start (said `{}`)",
            line.trim()
        );
        Ok(relay)
    }

    /// Stops the relay and returns its counts.
    pub fn finish(mut self) -> Result<RelayCounts> {
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                bail!("the reorder relay did not stop within {STOP_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest)?;
        ensure!(status.success(), "the reorder relay failed: {status}");
        RelayCounts::parse(&rest)
    }
}

impl Drop for ReorderRelay {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame holding an IPv4 TCP segment with `payload` bytes
    /// and sequence number `seq`.
    fn segment(seq: u32, payload: usize) -> Vec<u8> {
        let total = 20 + 20 + payload;
        let mut frame = vec![0u8; 14 + total];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut frame[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let tcp = &mut frame[34..54];
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[12] = 5 << 4;
        frame
    }

    fn seq(frame: &[u8]) -> u32 {
        u32::from_be_bytes(frame[38..42].try_into().unwrap())
    }

    #[test]
    fn every_frame_comes_out_once_and_some_out_of_order() {
        let mut reorderer = Reorderer::new(4, 12345);
        let start = Instant::now();
        let mut out = Vec::new();
        for index in 0..1000 {
            reorderer.push(segment(index, 100), start, &mut out);
        }
        reorderer.flush(&mut out);
        let order: Vec<u32> = out.iter().map(|frame| seq(frame)).collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        let overtaken = order.windows(2).filter(|pair| pair[0] > pair[1]).count();
        let counts = reorderer.counts;
        assert!(counts.held > 100, "{counts:?}");
        assert_eq!(
            counts.held,
            counts.released_after_frames + counts.released_after_time
        );
        assert_eq!(overtaken as u64, counts.held);
        // No frame is overtaken by more than three.
        for (position, &sequence) in order.iter().enumerate() {
            assert!(position as u32 <= sequence + MAX_OVERTAKING);
        }
    }

    #[test]
    fn only_data_segments_are_held_and_time_releases_them() {
        let mut reorderer = Reorderer::new(1, 7);
        let start = Instant::now();
        let mut out = Vec::new();
        reorderer.push(segment(1, 0), start, &mut out);
        reorderer.push(vec![0xff; 60], start, &mut out);
        assert_eq!(out.len(), 2, "a pure ACK and a non-IPv4 frame pass");
        reorderer.push(segment(2, 10), start, &mut out);
        assert_eq!((out.len(), reorderer.counts.held), (2, 1));
        reorderer.expire(start, &mut out);
        assert_eq!(out.len(), 2);
        reorderer.expire(start + HOLD_LIMIT, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(reorderer.counts.released_after_time, 1);
    }

    #[test]
    fn the_checksum_is_filled_and_the_summary_parses() {
        let mut frame = segment(9, 33);
        fill_tcp_checksum(&mut frame);
        let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(ip.source(), ip.destination()));
        let counts = RelayCounts {
            to_appliance: 5,
            to_client: 6,
            held: 2,
            released_after_frames: 1,
            released_after_time: 1,
            send_failed: 0,
        };
        assert_eq!(RelayCounts::parse(&counts.line()).unwrap(), counts);
        assert!(RelayCounts::parse("reorder-relay ready").is_err());
    }
}
