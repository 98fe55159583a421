//! `ChunkedReader`: a chunked body (RFC 9112 section 7.1) decoded as it
//! arrives, for responses read while they are still being sent (the log
//! stream), each chunk's size line bounded.

use crate::response_reader::{MAX_HEADER_BYTES, ReadError, read_line};
use std::io::{self, BufRead, Read};

/// Reads the data of a chunked body from `inner`, chunk by chunk; ends
/// (reads 0) after the last chunk and its trailers.
pub struct ChunkedReader<R> {
    inner: R,
    /// Bytes left in the current chunk.
    left: usize,
    /// The CRLF after a chunk's data is still to be read.
    crlf_due: bool,
    done: bool,
}

impl<R: BufRead> ChunkedReader<R> {
    /// Decodes the chunked body that `inner` holds from its first size
    /// line on.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            left: 0,
            crlf_due: false,
            done: false,
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
                // Trailers (bounded: each line is), then the blank line.
                while !self.line()?.is_empty() {}
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
        ChunkedReader::new(BufReader::with_capacity(3, raw)).read_to_end(&mut body)?;
        Ok(body)
    }

    #[test]
    fn chunks_are_joined_as_they_come_and_trailers_skipped() {
        let raw = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\nnext response";
        assert_eq!(decode(raw).unwrap(), b"hello, world");
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
