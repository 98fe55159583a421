//! The chunked transfer coding of request bodies (RFC 9112 section 7.1):
//! a decoder that takes the body in pieces of any size, keeps its place
//! between them, and hands back runs of body bytes in place.

use super::error::RequestError;
use core::ops::Range;

/// Longest chunk-size line (size, extensions) we accept.
pub const MAX_CHUNK_LINE: usize = 4096;

/// Where the decoder is in the coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the chunk size's hexadecimal digits.
    Size,
    /// After the size: blanks, then `;` extensions, up to the line end.
    Extension,
    /// A CR ended the size line; LF must follow.
    SizeLineFeed,
    /// In a chunk's data, with this many bytes to go.
    Data(u64),
    /// After a chunk's data: CR LF (or LF) must follow.
    DataEnd,
    /// After a chunk's data and CR: LF must follow.
    DataLineFeed,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// In a trailer field line.
    Trailer,
    /// A CR ended a trailer line; LF must follow.
    TrailerLineFeed,
    /// A CR began the final empty line; LF must follow.
    FinalLineFeed,
    /// The body is complete.
    Done,
}

/// What one call of [`ChunkDecoder::decode`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes of the input taken (the decoder keeps no copy of them).
    pub consumed: usize,
    /// Body bytes among them, as a range of the input (perhaps empty).
    pub data: Range<usize>,
}

/// Decodes one chunked body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkDecoder {
    state: State,
    size: u64,
    digits: usize,
    line: usize,
    trailer: usize,
    body: u64,
    max_body_bytes: u64,
    max_trailer_bytes: usize,
}

impl ChunkDecoder {
    /// A decoder refusing bodies over `max_body_bytes` (413) and trailer
    /// sections over `max_trailer_bytes` (431).
    pub fn new(max_body_bytes: u64, max_trailer_bytes: usize) -> Self {
        Self {
            state: State::Size,
            size: 0,
            digits: 0,
            line: 0,
            trailer: 0,
            body: 0,
            max_body_bytes,
            max_trailer_bytes,
        }
    }

    /// True once the final chunk and trailer section were read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Body bytes the chunk sizes announced so far (all of them decoded
    /// once [`ChunkDecoder::is_done`]).
    pub fn body_bytes(&self) -> u64 {
        self.body
    }

    /// Takes bytes from `input` until a run of body bytes is found, the
    /// input ends or the body is complete (then nothing more is taken).
    /// Call again with the rest of the input after using the run.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, RequestError> {
        let mut index = 0;
        while index < input.len() {
            if let State::Data(remaining) = self.state {
                let available = (input.len() - index) as u64;
                let count = remaining.min(available) as usize;
                let remaining = remaining - count as u64;
                self.state = match remaining {
                    0 => State::DataEnd,
                    _ => State::Data(remaining),
                };
                return Ok(Decoded {
                    consumed: index + count,
                    data: index..index + count,
                });
            }
            if self.state == State::Done {
                break;
            }
            self.step(input[index])?;
            index += 1;
        }
        Ok(Decoded {
            consumed: index,
            data: index..index,
        })
    }

    /// Takes one byte outside chunk data.
    fn step(&mut self, byte: u8) -> Result<(), RequestError> {
        if matches!(
            self.state,
            State::Size | State::Extension | State::SizeLineFeed
        ) {
            self.line += 1;
            if self.line > MAX_CHUNK_LINE {
                return Err(RequestError::Malformed);
            }
        }
        self.state = match (self.state, byte) {
            (State::Size, digit) if digit.is_ascii_hexdigit() => {
                if self.digits == 15 {
                    return Err(RequestError::Malformed);
                }
                self.digits += 1;
                self.size = self.size * 16 + u64::from(hex_value(digit));
                State::Size
            }
            (State::Size, _) if self.digits == 0 => return Err(RequestError::Malformed),
            (State::Size | State::Extension, b'\r') => State::SizeLineFeed,
            (State::Size | State::Extension, b'\n') | (State::SizeLineFeed, b'\n') => {
                self.chunk_start()?
            }
            (State::Size, b' ' | b'\t' | b';') | (State::Extension, _) => State::Extension,
            (State::DataEnd, b'\r') => State::DataLineFeed,
            (State::DataEnd | State::DataLineFeed, b'\n') => State::Size,
            (State::TrailerStart, b'\r') => State::FinalLineFeed,
            (State::TrailerStart, b'\n') | (State::FinalLineFeed, b'\n') => State::Done,
            (State::TrailerStart | State::Trailer, byte) => {
                self.trailer += 1;
                if self.trailer > self.max_trailer_bytes {
                    return Err(RequestError::HeadersTooLarge);
                }
                match byte {
                    b'\r' => State::TrailerLineFeed,
                    b'\n' => State::TrailerStart,
                    _ => State::Trailer,
                }
            }
            (State::TrailerLineFeed, b'\n') => State::TrailerStart,
            _ => return Err(RequestError::Malformed),
        };
        Ok(())
    }

    /// The size line ended: the chunk's data, or the trailer section after
    /// the last chunk.
    fn chunk_start(&mut self) -> Result<State, RequestError> {
        let size = self.size;
        (self.size, self.digits, self.line) = (0, 0, 0);
        if size == 0 {
            return Ok(State::TrailerStart);
        }
        self.body = self.body.saturating_add(size);
        if self.body > self.max_body_bytes {
            return Err(RequestError::BodyTooLarge);
        }
        Ok(State::Data(size))
    }
}

