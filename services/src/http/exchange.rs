//! From a parsed request head to its answer: routing, the body's fate
//! (thrown away, echoed as it streams, or buffered to be echoed), and
//! reading that body.

use super::app::{HttpApp, Transport};
use super::chunked::ChunkDecoder;
use super::error::RequestError;
use super::pattern;
use super::request::{self, Method, RequestHead, Version};
use super::response::{CONTINUE, ConnectionField};
use super::routes::{Action, Generator};
use super::session::{Body, BodyFraming, BodyReader, BodySink, ContentType, HttpSession, Outgoing};

/// What one call of [`HttpApp::read_body`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BodyProgress {
    /// Input bytes consumed.
    pub(super) used: usize,
    /// The body is complete.
    pub(super) done: bool,
    /// Stopped because the send buffer is full (a streamed echo).
    pub(super) blocked: bool,
}

impl HttpApp {
    /// Decides the answer to a request whose head was just read, and
    /// how its body is read.
    pub(super) fn start_request(
        &mut self,
        session: &mut HttpSession,
        head: &RequestHead,
        bytes: &[u8],
        io: &mut impl Transport,
    ) {
        if let request::BodyFraming::Length(length) = head.framing
            && length > self.max_body_bytes
        {
            self.refuse(session, RequestError::BodyTooLarge);
            return;
        }
        session.keep_alive = head.keep_alive && !session.peer_closed;
        let connection = match (session.keep_alive, head.version) {
            (false, _) => ConnectionField::Close,
            (true, Version::Http10) => ConnectionField::KeepAlive,
            (true, Version::Http11) => ConnectionField::Absent,
        };
        let head_only = head.method == Method::Head;
        let mut answer = self.answer(head, bytes, connection, head_only);
        let echo = answer.body == Body::Buffered;
        let framing = match head.framing {
            request::BodyFraming::None => None,
            request::BodyFraming::Length(length) => Some(BodyFraming::Remaining(length)),
            request::BodyFraming::Chunked => Some(BodyFraming::Chunked(ChunkDecoder::new(
                self.max_body_bytes,
                self.max_header_bytes,
            ))),
        };
        let Some(framing) = framing else {
            // No body: an echo answers with an empty one.
            session.echo.clear();
            session.response = Some(answer);
            return;
        };
        if head.expect_continue && io.send_capacity() >= CONTINUE.len() {
            // Not a response: it is not counted among them.
            io.write(CONTINUE);
            self.counters.bytes_sent += CONTINUE.len() as u64;
        }
        let sink = match (&framing, echo) {
            (_, false) => BodySink::Discard,
            (BodyFraming::Remaining(length), true) => {
                answer.body = Body::Streamed;
                answer.total = *length;
                session.response = Some(answer.clone());
                BodySink::Stream
            }
            (BodyFraming::Chunked(_), true) => {
                session.echo.clear();
                BodySink::Buffer
            }
        };
        session.body = Some(BodyReader {
            framing,
            then: (sink != BodySink::Stream).then_some(answer),
            sink,
        });
    }

    /// The answer to a well-formed request (before any body is read).
    fn answer(
        &self,
        head: &RequestHead,
        bytes: &[u8],
        connection: ConnectionField,
        head_only: bool,
    ) -> Outgoing {
        let Some(index) = self.routes.find(head.path(bytes)) else {
            return Outgoing::error(404, connection, head_only);
        };
        let Some(route) = self.routes.get(index) else {
            return Outgoing::error(404, connection, head_only);
        };
        if !route.allows(head.method) {
            return Outgoing {
                allow: Some(route.allow()),
                ..Outgoing::error(405, connection, head_only)
            };
        }
        let (body, total, chunked) = match &route.action {
            Action::Body(_) if self.routes.rendered(index, connection, head_only).is_some() => {
                // `push_rendered` takes its length from the rendered bytes.
                (Body::Rendered(index), 0, false)
            }
            Action::Body(text) => (Body::Route(index), text.len() as u64, false),
            Action::File(asset) => (Body::Static(asset.bytes), asset.bytes.len() as u64, false),
            Action::Generate(Generator::Pattern) => {
                let Some(length) = pattern::requested_length(head.query(bytes)) else {
                    return Outgoing::error(400, connection, head_only);
                };
                // HTTP/1.0 has no chunked coding: the length is known anyway.
                (Body::Pattern, length, head.version == Version::Http11)
            }
            Action::Echo => (Body::Buffered, 0, false),
        };
        Outgoing {
            status: 200,
            content_type: ContentType::Route(index),
            allow: None,
            connection,
            body,
            total,
            sent: 0,
            chunked,
            head_only,
            head_written: false,
        }
    }

    /// Reads the current request's body from `input`.
    pub(super) fn read_body(
        &mut self,
        session: &mut HttpSession,
        input: &[u8],
        io: &mut impl Transport,
    ) -> Result<BodyProgress, RequestError> {
        let Some(reader) = session.body.as_mut() else {
            return Ok(BodyProgress {
                used: 0,
                done: true,
                blocked: false,
            });
        };
        let mut progress = BodyProgress {
            used: 0,
            done: false,
            blocked: false,
        };
        match &mut reader.framing {
            BodyFraming::Remaining(remaining) => {
                let available = (*remaining).min(input.len() as u64) as usize;
                let mut used = available;
                if reader.sink == BodySink::Stream {
                    used = io.write(&input[..available]);
                    self.counters.bytes_sent += used as u64;
                    progress.blocked = used < available;
                }
                *remaining -= used as u64;
                progress.used = used;
                progress.done = *remaining == 0;
            }
            BodyFraming::Chunked(decoder) => {
                while progress.used < input.len() && !decoder.is_done() {
                    let rest = &input[progress.used..];
                    let decoded = decoder.decode(rest)?;
                    if reader.sink == BodySink::Buffer {
                        session.echo.extend_from_slice(&rest[decoded.data]);
                    }
                    progress.used += decoded.consumed;
                }
                progress.done = decoder.is_done();
            }
        }
        if progress.done {
            let reader = session.body.take();
            if let Some(mut answer) = reader.and_then(|reader| reader.then) {
                if answer.body == Body::Buffered {
                    answer.total = session.echo.len() as u64;
                }
                session.response = Some(answer);
            } else {
                // A streamed echo: its response is complete too.
                session.response = None;
            }
        }
        Ok(progress)
    }
}
