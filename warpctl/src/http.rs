//! A small HTTP/1.1 client over `std::net::TcpStream`: one request per
//! connection (`Connection: close`), Content-Length, chunked and
//! read-to-close bodies, one deadline for the whole exchange; or, for a
//! stream, the head within the deadline and the body read as it comes.

use crate::chunked_reader::ChunkedReader;
pub use crate::chunked_reader::Trailers;
pub use crate::endpoint::Endpoint;
use crate::response_reader::{ReadError, read_head, read_response};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// A request method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// The method's name on the wire.
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
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

/// A response whose body is read as it arrives (a stream).
pub struct StreamingResponse {
    /// The status code.
    pub status: u16,
    /// The headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked; each read waits at most the idle time given
    /// to [`Client::open`], then fails with `TimedOut`.
    pub body: Box<dyn BufRead + Send>,
    /// A chunked body's trailer fields, there once `body` reached its end.
    pub trailers: Trailers,
}

impl fmt::Debug for StreamingResponse {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("StreamingResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
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
    /// A stream sent nothing (not even a keep-alive) for too long.
    Idle {
        /// `host:port`.
        authority: String,
        /// How long it was silent.
        idle: Duration,
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
            HttpError::Idle { authority, idle } => write!(
                formatter,
                "{authority} sent nothing on the stream, not even a keep-alive, for {} s",
                idle.as_secs_f64()
            ),
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
        let stream = self.write_request(request, deadline)?;
        let mut reader = BufReader::new(DeadlineStream { stream, deadline });
        read_response(&mut reader).map_err(|error| self.read_error(error))
    }

    /// Sends `request` and reads the head of its response within the
    /// client's timeout; the body is then read as it arrives, each read
    /// waiting at most `idle`.
    pub fn open(
        &self,
        request: &Request<'_>,
        idle: Duration,
    ) -> Result<StreamingResponse, HttpError> {
        let deadline = Instant::now() + self.timeout;
        let stream = self.write_request(request, deadline)?;
        let mut reader = BufReader::new(PacedStream {
            stream,
            deadline: Some(deadline),
            idle,
        });
        let (status, headers) = loop {
            let (status, headers) =
                read_head(&mut reader).map_err(|error| self.read_error(error))?;
            if !(100..200).contains(&status) {
                break (status, headers);
            }
        };
        reader.get_mut().deadline = None;
        let header = |name: &str| {
            headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.trim().to_string())
        };
        let chunked = header("Transfer-Encoding")
            .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
        let trailers = Trailers::default();
        let body: Box<dyn BufRead + Send> = if chunked {
            Box::new(BufReader::new(ChunkedReader::new(reader, trailers.clone())))
        } else if let Some(length) = header("Content-Length") {
            let length: u64 = length.parse().map_err(|_| {
                self.read_error(ReadError::Malformed(format!("Content-Length `{length}`")))
            })?;
            Box::new(reader.take(length))
        } else {
            Box::new(reader)
        };
        Ok(StreamingResponse {
            status,
            headers,
            body,
            trailers,
        })
    }

    /// An error reading a stream's body opened with `idle`, in the
    /// operator's words.
    pub fn stream_error(&self, error: io::Error, idle: Duration) -> HttpError {
        match error.kind() {
            io::ErrorKind::InvalidData => HttpError::Malformed {
                authority: self.endpoint.authority.clone(),
                reason: error.to_string(),
            },
            _ if is_timeout(&error) => HttpError::Idle {
                authority: self.endpoint.authority.clone(),
                idle,
            },
            _ => HttpError::Io {
                authority: self.endpoint.authority.clone(),
                error,
            },
        }
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

    /// Connects and writes `request`, both by `deadline`; the stream to
    /// read the response from.
    fn write_request(
        &self,
        request: &Request<'_>,
        deadline: Instant,
    ) -> Result<TcpStream, HttpError> {
        let stream = self.connect(deadline)?;
        let io_error = |error: io::Error| self.io_error(error);
        let mut writer = stream.try_clone().map_err(io_error)?;
        writer
            .set_write_timeout(Some(remaining(deadline).ok_or_else(|| self.timed_out())?))
            .map_err(io_error)?;
        writer.write_all(&self.encode(request)).map_err(io_error)?;
        Ok(stream)
    }

    /// A response that could not be read, in the operator's words.
    fn read_error(&self, error: ReadError) -> HttpError {
        match error {
            ReadError::Io(error) => self.io_error(error),
            ReadError::Malformed(reason) => HttpError::Malformed {
                authority: self.endpoint.authority.clone(),
                reason,
            },
        }
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

/// A stream whose reads wait until a deadline (while the head is read),
/// then at most `idle` each (while a streamed body is).
struct PacedStream {
    stream: TcpStream,
    deadline: Option<Instant>,
    idle: Duration,
}

impl Read for PacedStream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let wait = match self.deadline {
            Some(deadline) => remaining(deadline)
                .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))?,
            None => self.idle,
        };
        self.stream.set_read_timeout(Some(wait))?;
        self.stream.read(buffer)
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
