//! `ManagementSession`: one connection's request bytes, where its current
//! request is, and the response being written.

use crate::auth::Verdict;
use crate::response::Reply;
use crate::stream::Streaming;
use alloc::vec::Vec;
use core::net::SocketAddrV4;
use services::http::chunked::ChunkDecoder;
use services::http::request::{HeadScanner, Version};
use services::http::response::ConnectionField;

/// The path of one hot-loaded module, before its name.
pub const MODULE_PREFIX: &[u8] = b"/api/v1/modules/";

/// The endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/`: a page naming the endpoints.
    Index,
    /// `/metrics`: Prometheus.
    Metrics,
    /// `/api/v1/spec`: the running spec (GET) or a proposed one (PUT).
    Spec,
    /// `/api/v1/status`: generation, conditions, cores.
    Status,
    /// `/api/v1/logs`: the log ring, searched.
    Logs,
    /// `/api/v1/logs/stream`: the log ring followed, as server-sent
    /// events.
    LogStream,
    /// `/api/v1/capture`: an interface's frames, as a pcap stream.
    Capture,
    /// `/api/v1/modules`: the hot-loaded Wasm modules.
    Modules,
    /// `/api/v1/modules/<name>`: upload (PUT) or remove (DELETE) one.
    Module,
    /// `/test/stream?parts=N&every=MS&bytes=B`: a streaming response for
    /// the unit tests of the streaming machinery.
    #[cfg(test)]
    TestStream,
}

impl Endpoint {
    /// The endpoint at `path`.
    pub fn from_path(path: &[u8]) -> Option<Self> {
        Some(match path {
            b"/" => Self::Index,
            b"/metrics" => Self::Metrics,
            b"/api/v1/spec" => Self::Spec,
            b"/api/v1/status" => Self::Status,
            b"/api/v1/logs" => Self::Logs,
            b"/api/v1/logs/stream" => Self::LogStream,
            b"/api/v1/capture" => Self::Capture,
            b"/api/v1/modules" => Self::Modules,
            _ if path.starts_with(MODULE_PREFIX) => Self::Module,
            #[cfg(test)]
            b"/test/stream" => Self::TestStream,
            _ => return None,
        })
    }

    /// The methods it allows, for `Allow`.
    pub const fn allow(self) -> &'static str {
        match self {
            Self::Spec => "GET, HEAD, PUT",
            Self::Module => "PUT, DELETE",
            _ => "GET, HEAD",
        }
    }

    /// True when its answer reads the query string.
    pub const fn reads_query(self) -> bool {
        match self {
            Self::Logs | Self::LogStream | Self::Capture | Self::Module => true,
            #[cfg(test)]
            Self::TestStream => true,
            _ => false,
        }
    }

    /// True when it needs the token.
    pub const fn protected(self) -> bool {
        matches!(
            self,
            Self::Spec
                | Self::Status
                | Self::Logs
                | Self::LogStream
                | Self::Capture
                | Self::Modules
                | Self::Module
        )
    }
}

/// A request whose head was read, waiting for its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) endpoint: Endpoint,
    /// `PUT` (else `GET`, `HEAD` or `DELETE`).
    pub(crate) put: bool,
    /// `DELETE`.
    pub(crate) delete: bool,
    /// `/api/v1/modules/<name>`: the name, as sent.
    pub(crate) module_name: Vec<u8>,
    /// `HEAD`: the response goes without its body.
    pub(crate) head_only: bool,
    /// The response's `Connection` field.
    pub(crate) connection: ConnectionField,
    /// The token check, for protected endpoints.
    pub(crate) verdict: Verdict,
    /// `If-Match` was present and did not name the running spec.
    pub(crate) precondition_failed: bool,
    /// `?dryRun=true`.
    pub(crate) dry_run: bool,
    /// The query string (kept for the endpoints that read one).
    pub(crate) query: Vec<u8>,
    /// The request's HTTP version (a stream to HTTP/1.0 is not chunked).
    pub(crate) version: Version,
    /// The client's address and port.
    pub(crate) peer: SocketAddrV4,
    /// `Last-Event-ID`, when it is a number (an `EventSource`
    /// reconnecting to the log stream).
    pub(crate) last_event_id: Option<u64>,
    /// The clock when the head was read.
    pub(crate) now_ns: u64,
    /// The reply decided from the head alone (404, 405, 401, 412...),
    /// sent once the body is read.
    pub(crate) early: Option<Reply>,
    /// The body so far.
    pub(crate) body: Vec<u8>,
}

/// What the connection is reading.
#[derive(Debug, Clone, Default)]
pub(crate) enum Reading {
    /// A request head.
    #[default]
    Head,
    /// A body of this many bytes.
    Body(Pending, usize),
    /// A chunked body.
    Chunked(Pending, ChunkDecoder),
    /// Nothing more: the connection closes after the response.
    Stopped,
}

/// One connection's state.
#[derive(Debug, Default)]
pub struct ManagementSession {
    /// Received bytes not yet used (copied out of the stack's buffer, so
    /// that pipelined requests are served after a blocked response
    /// without waiting for more bytes to arrive).
    pub(crate) input: Vec<u8>,
    pub(crate) scanner: HeadScanner,
    pub(crate) reading: Reading,
    /// The response being written, and how much of it is written.
    pub(crate) output: Vec<u8>,
    pub(crate) written: usize,
    /// The streaming response in progress: its feed is pumped into
    /// `output` whenever that is written and the feed's wake time has
    /// come; requests behind it wait in `input`.
    pub(crate) streaming: Option<Streaming>,
    /// Close once `output` is written.
    pub(crate) close_after_output: bool,
    /// The peer sent FIN.
    pub(crate) peer_closed: bool,
    /// We closed (or aborted) our side.
    pub(crate) closed: bool,
    /// A whole request head waits in `input` for the request budget; the
    /// connection's timer is its turn.
    pub(crate) budget_wait: bool,
}
