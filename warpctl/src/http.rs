//! A small HTTP/1.1 client over `std::net::TcpStream`: one request per
//! connection (`Connection: close`), Content-Length, chunked and
//! read-to-close bodies, one deadline for the whole exchange.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The most header bytes a response may have.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The most body bytes a response may have (a large scrape fits easily).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Where the appliance's API answers: `http://HOST[:PORT][/PREFIX]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port`, as connected to, sent in `Host` and named in errors.
    pub authority: String,
    /// A path prefix put before every request path, empty or `/...`
    /// without a trailing slash.
    pub base_path: String,
}

impl Endpoint {
    /// Parses `http://HOST[:PORT][/PREFIX]` (the scheme may be left out;
    /// the port defaults to 80).
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let text = text.trim();
        let rest = match text.split_once("://") {
            Some(("http", rest)) => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "unsupported scheme `{scheme}` in `{text}` (only http:// is served)"
                ));
            }
            None => text,
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!(
                "expected a server like http://10.0.0.2:8080, got `{text}`"
            ));
        }
        let has_port = if authority.starts_with('[') {
            authority.contains("]:")
        } else {
            authority.contains(':')
        };
        let authority = if has_port {
            let port = authority.rsplit(':').next().unwrap_or_default();
            if port.parse::<u16>().is_err() {
                return Err(format!("`{port}` is not a port number in `{text}`"));
            }
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Endpoint {
            authority,
            base_path: path.trim_end_matches('/').to_string(),
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "http://{}{}", self.authority, self.base_path)
    }
}

/// A request method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `PUT`.
    Put,
}

impl Method {
    /// The method's name on the wire.
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
        }
    }
}

/// One request: a method, a path under the endpoint, headers, a body.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The path and query, starting with `/`.
    pub path: &'a str,
    /// Extra headers (`Host`, `Connection` and `Content-Length` are added).
    pub headers: Vec<(&'static str, String)>,
    /// The body, sent with `Content-Length` when present.
    pub body: Option<&'a [u8]>,
}

/// A response: status, headers as sent, the decoded body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of this name (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request got no response.
#[derive(Debug)]
pub enum HttpError {
    /// The host name did not resolve.
    Resolve {
        /// `host:port`.
        authority: String,
        /// The resolver's error.
        error: io::Error,
    },
    /// No connection could be made (refused, unreachable, ...).
    Connect {
        /// `host:port`.
        authority: String,
        /// The last connect error.
        error: io::Error,
    },
    /// The exchange did not finish within the timeout.
    Timeout {
        /// `host:port`.
        authority: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The connection failed part way.
    Io {
        /// `host:port`.
        authority: String,
        /// The error.
        error: io::Error,
    },
    /// The server's answer is not HTTP/1.x as we read it.
    Malformed {
        /// `host:port`.
        authority: String,
        /// What was wrong.
        reason: String,
    },
}

impl fmt::Display for HttpError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Resolve { authority, error } => {
                write!(formatter, "cannot resolve {authority}: {error}")
            }
            HttpError::Connect { authority, error } => {
                write!(formatter, "cannot reach {authority}: {}", describe(error))
            }
            HttpError::Timeout { authority, timeout } => write!(
                formatter,
                "{authority} did not answer within {} s (--timeout)",
                timeout.as_secs_f64()
            ),
            HttpError::Io { authority, error } => {
                write!(
                    formatter,
                    "connection to {authority} failed: {}",
                    describe(error)
                )
            }
            HttpError::Malformed { authority, reason } => {
                write!(
                    formatter,
                    "{authority} sent a malformed HTTP response: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for HttpError {}

/// An I/O error in words an operator reads, without "(os error 111)".
fn describe(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::HostUnreachable => "host unreachable".into(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        io::ErrorKind::UnexpectedEof => "the server closed the connection early".into(),
        _ => error.to_string(),
    }
}

/// Sends requests to one endpoint, each on its own connection.
#[derive(Clone, Debug)]
pub struct Client {
    endpoint: Endpoint,
    timeout: Duration,
}

impl Client {
    /// A client for `endpoint` whose every exchange (connect, send,
    /// receive) must finish within `timeout`.
    pub fn new(endpoint: Endpoint, timeout: Duration) -> Client {
        Client { endpoint, timeout }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `request` and reads the whole response.
    pub fn send(&self, request: &Request<'_>) -> Result<Response, HttpError> {
        let deadline = Instant::now() + self.timeout;
        let stream = self.connect(deadline)?;
        let io_error = |error: io::Error| self.io_error(error);
        let mut writer = stream.try_clone().map_err(io_error)?;
        writer
            .set_write_timeout(Some(remaining(deadline).ok_or_else(|| self.timed_out())?))
            .map_err(io_error)?;
        writer.write_all(&self.encode(request)).map_err(io_error)?;
        let mut reader = BufReader::new(DeadlineStream { stream, deadline });
        read_response(&mut reader).map_err(|error| match error {
            ReadError::Io(error) => self.io_error(error),
            ReadError::Malformed(reason) => HttpError::Malformed {
                authority: self.endpoint.authority.clone(),
                reason,
            },
        })
    }

    /// The request's bytes on the wire.
    fn encode(&self, request: &Request<'_>) -> Vec<u8> {
        let mut head = format!(
            "{} {}{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: warpctl/{}\r\n",
            request.method.as_str(),
            self.endpoint.base_path,
            request.path,
            self.endpoint.authority,
            env!("CARGO_PKG_VERSION"),
        );
        for (name, value) in &request.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = request.body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(request.body.unwrap_or_default());
        bytes
    }

    /// Connects to the first of the endpoint's addresses that answers.
    fn connect(&self, deadline: Instant) -> Result<TcpStream, HttpError> {
        let authority = &self.endpoint.authority;
        let addresses: Vec<SocketAddr> = authority
            .to_socket_addrs()
            .map_err(|error| HttpError::Resolve {
                authority: authority.clone(),
                error,
            })?
            .collect();
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "the name has no addresses");
        for address in addresses {
            let left = remaining(deadline).ok_or_else(|| self.timed_out())?;
            match TcpStream::connect_timeout(&address, left) {
                Ok(stream) => return Ok(stream),
                Err(error) if is_timeout(&error) => return Err(self.timed_out()),
                Err(error) => last_error = error,
            }
        }
        Err(HttpError::Connect {
            authority: authority.clone(),
            error: last_error,
        })
    }

    fn io_error(&self, error: io::Error) -> HttpError {
        if is_timeout(&error) {
            self.timed_out()
        } else {
            HttpError::Io {
                authority: self.endpoint.authority.clone(),
                error,
            }
        }
    }

    fn timed_out(&self) -> HttpError {
        HttpError::Timeout {
            authority: self.endpoint.authority.clone(),
            timeout: self.timeout,
        }
    }
}

/// The time left before `deadline`, `None` once it has passed.
fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
}

/// Whether a socket error means a timeout ran out.
fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// A stream whose every read waits at most until one deadline.
struct DeadlineStream {
    stream: TcpStream,
    deadline: Instant,
}

impl Read for DeadlineStream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let left = remaining(self.deadline)
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buffer)
    }
}