/// The value of a hexadecimal digit.
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Decodes `input` fed in pieces of `piece` bytes; the body and the
    /// bytes taken.
    fn decode(input: &[u8], piece: usize) -> Result<(Vec<u8>, usize), RequestError> {
        let mut decoder = ChunkDecoder::new(100, 50);
        let mut body = Vec::new();
        let mut taken = 0;
        for part in input.chunks(piece) {
            let mut part = part;
            while !part.is_empty() && !decoder.is_done() {
                let decoded = decoder.decode(part)?;
                body.extend_from_slice(&part[decoded.data]);
                taken += decoded.consumed;
                part = &part[decoded.consumed..];
            }
        }
        assert!(decoder.is_done(), "complete");
        assert_eq!(decoder.body_bytes(), body.len() as u64);
        Ok((body, taken))
    }

    #[test]
    fn chunks_extensions_and_trailers_in_any_pieces() {
        let input = b"5;name=value\r\nhello\r\n7 ; x\r\n, world\r\nA\nabcdefghij\n0\r\nExpires: never\r\nX: y\n\r\nGET";
        for piece in 1..input.len() {
            let (body, taken) = decode(input, piece).unwrap();
            assert_eq!(body, b"hello, worldabcdefghij");
            assert_eq!(taken, input.len() - 3, "stops after the body");
        }
        assert_eq!(decode(b"0\r\n\r\n", 1).unwrap().0, b"");
    }

    /// The error decoding `input` in one piece meets, if any.
    fn refusal(input: &[u8]) -> Option<RequestError> {
        let mut decoder = ChunkDecoder::new(100, 50);
        let mut rest = input;
        while !rest.is_empty() && !decoder.is_done() {
            match decoder.decode(rest) {
                Ok(decoded) => rest = &rest[decoded.consumed..],
                Err(error) => return Some(error),
            }
        }
        None
    }

    #[test]
    fn refusals() {
        for (input, error) in [
            (&b"x\r\n"[..], Some(RequestError::Malformed)),
            (b"\r\n", Some(RequestError::Malformed)),
            (b"5\r\nhelloX", Some(RequestError::Malformed)),
            (b"5\r\nhello\rX", Some(RequestError::Malformed)),
            (b"5\rX", Some(RequestError::Malformed)),
            (b"1000000000000000\r\n", Some(RequestError::Malformed)),
            (b"65\r\n", Some(RequestError::BodyTooLarge)),
            (b"64\r\n", None),
            (
                b"0\r\nX: 0123456789012345678901234567890123456789012345678901234\r\n",
                Some(RequestError::HeadersTooLarge),
            ),
            (b"0\r\nX: y\rZ", Some(RequestError::Malformed)),
        ] {
            assert_eq!(refusal(input), error, "{:?}", core::str::from_utf8(input));
        }
        let mut decoder = ChunkDecoder::new(100, 50);
        let long_extension = [b';'; MAX_CHUNK_LINE + 1];
        assert_eq!(
            decoder.decode(b"1"),
            Ok(Decoded {
                consumed: 1,
                data: 1..1
            })
        );
        assert_eq!(
            decoder.decode(&long_extension),
            Err(RequestError::Malformed)
        );
    }
}
