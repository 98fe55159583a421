//! `GET /api/v1/capture?interface=&count=&seconds=&snaplen=`: the frames
//! an interface receives and sends, as a pcap stream (see [`crate::pcap`])
//! fed from the dataplane's capture taps ([`dataplane::capture`]). One
//! capture at a time; it ends at `count` frames, after `seconds`, or when
//! its client goes, whichever comes first, and its chunked body ends with
//! trailer fields that count the frames sent and the frames the taps
//! dropped.

use crate::logs::decode;
use crate::pcap;
use crate::stream::{Feed, PUMP_BYTES, Pumped};
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use dataplane::capture::{Capture, CaptureBoard, DEFAULT_SNAPLEN, MAX_SNAPLEN};

/// Frames a capture stops at unless the query says `count=`.
pub const DEFAULT_COUNT: u64 = 1000;
/// The most frames one capture may ask for.
pub const MAX_COUNT: u64 = 1_000_000;
/// Seconds a capture lasts at most unless the query says `seconds=`.
pub const DEFAULT_SECONDS: u32 = 30;
/// The longest capture, in seconds.
pub const MAX_SECONDS: u32 = 3600;
/// How often a capture looks at the taps' rings while they are quiet, in
/// milliseconds: a 64 KiB ring (some 230 frames at the default snap
/// length) is emptied that often.
pub const POLL_MS: u32 = 1;
/// The `Content-Type` of the stream.
pub const CONTENT_TYPE: &str = "application/vnd.tcpdump.pcap";
/// Trailer fields of the stream, named in its head's `Trailer` field.
pub const TRAILER_FIELDS: &str =
    "X-Warpcore-Capture-Frames, X-Warpcore-Capture-Dropped, X-Warpcore-Capture-End";

const NS_PER_MS: u64 = 1_000_000;

/// Why a capture query was refused (answered 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// No `interface=`.
    NoInterface {
        /// The spec's interfaces, comma-separated.
        known: String,
    },
    /// `interface=` names no interface of the spec.
    UnknownInterface {
        /// The name asked for.
        name: String,
        /// The spec's interfaces, comma-separated.
        known: String,
    },
    /// A parameter's value is not what it should be.
    BadValue(&'static str),
    /// A parameter is not percent-encoded UTF-8.
    BadEncoding,
    /// A parameter this endpoint does not know.
    UnknownParameter(String),
}

impl QueryError {
    /// The message in the 400 body.
    pub fn message(&self) -> String {
        match self {
            Self::NoInterface { known } => {
                alloc::format!("interface is required: one of {known}")
            }
            Self::UnknownInterface { name, known } => {
                alloc::format!("no interface `{name}`: the spec has {known}")
            }
            Self::BadValue("count") => {
                alloc::format!("count must be a number of frames from 1 to {MAX_COUNT}")
            }
            Self::BadValue("seconds") => {
                alloc::format!("seconds must be a whole number from 1 to {MAX_SECONDS}")
            }
            Self::BadValue(_) => {
                alloc::format!("snaplen must be a number of bytes from 1 to {MAX_SNAPLEN}")
            }
            Self::BadEncoding => "a parameter is not percent-encoded UTF-8".to_string(),
            Self::UnknownParameter(name) => alloc::format!(
                "unknown parameter `{name}`: the capture takes interface, count, seconds and snaplen"
            ),
        }
    }
}

/// A parsed capture query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureQuery {
    /// The interface's index in the spec.
    pub interface: usize,
    /// Its name.
    pub interface_name: String,
    /// Stop after this many frames.
    pub count: u64,
    /// Stop after this many seconds.
    pub seconds: u32,
    /// Bytes kept of each frame.
    pub snaplen: u16,
}

/// A whole number from `range`, or `error`.
fn number<T: core::str::FromStr + PartialOrd>(
    text: &str,
    range: core::ops::RangeInclusive<T>,
    error: &'static str,
) -> Result<T, QueryError> {
    text.parse()
        .ok()
        .filter(|value| range.contains(value))
        .ok_or(QueryError::BadValue(error))
}

