//! `warpctl capture`: an interface's frames from `GET /api/v1/capture`,
//! written as the pcap stream arrives (to a file, or to stdout for
//! `| tshark -r -`), with a summary on stderr from the stream's trailer:
//! frames, frames the appliance's taps dropped, and why it ended.

use crate::api::{Api, ApiError, percent_encode};
use std::fmt;
use std::io::{self, BufRead, Write};
use std::time::Duration;

/// The capture's length the appliance applies when none is asked for, in
/// seconds (its `DEFAULT_SECONDS`): how long the stream may be silent.
pub const DEFAULT_SECONDS: u32 = 30;
/// How much longer than the capture's seconds the stream may be silent
/// before warpctl gives up (the last frames, the trailer, the network).
pub const IDLE_GRACE: Duration = Duration::from_secs(15);

/// What a capture asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureQuery {
    /// The interface's name in the spec.
    pub interface: String,
    /// At most this many frames.
    pub count: Option<u64>,
    /// At most this many seconds.
    pub seconds: Option<u32>,
    /// Bytes kept of each frame.
    pub snaplen: Option<u16>,
}

impl CaptureQuery {
    /// The request's path and query.
    pub fn path(&self) -> String {
        let mut path = format!(
            "/api/v1/capture?interface={}",
            percent_encode(&self.interface)
        );
        if let Some(count) = self.count {
            path.push_str(&format!("&count={count}"));
        }
        if let Some(seconds) = self.seconds {
            path.push_str(&format!("&seconds={seconds}"));
        }
        if let Some(snaplen) = self.snaplen {
            path.push_str(&format!("&snaplen={snaplen}"));
        }
        path
    }

    /// How long the stream may be silent: the whole capture and a grace.
    pub fn idle(&self) -> Duration {
        Duration::from_secs(u64::from(self.seconds.unwrap_or(DEFAULT_SECONDS))) + IDLE_GRACE
    }
}

/// How a capture went, from the stream and its trailer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureSummary {
    /// Frames written.
    pub frames: u64,
    /// Frames the appliance's taps had no room for (its trailer).
    pub dropped: Option<u64>,
    /// Why it ended: `count`, `time` (its trailer).
    pub end: Option<String>,
}

impl fmt::Display for CaptureSummary {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} frames", self.frames)?;
        if let Some(dropped) = self.dropped {
            write!(formatter, ", {dropped} dropped")?;
        }
        match self.end.as_deref() {
            Some("count") => write!(formatter, " (count reached)"),
            Some("time") => write!(formatter, " (time up)"),
            Some(other) => write!(formatter, " ({other})"),
            None => Ok(()),
        }
    }
}

/// Why a capture failed part way.
#[derive(Debug)]
pub enum CaptureError {
    /// The request was refused, or the stream broke.
    Api(ApiError),
    /// The bytes are not a pcap stream.
    NotPcap(String),
    /// The stream ended without its last chunk and trailer.
    Cut {
        /// Frames written before.
        frames: u64,
    },
    /// Writing the pcap failed.
    Write(io::Error),
}

impl fmt::Display for CaptureError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Api(error) => write!(formatter, "{error}"),
            CaptureError::NotPcap(reason) => {
                write!(formatter, "the appliance's answer is not pcap: {reason}")
            }
            CaptureError::Cut { frames } => write!(
                formatter,
                "the capture stream was cut after {frames} frames (the file is a valid pcap up to there)"
            ),
            CaptureError::Write(error) => write!(formatter, "cannot write the capture: {error}"),
        }
    }
}

/// Counts the frames of a pcap stream as its bytes go by, and checks its
/// magic.
#[derive(Debug, Default)]
pub struct PcapCounter {
    /// Bytes of the global header seen.
    header: Vec<u8>,
    /// The record header being read.
    record: Vec<u8>,
    /// Bytes of the current frame still to go by.
    frame_left: u64,
    /// Whole record headers seen.
    frames: u64,
}

/// Bytes of the pcap global header.
const GLOBAL_HEADER: usize = 24;
/// Bytes of a record header.
const RECORD_HEADER: usize = 16;

impl PcapCounter {
    /// Takes the next bytes of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), CaptureError> {
        let wanted = GLOBAL_HEADER - self.header.len();
        if wanted > 0 {
            let taken = wanted.min(bytes.len());
            self.header.extend_from_slice(&bytes[..taken]);
            bytes = &bytes[taken..];
            if self.header.len() >= 4 {
                let magic = u32::from_le_bytes([
                    self.header[0],
                    self.header[1],
                    self.header[2],
                    self.header[3],
                ]);
                if magic != 0xa1b2_3c4d && magic != 0xa1b2_c3d4 {
                    return Err(CaptureError::NotPcap(format!("magic {magic:#010x}")));
                }
            }
        }
        // Bounded: each turn takes at least one byte.
        while !bytes.is_empty() {
            if self.frame_left > 0 {
                let skipped = self.frame_left.min(bytes.len() as u64);
                self.frame_left -= skipped;
                bytes = &bytes[skipped as usize..];
                continue;
            }
            let taken = (RECORD_HEADER - self.record.len()).min(bytes.len());
            self.record.extend_from_slice(&bytes[..taken]);
            bytes = &bytes[taken..];
            if self.record.len() == RECORD_HEADER {
                let captured = u32::from_le_bytes([
                    self.record[8],
                    self.record[9],
                    self.record[10],
                    self.record[11],
                ]);
                self.frame_left = u64::from(captured);
                self.frames += 1;
                self.record.clear();
            }
        }
        Ok(())
    }

    /// Records whose header went by.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// True when the stream so far ends at a record's end.
    pub fn is_whole(&self) -> bool {
        self.header.len() == GLOBAL_HEADER && self.record.is_empty() && self.frame_left == 0
    }
}

/// Runs `query` against the appliance: once the capture is armed, says so
/// on `notes` (`started(interface)`), then writes the pcap to `out` as it
/// comes, flushing each piece, and returns the summary.
pub fn capture(
    api: &Api,
    query: &CaptureQuery,
    out: &mut dyn Write,
    started: &mut dyn FnMut() -> io::Result<()>,
) -> Result<CaptureSummary, CaptureError> {
    let idle = query.idle();
    let response = api
        .open_stream(&query.path(), "application/vnd.tcpdump.pcap", idle)
        .map_err(CaptureError::Api)?;
    started().map_err(CaptureError::Write)?;
    let mut body = response.body;
    let mut counter = PcapCounter::default();
    // Each turn reads what arrived (at most `idle` of silence) until the
    // body ends; the appliance bounds the capture by count and time.
    loop {
        let piece = body.fill_buf().map_err(|error| match error.kind() {
            io::ErrorKind::UnexpectedEof => CaptureError::Cut {
                frames: counter.frames(),
            },
            _ => CaptureError::Api(ApiError::Http(api.client().stream_error(error, idle))),
        })?;
        if piece.is_empty() {
            break;
        }
        counter.feed(piece)?;
        out.write_all(piece).map_err(CaptureError::Write)?;
        out.flush().map_err(CaptureError::Write)?;
        let length = piece.len();
        body.consume(length);
    }
    let trailers = response.trailers;
    if !trailers.arrived() || !counter.is_whole() {
        return Err(CaptureError::Cut {
            frames: counter.frames(),
        });
    }
    Ok(CaptureSummary {
        frames: counter.frames(),
        dropped: trailers
            .get("X-Warpcore-Capture-Dropped")
            .and_then(|value| value.parse().ok()),
        end: trailers.get("X-Warpcore-Capture-End"),
    })
}

#[cfg(test)]
#[path = "capture_tests.rs"]
mod tests;
