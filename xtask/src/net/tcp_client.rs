//! `cargo xtask __tcp-client`: a small TCP client the TCP tests run inside a
//! network namespace (`ip netns exec NS xtask __tcp-client ...`), so that the
//! test itself needs no namespace switching. Every loop is bounded in count
//! and every mode in time (its `--timeout`).
//!
//! Modes (see `TcpClientMode`): `echo` (many connections at once, lines
//! echoed one by one), `bulk` (a deterministic stream echoed back and
//! compared byte for byte, half-closed at the end), `reset` (an abort with
//! SO_LINGER 0 while data flows both ways), `kv` (the memcached text
//! protocol, reply by reply), `refused` (a closed port) and the HTTP
//! modes of [`http_client`] (`http`, `http-many`, `slowloris`).
//! Each prints one summary line of `key=value` words that the tests parse.

use crate::cli::TcpClientMode;
use crate::net::http_client;
use anyhow::{Context, Result, bail};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long one connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How many failures of a kind are printed before the rest are only counted.
const FAILURES_SHOWN: usize = 5;
/// Bytes the `bulk` mode writes or reads at once.
const CHUNK: usize = 64 * 1024;
/// Most bytes `bulk` sends.
const MAX_BULK: u64 = 1 << 30;

/// Runs the client in `mode`.
pub fn run(mode: &TcpClientMode) -> Result<()> {
    match *mode {
        TcpClientMode::Echo {
            target,
            connections,
            lines,
            timeout,
        } => echo(
            target,
            connections.clamp(1, 10_000),
            lines.clamp(1, 100_000),
            Duration::from_secs(timeout),
        ),
        TcpClientMode::Bulk {
            target,
            bytes,
            read_after_close,
            timeout,
        } => bulk(
            target,
            bytes.min(MAX_BULK),
            read_after_close,
            Duration::from_secs(timeout),
        ),
        TcpClientMode::Reset { target, timeout } => reset(target, Duration::from_secs(timeout)),
        TcpClientMode::Kv { target, timeout } => kv(target, Duration::from_secs(timeout)),
        TcpClientMode::Refused { target } => refused(target),
        TcpClientMode::Say {
            target,
            ref text,
            timeout,
        } => say(target, text, Duration::from_secs(timeout.clamp(1, 120))),
        TcpClientMode::Http {
            target,
            ref request,
            timeout,
        } => http_client::one(target, request, Duration::from_secs(timeout)),
        TcpClientMode::HttpMany {
            target,
            connections,
            ref path,
            timeout,
        } => http_client::many(
            target,
            connections.clamp(1, 10_000),
            path,
            Duration::from_secs(timeout),
        ),
        TcpClientMode::Slowloris {
            target,
            connections,
            ref path,
            timeout,
        } => http_client::slowloris(
            target,
            connections.clamp(1, 10_000),
            path,
            Duration::from_secs(timeout),
        ),
    }
}

/// Byte `offset` of the `bulk` stream: a multiplicative hash of the
/// offset, so that a lost, repeated or reordered run of bytes never
/// matches where it lands.
pub fn pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8
}

/// Line `index` of connection `connection`, newline-terminated, distinct
/// for every pair, 20 to 99 bytes.
fn line(connection: usize, index: usize) -> Vec<u8> {
    let mut text = format!("warpcore connection {connection} line {index} ");
    let pad = (connection * 7 + index * 13) % 60;
    text.extend(std::iter::repeat_n('x', pad));
    text.push('\n');
    text.into_bytes()
}

/// Time left before `deadline`, at least a millisecond (a zero timeout
/// means "none" to the socket calls), or an error once it has passed.
pub(crate) fn left(deadline: Instant) -> std::io::Result<Duration> {
    let now = Instant::now();
    if now >= deadline {
        return Err(std::io::Error::new(
            ErrorKind::TimedOut,
            "the run's deadline passed",
        ));
    }
    Ok((deadline - now).max(Duration::from_millis(1)))
}

