//! Reads one HTTP/1.x response off a connection: status line, headers,
//! and a Content-Length, chunked or read-to-close body, each bounded.

use crate::http::Response;
use std::io::{self, BufRead, Read};

/// The most header bytes a response may have.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The most body bytes a response may have (a large scrape fits easily).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Why a response could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The connection failed or ended early.
    Io(io::Error),
    /// The bytes are not a response we read; says what was wrong.
    Malformed(String),
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> ReadError {
        ReadError::Io(error)
    }
}

/// Reads one response (skipping any 1xx) from a connection the server
/// closes after it.
pub(crate) fn read_response(reader: &mut impl BufRead) -> Result<Response, ReadError> {
    loop {
        let (status, headers) = read_head(reader)?;
        if (100..200).contains(&status) {
            continue;
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(key, _): &&(String, String)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.trim())
        };
        let chunked = header("Transfer-Encoding")
            .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
        let body = if chunked {
            read_chunked(reader)?
        } else if let Some(length) = header("Content-Length") {
            let length: usize = length
                .parse()
                .map_err(|_| ReadError::Malformed(format!("Content-Length `{length}`")))?;
            if length > MAX_BODY_BYTES {
                return Err(ReadError::Malformed(format!("a body of {length} bytes")));
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            body
        } else {
            let mut body = Vec::new();
            reader
                .take(MAX_BODY_BYTES as u64 + 1)
                .read_to_end(&mut body)?;
            if body.len() > MAX_BODY_BYTES {
                return Err(ReadError::Malformed("a body over 64 MiB".into()));
            }
            body
        };
        return Ok(Response {
            status,
            headers,
            body,
        });
    }
}

/// Reads a status line and headers up to the blank line.
pub(crate) fn read_head(
    reader: &mut impl BufRead,
) -> Result<(u16, Vec<(String, String)>), ReadError> {
    let mut budget = MAX_HEADER_BYTES;
    let status_line = read_line(reader, &mut budget)?;
    if status_line.is_empty() {
        return Err(ReadError::Malformed("no status line".into()));
    }
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Malformed(format!("status line `{status_line}`")));
    }
    let status: u16 = status
        .parse()
        .ok()
        .filter(|code| (100..1000).contains(code))
        .ok_or_else(|| ReadError::Malformed(format!("status line `{status_line}`")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget)?;
        if line.is_empty() {
            return Ok((status, headers));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ReadError::Malformed(format!("header line `{line}`")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
}

/// Reads one CRLF- (or LF-) terminated line, at most `budget` bytes in all.
pub(crate) fn read_line(
    reader: &mut impl BufRead,
    budget: &mut usize,
) -> Result<String, ReadError> {
    let mut line = Vec::new();
    let read = reader
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if read > *budget {
        return Err(ReadError::Malformed("headers over 64 KiB".into()));
    }
    *budget -= read;
    if !line.ends_with(b"\n") {
        return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    while line
        .last()
        .is_some_and(|byte| matches!(byte, b'\n' | b'\r'))
    {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| ReadError::Malformed("a header that is not UTF-8".into()))
}

/// Reads a chunked body and its trailers.
fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        // Each chunk's lines get their own budget: a scrape may come in
        // many small chunks.
        let mut budget = MAX_HEADER_BYTES;
        let line = read_line(reader, &mut budget)?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| ReadError::Malformed(format!("chunk size `{line}`")))?;
        if size == 0 {
            // Trailers, then the blank line.
            while !read_line(reader, &mut budget)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(ReadError::Malformed("a body over 64 MiB".into()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if !read_line(reader, &mut budget)?.is_empty() {
            return Err(ReadError::Malformed("no CRLF after a chunk".into()));
        }
    }
}
