//! What a TCP load asks and how its replies end: HTTP/1.1 keep-alive
//! `GET /` and memcached text-protocol `get`/`set`, shared by loadgen's
//! smoltcp client and `tcp-load` (the kernel-socket client on the tap).

use std::fmt;

/// Bytes of every memcached value (`set` stores it, `get` reads it back).
pub const VALUE_BYTES: usize = 32;

/// The longest reply a client takes: one that says it is longer, or that
/// has not ended by then, fails with [`ReplyError::TooLong`] (the client
/// keeps what arrived and rescans it until the reply ends, so an unended
/// reply must not grow without bound).
pub const MAX_REPLY: usize = 64 * 1024;

/// What the client asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// `GET / HTTP/1.1`, keep-alive; the reply's Content-Length says where
    /// it ends.
    Http,
    /// memcached `get` of a key the connection set before its first one.
    MemcacheGet,
    /// memcached `set` of a [`VALUE_BYTES`]-byte value.
    MemcacheSet,
}

/// A reply that says the request failed, or more than was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// An HTTP status other than 200 (its status line).
    HttpStatus(String),
    /// An HTTP reply without Content-Length.
    NoContentLength,
    /// A memcached `get` that found no value.
    Miss,
    /// A memcached `set` answered with something other than `STORED`.
    NotStored(String),
    /// Bytes beyond the one reply asked for.
    Unasked,
    /// A reply longer than [`MAX_REPLY`] (said or received).
    TooLong,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HttpStatus(line) => write!(formatter, "HTTP status: {line}"),
            Self::NoContentLength => write!(formatter, "a reply without Content-Length"),
            Self::Miss => write!(formatter, "get missed the key"),
            Self::NotStored(line) => write!(formatter, "set: {line}"),
            Self::Unasked => write!(
                formatter,
                "more bytes than one reply: the server answered unasked"
            ),
            Self::TooLong => write!(formatter, "a reply longer than {MAX_REPLY} bytes"),
        }
    }
}

impl std::error::Error for ReplyError {}

/// The memcached key of connection `index`.
pub fn key(index: u32) -> String {
    format!("wc-bench-{index}")
}

/// The request connection `index` sends, over and over, to `host`.
pub fn request(protocol: Protocol, host: &str, index: u32) -> Vec<u8> {
    match protocol {
        Protocol::Http => format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
        Protocol::MemcacheGet => format!("get {}\r\n", key(index)).into_bytes(),
        Protocol::MemcacheSet => set_request(index),
    }
}

/// What connection `index` sends once before its first request, if
/// anything: a `get` load sets its key first.
pub fn preamble(protocol: Protocol, index: u32) -> Option<Vec<u8>> {
    (protocol == Protocol::MemcacheGet).then(|| set_request(index))
}

/// `set` of connection `index`'s key to a [`VALUE_BYTES`]-byte value.
pub fn set_request(index: u32) -> Vec<u8> {
    let mut request = format!("set {} 0 0 {VALUE_BYTES}\r\n", key(index)).into_bytes();
    request.extend(std::iter::repeat_n(b'v', VALUE_BYTES));
    request.extend(b"\r\n");
    request
}

/// The length of the reply at the start of `bytes` once all of it is
/// there; an error for a reply that says the request failed.
pub fn reply_complete(protocol: Protocol, bytes: &[u8]) -> Result<Option<usize>, ReplyError> {
    match protocol {
        Protocol::Http => {
            let Some(head) = find(bytes, b"\r\n\r\n") else {
                return Ok(None);
            };
            let header = String::from_utf8_lossy(&bytes[..head]);
            if !header.starts_with("HTTP/1.1 200") {
                return Err(ReplyError::HttpStatus(
                    header.lines().next().unwrap_or("").to_owned(),
                ));
            }
            let length = header
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .ok_or(ReplyError::NoContentLength)?;
            let total = length
                .checked_add(head + 4)
                .filter(|&total| total <= MAX_REPLY)
                .ok_or(ReplyError::TooLong)?;
            Ok((bytes.len() >= total).then_some(total))
        }
        Protocol::MemcacheGet => {
            if bytes.starts_with(b"END\r\n") {
                return Err(ReplyError::Miss);
            }
            Ok(find(bytes, b"\r\nEND\r\n").map(|at| at + 7))
        }
        Protocol::MemcacheSet => match find(bytes, b"\r\n") {
            Some(_) if !bytes.starts_with(b"STORED\r\n") => Err(ReplyError::NotStored(
                String::from_utf8_lossy(bytes).trim().to_owned(),
            )),
            found => Ok(found.map(|at| at + 2)),
        },
    }
}

