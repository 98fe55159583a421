//! A SYN flood for the TCP tests: [`syn_frames`] builds SYNs from many
//! source ports, and [`flood_in_netns`] runs the hidden
//! `cargo xtask __flood-frames IFNAME FILE RATE` helper inside a namespace,
//! which writes them through an AF_PACKET socket in small batches at most
//! RATE a second, within a time bound, and prints one summary line.
//!
//! Unlike `__send-frames` (one frame at a time, a report line each, for
//! the malformed catalogue), this one is built for volume: 100 000 frames
//! at 20 000 a second take five seconds.

use crate::net::netns::Netns;
use crate::net::raw_frames::{NamedFrame, decode, run_frames_helper};
use anyhow::{Context, Result, ensure};
use dataplane::MacAddr;
use loadgen::socket::PacketSocket;
use services::wire::ethernet::{EtherType, EthernetFrame, HEADER_LEN};
use services::wire::ipv4::protocol;
use services::wire::tcp::{TcpFlags, TcpHeader, TcpOptions};
use services::wire::{Ipv4Packet, TcpPacket};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

/// Most frames one flood sends.
const MAX_FRAMES: usize = 200_000;
/// Frames written per batch.
const BATCH: usize = 32;
/// How long a flood may take whatever its rate.
const FLOOD_TIMEOUT: Duration = Duration::from_secs(120);

/// `count` SYNs from `peer_ip` (MAC `peer_mac`) to `port` on `ours` /
/// `our_ip`, from source ports spread over 1024..65535 and each with its
/// own sequence number; with the options of a Linux SYN but timestamps.
pub fn syn_frames(
    ours: MacAddr,
    our_ip: Ipv4Addr,
    peer_mac: MacAddr,
    peer_ip: Ipv4Addr,
    port: u16,
    count: usize,
) -> Vec<NamedFrame> {
    (0..count)
        .map(|index| {
            let index32 = index as u32;
            let header = TcpHeader {
                // 64 511 ports, visited in a scattered order (7919 is prime,
                // so the first 64 511 are all distinct).
                source_port: 1024 + ((index as u64 * 7919) % 64_511) as u16,
                destination_port: port,
                sequence: index32.wrapping_mul(2_654_435_761),
                acknowledgment: 0,
                flags: TcpFlags::SYN,
                window: 64_240,
                options: TcpOptions {
                    mss: Some(1460),
                    window_scale: Some(7),
                    sack_permitted: true,
                    timestamps: None,
                    sack_blocks: Default::default(),
                },
            };
            let tcp_len = header.header_len();
            let mut bytes = vec![0u8; HEADER_LEN + 20 + tcp_len];
            let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
            frame.set_destination(ours);
            frame.set_source(peer_mac);
            frame.set_ethertype(EtherType::IPV4);
            let ip = &mut bytes[HEADER_LEN..];
            Ipv4Packet::new_unchecked(&mut ip[..]).emit_header(
                peer_ip,
                our_ip,
                protocol::TCP,
                tcp_len as u16,
                64,
            );
            let segment = &mut ip[20..];
            header.emit(segment);
            TcpPacket::new_unchecked(&mut segment[..]).fill_checksum(peer_ip, our_ip);
            NamedFrame {
                name: format!("syn-{index}"),
                bytes,
            }
        })
        .collect()
}

/// What one flood did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flood {
    /// Frames the kernel took.
    pub sent: u64,
    /// Seconds it took.
    pub seconds: f64,
}

/// Sends `frames` out of `ifname` in `netns` at most `rate` a second;
/// fails when the helper cannot run or did not send them all in time.
pub fn flood_in_netns(
    netns: &Netns,
    ifname: &str,
    frames: &[NamedFrame],
    rate: u32,
) -> Result<Flood> {
    ensure!(
        frames.len() <= MAX_FRAMES,
        "at most {MAX_FRAMES} frames per flood"
    );
    let rate = rate.to_string();
    let output = run_frames_helper(netns, "__flood-frames", ifname, frames, &[&rate])?;
    let flood = parse_summary(&output)?;
    ensure!(
        flood.sent == frames.len() as u64,
        "the flood sent {} of {} frames in {:.1} s",
        flood.sent,
        frames.len(),
        flood.seconds
    );
    Ok(flood)
}

