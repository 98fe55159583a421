//! The HTTP modes of `cargo xtask __tcp-client`, for the management
//! plane's robustness checks: `http` (given bytes, the status line they
//! earn and whether the server closes), `http-many` (many requests on as
//! many connections open at once) and `slowloris` (connections that send
//! half a head and then nothing, closed by the server's idle timeout).
//! Each prints one summary line of `key=value` words; every wait is bounded
//! by the run's deadline.

use crate::net::tcp_client::{connect, left, note, open_all};
use anyhow::{Context, Result, bail};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Most response bytes kept to find the status line.
const MAX_RESPONSE: usize = 1 << 20;

/// `text` with `\r`, `\n`, `\\` and `\xNN` turned into their bytes.
pub fn unescape(text: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        if byte != b'\\' {
            bytes.push(byte);
            continue;
        }
        let Some((&escape, tail)) = rest.split_first() else {
            bail!("a lone `\\` at the end of the request");
        };
        rest = tail;
        match escape {
            b'r' => bytes.push(b'\r'),
            b'n' => bytes.push(b'\n'),
            b'\\' => bytes.push(b'\\'),
            b'x' if rest.len() >= 2 => {
                let digits = std::str::from_utf8(&rest[..2]).context("`\\x` digits")?;
                bytes.push(u8::from_str_radix(digits, 16).context("`\\x` digits")?);
                rest = &rest[2..];
            }
            other => bail!("unknown escape `\\{}`", other as char),
        }
    }
    Ok(bytes)
}

/// The status code of a response's first line (`HTTP/1.1 200 OK`).
pub fn status_code(response: &[u8]) -> Option<u16> {
    let line = response.split(|byte| *byte == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    words.next()?.starts_with("HTTP/").then_some(())?;
    words.next()?.parse().ok()
}

/// What the server sent on a connection until it closed it or `deadline`.
struct Response {
    bytes: Vec<u8>,
    /// The server closed (FIN, or RST after its response).
    closed: bool,
}

/// Reads until EOF, a reset or `deadline`.
fn read_response(stream: &mut TcpStream, deadline: Instant) -> Response {
    let mut response = Response {
        bytes: Vec::new(),
        closed: false,
    };
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let read = left(deadline)
            .and_then(|timeout| stream.set_read_timeout(Some(timeout)))
            .and_then(|()| stream.read(&mut buffer));
        match read {
            Ok(0) => {
                response.closed = true;
                return response;
            }
            Ok(len) => {
                let room = MAX_RESPONSE.saturating_sub(response.bytes.len());
                response.bytes.extend_from_slice(&buffer[..len.min(room)]);
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => {
                response.closed = matches!(
                    error.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                );
                return response;
            }
        }
    }
}

/// `GET path` with `Connection: close`.
fn get_request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: warpcore\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Sends `request` on a new connection; the response and whether the
/// server closed after it.
fn exchange(target: SocketAddr, request: &[u8], deadline: Instant) -> Result<Response> {
    let mut stream = connect(target, deadline)?;
    stream.set_write_timeout(Some(left(deadline)?))?;
    stream.write_all(request).context("sending the request")?;
    Ok(read_response(&mut stream, deadline))
}

/// A status for the summary line: the code, or `none`.
fn shown(status: Option<u16>) -> String {
    status.map_or_else(|| String::from("none"), |code| code.to_string())
}

/// `http`: the given bytes, the status they earn.
pub fn one(target: SocketAddr, request: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let response = exchange(target, &unescape(request)?, deadline)?;
    println!(
        "http status={} closed={}",
        shown(status_code(&response.bytes)),
        response.closed
    );
    Ok(())
}

/// `http-many`: `connections` requests on as many connections, all open
/// before the first request goes out.
pub fn many(target: SocketAddr, connections: usize, path: &str, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut failures = 0;
    let mut streams = open_all(target, connections, deadline, &mut failures);
    let connected = streams.iter().flatten().count();
    // How long the first connection waited idle before its request: a
    // server's idle timeout shorter than this closes it, rightly.
    let open_seconds = started.elapsed().as_secs_f64();
    let request = get_request(path);
    for (index, slot) in streams.iter_mut().enumerate() {
        if let Some(stream) = slot
            && let Err(error) = stream.write_all(&request)
        {
            note(
                &mut failures,
                format_args!("connection {index}: write failed ({error})"),
            );
            *slot = None;
        }
    }
    let mut ok = 0;
    for (index, slot) in streams.iter_mut().enumerate() {
        let Some(stream) = slot else { continue };
        let response = read_response(stream, deadline);
        match status_code(&response.bytes) {
            Some(200) => ok += 1,
            status => note(
                &mut failures,
                format_args!(
                    "connection {index}: status {} after {} bytes",
                    shown(status),
                    response.bytes.len()
                ),
            ),
        }
    }
    drop(streams);
    println!(
        "http-many connections={connections} connected={connected} ok={ok} open_seconds={open_seconds:.2} seconds={:.2}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `slowloris`: `connections` half heads left hanging until the server
/// closes them; a whole request while they hang and one after.
pub fn slowloris(
    target: SocketAddr,
    connections: usize,
    path: &str,
    timeout: Duration,
) -> Result<()> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut failures = 0;
    let half = format!("GET {path} HTTP/1.1\r\nHost: warpcore\r\nX-Slow: ");
    let mut streams: Vec<TcpStream> = Vec::with_capacity(connections);
    for index in 0..connections {
        match connect(target, deadline).and_then(|mut stream| {
            stream.write_all(half.as_bytes())?;
            Ok(stream)
        }) {
            Ok(stream) => streams.push(stream),
            Err(error) => note(
                &mut failures,
                format_args!("connection {index}: connect or write failed ({error})"),
            ),
        }
    }
    let hung = Instant::now();
    let connected = streams.len();
    let during = exchange(target, &get_request(path), deadline)
        .ok()
        .and_then(|response| status_code(&response.bytes));
    // The connections are read in turn: the time one is seen closed is
    // at most a read later than when it was.
    let mut closed = 0;
    let (mut min_close, mut max_close) = (Duration::MAX, Duration::ZERO);
    for (index, stream) in streams.iter_mut().enumerate() {
        let response = read_response(stream, deadline);
        if response.closed && response.bytes.is_empty() {
            closed += 1;
            min_close = min_close.min(hung.elapsed());
            max_close = max_close.max(hung.elapsed());
        } else {
            note(
                &mut failures,
                format_args!(
                    "connection {index}: {} bytes, closed={}",
                    response.bytes.len(),
                    response.closed
                ),
            );
        }
    }
    drop(streams);
    let after = exchange(target, &get_request(path), deadline)
        .ok()
        .and_then(|response| status_code(&response.bytes));
    println!(
        "slowloris connections={connections} connected={connected} closed={closed} \
         open_ms={} min_close_ms={} max_close_ms={} during={} after={}",
        (hung - started).as_millis(),
        min_close.min(max_close).as_millis(),
        max_close.as_millis(),
        shown(during),
        shown(after)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_become_bytes() {
        assert_eq!(
            unescape(r"GET / HTTP/1.1\r\n\x00\xff\\").unwrap(),
            b"GET / HTTP/1.1\r\n\x00\xff\\"
        );
        assert!(unescape(r"\q").is_err());
        assert!(unescape("\\").is_err());
    }

    #[test]
    fn the_status_code_is_the_first_line_second_word() {
        assert_eq!(
            status_code(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            Some(431)
        );
        assert_eq!(status_code(b"garbage\r\n"), None);
        assert_eq!(status_code(b""), None);
    }
}
