//! Server-sent events (the HTML standard's `text/event-stream`) read from
//! a body as it arrives: `id`, `event` and `data` fields, comments
//! skipped, every line and event bounded.

use std::io::{self, BufRead, Read};

/// The longest line read.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// The most data one event may carry.
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// One event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The last `id:` seen (it carries over to later events).
    pub id: Option<String>,
    /// `event:`, `message` when it has none.
    pub event: String,
    /// The `data:` lines joined by newlines.
    pub data: String,
}

/// Reads events from a stream's body.
pub struct EventReader<R> {
    inner: R,
    last_id: Option<String>,
}

impl<R: BufRead> EventReader<R> {
    /// Events of the body `inner` reads.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            last_id: None,
        }
    }

    /// The next event; `None` when the body ended (an event cut short by
    /// the end is not dispatched, as the standard says).
    pub fn next_event(&mut self) -> io::Result<Option<Event>> {
        let mut event = String::new();
        let mut data = String::new();
        let mut has_data = false;
        loop {
            let Some(line) = self.line()? else {
                return Ok(None);
            };
            if line.is_empty() {
                if has_data {
                    return Ok(Some(Event {
                        id: self.last_id.clone(),
                        event: if event.is_empty() {
                            "message".to_string()
                        } else {
                            event
                        },
                        data,
                    }));
                }
                event.clear();
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (name, value) = match line.split_once(':') {
                Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
                None => (line.as_str(), ""),
            };
            match name {
                "event" => event = value.to_string(),
                "data" => {
                    if has_data {
                        data.push('\n');
                    }
                    data.push_str(value);
                    has_data = true;
                    if data.len() > MAX_EVENT_BYTES {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "an event over 1 MiB",
                        ));
                    }
                }
                // An id with a NUL is ignored, as the standard says.
                "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
                _ => {}
            }
        }
    }

    /// One line without its end (LF or CRLF), `None` at the end of the
    /// body.
    fn line(&mut self) -> io::Result<Option<String>> {
        let mut line = Vec::new();
        let read = (&mut self.inner)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok(None);
        }
        if read > MAX_LINE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "an event stream line over 64 KiB",
            ));
        }
        if line.last() != Some(&b'\n') {
            // The body ended in the middle of a line.
            return Ok(None);
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(String::from_utf8_lossy(&line).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<Event> {
        let mut reader = EventReader::new(text.as_bytes());
        let mut events = Vec::new();
        for _ in 0..100 {
            match reader.next_event().unwrap() {
                Some(event) => events.push(event),
                None => return events,
            }
        }
        panic!("more than 100 events");
    }

    fn event(id: Option<&str>, event: &str, data: &str) -> Event {
        Event {
            id: id.map(str::to_string),
            event: event.to_string(),
            data: data.to_string(),
        }
    }

    #[test]
    fn fields_comments_and_defaults() {
        let text = ": warpcore log stream\nretry: 2000\n\n\
                    id: 7\nevent: log\ndata: {\"seq\":7}\n\n\
                    : keep-alive\n\n\
                    data:first\r\ndata: second\r\n\r\n\
                    id: 9\nevent: lost\n\n\
                    event: log\ndata: cut";
        assert_eq!(
            all(text),
            [
                event(Some("7"), "log", "{\"seq\":7}"),
                event(Some("7"), "message", "first\nsecond"),
            ]
        );
    }

    #[test]
    fn long_lines_are_refused() {
        let text = format!("data: {}\n\n", "x".repeat(MAX_LINE_BYTES));
        let error = EventReader::new(text.as_bytes()).next_event().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
