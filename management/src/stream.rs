//! Streaming responses: a body produced over time by a [`Feed`] (a log
//! tail, a packet capture), sent as it comes, woken by the connection's
//! own TCP timer and held back while the client has not taken what was
//! sent.
//!
//! An endpoint answers with an [`Answer::Stream`]: a head and a feed
//! instead of a whole [`Reply`]. `ManagementApp` writes the head (with
//! `Transfer-Encoding: chunked` for HTTP/1.1; for HTTP/1.0 without a
//! length and with `Connection: close`, the body ending at the close),
//! then calls [`Feed::pump`] whenever both hold:
//!
//! - everything the previous pump produced has gone into the send buffer
//!   (back-pressure: a client that does not read stops the pumping, and
//!   one that takes nothing for the idle timeout is reset);
//! - the time the feed asked to be woken has come.
//!
//! Each pump's bytes become one chunk. [`Pumped::Done`] writes the last
//! chunk and the connection goes back to reading requests (HTTP/1.0, or
//! `Connection: close`: it closes). A client that closes its side (FIN)
//! ends the stream: it is gone, and its stream slot is freed at once
//! rather than when a later write draws a reset.
//!
//! Wake-ups come only from [`Stream::set_timeout`](services::tcp::Stream::set_timeout)
//! (the connection's app timer, a TCP timer the core's next deadline
//! includes) and from the connection's own events, never from the core's
//! poll loop: an idle core may sleep between pumps. At most
//! [`MAX_STREAMS`] streams are open at once per app; the next is answered
//! 503 with `Retry-After`.
//!
//! A feed for a new endpoint implements [`Feed`] (it must be `Send`: the
//! app lives in a core's TCP stack, built on another thread), is returned
//! from the endpoint's arm of `ManagementApp::reply` as
//! `Answer::Stream(StreamReply::new(head, feed))`, and should add about
//! [`PUMP_BYTES`] at most per pump, asking to be woken at once
//! (`wake_after_ms: 0`) when it has more ready.

use crate::response::Reply;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use services::http::response::{BodyLength, LAST_CHUNK, chunk_header};

/// Most streaming responses open at once on one app; more are answered
/// 503.
pub const MAX_STREAMS: usize = 8;

/// About the most bytes a feed should add in one pump: one pump's output
/// is written before the next pump, so this bounds what a stream holds
/// beyond the send buffer.
pub const PUMP_BYTES: usize = 16 * 1024;

/// `Retry-After` of the 503 answered when [`MAX_STREAMS`] are open, in
/// seconds.
pub const STREAMS_RETRY_AFTER_SECONDS: &str = "5";

/// The output scratch buffer is given back when a pump leaves it larger
/// than this (a feed that once produced a burst does not keep its memory).
const SCRATCH_KEPT_BYTES: usize = 4 * PUMP_BYTES;

/// What a pump says of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pumped {
    /// The stream goes on: pump again once the output is sent and
    /// `wake_after_ms` have passed. 0 means as soon as the output is sent
    /// (the feed has more ready); when the pump produced nothing, at least
    /// 1 ms passes, so that a feed with nothing to say cannot spin.
    More {
        /// Milliseconds to wait before the next pump.
        wake_after_ms: u32,
    },
    /// The body is complete: the last chunk goes out after this pump's
    /// bytes.
    Done,
}

/// A response body produced over time, one pump at a time.
pub trait Feed: Send {
    /// Appends the next part of the body to `out` (empty when called;
    /// nothing appended sends nothing) at `now_ns` on the platform clock,
    /// and says when to call again.
    fn pump(&mut self, out: &mut Vec<u8>, now_ns: u64) -> Pumped;

