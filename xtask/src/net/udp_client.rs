//! `cargo xtask __udp-client`: a small UDP client the appliance tests run inside
//! a network namespace (`ip netns exec NS xtask __udp-client ...`), so that the
//! test itself needs no namespace switching. Every loop is bounded in count and
//! time.
//!
//! Modes:
//! - `echo TARGET FLOWS COUNT [--source-port P]`: FLOWS sockets (distinct
//!   source ports, P + flow when given) each send COUNT datagrams of varied
//!   sizes and contents, one at a time, and expect each back byte-identical
//!   within a second; prints
//!   `udp-echo sent=N received=N identical=N late=N` (late: echoes of
//!   earlier datagrams that came after their second, told apart by
//!   content and counted in neither `received` nor `identical`).
//! - `closed TARGET`: sends to a closed port and expects ICMP port unreachable,
//!   which Linux reports on a connected socket as ECONNREFUSED; prints
//!   `udp-closed refused=true|false`.
//! - `rtt TARGET COUNT`: times one echo, then COUNT more right after it;
//!   prints `udp-rtt first_ns=N then_ns=N` (the benchmark of an idle
//!   system's first packet).
//! - `send TARGET PAYLOAD COUNT`: sends COUNT datagrams of PAYLOAD, each
//!   waiting up to a second for its echo; prints `udp-send sent=N
//!   received=N`.

use crate::cli::UdpClientMode;
use anyhow::{Result, bail};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// How long a reply may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs the client in `mode`.
pub fn run(mode: &UdpClientMode) -> Result<()> {
    match *mode {
        UdpClientMode::Echo {
            target,
            flows,
            count,
            size,
            source_port,
        } => echo(
            target,
            flows.clamp(1, 64),
            count.clamp(1, 100_000),
            size.map(|size| size.clamp(1, 65_507)),
            source_port,
        ),
        UdpClientMode::Closed { target } => closed(target),
        UdpClientMode::Rtt { target, count } => rtt(target, count.clamp(1, 1000)),
        UdpClientMode::Send {
            target,
            ref payload,
            count,
        } => send(target, payload.as_bytes(), count.clamp(1, 1000)),
    }
}

/// Sends `count` datagrams of `payload`, one at a time, counting the
/// echoes that come back within `REPLY_TIMEOUT`.
fn send(target: SocketAddr, payload: &[u8], count: usize) -> Result<()> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.connect(target)?;
    socket.set_read_timeout(Some(REPLY_TIMEOUT))?;
    let mut buffer = vec![0u8; 65_536];
    let mut received = 0;
    for _ in 0..count {
        socket.send(payload)?;
        if socket.recv(&mut buffer).is_ok() {
            received += 1;
        }
    }
    println!("udp-send sent={count} received={received}");
    Ok(())
}

/// The payload of datagram `index` of flow `flow`: `size` bytes, or 1 to
/// 1400, all distinct.
fn payload(flow: usize, index: usize, size: Option<usize>) -> Vec<u8> {
    let len = size.unwrap_or(1 + (index * 97 + flow * 13) % 1400);
    (0..len)
        .map(|byte| (byte as u64 * 31 + index as u64 * 7 + flow as u64) as u8)
        .collect()
}

