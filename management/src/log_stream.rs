//! `GET /api/v1/logs/stream`: the log ring followed as server-sent events
//! (a [`Feed`] of the streaming machinery).
//!
//! Each record is one event: `id:` its sequence number, `event: log`,
//! `data:` its JSON as `/api/v1/logs` renders it. The stream starts after
//! the record named by `Last-Event-ID` (an `EventSource` reconnecting),
//! else by `since=`, else after the newest record when it opened; `q=`
//! and `level=` filter as in the search, and `limit=` ends the stream
//! after that many records. Records the ring overwrote before the stream
//! reached them are reported by one `event: lost` whose `data:` says how
//! many, and whose `id:` is the last of them (a reconnect is not told
//! twice). A `:` comment goes out after [`KEEP_ALIVE_MS`] of silence, so
//! that proxies and clients see the connection alive.
//!
//! The ring is filled from every core with no wake-up for the follower:
//! the feed looks at it every [`POLL_MS`] (a timer on the management
//! core, only while a stream is open), and at once while a backlog lasts.

use crate::log_ring::{LogFilter, LogRing};
use crate::logs::{LogQuery, QueryError, push_entry};
use crate::stream::{Feed, Pumped};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// How often an open stream looks for new records, in milliseconds.
pub const POLL_MS: u32 = 250;
/// A keep-alive comment goes out after this much silence.
pub const KEEP_ALIVE_MS: u64 = 15_000;
/// Most records one pump sends (about 13 KiB at the longest messages,
/// within `stream::PUMP_BYTES`).
pub const EVENTS_PER_PUMP: usize = 32;
/// The reconnection delay the stream asks `EventSource` clients for.
pub const RETRY_MS: u32 = 2000;
/// The stream's content type.
pub const EVENT_STREAM: &str = "text/event-stream";

/// Parses a stream's query string: as `/api/v1/logs`'s, but `since`
/// defaults to `ring`'s newest record (only what comes next) and without
/// `limit` the stream does not end.
pub fn parse_query(query: &[u8], ring: &LogRing) -> Result<LogQuery, QueryError> {
    LogQuery::parse_over(
        query,
        LogQuery {
            contains: String::new(),
            level: log::LevelFilter::Trace,
            since: ring.newest_seq(),
            limit: usize::MAX,
        },
    )
}

/// The log ring followed for one client.
pub struct LogFeed {
    ring: &'static LogRing,
    contains: String,
    level: log::LevelFilter,
    /// The newest sequence number the client has been given (or that
    /// was looked at and filtered out).
    cursor: u64,
    /// Records left before the stream ends (`limit=`).
    remaining: usize,
    started: bool,
    /// When bytes last went out, for the keep-alive.
    last_sent_ns: u64,
}

impl LogFeed {
    /// Follows `ring` for `query`, after the record `last_event_id` names
    /// (an `EventSource` reconnecting) or else after `query.since`. A
    /// starting point newer than the ring's newest record is from before
    /// a restart (sequence numbers start again at 1): the stream then
    /// starts from the ring's oldest record.
    pub fn new(ring: &'static LogRing, query: LogQuery, last_event_id: Option<u64>) -> Self {
        let start = last_event_id.unwrap_or(query.since);
        let cursor = if start > ring.newest_seq() { 0 } else { start };
        Self {
            ring,
            contains: query.contains,
            level: query.level,
            cursor,
            remaining: query.limit,
            started: false,
            last_sent_ns: 0,
        }
    }
}