/// Connects to `target` within the connect timeout and the deadline, with
/// Nagle off.
pub(crate) fn connect(target: SocketAddr, deadline: Instant) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&target, left(deadline)?.min(CONNECT_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads exactly `buffer.len()` bytes before `deadline`.
fn read_exact_by(stream: &mut TcpStream, buffer: &mut [u8], deadline: Instant) -> Result<()> {
    let mut filled = 0;
    while filled < buffer.len() {
        stream.set_read_timeout(Some(left(deadline)?))?;
        match stream.read(&mut buffer[filled..]) {
            Ok(0) => bail!("EOF after {filled} of {} bytes", buffer.len()),
            Ok(read) => filled += read,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// Reads until EOF before `deadline`; fails if any byte comes first.
fn expect_eof(stream: &mut TcpStream, deadline: Instant) -> Result<()> {
    let mut byte = [0u8; 1];
    stream.set_read_timeout(Some(left(deadline)?))?;
    match stream.read(&mut byte)? {
        0 => Ok(()),
        _ => bail!("data where EOF was expected"),
    }
}

/// Counts a failure, printing the first few.
/// Opens `connections` connections to `target`, all before any is used;
/// a connection that fails is noted and left `None`.
pub(crate) fn open_all(
    target: SocketAddr,
    connections: usize,
    deadline: Instant,
    failures: &mut usize,
) -> Vec<Option<TcpStream>> {
    (0..connections)
        .map(|index| match connect(target, deadline) {
            Ok(stream) => Some(stream),
            Err(error) => {
                note(
                    failures,
                    format_args!("connection {index}: connect failed ({error})"),
                );
                None
            }
        })
        .collect()
}

pub(crate) fn note(failures: &mut usize, what: std::fmt::Arguments) {
    *failures += 1;
    if *failures <= FAILURES_SHOWN {
        eprintln!("{what}");
    }
}

fn echo(target: SocketAddr, connections: usize, lines: usize, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut failures = 0;
    // All connections first, so that `connections` of them are open at once.
    let mut streams = open_all(target, connections, deadline, &mut failures);
    let connected = streams.iter().flatten().count();
    let mut identical = 0;
    for index in 0..lines {
        // Every connection's line goes out before any reply is read, so
        // the appliance holds as many connections busy as there are.
        for (connection, slot) in streams.iter_mut().enumerate() {
            if let Some(stream) = slot
                && let Err(error) = stream.write_all(&line(connection, index))
            {
                note(
                    &mut failures,
                    format_args!("connection {connection} line {index}: write failed ({error})"),
                );
                *slot = None;
            }
        }
        for (connection, slot) in streams.iter_mut().enumerate() {
            let Some(stream) = slot else { continue };
            let want = line(connection, index);
            let mut got = vec![0u8; want.len()];
            match read_exact_by(stream, &mut got, deadline) {
                Ok(()) if got == want => identical += 1,
                Ok(()) => note(
                    &mut failures,
                    format_args!("connection {connection} line {index}: echo differs"),
                ),
                Err(error) => {
                    note(
                        &mut failures,
                        format_args!("connection {connection} line {index}: {error:#}"),
                    );
                    *slot = None;
                }
            }
        }
    }
    let mut eof = 0;
    for (connection, slot) in streams.iter_mut().enumerate() {
        let Some(stream) = slot else { continue };
        match stream
            .shutdown(Shutdown::Write)
            .map_err(anyhow::Error::from)
            .and_then(|()| expect_eof(stream, deadline))
        {
            Ok(()) => eof += 1,
            Err(error) => note(
                &mut failures,
                format_args!("connection {connection}: no clean EOF ({error:#})"),
            ),
        }
    }
    drop(streams);
    println!(
        "tcp-echo connections={connections} connected={connected} lines={} identical={identical} eof={eof}",
        connections * lines
    );
    Ok(())
}

/// Writes `bytes` of the pattern, then half-closes; returns the bytes written.
fn send_pattern(stream: &mut TcpStream, bytes: u64, deadline: Instant) -> Result<u64> {
    let mut chunk = vec![0u8; CHUNK];
    let mut sent = 0u64;
    while sent < bytes {
        let len = (bytes - sent).min(CHUNK as u64) as usize;
        for (at, byte) in chunk[..len].iter_mut().enumerate() {
            *byte = pattern(sent + at as u64);
        }
        stream.set_write_timeout(Some(left(deadline)?))?;
        stream
            .write_all(&chunk[..len])
            .with_context(|| format!("writing at offset {sent}"))?;
        sent += len as u64;
    }
    stream.shutdown(Shutdown::Write)?;
    Ok(sent)
}

/// What [`receive_pattern`] saw.
struct Received {
    bytes: u64,
    first_mismatch: Option<u64>,
    eof: bool,
    error: Option<String>,
}

/// Reads until EOF, an error or `deadline`, comparing with the pattern.
fn receive_pattern(stream: &mut TcpStream, deadline: Instant) -> Received {
    let mut buffer = vec![0u8; CHUNK];
    let mut received = Received {
        bytes: 0,
        first_mismatch: None,
        eof: false,
        error: None,
    };
    loop {
        let read = left(deadline)
            .and_then(|timeout| stream.set_read_timeout(Some(timeout)))
            .and_then(|()| stream.read(&mut buffer));
        match read {
            Ok(0) => {
                received.eof = true;
                return received;
            }
            Ok(len) => {
                if received.first_mismatch.is_none() {
                    received.first_mismatch = buffer[..len]
                        .iter()
                        .enumerate()
                        .find(|(at, byte)| **byte != pattern(received.bytes + *at as u64))
                        .map(|(at, _)| received.bytes + at as u64);
                }
                received.bytes += len as u64;
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => {
                received.error = Some(error.to_string());
                return received;
            }
        }
    }
}

fn bulk(target: SocketAddr, bytes: u64, read_after_close: bool, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut stream = connect(target, deadline)?;
    let mut writer_stream = stream.try_clone()?;
    let (sent, received) = if read_after_close {
        let sent = send_pattern(&mut writer_stream, bytes, deadline);
        (sent, receive_pattern(&mut stream, deadline))
    } else {
        let writer = std::thread::spawn(move || send_pattern(&mut writer_stream, bytes, deadline));
        let received = receive_pattern(&mut stream, deadline);
        // The writer is bounded by the same deadline.
        let sent = writer
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the writer panicked")));
        (sent, received)
    };
    let seconds = started.elapsed().as_secs_f64();
    let sent = match sent {
        Ok(sent) => sent,
        Err(error) => {
            eprintln!("tcp-bulk: sending stopped: {error:#}");
            0
        }
    };
    if let Some(error) = &received.error {
        eprintln!(
            "tcp-bulk: receiving stopped after {} bytes: {error}",
            received.bytes
        );
    }
    if let Some(offset) = received.first_mismatch {
        eprintln!("tcp-bulk: first byte that differs at offset {offset}");
    }
    let identical = received.first_mismatch.is_none() && received.bytes == bytes;
    println!(
        "tcp-bulk sent={sent} received={} identical={identical} eof={} seconds={seconds:.1}",
        received.bytes, received.eof
    );
    Ok(())
}

/// How much `reset` sends at most before aborting.
const RESET_BYTES: u64 = 4 * 1024 * 1024;
/// How long `reset` lets writes block before aborting: the echo is not
/// being read, so the buffers on the way fill and writes stall.
const RESET_STALL: Duration = Duration::from_secs(2);

fn reset(target: SocketAddr, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut stream = connect(target, deadline)?;
    // First make sure the echo flows: 1000 bytes out and back.
    let first: Vec<u8> = (0..1000).map(pattern).collect();
    stream.write_all(&first)?;
    let mut back = vec![0u8; first.len()];
    read_exact_by(&mut stream, &mut back, deadline).context("the first echo")?;
    if back != first {
        bail!("the first 1000 bytes came back changed");
    }
    // Then stream without reading until the buffers are full (a write
    // stalls) or RESET_BYTES went out: data now sits unacknowledged in
    // both directions.
    let chunk: Vec<u8> = (0..CHUNK as u64).map(pattern).collect();
    let mut sent = first.len() as u64;
    stream.set_write_timeout(Some(RESET_STALL.min(left(deadline)?)))?;
    while sent < RESET_BYTES {
        match stream.write(&chunk) {
            Ok(written) => sent += written as u64,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break;
            }
            Err(error) => return Err(error).context("streaming before the abort"),
        }
    }
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
    drop(stream);
    println!("tcp-reset sent={sent} read={}", first.len());
    Ok(())
}

/// A memcached text-protocol exchange: what to send, and the exact reply.
/// `{cas}` in either stands for the unique the previous `gets` returned.
const KV_EXCHANGES: [(&str, &str); 14] = [
    ("delete wc-a\r\n", "NOT_FOUND\r\n"),
    ("get wc-a\r\n", "END\r\n"),
    ("set wc-a 5 0 3\r\nabc\r\n", "STORED\r\n"),
    ("get wc-a\r\n", "VALUE wc-a 5 3\r\nabc\r\nEND\r\n"),
    ("gets wc-a\r\n", "VALUE wc-a 5 3 {cas}\r\nabc\r\nEND\r\n"),
    ("cas wc-a 6 0 3 {cas}\r\nxyz\r\n", "STORED\r\n"),
    // The unique changed with the store above: the same one is stale now.
    ("cas wc-a 7 0 3 {cas}\r\nold\r\n", "EXISTS\r\n"),
    ("get wc-a\r\n", "VALUE wc-a 6 3\r\nxyz\r\nEND\r\n"),
    ("append wc-a 0 0 2\r\n!!\r\n", "STORED\r\n"),
    ("get wc-a\r\n", "VALUE wc-a 6 5\r\nxyz!!\r\nEND\r\n"),
    ("set wc-n 0 0 2\r\n41\r\n", "STORED\r\n"),
    ("incr wc-n 1\r\n", "42\r\n"),
    ("decr wc-n 50\r\n", "0\r\n"),
    ("delete wc-a\r\n", "DELETED\r\n"),
];

/// Reads one reply to `request`: up to and including its last line, which
/// is the whole of `expected`'s line count.
fn kv_reply(stream: &mut TcpStream, lines: usize, deadline: Instant) -> Result<String> {
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while reply.iter().filter(|b| **b == b'\n').count() < lines {
        read_exact_by(stream, &mut byte, deadline)?;
        reply.push(byte[0]);
        if reply.len() > 4096 {
            bail!("reply longer than 4096 bytes");
        }
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

fn kv(target: SocketAddr, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut stream = connect(target, deadline)?;
    let mut cas = String::from("0");
    let mut passed = 0;
    for (request, expected) in KV_EXCHANGES {
        let request = request.replace("{cas}", &cas);
        stream.write_all(request.as_bytes())?;
        let reply = kv_reply(&mut stream, expected.matches('\n').count(), deadline)?;
        if expected.contains("{cas}") {
            // VALUE <key> <flags> <bytes> <cas>: keep the unique.
            if let Some(unique) = reply.lines().next().and_then(|line| line.split(' ').nth(4)) {
                cas = unique.to_owned();
            }
        }
        if reply == expected.replace("{cas}", &cas) {
            passed += 1;
        } else {
            eprintln!(
                "tcp-kv: `{}` got `{}`",
                request.trim_end(),
                reply.escape_debug()
            );
        }
    }
    println!("tcp-kv checks={} passed={passed}", KV_EXCHANGES.len());
    Ok(())
}

/// One line out, one line back (see `TcpClientMode::Say`).
fn say(target: SocketAddr, text: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut stream = match connect(target, deadline) {
        Ok(stream) => stream,
        Err(error) if error.kind() == ErrorKind::ConnectionRefused => {
            println!("tcp-say connect=refused reply=none end=refused");
            return Ok(());
        }
        Err(error) => bail!("connecting to {target}: {error}"),
    };
    let mut request = text.as_bytes().to_vec();
    request.push(b'\n');
    stream.write_all(&request).context("sending")?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    // Bounded: one line of at most 4 KiB, before the deadline.
    let end = loop {
        if reply.len() >= 4096 {
            break "line";
        }
        let Ok(wait) = left(deadline) else {
            break "timeout";
        };
        stream.set_read_timeout(Some(wait))?;
        match stream.read(&mut byte) {
            Ok(0) => break "eof",
            Ok(_) if byte[0] == b'\n' => break "line",
            Ok(_) => reply.push(byte[0]),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                break "reset";
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break "timeout";
            }
            Err(error) => return Err(error.into()),
        }
    };
    let reply = if reply.is_empty() && end != "line" {
        "none".to_string()
    } else {
        String::from_utf8_lossy(&reply).replace(' ', "_")
    };
    println!("tcp-say connect=ok reply={reply} end={end}");
    Ok(())
}

fn refused(target: SocketAddr) -> Result<()> {
    match TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
        Err(error) if error.kind() == ErrorKind::ConnectionRefused => {
            println!("tcp-refused refused=true");
        }
        Err(error) => {
            eprintln!("tcp-refused: {error}");
            println!("tcp-refused refused=false");
        }
        Ok(_) => bail!("a closed port accepted the connection"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_does_not_repeat_in_short_runs() {
        let bytes: Vec<u8> = (0..4096).map(pattern).collect();
        // Not periodic with any small period a framing bug would produce.
        for period in [1usize, 2, 4, 8, 16, 1024, 1460, 1448] {
            assert!(
                bytes.iter().zip(&bytes[period..]).any(|(a, b)| a != b),
                "period {period}"
            );
        }
        assert_eq!(pattern(12345), pattern(12345));
    }

    #[test]
    fn lines_are_distinct_and_newline_terminated() {
        let first = line(0, 0);
        assert!(first.ends_with(b"\n") && first.len() >= 20 && first.len() < 100);
        assert_ne!(line(0, 1), line(1, 0));
        assert_ne!(line(3, 4), line(4, 3));
    }
}
