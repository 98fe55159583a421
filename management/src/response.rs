//! `Reply`: a whole response (status, fields, body), written with the
//! HTTP server's [`ResponseHead`] plus the fields it does not know.

use alloc::string::String;
use alloc::vec::Vec;
use services::http::response::{BodyLength, ConnectionField, MAX_RESPONSE_HEAD, ResponseHead};

/// `text/plain` for people.
pub const TEXT: &str = "text/plain; charset=utf-8";
/// HTML: the status page.
pub const HTML: &str = "text/html; charset=utf-8";
/// JSON for the API.
pub const JSON: &str = "application/json";

/// A response, built before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// Header fields beyond those [`ResponseHead`] writes.
    pub fields: Vec<(&'static str, String)>,
    /// The `Allow` field (with 405).
    pub allow: Option<&'static str>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A reply of `status` with `body` of type `content_type`.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type,
            fields: Vec::new(),
            allow: None,
            body: body.into(),
        }
    }

    /// A plain-text reply.
    pub fn text(status: u16, text: &str) -> Self {
        Self::new(status, TEXT, text.as_bytes())
    }

    /// A JSON reply.
    pub fn json(status: u16, body: String) -> Self {
        Self::new(status, JSON, body.into_bytes())
    }

    /// Adds a header field.
    pub fn with_field(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.fields.push((name, value.into()));
        self
    }

    /// Sets the `Allow` field.
    pub fn with_allow(mut self, allow: &'static str) -> Self {
        self.allow = Some(allow);
        self
    }

    /// Appends the response to `out`: the head, then the body unless
    /// `head_only` (an answer to `HEAD`).
    pub fn write(&self, out: &mut Vec<u8>, connection: ConnectionField, head_only: bool) {
        self.write_head(out, connection, BodyLength::Known(self.body.len() as u64));
        if !head_only {
            out.extend_from_slice(&self.body);
        }
    }

    /// Appends the head alone to `out`, its body delimited by `length`
    /// (a streaming response's head: chunked, or until the close).
    pub fn write_head(&self, out: &mut Vec<u8>, connection: ConnectionField, length: BodyLength) {
        let head = ResponseHead {
            status: self.status,
            content_type: self.content_type.as_bytes(),
            length,
            connection,
            allow: self.allow,
        };
        let mut buffer = [0u8; MAX_RESPONSE_HEAD];
        // Our content types are far shorter than `MAX_CONTENT_TYPE`, so the
        // head always fits; the fallback only keeps this panic-free.
        let length = head.write(&mut buffer).unwrap_or(0);
        // The head ends with an empty line: our fields go before it.
        out.extend_from_slice(&buffer[..length.saturating_sub(2)]);
        for (name, value) in &self.fields {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_fields_go_before_the_empty_line() {
        let mut out = Vec::new();
        Reply::text(401, "no\n")
            .with_field("WWW-Authenticate", "Bearer")
            .write(&mut out, ConnectionField::Absent, false);
        assert_eq!(
            out,
            b"HTTP/1.1 401 Unauthorized\r\nServer: warpcore\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\nWWW-Authenticate: Bearer\r\n\r\nno\n"
        );
    }
}