fn echo(
    target: SocketAddr,
    flows: usize,
    count: usize,
    size: Option<usize>,
    source_port: Option<u16>,
) -> Result<()> {
    let sockets: Vec<UdpSocket> = (0..flows)
        .map(|flow| -> Result<UdpSocket> {
            let port = match source_port {
                Some(first) => first
                    .checked_add(flow as u16)
                    .ok_or_else(|| anyhow::anyhow!("source port {first} + {flow} overflows"))?,
                None => 0,
            };
            let socket = UdpSocket::bind(("0.0.0.0", port))?;
            socket.connect(target)?;
            socket.set_read_timeout(Some(REPLY_TIMEOUT))?;
            Ok(socket)
        })
        .collect::<Result<_>>()?;
    let (mut sent, mut received, mut identical, mut late) = (0usize, 0usize, 0usize, 0usize);
    // Per flow, the datagrams whose echo did not come in time: one that
    // comes later is told from the reply awaited now (and counted late),
    // instead of making every reply after it look wrong.
    let mut unanswered: Vec<Vec<usize>> = vec![Vec::new(); flows];
    let started = Instant::now();
    let mut buffer = vec![0u8; 65_536];
    for index in 0..count {
        for (flow, socket) in sockets.iter().enumerate() {
            let message = payload(flow, index, size);
            socket.send(&message)?;
            sent += 1;
            let deadline = Instant::now() + REPLY_TIMEOUT;
            loop {
                let reply = match deadline.checked_duration_since(Instant::now()) {
                    Some(wait) if !wait.is_zero() => socket
                        .set_read_timeout(Some(wait))
                        .and_then(|()| socket.recv(&mut buffer)),
                    _ => Err(std::io::ErrorKind::TimedOut.into()),
                };
                match reply {
                    Ok(len) if buffer[..len] == message[..] => {
                        received += 1;
                        identical += 1;
                    }
                    Ok(len) => {
                        // With a fixed `size`, payloads repeat every 256
                        // datagrams: an echo that late reads as the
                        // current one's.
                        let earlier = unanswered[flow]
                            .iter()
                            .position(|&before| buffer[..len] == payload(flow, before, size)[..]);
                        if let Some(position) = earlier {
                            unanswered[flow].swap_remove(position);
                            late += 1;
                            continue;
                        }
                        received += 1;
                        eprintln!("flow {flow} datagram {index}: reply differs ({len} bytes)");
                    }
                    Err(error) => {
                        unanswered[flow].push(index);
                        eprintln!("flow {flow} datagram {index}: no reply ({error})");
                    }
                }
                break;
            }
        }
    }
    println!(
        "udp-echo sent={sent} received={received} identical={identical} late={late} seconds={:.4}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn closed(target: SocketAddr) -> Result<()> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.connect(target)?;
    socket.set_read_timeout(Some(REPLY_TIMEOUT))?;
    let mut buffer = [0u8; 64];
    // The ICMP error arrives asynchronously: try a few times, bounded.
    for _ in 0..3 {
        socket.send(b"anyone there?")?;
        match socket.recv(&mut buffer) {
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                println!("udp-closed refused=true");
                return Ok(());
            }
            Ok(_) => bail!("a closed port answered"),
            Err(_) => {}
        }
    }
    println!("udp-closed refused=false");
    Ok(())
}

/// One echo's round trip; fails when the reply does not come back
/// byte-identical within `REPLY_TIMEOUT`.
fn round_trip(socket: &UdpSocket, message: &[u8], buffer: &mut [u8]) -> Result<Duration> {
    let started = std::time::Instant::now();
    socket.send(message)?;
    let len = socket.recv(buffer)?;
    let elapsed = started.elapsed();
    if buffer[..len] != message[..] {
        bail!("the echo differs ({len} bytes)");
    }
    Ok(elapsed)
}

fn rtt(target: SocketAddr, count: usize) -> Result<()> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.connect(target)?;
    socket.set_read_timeout(Some(REPLY_TIMEOUT))?;
    let mut buffer = [0u8; 256];
    let first = round_trip(&socket, b"first after idle", &mut buffer)?;
    let mut then = (0..count)
        .map(|_| round_trip(&socket, b"right after", &mut buffer))
        .collect::<Result<Vec<_>>>()?;
    then.sort();
    println!(
        "udp-rtt first_ns={} then_ns={}",
        first.as_nanos(),
        then[then.len() / 2].as_nanos()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_vary_in_size_and_content() {
        assert_ne!(payload(0, 0, None), payload(1, 0, None));
        assert_ne!(payload(0, 1, None), payload(0, 2, None));
        assert_eq!(payload(0, 3, Some(4000)).len(), 4000);
        assert_ne!(payload(0, 3, Some(4000)), payload(0, 4, Some(4000)));
        let sizes: Vec<usize> = (0..100)
            .map(|index| payload(0, index, None).len())
            .collect();
        assert!(sizes.iter().all(|&len| (1..=1400).contains(&len)));
        assert!(sizes.iter().max() > Some(&1000));
    }
}
