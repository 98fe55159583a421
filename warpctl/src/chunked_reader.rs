//! `ChunkedReader`: a chunked body (RFC 9112 section 7.1) decoded as it
//! arrives, for responses read while they are still being sent (the log
//! stream), each chunk's size line bounded.

use crate::response_reader::{MAX_HEADER_BYTES, ReadError, read_line};
use std::io::{self, BufRead, Read};
use std::sync::{Arc, Mutex};

/// Most trailer fields kept from one body.
const MAX_TRAILER_FIELDS: usize = 64;

/// Header or trailer fields, names and values as sent.
type Fields = Vec<(String, String)>;

/// The trailer fields of a chunked body, filled in when its reader reaches
/// the end (a capture's frame and drop counts); a handle that stays with
/// the caller while the reader is boxed away.
#[derive(Clone, Debug, Default)]
pub struct Trailers {
    fields: Arc<Mutex<Option<Fields>>>,
}

impl Trailers {
    /// The first field of this name (compared case-insensitively), once
    /// the body's end was read.
    pub fn get(&self, name: &str) -> Option<String> {
        let fields = self.fields.lock().ok()?;
        fields
            .as_ref()?
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    }

    /// True once the last chunk and its trailer section were read.
    pub fn arrived(&self) -> bool {
        self.fields.lock().is_ok_and(|fields| fields.is_some())
    }

    fn set(&self, fields: Fields) {
        if let Ok(mut slot) = self.fields.lock() {
            *slot = Some(fields);
        }
    }
}

/// Reads the data of a chunked body from `inner`, chunk by chunk; ends
/// (reads 0) after the last chunk and its trailers.
pub struct ChunkedReader<R> {
    inner: R,
    /// Bytes left in the current chunk.
    left: usize,
    /// The CRLF after a chunk's data is still to be read.
    crlf_due: bool,
    done: bool,
    trailers: Trailers,
}

impl<R: BufRead> ChunkedReader<R> {
    /// Decodes the chunked body that `inner` holds from its first size
    /// line on, keeping its trailer fields in `trailers`.
    pub fn new(inner: R, trailers: Trailers) -> Self {
        Self {
            inner,
            left: 0,
            crlf_due: false,
            done: false,
            trailers,
        }
    }

    /// One line of the framing, its bytes bounded.
    fn line(&mut self) -> io::Result<String> {
        let mut budget = MAX_HEADER_BYTES;
        read_line(&mut self.inner, &mut budget).map_err(|error| match error {
            ReadError::Io(error) => error,
            ReadError::Malformed(reason) => io::Error::new(io::ErrorKind::InvalidData, reason),
        })
    }
}

/// An error for a malformed chunk.
fn malformed(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

impl<R: BufRead> Read for ChunkedReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.done || buffer.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            if self.crlf_due {
                if !self.line()?.is_empty() {
                    return Err(malformed("no CRLF after a chunk".into()));
                }
                self.crlf_due = false;
            }
            let line = self.line()?;
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| malformed(format!("chunk size `{line}`")))?;
            if size == 0 {
                // Trailers (bounded: each line is, and so is how many are
                // kept), then the blank line.
                let mut fields = Vec::new();
                loop {
                    let line = self.line()?;
                    if line.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && fields.len() < MAX_TRAILER_FIELDS
                    {
                        fields.push((name.trim().to_string(), value.trim().to_string()));
                    }
                }
                self.trailers.set(fields);
                self.done = true;
                return Ok(0);
            }
            self.left = size;
        }
        let wanted = buffer.len().min(self.left);
        let read = self.inner.read(&mut buffer[..wanted])?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= read;
        self.crlf_due = self.left == 0;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn decode(raw: &[u8]) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        // A tiny buffer: chunks are read across many calls.
        ChunkedReader::new(BufReader::with_capacity(3, raw), Trailers::default())
            .read_to_end(&mut body)?;
        Ok(body)
    }

    #[test]
    fn chunks_are_joined_as_they_come_and_trailers_skipped() {
        let raw = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\nnext response";
        assert_eq!(decode(raw).unwrap(), b"hello, world");
    }

    #[test]
    fn trailer_fields_are_kept_once_the_body_ends() {
        let raw = b"4\r\npcap\r\n0\r\nX-Frames: 6\r\nx-dropped:0\r\n\r\n";
        let trailers = Trailers::default();
        let mut reader =
            ChunkedReader::new(BufReader::with_capacity(3, &raw[..]), trailers.clone());
        let mut first = [0u8; 4];
        reader.read_exact(&mut first).unwrap();
        assert!(!trailers.arrived());
        assert_eq!(trailers.get("X-Frames"), None);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty() && trailers.arrived());
        assert_eq!(trailers.get("x-frames").as_deref(), Some("6"));
        assert_eq!(trailers.get("X-Dropped").as_deref(), Some("0"));
        assert_eq!(trailers.get("X-Other"), None);
    }

    #[test]
    fn bad_framing_and_a_cut_are_errors() {
        for (raw, kind) in [
            (&b"zz\r\n"[..], io::ErrorKind::InvalidData),
            (b"3\r\nabcX\r\n0\r\n\r\n", io::ErrorKind::InvalidData),
            (b"5\r\nab", io::ErrorKind::UnexpectedEof),
            (b"5\r\nhello\r\n", io::ErrorKind::UnexpectedEof),
        ] {
            assert_eq!(decode(raw).unwrap_err().kind(), kind, "{raw:?}");
        }
    }
}