impl CaptureQuery {
    /// Parses the query string (the bytes after `?`) against the spec's
    /// interfaces. A parameter given twice counts the last time.
    pub fn parse(query: &[u8], spec: &control::Spec) -> Result<Self, QueryError> {
        let known = || {
            let names: Vec<&str> = spec
                .interfaces
                .iter()
                .map(|interface| interface.name.as_str())
                .collect();
            names.join(", ")
        };
        let mut interface = None;
        let mut parsed = Self {
            interface: 0,
            interface_name: String::new(),
            count: DEFAULT_COUNT,
            seconds: DEFAULT_SECONDS,
            snaplen: DEFAULT_SNAPLEN,
        };
        for pair in query.split(|byte| *byte == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = match pair.iter().position(|byte| *byte == b'=') {
                Some(equals) => (&pair[..equals], &pair[equals + 1..]),
                None => (pair, &b""[..]),
            };
            let value = decode(value, "capture").map_err(|_| QueryError::BadEncoding)?;
            match name {
                b"interface" => interface = Some(value),
                b"count" => parsed.count = number(&value, 1..=MAX_COUNT, "count")?,
                b"seconds" => parsed.seconds = number(&value, 1..=MAX_SECONDS, "seconds")?,
                b"snaplen" => parsed.snaplen = number(&value, 1..=MAX_SNAPLEN, "snaplen")?,
                other => {
                    let name = decode(other, "capture").map_err(|_| QueryError::BadEncoding)?;
                    return Err(QueryError::UnknownParameter(name));
                }
            }
        }
        let name = interface.ok_or_else(|| QueryError::NoInterface { known: known() })?;
        parsed.interface =
            spec.interface_index(&name)
                .ok_or_else(|| QueryError::UnknownInterface {
                    name: name.clone(),
                    known: known(),
                })?;
        parsed.interface_name = name;
        Ok(parsed)
    }
}

/// Why a capture ended, as its `X-Warpcore-Capture-End` trailer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// It sent `count` frames.
    Count,
    /// Its `seconds` passed.
    Time,
}

impl EndReason {
    /// The trailer's value.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Time => "time",
        }
    }
}

/// The body of a capture: the pcap global header, then each frame the
/// taps copy, read from the board as the client takes them. Dropping it
/// (the stream ended, or its connection went) disarms the capture.
pub struct CaptureFeed {
    board: Arc<CaptureBoard>,
    /// The armed capture; `None` once it has ended (or for `HEAD`, which
    /// arms none).
    capture: Option<Capture>,
    interface_name: String,
    snaplen: u16,
    /// Frames still to send.
    remaining: u64,
    /// When `seconds` end, on the platform clock.
    deadline_ns: u64,
    /// Added to the platform clock, gives Unix time.
    unix_offset_ns: u64,
    /// The taps' drop counter for the interface when the capture began.
    dropped_before: u64,
    header_sent: bool,
    /// Taps are disarmed; what they copied is being read out.
    draining: bool,
    frames: u64,
    dropped: u64,
    ended: Option<EndReason>,
    /// One frame's bytes, read out of a ring.
    frame: Vec<u8>,
}

