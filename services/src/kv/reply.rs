//! memcached's answers: the fixed lines, decimal numbers without
//! `core::fmt`, and the [`Sink`] that answers are written into (the
//! connection, a message to another core, or nowhere for `noreply`).

use alloc::vec::Vec;

/// `STORED`.
pub const STORED: &[u8] = b"STORED\r\n";
/// `NOT_STORED`.
pub const NOT_STORED: &[u8] = b"NOT_STORED\r\n";
/// `EXISTS`.
pub const EXISTS: &[u8] = b"EXISTS\r\n";
/// `NOT_FOUND`.
pub const NOT_FOUND: &[u8] = b"NOT_FOUND\r\n";
/// `DELETED`.
pub const DELETED: &[u8] = b"DELETED\r\n";
/// `TOUCHED`.
pub const TOUCHED: &[u8] = b"TOUCHED\r\n";
/// `OK` (flush_all).
pub const OK: &[u8] = b"OK\r\n";
/// `END` (after get's values and stats).
pub const END: &[u8] = b"END\r\n";
/// `ERROR`: unknown command.
pub const ERROR: &[u8] = b"ERROR\r\n";
/// The version line; clients parse the `1.6.x` form.
pub const VERSION: &[u8] = b"VERSION 1.6.0-warpcore\r\n";
/// A bad key or number on a command line.
pub const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format\r\n";
/// A `delete` with extra tokens.
pub const BAD_DELETE: &[u8] =
    b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
/// An `incr`/`decr` delta that is not a number.
pub const INVALID_DELTA: &[u8] = b"CLIENT_ERROR invalid numeric delta argument\r\n";
/// A `touch` exptime that is not a number.
pub const INVALID_EXPTIME: &[u8] = b"CLIENT_ERROR invalid exptime argument\r\n";
/// `incr`/`decr` on a value that is not a decimal number.
pub const NON_NUMERIC: &[u8] = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
/// A data block not followed by `\r\n`.
pub const BAD_DATA_CHUNK: &[u8] = b"CLIENT_ERROR bad data chunk\r\n";
/// A command line without `\n` within the limit (the connection closes).
pub const LINE_TOO_LONG: &[u8] = b"CLIENT_ERROR line too long\r\n";
/// An item larger than `max_item_bytes`.
pub const TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";
/// No room even after evicting everything (cannot happen when
/// `max_item_bytes <= memory_bytes`, which the config check ensures).
pub const OUT_OF_MEMORY: &[u8] = b"SERVER_ERROR out of memory storing object\r\n";

/// A `u64` in decimal, formatted on the stack.
#[derive(Debug, Clone, Copy)]
pub struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    /// `value` in decimal.
    pub fn new(mut value: u64) -> Self {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        Self { digits, start }
    }

    /// The digits.
    pub fn as_bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}

/// Where an answer's bytes go, in order.
pub trait Sink {
    /// Appends `bytes` to the answer.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// The sink of a `noreply` command: the answer is thrown away.
#[derive(Debug, Default)]
pub struct Silent;

impl Sink for Silent {
    fn put(&mut self, _bytes: &[u8]) {}
}

/// Bytes a [`Gather`] holds before it hands them on.
pub const GATHER_BYTES: usize = 1024;

/// Collects the small pieces of an answer (a `VALUE` line, its data, the
/// `END`) in a scratch buffer and hands them to `inner` in one `put` when
/// dropped: one write into the send buffer instead of one per piece.
/// A piece that does not fit what is left goes on after what was held,
/// directly when it is larger than the whole buffer.
#[derive(Debug)]
pub struct Gather<'a, S: Sink> {
    inner: S,
    /// The scratch buffer (the app's, so that nothing is zeroed per answer).
    held: &'a mut [u8; GATHER_BYTES],
    length: usize,
}

impl<'a, S: Sink> Gather<'a, S> {
    /// Gathers what is put into `inner` in `scratch`.
    pub fn new(scratch: &'a mut [u8; GATHER_BYTES], inner: S) -> Self {
        Self {
            inner,
            held: scratch,
            length: 0,
        }
    }

    /// Hands what is held to `inner`.
    fn flush(&mut self) {
        if self.length > 0 {
            self.inner.put(&self.held[..self.length]);
            self.length = 0;
        }
    }
}

