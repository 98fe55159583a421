//! Response heads (RFC 9112 section 4 and 6): the status line and header
//! fields formatted straight into a byte slice, with no allocation and no
//! `core::fmt`; and the chunked coding's framing.

use super::decimal::Digits;

/// Largest head [`ResponseHead::write`] produces (content types are at
/// most [`MAX_CONTENT_TYPE`] bytes).
pub const MAX_RESPONSE_HEAD: usize = 384;

/// Longest content type a route may configure.
pub const MAX_CONTENT_TYPE: usize = 128;

/// The last chunk and the empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The interim response to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The reason phrase of the statuses we send.
pub const fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// The body of an error response: the status and its reason, a line of
/// plain text.
pub const fn error_body(status: u16) -> &'static [u8] {
    match status {
        400 => b"400 Bad Request\n",
        404 => b"404 Not Found\n",
        405 => b"405 Method Not Allowed\n",
        413 => b"413 Content Too Large\n",
        414 => b"414 URI Too Long\n",
        417 => b"417 Expectation Failed\n",
        431 => b"431 Request Header Fields Too Large\n",
        501 => b"501 Not Implemented\n",
        505 => b"505 HTTP Version Not Supported\n",
        _ => b"error\n",
    }
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// `Content-Length`.
    Known(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither field: the body ends when the server closes the connection
    /// (RFC 9112 section 6.3, rule 8); for HTTP/1.0 clients of a body
    /// whose length is not known, with `Connection: close`.
    UntilClose,
}

/// The `Connection` field a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionField {
    /// None: the HTTP/1.1 default (persistent).
    Absent,
    /// `Connection: close`: the server closes after this response.
    Close,
    /// `Connection: keep-alive`: an HTTP/1.0 client asked to persist.
    KeepAlive,
}

/// A response's status line and header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead<'a> {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'a [u8],
    /// How the body is delimited.
    pub length: BodyLength,
    /// The `Connection` field.
    pub connection: ConnectionField,
    /// The `Allow` field (with 405).
    pub allow: Option<&'static str>,
}

/// Appends to a slice; remembers when something did not fit.
struct Cursor<'a> {
    out: &'a mut [u8],
    length: usize,
    overflow: bool,
}

impl Cursor<'_> {
    fn push(&mut self, bytes: &[u8]) {
        let end = self.length + bytes.len();
        if self.overflow || end > self.out.len() {
            self.overflow = true;
            return;
        }
        self.out[self.length..end].copy_from_slice(bytes);
        self.length = end;
    }
}

impl ResponseHead<'_> {
    /// Writes the head into `out`: its length, or `None` when it does not
    /// fit (then `out` holds a part of it, to be overwritten).
    pub fn write(&self, out: &mut [u8]) -> Option<usize> {
        let mut cursor = Cursor {
            out,
            length: 0,
            overflow: false,
        };
        cursor.push(b"HTTP/1.1 ");
        cursor.push(Digits::decimal(u64::from(self.status)).as_bytes());
        cursor.push(b" ");
        cursor.push(reason(self.status).as_bytes());
        cursor.push(b"\r\nServer: warpcore\r\nContent-Type: ");
        cursor.push(self.content_type);
        match self.length {
            BodyLength::Known(length) => {
                cursor.push(b"\r\nContent-Length: ");
                cursor.push(Digits::decimal(length).as_bytes());
            }
            BodyLength::Chunked => cursor.push(b"\r\nTransfer-Encoding: chunked"),
            BodyLength::UntilClose => {}
        }
        match self.connection {
            ConnectionField::Absent => {}
            ConnectionField::Close => cursor.push(b"\r\nConnection: close"),
            ConnectionField::KeepAlive => cursor.push(b"\r\nConnection: keep-alive"),
        }
        if let Some(allow) = self.allow {
            cursor.push(b"\r\nAllow: ");
            cursor.push(allow.as_bytes());
        }
        cursor.push(b"\r\n\r\n");
        (!cursor.overflow).then_some(cursor.length)
    }
}

/// The line before a chunk of `size` bytes: the size in hexadecimal and
/// CRLF, in a small array; the bytes used.
pub fn chunk_header(size: u64) -> ([u8; 24], usize) {
    let digits = Digits::hexadecimal(size);
    let digits = digits.as_bytes();
    let mut line = [0u8; 24];
    line[..digits.len()].copy_from_slice(digits);
    line[digits.len()..digits.len() + 2].copy_from_slice(b"\r\n");
    (line, digits.len() + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_byte_for_byte() {
        let mut out = [0u8; MAX_RESPONSE_HEAD];
        let head = ResponseHead {
            status: 200,
            content_type: b"text/plain",
            length: BodyLength::Known(20),
            connection: ConnectionField::Absent,
            allow: None,
        };
        let length = head.write(&mut out).unwrap();
        assert_eq!(
            &out[..length],
            b"HTTP/1.1 200 OK\r\nServer: warpcore\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\n"
        );
        let head = ResponseHead {
            status: 405,
            length: BodyLength::Chunked,
            connection: ConnectionField::Close,
            allow: Some("GET, HEAD"),
            ..head
        };
        let length = head.write(&mut out).unwrap();
        assert_eq!(
            &out[..length],
            &b"HTTP/1.1 405 Method Not Allowed\r\nServer: warpcore\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\nAllow: GET, HEAD\r\n\r\n"[..]
        );
        assert_eq!(head.write(&mut out[..length - 1]), None);
        let until_close = ResponseHead {
            status: 503,
            length: BodyLength::UntilClose,
            allow: None,
            ..head
        };
        let length = until_close.write(&mut out).unwrap();
        assert_eq!(
            &out[..length],
            &b"HTTP/1.1 503 Service Unavailable\r\nServer: warpcore\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"[..]
        );
        let longest = ResponseHead {
            status: 431,
            content_type: &[b'x'; MAX_CONTENT_TYPE],
            length: BodyLength::Known(u64::MAX),
            connection: ConnectionField::KeepAlive,
            allow: Some("POST, PUT"),
        };
        assert!(longest.write(&mut out).is_some());
    }

    #[test]
    fn chunk_lines() {
        let (line, length) = chunk_header(0x1f00);
        assert_eq!(&line[..length], b"1f00\r\n");
    }
}