impl core::fmt::Debug for CaptureFeed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CaptureFeed")
            .field("capture", &self.capture)
            .field("interface", &self.interface_name)
            .field("frames", &self.frames)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl CaptureFeed {
    /// A feed of `capture` (armed for `query`) started at `now_ns`;
    /// `unix_offset_ns` turns the platform clock into Unix time.
    pub fn new(
        board: Arc<CaptureBoard>,
        capture: Option<Capture>,
        query: &CaptureQuery,
        now_ns: u64,
        unix_offset_ns: u64,
    ) -> Self {
        let dropped_before = board.dropped(query.interface);
        if let Some(capture) = &capture {
            log::info!(
                "capture {} of {} started: at most {} frames, {} s, snaplen {}",
                capture.id(),
                query.interface_name,
                query.count,
                query.seconds,
                query.snaplen
            );
        }
        Self {
            board,
            capture,
            interface_name: query.interface_name.clone(),
            snaplen: query.snaplen,
            remaining: query.count,
            deadline_ns: now_ns.saturating_add(u64::from(query.seconds) * 1_000 * NS_PER_MS),
            unix_offset_ns,
            dropped_before,
            header_sent: false,
            draining: false,
            frames: 0,
            dropped: 0,
            ended: None,
            frame: vec![0; usize::from(MAX_SNAPLEN)],
        }
    }

    /// Appends the frames waiting in the taps' rings to `out` while they
    /// fit in a pump and the count allows; returns how many.
    fn read_frames(&mut self, capture: &Capture, out: &mut Vec<u8>) -> u64 {
        let mut read = 0;
        // Bounded: each turn sends a frame or stops, and a pump holds at
        // most PUMP_BYTES.
        while self.remaining > 0 {
            let room = PUMP_BYTES.saturating_sub(out.len());
            let fits = |header: &dataplane::capture::RecordHeader| {
                pcap::RECORD_HEADER_LEN + usize::from(header.captured_len) <= room
            };
            let Some((header, copied)) = self.board.next_record(capture, fits, &mut self.frame)
            else {
                break;
            };
            out.extend_from_slice(&pcap::record_header(
                header.timestamp_ns.saturating_add(self.unix_offset_ns),
                copied as u32,
                header.original_len,
            ));
            out.extend_from_slice(&self.frame[..copied]);
            self.remaining -= 1;
            self.frames += 1;
            read += 1;
        }
        read
    }

    /// Disarms and releases the capture; logs how it went.
    fn end(&mut self, reason: Option<EndReason>) {
        let Some(capture) = self.capture.take() else {
            return;
        };
        self.dropped = self
            .board
            .dropped(capture.interface())
            .saturating_sub(self.dropped_before);
        self.ended = reason;
        log::info!(
            "capture {} of {} ended ({}): {} frames, {} dropped",
            capture.id(),
            self.interface_name,
            reason.map_or("client gone", EndReason::name),
            self.frames,
            self.dropped
        );
        self.board.finish(capture);
    }
}

impl Feed for CaptureFeed {
    fn pump(&mut self, out: &mut Vec<u8>, now_ns: u64) -> Pumped {
        if !self.header_sent {
            self.header_sent = true;
            out.extend_from_slice(&pcap::global_header(u32::from(self.snaplen)));
        }
        let Some(capture) = self.capture.take() else {
            return Pumped::Done;
        };
        if !self.draining && now_ns >= self.deadline_ns {
            // Time is up: no new frames; what the taps copied before is
            // still sent.
            self.board.disarm(&capture);
            self.draining = true;
        }
        let read = self.read_frames(&capture, out);
        self.capture = Some(capture);
        if self.remaining == 0 {
            self.end(Some(EndReason::Count));
            return Pumped::Done;
        }
        let full = out.len() + pcap::RECORD_HEADER_LEN + usize::from(self.snaplen) > PUMP_BYTES;
        if self.draining && read == 0 && !full {
            self.end(Some(EndReason::Time));
            return Pumped::Done;
        }
        let wake_after_ms = if full || self.draining {
            0
        } else {
            let left_ms = self.deadline_ns.saturating_sub(now_ns).div_ceil(NS_PER_MS);
            u32::try_from(left_ms).unwrap_or(u32::MAX).min(POLL_MS)
        };
        Pumped::More { wake_after_ms }
    }

    fn trailer(&mut self) -> Vec<(&'static str, String)> {
        vec![
            ("X-Warpcore-Capture-Frames", self.frames.to_string()),
            ("X-Warpcore-Capture-Dropped", self.dropped.to_string()),
            (
                "X-Warpcore-Capture-End",
                self.ended
                    .map_or("client gone", EndReason::name)
                    .to_string(),
            ),
        ]
    }
}

impl Drop for CaptureFeed {
    /// A capture never outlives its stream: the connection went, or the
    /// stream never started (503, `HEAD`).
    fn drop(&mut self) {
        self.end(None);
    }
}
