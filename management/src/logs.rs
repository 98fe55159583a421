//! `GET /api/v1/logs?q=&level=&since=&limit=`: the log ring searched, as
//! JSON, newest first; the query and the record's JSON are shared with
//! the log stream (`log_stream`).

use crate::json::push_string;
use crate::log_ring::{LogEntry, LogFilter, LogRing};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// Entries answered when the query names no `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// Most entries one query answers.
pub const MAX_LIMIT: usize = 1000;

/// Why a query was refused (answered 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// A parameter's value is not what it should be.
    BadValue(&'static str),
    /// A parameter is not percent-encoded UTF-8.
    BadEncoding(&'static str),
}

impl QueryError {
    /// The message in the 400 body.
    pub fn message(&self) -> &'static str {
        match self {
            Self::BadValue("level") => "level must be error, warn, info, debug or trace",
            Self::BadValue("since") => "since must be a sequence number",
            Self::BadValue(_) => "limit must be a number from 1 to 1000",
            Self::BadEncoding(_) => "a parameter is not percent-encoded UTF-8",
        }
    }
}

/// A parsed `/api/v1/logs` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// `q`: a substring of the message or target.
    pub contains: String,
    /// `level`: the least severe level answered (default `trace`).
    pub level: log::LevelFilter,
    /// `since`: only entries after this sequence number.
    pub since: u64,
    /// `limit`: at most this many entries.
    pub limit: usize,
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space and
/// `%XX` a byte.
pub(crate) fn decode(value: &[u8], name: &'static str) -> Result<String, QueryError> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut index = 0;
    while index < value.len() {
        match value[index] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = value
                    .get(index + 1..index + 3)
                    .and_then(|hex| core::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or(QueryError::BadEncoding(name))?;
                bytes.push(hex);
                index += 2;
            }
            other => bytes.push(other),
        }
        index += 1;
    }
    String::from_utf8(bytes).map_err(|_| QueryError::BadEncoding(name))
}

impl LogQuery {
    /// Parses the query string (the bytes after `?`); unknown parameters
    /// are ignored.
    pub fn parse(query: &[u8]) -> Result<Self, QueryError> {
        Self::parse_over(
            query,
            Self {
                contains: String::new(),
                level: log::LevelFilter::Trace,
                since: 0,
                limit: DEFAULT_LIMIT,
            },
        )
    }

    /// Parses the query string over `defaults`: what it does not name
    /// keeps the default's value.
    pub fn parse_over(query: &[u8], defaults: Self) -> Result<Self, QueryError> {
        let mut parsed = defaults;
        for pair in query.split(|byte| *byte == b'&') {
            let (name, value) = match pair.iter().position(|byte| *byte == b'=') {
                Some(equals) => (&pair[..equals], &pair[equals + 1..]),
                None => (pair, &b""[..]),
            };
            match name {
                b"q" => parsed.contains = decode(value, "q")?,
                b"level" => {
                    parsed.level = match decode(value, "level")?.as_str() {
                        "error" => log::LevelFilter::Error,
                        "warn" => log::LevelFilter::Warn,
                        "info" => log::LevelFilter::Info,
                        "debug" => log::LevelFilter::Debug,
                        "trace" | "" => log::LevelFilter::Trace,
                        _ => return Err(QueryError::BadValue("level")),
                    }
                }
                b"since" => {
                    parsed.since = decode(value, "since")?
                        .parse()
                        .map_err(|_| QueryError::BadValue("since"))?;
                }
                b"limit" => {
                    parsed.limit = decode(value, "limit")?
                        .parse()
                        .ok()
                        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                        .ok_or(QueryError::BadValue("limit"))?;
                }
                _ => {}
            }
        }
        Ok(parsed)
    }
}

/// Renders `{"entries":[...],"next":N}` for `query` into `out`; `next`
/// is the newest sequence number in the ring, the `since` that asks for
/// what comes after this answer.
pub fn render(out: &mut String, ring: &LogRing, query: &LogQuery) {
    let (entries, newest) = ring.query(&LogFilter {
        contains: &query.contains,
        level: query.level,
        since: query.since,
        limit: query.limit,
    });
    out.push_str("{\"entries\":[");
    for (index, entry) in entries.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        push_entry(out, entry);
    }
    let _ = write!(out, "],\"next\":{}}}", newest.max(query.since));
}

/// Appends one record as JSON: `{"seq","timeMs","level","target","message"}`.
pub fn push_entry(out: &mut String, entry: &LogEntry) {
    let _ = write!(
        out,
        "{{\"seq\":{},\"timeMs\":{},\"level\":",
        entry.seq, entry.time_ms
    );
    push_string(out, level_name(entry.level));
    out.push_str(",\"target\":");
    push_string(out, &entry.target);
    out.push_str(",\"message\":");
    push_string(out, &entry.message);
    out.push('}');
}

/// The level's name in lower case, as the query spells it.
pub fn level_name(level: log::Level) -> &'static str {
    match level {
        log::Level::Error => "error",
        log::Level::Warn => "warn",
        log::Level::Info => "info",
        log::Level::Debug => "debug",
        log::Level::Trace => "trace",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_parameter() {
        let query = LogQuery::parse(b"q=link+up%21&level=warn&since=7&limit=5&other=1").unwrap();
        assert_eq!(query.contains, "link up!");
        assert_eq!(query.level, log::LevelFilter::Warn);
        assert_eq!(query.since, 7);
        assert_eq!(query.limit, 5);
        let default = LogQuery::parse(b"").unwrap();
        assert_eq!(default.limit, DEFAULT_LIMIT);
        assert_eq!(default.level, log::LevelFilter::Trace);
    }

    #[test]
    fn refuses_bad_values() {
        for bad in [
            &b"level=loud"[..],
            b"since=-1",
            b"limit=0",
            b"limit=1001",
            b"q=%zz",
            b"q=%ff",
        ] {
            assert!(LogQuery::parse(bad).is_err(), "{bad:?}");
        }
        assert!(LogQuery::parse(b"limit=1000").is_ok());
    }
}