    /// Trailer fields to send after the last chunk, asked once, after the
    /// pump that said [`Pumped::Done`]: what the feed can only say at the
    /// end (a capture's frame and drop counts). Name the fields in the
    /// head's `Trailer` field. A body framed [`Framing::UntilClose`]
    /// (HTTP/1.0) has no trailer section: they are not asked for there.
    /// None by default.
    fn trailer(&mut self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// A streaming response: its head (status, content type and fields; its
/// body is ignored) and the feed of its body.
pub struct StreamReply {
    /// The head.
    pub head: Reply,
    /// The body, over time.
    pub feed: Box<dyn Feed>,
}

impl StreamReply {
    /// A stream with `head` whose body `feed` produces.
    pub fn new(head: Reply, feed: impl Feed + 'static) -> Self {
        Self {
            head,
            feed: Box::new(feed),
        }
    }
}

impl core::fmt::Debug for StreamReply {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StreamReply")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

/// What an endpoint answers: a whole response, or a stream.
#[derive(Debug)]
pub enum Answer {
    /// A response built whole.
    Whole(Reply),
    /// A head now and a body over time.
    Stream(StreamReply),
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Self {
        Self::Whole(reply)
    }
}

/// How a streaming body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// HTTP/1.1: chunked, ending with the last chunk.
    Chunked,
    /// HTTP/1.0: the body ends when the connection closes.
    UntilClose,
}

impl Framing {
    /// The head's body length for this framing.
    pub const fn body_length(self) -> BodyLength {
        match self {
            Self::Chunked => BodyLength::Chunked,
            Self::UntilClose => BodyLength::UntilClose,
        }
    }
}

/// The streams open on one app, and how many may be.
#[derive(Debug, Clone)]
pub struct StreamSlots {
    open: Arc<AtomicUsize>,
    limit: usize,
}

impl StreamSlots {
    /// At most `limit` streams at once.
    pub fn new(limit: usize) -> Self {
        Self {
            open: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        // Ordering: Relaxed: the app and its sessions live on one core;
        // the atomic only makes the count shareable with the sessions'
        // permits (which must be `Send`), it orders nothing else.
        self.open.load(Ordering::Relaxed)
    }

    /// A slot for one more stream, or `None` when all are taken. The slot
    /// is given back when the permit drops (the stream ends, or its
    /// session goes with its connection).
    pub fn try_take(&self) -> Option<StreamPermit> {
        // Ordering: Relaxed, as in `open`: one core takes and gives back.
        let taken = self
            .open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |open| {
                (open < self.limit).then_some(open + 1)
            });
        taken.ok().map(|_| StreamPermit {
            open: Arc::clone(&self.open),
        })
    }
}

/// One taken stream slot, given back on drop.
#[derive(Debug)]
pub struct StreamPermit {
    open: Arc<AtomicUsize>,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        // Ordering: Relaxed, as in `StreamSlots::open`.
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A streaming response in progress, held by its session.
pub struct Streaming {
    feed: Box<dyn Feed>,
    framing: Framing,
    /// The next pump is due at this time (platform clock, ns).
    due_ns: u64,
    /// When the client last took bytes of the output (or the stream
    /// started): a stream whose client takes nothing for the idle timeout
    /// is reset.
    pub(crate) last_progress_ns: u64,
    /// The connection closes once the stream ends.
    pub(crate) close_after: bool,
    /// What the feed writes, before its framing.
    scratch: Vec<u8>,
    _permit: StreamPermit,
}

impl core::fmt::Debug for Streaming {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Streaming")
            .field("framing", &self.framing)
            .field("due_ns", &self.due_ns)
            .field("last_progress_ns", &self.last_progress_ns)
            .field("close_after", &self.close_after)
            .finish_non_exhaustive()
    }
}

impl Streaming {
    /// A stream of `feed`'s body in `framing`, due for its first pump at
    /// `now_ns`, holding `permit` while it lasts.
    pub fn new(
        feed: Box<dyn Feed>,
        framing: Framing,
        close_after: bool,
        permit: StreamPermit,
        now_ns: u64,
    ) -> Self {
        Self {
            feed,
            framing,
            due_ns: now_ns,
            last_progress_ns: now_ns,
            close_after: close_after || framing == Framing::UntilClose,
            scratch: Vec::new(),
            _permit: permit,
        }
    }

    /// When the next pump is due.
    pub fn due_ns(&self) -> u64 {
        self.due_ns
    }

    /// Pumps the feed once at `now_ns`, appending its bytes to `out` in
    /// this stream's framing (and the last chunk when it is done).
    pub fn pump(&mut self, out: &mut Vec<u8>, now_ns: u64) -> Pumped {
        self.scratch.clear();
        let pumped = self.feed.pump(&mut self.scratch, now_ns);
        let produced = !self.scratch.is_empty();
        if produced {
            match self.framing {
                Framing::Chunked => {
                    let (line, length) = chunk_header(self.scratch.len() as u64);
                    out.extend_from_slice(&line[..length]);
                    out.extend_from_slice(&self.scratch);
                    out.extend_from_slice(b"\r\n");
                }
                Framing::UntilClose => out.extend_from_slice(&self.scratch),
            }
        }
        if self.scratch.capacity() > SCRATCH_KEPT_BYTES {
            self.scratch = Vec::new();
        }
        match pumped {
            Pumped::More { wake_after_ms } => {
                let wait_ms = if produced {
                    wake_after_ms
                } else {
                    wake_after_ms.max(1)
                };
                self.due_ns = now_ns.saturating_add(u64::from(wait_ms) * 1_000_000);
            }
            Pumped::Done => {
                if self.framing == Framing::Chunked {
                    let trailer = self.feed.trailer();
                    if trailer.is_empty() {
                        out.extend_from_slice(LAST_CHUNK);
                    } else {
                        // The last chunk, the trailer fields, the empty line.
                        out.extend_from_slice(&LAST_CHUNK[..3]);
                        for (name, value) in trailer {
                            out.extend_from_slice(name.as_bytes());
                            out.extend_from_slice(b": ");
                            out.extend_from_slice(value.as_bytes());
                            out.extend_from_slice(b"\r\n");
                        }
                        out.extend_from_slice(b"\r\n");
                    }
                }
            }
        }
        pumped
    }
}

/// Milliseconds from `now_ns` until `deadline_ns`, rounded up, at least 1
/// (0 would clear a timer rather than fire it).
pub fn millis_until(deadline_ns: u64, now_ns: u64) -> u32 {
    let nanoseconds = deadline_ns.saturating_sub(now_ns);
    let milliseconds = nanoseconds.div_ceil(1_000_000).max(1);
    u32::try_from(milliseconds).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Says `parts` in turn, then is done.
    struct Parts(Vec<&'static [u8]>);

    impl Feed for Parts {
        fn pump(&mut self, out: &mut Vec<u8>, _now_ns: u64) -> Pumped {
            if self.0.is_empty() {
                return Pumped::Done;
            }
            out.extend_from_slice(self.0.remove(0));
            Pumped::More { wake_after_ms: 0 }
        }
    }

    fn streaming(framing: Framing, parts: Vec<&'static [u8]>) -> (Streaming, StreamSlots) {
        let slots = StreamSlots::new(1);
        let permit = slots.try_take().unwrap();
        let stream = Streaming::new(Box::new(Parts(parts)), framing, false, permit, 5);
        (stream, slots)
    }

    #[test]
    fn chunked_framing_skips_empty_pumps_and_ends_with_the_last_chunk() {
        let (mut stream, _slots) =
            streaming(Framing::Chunked, vec![b"hello", b"", b"0123456789abcdef!"]);
        let mut out = Vec::new();
        assert_eq!(stream.pump(&mut out, 10), Pumped::More { wake_after_ms: 0 });
        assert_eq!(stream.due_ns(), 10);
        // Nothing produced: at least a millisecond before the next pump.
        assert_eq!(stream.pump(&mut out, 10), Pumped::More { wake_after_ms: 0 });
        assert_eq!(stream.due_ns(), 1_000_010);
        stream.pump(&mut out, 2_000_000);
        assert_eq!(stream.pump(&mut out, 2_000_000), Pumped::Done);
        assert_eq!(out, b"5\r\nhello\r\n11\r\n0123456789abcdef!\r\n0\r\n\r\n");
    }

    /// Says one part, then is done with two trailer fields.
    struct Counted(bool);

    impl Feed for Counted {
        fn pump(&mut self, out: &mut Vec<u8>, _now_ns: u64) -> Pumped {
            if core::mem::replace(&mut self.0, true) {
                return Pumped::Done;
            }
            out.extend_from_slice(b"data");
            Pumped::More { wake_after_ms: 0 }
        }

        fn trailer(&mut self) -> Vec<(&'static str, String)> {
            alloc::vec![
                ("X-Frames", String::from("1")),
                ("X-Dropped", String::from("0"))
            ]
        }
    }

    #[test]
    fn a_feed_s_trailer_follows_the_last_chunk() {
        let slots = StreamSlots::new(2);
        let mut chunked = Streaming::new(
            Box::new(Counted(false)),
            Framing::Chunked,
            false,
            slots.try_take().unwrap(),
            0,
        );
        let mut out = Vec::new();
        while chunked.pump(&mut out, 0) != Pumped::Done {}
        assert_eq!(
            out,
            b"4\r\ndata\r\n0\r\nX-Frames: 1\r\nX-Dropped: 0\r\n\r\n"
        );
        // HTTP/1.0 has no trailer section: the bytes alone.
        let mut until_close = Streaming::new(
            Box::new(Counted(false)),
            Framing::UntilClose,
            false,
            slots.try_take().unwrap(),
            0,
        );
        let mut out = Vec::new();
        while until_close.pump(&mut out, 0) != Pumped::Done {}
        assert_eq!(out, b"data");
    }

    #[test]
    fn until_close_framing_is_the_bytes_alone() {
        let (mut stream, _slots) = streaming(Framing::UntilClose, vec![b"a", b"bc"]);
        assert!(stream.close_after);
        let mut out = Vec::new();
        while stream.pump(&mut out, 0) != Pumped::Done {}
        assert_eq!(out, b"abc");
    }

    #[test]
    fn slots_are_given_back_when_permits_drop() {
        let slots = StreamSlots::new(2);
        let first = slots.try_take().unwrap();
        let second = slots.try_take().unwrap();
        assert!(slots.try_take().is_none());
        assert_eq!(slots.open(), 2);
        drop(first);
        let third = slots.try_take().unwrap();
        drop((second, third));
        assert_eq!(slots.open(), 0);
    }

    #[test]
    fn waits_round_up_and_never_clear_the_timer() {
        assert_eq!(millis_until(10, 10), 1);
        assert_eq!(millis_until(5, 10), 1);
        assert_eq!(millis_until(1_000_001, 0), 2);
        assert_eq!(millis_until(250_000_000, 0), 250);
        assert_eq!(millis_until(u64::MAX, 0), u32::MAX);
    }
}