impl Feed for LogFeed {
    fn pump(&mut self, out: &mut Vec<u8>, now_ns: u64) -> Pumped {
        let mut text = String::new();
        if !self.started {
            self.started = true;
            let _ = write!(text, ": warpcore log stream\nretry: {RETRY_MS}\n\n");
        }
        let followed = self.ring.follow(&LogFilter {
            contains: &self.contains,
            level: self.level,
            since: self.cursor,
            limit: EVENTS_PER_PUMP.min(self.remaining),
        });
        if followed.lost > 0 {
            let last_lost = self.cursor + followed.lost;
            let _ = write!(
                text,
                "id: {last_lost}\nevent: lost\ndata: {{\"lost\":{},\"message\":\"{} log records were overwritten before the stream reached them\"}}\n\n",
                followed.lost, followed.lost
            );
        }
        for entry in &followed.entries {
            let _ = write!(text, "id: {}\nevent: log\ndata: ", entry.seq);
            push_entry(&mut text, entry);
            text.push_str("\n\n");
        }
        self.cursor = followed.cursor;
        self.remaining -= followed.entries.len();
        if text.is_empty() && now_ns.saturating_sub(self.last_sent_ns) >= KEEP_ALIVE_MS * 1_000_000
        {
            text.push_str(": keep-alive\n\n");
        }
        if !text.is_empty() {
            self.last_sent_ns = now_ns;
            out.extend_from_slice(text.as_bytes());
        }
        if self.remaining == 0 {
            return Pumped::Done;
        }
        Pumped::More {
            wake_after_ms: if followed.more { 0 } else { POLL_MS },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;

    fn ring() -> &'static LogRing {
        Box::leak(Box::new(LogRing::new()))
    }

    fn query(ring: &LogRing, text: &str) -> LogQuery {
        parse_query(text.as_bytes(), ring).unwrap()
    }

    fn pump(feed: &mut LogFeed, now_ns: u64) -> (String, Pumped) {
        let mut out = Vec::new();
        let pumped = feed.pump(&mut out, now_ns);
        (String::from_utf8(out).unwrap(), pumped)
    }

    const MORE: Pumped = Pumped::More {
        wake_after_ms: POLL_MS,
    };

    #[test]
    fn records_become_events_and_silence_a_keep_alive() {
        let ring = ring();
        ring.push(5, log::Level::Info, "net", format_args!("link \"up\""));
        let mut feed = LogFeed::new(ring, query(ring, "since=0"), None);
        assert_eq!(
            pump(&mut feed, 0),
            (
                String::from(
                    ": warpcore log stream\nretry: 2000\n\n\
                 id: 1\nevent: log\ndata: {\"seq\":1,\"timeMs\":5,\"level\":\"info\",\"target\":\"net\",\"message\":\"link \\\"up\\\"\"}\n\n"
                ),
                MORE
            )
        );
        assert_eq!(pump(&mut feed, 1_000_000_000), (String::new(), MORE));
        ring.push(6, log::Level::Error, "tcp", format_args!("reset"));
        let (text, _) = pump(&mut feed, 2_000_000_000);
        assert!(
            text.starts_with("id: 2\nevent: log\ndata: {\"seq\":2,"),
            "{text}"
        );
        assert!(text.contains("\"level\":\"error\""));
        let quiet = 2_000_000_000 + KEEP_ALIVE_MS * 1_000_000;
        assert_eq!(pump(&mut feed, quiet - 1), (String::new(), MORE));
        assert_eq!(
            pump(&mut feed, quiet),
            (String::from(": keep-alive\n\n"), MORE)
        );
        assert_eq!(pump(&mut feed, quiet + 1), (String::new(), MORE));
    }

    #[test]
    fn filters_limits_and_where_it_starts() {
        let ring = ring();
        for (index, level) in [log::Level::Info, log::Level::Warn, log::Level::Debug]
            .into_iter()
            .enumerate()
        {
            ring.push(0, level, "t", format_args!("line {index}"));
        }
        let ids = |text: &str| -> Vec<u64> {
            text.lines()
                .filter_map(|line| line.strip_prefix("id: "))
                .map(|id| id.parse().unwrap())
                .collect()
        };
        // By default: only what comes after the stream opened.
        let mut feed = LogFeed::new(ring, query(ring, ""), None);
        assert_eq!(ids(&pump(&mut feed, 0).0), [] as [u64; 0]);
        let mut feed = LogFeed::new(ring, query(ring, "since=0&level=info"), None);
        assert_eq!(ids(&pump(&mut feed, 0).0), [1, 2]);
        let mut feed = LogFeed::new(ring, query(ring, "since=0&q=line+2"), None);
        assert_eq!(ids(&pump(&mut feed, 0).0), [3]);
        // Last-Event-ID wins over since.
        let mut feed = LogFeed::new(ring, query(ring, "since=0"), Some(2));
        assert_eq!(ids(&pump(&mut feed, 0).0), [3]);
        // An id from before a restart: from the oldest record.
        let mut feed = LogFeed::new(ring, query(ring, ""), Some(99));
        assert_eq!(ids(&pump(&mut feed, 0).0), [1, 2, 3]);
        // limit ends the stream.
        let mut feed = LogFeed::new(ring, query(ring, "since=0&limit=2"), None);
        let (text, pumped) = pump(&mut feed, 0);
        assert_eq!((ids(&text), pumped), (vec![1, 2], Pumped::Done));
    }

    #[test]
    fn a_backlog_goes_in_bounded_pumps_and_losses_are_named_once() {
        let ring = ring();
        let total = crate::log_ring::LOG_RING_ENTRIES as u64 + 40;
        for index in 1..=total {
            ring.push(index, log::Level::Info, "t", format_args!("line {index}"));
        }
        let mut feed = LogFeed::new(ring, query(ring, "since=0"), None);
        let (text, pumped) = pump(&mut feed, 0);
        assert!(
            text.contains("id: 40\nevent: lost\ndata: {\"lost\":40,\"message\":\"40 log records were overwritten before the stream reached them\"}\n\n"),
            "{text}"
        );
        assert_eq!(text.matches("event: log\n").count(), EVENTS_PER_PUMP);
        assert_eq!(pumped, Pumped::More { wake_after_ms: 0 });
        let mut events = EVENTS_PER_PUMP;
        for _ in 0..100 {
            let (text, pumped) = pump(&mut feed, 0);
            assert!(!text.contains("event: lost"));
            events += text.matches("event: log\n").count();
            if pumped == MORE {
                break;
            }
        }
        assert_eq!(events, crate::log_ring::LOG_RING_ENTRIES);
    }
}