/// `cargo xtask __flood-frames IFNAME FILE RATE`: sends the frames of FILE
/// (`NAME HEX` lines) out of IFNAME in batches, at most RATE a second,
/// retrying a batch the socket queue only partly took; gives up after
/// [`FLOOD_TIMEOUT`]. Prints `flood frames=N sent=N seconds=S`.
pub fn run(ifname: &str, file: &Path, rate: u32) -> Result<()> {
    let frames: Vec<Vec<u8>> = decode(&std::fs::read_to_string(file).context("reading frames")?)?
        .into_iter()
        .map(|frame| frame.bytes)
        .collect();
    ensure!(frames.len() <= MAX_FRAMES, "at most {MAX_FRAMES} frames");
    let rate = f64::from(rate.clamp(1, 1_000_000));
    let socket = PacketSocket::open(ifname)?;
    let started = Instant::now();
    let deadline = started + FLOOD_TIMEOUT;
    let mut sent = 0usize;
    while sent < frames.len() && Instant::now() < deadline {
        // Pace: frame N leaves no earlier than N / rate seconds in.
        let due = started + Duration::from_secs_f64(sent as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let end = (sent + BATCH).min(frames.len());
        let taken = socket.send_batch(&frames[sent..end])?;
        if taken == 0 {
            // The queue is full: let the receiver catch up.
            std::thread::sleep(Duration::from_millis(1));
        }
        sent += taken;
    }
    println!(
        "flood frames={} sent={sent} seconds={:.1}",
        frames.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Parses the helper's `flood frames=N sent=N seconds=S` line.
fn parse_summary(text: &str) -> Result<Flood> {
    let line = text
        .lines()
        .find(|line| line.starts_with("flood "))
        .with_context(|| format!("no `flood` line in `{}`", text.trim()))?;
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(key))
            .with_context(|| format!("`{line}`: no {key}"))
    };
    Ok(Flood {
        sent: field("sent=")?.parse()?,
        seconds: field("seconds=")?.parse()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use services::wire::tcp::parse_options;

    #[test]
    fn syns_are_valid_and_spread_over_ports() {
        let ours = MacAddr([2, 0, 0, 0, 0, 1]);
        let peer = MacAddr([2, 0, 0, 0, 0, 2]);
        let (our_ip, peer_ip) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
        let frames = syn_frames(ours, our_ip, peer, peer_ip, 7, 70_000);
        let mut ports = std::collections::BTreeSet::new();
        for frame in &frames {
            let ethernet = EthernetFrame::new_checked(&frame.bytes[..]).unwrap();
            assert_eq!((ethernet.destination(), ethernet.source()), (ours, peer));
            let ip = Ipv4Packet::new_checked(ethernet.payload()).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!((ip.source(), ip.destination()), (peer_ip, our_ip));
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(tcp.verify_checksum(peer_ip, our_ip));
            assert_eq!(tcp.flags(), TcpFlags::SYN);
            assert_eq!(tcp.destination_port(), 7);
            assert_eq!(parse_options(tcp.options()).unwrap().mss, Some(1460));
            ports.insert(tcp.source_port());
        }
        assert_eq!(ports.len(), 64_511);
        assert!(ports.iter().all(|port| *port >= 1024));
    }

    #[test]
    fn the_summary_parses() {
        let flood = parse_summary("noise\nflood frames=10 sent=9 seconds=0.5\n").unwrap();
        assert_eq!(flood.sent, 9);
        assert!(parse_summary("nothing").is_err());
    }
}