/// Whether `bytes` hold exactly one whole reply (`Ok(false)`: not yet);
/// [`ReplyError::TooLong`] once more than [`MAX_REPLY`] bytes have not
/// ended one.
pub fn exactly_one_reply(protocol: Protocol, bytes: &[u8]) -> Result<bool, ReplyError> {
    match reply_complete(protocol, bytes)? {
        Some(length) if length == bytes.len() => Ok(true),
        Some(_) => Err(ReplyError::Unasked),
        None if bytes.len() > MAX_REPLY => Err(ReplyError::TooLong),
        None => Ok(false),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_end_where_their_protocol_says() {
        let http = b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nhello from warpcore\n";
        assert_eq!(
            reply_complete(Protocol::Http, http).unwrap(),
            Some(http.len())
        );
        assert_eq!(
            reply_complete(Protocol::Http, &http[..http.len() - 1]).unwrap(),
            None
        );
        assert!(reply_complete(Protocol::Http, b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
        assert_eq!(
            reply_complete(Protocol::Http, b"HTTP/1.1 200 OK\r\n\r\n"),
            Err(ReplyError::NoContentLength)
        );
        let get = b"VALUE k 0 3\r\nabc\r\nEND\r\n";
        assert_eq!(
            reply_complete(Protocol::MemcacheGet, get).unwrap(),
            Some(get.len())
        );
        assert_eq!(
            reply_complete(Protocol::MemcacheGet, b"END\r\n"),
            Err(ReplyError::Miss)
        );
        assert_eq!(
            reply_complete(Protocol::MemcacheSet, b"STORED\r\n").unwrap(),
            Some(8)
        );
        assert!(reply_complete(Protocol::MemcacheSet, b"SERVER_ERROR out of memory\r\n").is_err());
        let mut two = http.to_vec();
        two.extend_from_slice(http);
        assert_eq!(
            exactly_one_reply(Protocol::Http, &two),
            Err(ReplyError::Unasked)
        );
        assert_eq!(exactly_one_reply(Protocol::Http, http), Ok(true));
    }

    #[test]
    fn a_reply_too_long_to_take_is_an_error_not_an_overflow() {
        let huge = b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n";
        assert_eq!(
            reply_complete(Protocol::Http, huge),
            Err(ReplyError::TooLong)
        );
        let over = format!("HTTP/1.1 200 OK\r\nContent-Length: {MAX_REPLY}\r\n\r\n");
        assert_eq!(
            exactly_one_reply(Protocol::Http, over.as_bytes()),
            Err(ReplyError::TooLong)
        );
        // Replies that never end: a header without its blank line, a value
        // without END, a set answer without its line end.
        for protocol in [Protocol::Http, Protocol::MemcacheGet, Protocol::MemcacheSet] {
            let mut endless = match protocol {
                Protocol::Http => b"HTTP/1.1 200 OK\r\nX: ".to_vec(),
                Protocol::MemcacheGet => b"VALUE k 0 99999\r\n".to_vec(),
                Protocol::MemcacheSet => b"STORED".to_vec(),
            };
            endless.resize(MAX_REPLY, b'x');
            assert_eq!(exactly_one_reply(protocol, &endless), Ok(false));
            endless.push(b'x');
            assert_eq!(
                exactly_one_reply(protocol, &endless),
                Err(ReplyError::TooLong),
                "{protocol:?}"
            );
        }
    }

    #[test]
    fn requests_name_the_connections_key() {
        assert_eq!(
            request(Protocol::MemcacheGet, "x", 3),
            b"get wc-bench-3\r\n"
        );
        let set = set_request(3);
        assert!(set.starts_with(b"set wc-bench-3 0 0 32\r\n"));
        assert_eq!(
            set.len(),
            "set wc-bench-3 0 0 32\r\n".len() + VALUE_BYTES + 2
        );
        assert_eq!(preamble(Protocol::Http, 0), None);
        assert_eq!(
            request(Protocol::Http, "10.0.0.2", 0),
            b"GET / HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n"
        );
    }
}