impl<S: Sink> Sink for Gather<'_, S> {
    fn put(&mut self, bytes: &[u8]) {
        if self.length + bytes.len() > GATHER_BYTES {
            self.flush();
            if bytes.len() > GATHER_BYTES {
                self.inner.put(bytes);
                return;
            }
        }
        self.held[self.length..self.length + bytes.len()].copy_from_slice(bytes);
        self.length += bytes.len();
    }
}

impl<S: Sink> Drop for Gather<'_, S> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Writes `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`.
pub fn value(sink: &mut impl Sink, key: &[u8], flags: u32, data: &[u8], cas: Option<u64>) {
    sink.put(b"VALUE ");
    sink.put(key);
    sink.put(b" ");
    sink.put(Decimal::new(u64::from(flags)).as_bytes());
    sink.put(b" ");
    sink.put(Decimal::new(data.len() as u64).as_bytes());
    if let Some(cas) = cas {
        sink.put(b" ");
        sink.put(Decimal::new(cas).as_bytes());
    }
    sink.put(b"\r\n");
    sink.put(data);
    sink.put(b"\r\n");
}

/// Writes `STAT <name> <value>\r\n`.
pub fn stat(sink: &mut impl Sink, name: &[u8], value: u64) {
    sink.put(b"STAT ");
    sink.put(name);
    sink.put(b" ");
    sink.put(Decimal::new(value).as_bytes());
    sink.put(b"\r\n");
}

/// Writes a number and `\r\n` (the answer to `incr`/`decr`).
pub fn number(sink: &mut impl Sink, value: u64) {
    sink.put(Decimal::new(value).as_bytes());
    sink.put(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_value_lines() {
        assert_eq!(Decimal::new(0).as_bytes(), b"0");
        assert_eq!(Decimal::new(u64::MAX).as_bytes(), b"18446744073709551615");
        let mut out = Vec::new();
        value(&mut out, b"k", 5, b"hello", Some(42));
        assert_eq!(out, b"VALUE k 5 5 42\r\nhello\r\n");
        out.clear();
        stat(&mut out, b"curr_items", 3);
        number(&mut out, 10);
        assert_eq!(out, b"STAT curr_items 3\r\n10\r\n");
    }

    /// Counts the `put`s it receives.
    #[derive(Default)]
    struct Counted {
        bytes: Vec<u8>,
        puts: usize,
    }

    impl Sink for &mut Counted {
        fn put(&mut self, bytes: &[u8]) {
            self.bytes.extend_from_slice(bytes);
            self.puts += 1;
        }
    }

    #[test]
    fn gathered_pieces_go_on_in_one_put_and_in_order() {
        let mut counted = Counted::default();
        let mut scratch = [0; GATHER_BYTES];
        {
            let mut gather = Gather::new(&mut scratch, &mut counted);
            value(&mut gather, b"key", 0, &[b'v'; 32], None);
            gather.put(END);
        }
        assert_eq!(counted.puts, 1);
        let mut expected = b"VALUE key 0 32\r\n".to_vec();
        expected.extend_from_slice(&[b'v'; 32]);
        expected.extend_from_slice(b"\r\nEND\r\n");
        assert_eq!(counted.bytes, expected);

        // A value larger than the buffer: what was held, then the value
        // itself, then the rest gathered again.
        let mut counted = Counted::default();
        let large = alloc::vec![b'x'; GATHER_BYTES + 1];
        let middle = alloc::vec![b'y'; GATHER_BYTES - 10];
        {
            let mut gather = Gather::new(&mut scratch, &mut counted);
            value(&mut gather, b"k", 1, &large, None);
            value(&mut gather, b"m", 2, &middle, None);
            gather.put(END);
        }
        let mut expected = Vec::new();
        value(&mut expected, b"k", 1, &large, None);
        value(&mut expected, b"m", 2, &middle, None);
        expected.extend_from_slice(END);
        assert_eq!(counted.bytes, expected);
        // k's line; k's data on its own; k's CRLF and m's line; m's data,
        // its CRLF and END.
        assert_eq!(counted.puts, 4);
    }
}
