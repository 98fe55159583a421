//! One connection's state: where it is in reading a request and writing
//! its response. Nothing here allocates except the buffer of a chunked
//! body being echoed.

use super::chunked::ChunkDecoder;
use super::request::HeadScanner;
use super::response::ConnectionField;
use alloc::vec::Vec;

/// Where a response's body comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    /// Bytes built into the image (a file, an error's text).
    Static(&'static [u8]),
    /// A route's configured `body`, by route index.
    Route(usize),
    /// A route's whole response, head and body, rendered in advance
    /// ([`super::routes::RouteTable::rendered`]), by route index.
    Rendered(usize),
    /// [`super::pattern`] bytes.
    Pattern,
    /// The session's buffered request body (a chunked echo).
    Buffered,
    /// The request body itself, copied through as it is read (an echo
    /// of a body with `Content-Length`).
    Streamed,
}

/// Where a response's `Content-Type` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ContentType {
    /// A fixed one.
    Static(&'static [u8]),
    /// A route's, by route index.
    Route(usize),
}

/// A response being written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Outgoing {
    pub(super) status: u16,
    pub(super) content_type: ContentType,
    pub(super) allow: Option<&'static str>,
    pub(super) connection: ConnectionField,
    pub(super) body: Body,
    /// Body bytes in all.
    pub(super) total: u64,
    /// Body bytes written so far.
    pub(super) sent: u64,
    /// The body goes out with the chunked coding.
    pub(super) chunked: bool,
    /// A `HEAD` request's answer: the head alone.
    pub(super) head_only: bool,
    pub(super) head_written: bool,
}

impl Outgoing {
    /// An answer with `status` and its one-line text as the body.
    pub(super) fn error(status: u16, connection: ConnectionField, head_only: bool) -> Self {
        let text = super::response::error_body(status);
        Self {
            status,
            content_type: ContentType::Static(b"text/plain; charset=utf-8"),
            allow: None,
            connection,
            body: Body::Static(text),
            total: text.len() as u64,
            sent: 0,
            chunked: false,
            head_only,
            head_written: false,
        }
    }
}

/// What happens to a request body's bytes as they are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodySink {
    /// Thrown away (the route does not take a body).
    Discard,
    /// Written straight out as the response's body.
    Stream,
    /// Kept in the session, to be echoed once whole.
    Buffer,
}

/// How much of a request body is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum BodyFraming {
    /// This many bytes.
    Remaining(u64),
    /// Chunks, through the decoder.
    Chunked(ChunkDecoder),
}

/// A request body being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BodyReader {
    pub(super) framing: BodyFraming,
    pub(super) sink: BodySink,
    /// The answer to write once the body is read (none when streamed).
    pub(super) then: Option<Outgoing>,
}

/// One connection's state.
#[derive(Debug, Default)]
pub struct HttpSession {
    /// Finds the next request head.
    pub(super) scanner: HeadScanner,
    /// The body of the current request, while it is read.
    pub(super) body: Option<BodyReader>,
    /// The current response, while it is written.
    pub(super) response: Option<Outgoing>,
    /// A chunked request body being echoed.
    pub(super) echo: Vec<u8>,
    /// The connection persists after the current request.
    pub(super) keep_alive: bool,
    /// No more requests are read (an error, `Connection: close`, the
    /// peer's FIN); the connection closes after the current response.
    pub(super) stop_reading: bool,
    /// The app closed (or aborted) its side.
    pub(super) closed: bool,
    /// The peer sent FIN.
    pub(super) peer_closed: bool,
    /// Bytes the last `data` call left unconsumed (the stack keeps them).
    pub(super) kept: usize,
}

impl HttpSession {
    /// True while a request's body or response is in progress.
    pub(super) fn busy(&self) -> bool {
        self.body.is_some() || self.response.is_some()
    }
}
