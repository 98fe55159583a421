//! Writing a response into the send buffer: the head formatted in place,
//! then the body in as many rounds as the buffer needs, chunked when
//! generated.

use super::app::{HttpApp, Transport};
use super::pattern;
use super::response::{BodyLength, LAST_CHUNK, MAX_RESPONSE_HEAD, ResponseHead, chunk_header};
use super::routes::Action;
use super::session::{Body, ContentType, HttpSession, Outgoing};

/// Largest chunk of a generated body.
pub const MAX_CHUNK: u64 = 16 * 1024;

/// Bytes of framing around a chunk of at most [`MAX_CHUNK`] bytes: four
/// hexadecimal digits and two CRLFs.
const CHUNK_FRAMING: usize = 8;

/// Writes `head` whole, or nothing: formatted straight into the send
/// buffer when its free space is contiguous, else on the stack and
/// copied. Its length, or `None` when it does not fit yet.
fn write_head(io: &mut impl Transport, head: &ResponseHead<'_>) -> Option<usize> {
    let mut fitted = None;
    io.write_with(|room| match head.write(room) {
        Some(length) => {
            fitted = Some(length);
            length
        }
        None => 0,
    });
    if fitted.is_some() {
        return fitted;
    }
    let mut buffer = [0u8; MAX_RESPONSE_HEAD];
    let length = head.write(&mut buffer)?;
    if io.send_capacity() < length {
        return None;
    }
    io.write(&buffer[..length]);
    Some(length)
}

/// Writes `count` pattern bytes from `start` through `write_with`; the
/// bytes written (fewer only if the transport broke its promise of room).
fn write_pattern(io: &mut impl Transport, start: u64, count: usize) -> usize {
    let mut written = 0;
    while written < count {
        let wrote = io.write_with(|room| {
            let length = room.len().min(count - written);
            pattern::fill(start + written as u64, &mut room[..length]);
            length
        });
        if wrote == 0 {
            break;
        }
        written += wrote;
    }
    written
}

impl HttpApp {
    /// Writes as much of the current response as fits; true when it is
    /// all written.
    pub(super) fn push_response(
        &mut self,
        session: &mut HttpSession,
        io: &mut impl Transport,
    ) -> bool {
        let HttpSession { response, echo, .. } = session;
        let Some(out) = response.as_mut() else {
            return true;
        };
        if let Body::Rendered(index) = out.body {
            return self.push_rendered(out, index, io);
        }
        if !out.head_written {
            let content_type: &[u8] = match out.content_type {
                ContentType::Static(content_type) => content_type,
                ContentType::Route(index) => self
                    .routes
                    .get(index)
                    .map_or(&b"application/octet-stream"[..], |route| {
                        route.content_type()
                    }),
            };
            let head = ResponseHead {
                status: out.status,
                content_type,
                length: match out.chunked {
                    true => BodyLength::Chunked,
                    false => BodyLength::Known(out.total),
                },
                connection: out.connection,
                allow: out.allow,
            };
            let Some(length) = write_head(io, &head) else {
                return false;
            };
            out.head_written = true;
            self.counters.bytes_sent += length as u64;
            self.counters.response(out.status);
        }
        if out.head_only {
            return true;
        }
        let bytes: &[u8] = match out.body {
            Body::Static(bytes) => bytes,
            Body::Route(index) => match self.routes.get(index).map(|route| &route.action) {
                Some(Action::Body(text)) => text.as_bytes(),
                _ => &[],
            },
            Body::Buffered => echo,
            // Written by `read_body` as it arrives.
            Body::Streamed => return true,
            // Written with its head by `push_rendered`.
            Body::Rendered(_) => return true,
            Body::Pattern if out.chunked => return self.push_chunks(out, io),
            Body::Pattern => {
                let count = (out.total - out.sent).min(io.send_capacity() as u64) as usize;
                let written = write_pattern(io, out.sent, count);
                out.sent += written as u64;
                self.counters.bytes_sent += written as u64;
                return out.sent == out.total;
            }
        };
        let start = (out.sent as usize).min(bytes.len());
        let written = io.write(&bytes[start..]);
        out.sent += written as u64;
        self.counters.bytes_sent += written as u64;
        out.sent >= bytes.len() as u64
    }

    /// Writes as much of a route's rendered response (head and body in
    /// one slice) as fits; true when it is all written.
    fn push_rendered(&mut self, out: &mut Outgoing, index: usize, io: &mut impl Transport) -> bool {
        let bytes = self
            .routes
            .rendered(index, out.connection, out.head_only)
            .unwrap_or_default();
        let start = (out.sent as usize).min(bytes.len());
        let written = io.write(&bytes[start..]);
        if written > 0 && !out.head_written {
            out.head_written = true;
            self.counters.response(out.status);
        }
        out.sent += written as u64;
        self.counters.bytes_sent += written as u64;
        out.sent >= bytes.len() as u64
    }

    /// Writes a generated body's chunks while they fit, then the last
    /// chunk; true when all is written.
    fn push_chunks(&mut self, out: &mut Outgoing, io: &mut impl Transport) -> bool {
        loop {
            let remaining = out.total - out.sent;
            let capacity = io.send_capacity();
            if remaining == 0 {
                if capacity < LAST_CHUNK.len() {
                    return false;
                }
                io.write(LAST_CHUNK);
                self.counters.bytes_sent += LAST_CHUNK.len() as u64;
                return true;
            }
            if capacity <= CHUNK_FRAMING {
                return false;
            }
            let size = remaining
                .min(MAX_CHUNK)
                .min((capacity - CHUNK_FRAMING) as u64);
            let (line, length) = chunk_header(size);
            io.write(&line[..length]);
            let written = write_pattern(io, out.sent, size as usize);
            io.write(b"\r\n");
            out.sent += written as u64;
            self.counters.bytes_sent += (length + written + 2) as u64;
            if written as u64 != size {
                // The transport took less than it had room for: the chunk
                // is broken, and so is the connection.
                io.abort();
                return true;
            }
        }
    }
}