/// Why a response could not be read.
#[derive(Debug)]
enum ReadError {
    Io(io::Error),
    Malformed(String),
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> ReadError {
        ReadError::Io(error)
    }
}

/// Reads one response (skipping any 1xx) from a connection the server
/// closes after it.
fn read_response(reader: &mut impl BufRead) -> Result<Response, ReadError> {
    loop {
        let (status, headers) = read_head(reader)?;
        if (100..200).contains(&status) {
            continue;
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(key, _): &&(String, String)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.trim())
        };
        let chunked = header("Transfer-Encoding")
            .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
        let body = if chunked {
            read_chunked(reader)?
        } else if let Some(length) = header("Content-Length") {
            let length: usize = length
                .parse()
                .map_err(|_| ReadError::Malformed(format!("Content-Length `{length}`")))?;
            if length > MAX_BODY_BYTES {
                return Err(ReadError::Malformed(format!("a body of {length} bytes")));
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            body
        } else {
            let mut body = Vec::new();
            reader
                .take(MAX_BODY_BYTES as u64 + 1)
                .read_to_end(&mut body)?;
            if body.len() > MAX_BODY_BYTES {
                return Err(ReadError::Malformed("a body over 64 MiB".into()));
            }
            body
        };
        return Ok(Response {
            status,
            headers,
            body,
        });
    }
}

/// Reads a status line and headers up to the blank line.
fn read_head(reader: &mut impl BufRead) -> Result<(u16, Vec<(String, String)>), ReadError> {
    let mut budget = MAX_HEADER_BYTES;
    let status_line = read_line(reader, &mut budget)?;
    if status_line.is_empty() {
        return Err(ReadError::Malformed("no status line".into()));
    }
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Malformed(format!("status line `{status_line}`")));
    }
    let status: u16 = status
        .parse()
        .ok()
        .filter(|code| (100..1000).contains(code))
        .ok_or_else(|| ReadError::Malformed(format!("status line `{status_line}`")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget)?;
        if line.is_empty() {
            return Ok((status, headers));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ReadError::Malformed(format!("header line `{line}`")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
}

/// Reads one CRLF- (or LF-) terminated line, at most `budget` bytes in all.
fn read_line(reader: &mut impl BufRead, budget: &mut usize) -> Result<String, ReadError> {
    let mut line = Vec::new();
    let read = reader
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if read > *budget {
        return Err(ReadError::Malformed("headers over 64 KiB".into()));
    }
    *budget -= read;
    if !line.ends_with(b"\n") {
        return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    while line
        .last()
        .is_some_and(|byte| matches!(byte, b'\n' | b'\r'))
    {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| ReadError::Malformed("a header that is not UTF-8".into()))
}

/// Reads a chunked body and its trailers.
fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        // Each chunk's lines get their own budget: a scrape may come in
        // many small chunks.
        let mut budget = MAX_HEADER_BYTES;
        let line = read_line(reader, &mut budget)?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| ReadError::Malformed(format!("chunk size `{line}`")))?;
        if size == 0 {
            // Trailers, then the blank line.
            while !read_line(reader, &mut budget)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(ReadError::Malformed("a body over 64 MiB".into()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if !read_line(reader, &mut budget)?.is_empty() {
            return Err(ReadError::Malformed("no CRLF after a chunk".into()));
        }
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
