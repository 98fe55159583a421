//! `SendBuffer`: the bytes of one connection from the oldest unacknowledged
//! one on, kept for retransmission. A ring that grows on demand up to its
//! limit and shrinks back when drained, so an idle connection holds little.

use alloc::vec::Vec;

/// Storage a buffer keeps once used: small enough that ten thousand idle
/// connections cost 40 MiB at most, large enough for a typical response.
const RETAINED: usize = 4096;

/// Bytes written by the app and not yet acknowledged by the peer: the
/// first `len` bytes from `head`, wrapping around the storage.
#[derive(Debug, Default)]
pub struct SendBuffer {
    storage: Vec<u8>,
    head: usize,
    len: usize,
    limit: usize,
}

impl SendBuffer {
    /// An empty buffer that holds at most `limit` bytes; nothing is
    /// allocated until the first write.
    pub fn new(limit: usize) -> Self {
        Self {
            storage: Vec::new(),
            head: 0,
            len: 0,
            limit,
        }
    }

    /// Bytes held (in flight and not yet sent).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left before the limit.
    pub fn free(&self) -> usize {
        self.limit - self.len
    }

    /// Makes the storage at least `wanted` bytes (capped at the limit),
    /// doubling, with the held bytes moved to the front.
    fn grow(&mut self, wanted: usize) {
        let wanted = wanted.min(self.limit);
        if wanted <= self.storage.len() {
            return;
        }
        let mut size = self.storage.len().max(RETAINED.min(self.limit));
        while size < wanted {
            size *= 2;
        }
        let size = size.min(self.limit);
        let mut storage = alloc::vec![0u8; size];
        self.copy_out(0, &mut storage[..self.len]);
        self.storage = storage;
        self.head = 0;
    }

    /// Queues as much of `bytes` as fits; returns how much.
    pub fn write(&mut self, bytes: &[u8]) -> usize {
        let count = bytes.len().min(self.free());
        if count == 0 {
            return 0;
        }
        self.grow(self.len + count);
        let mut written = 0;
        while written < count {
            let tail = self.tail_chunk();
            let chunk = (count - written).min(tail.len());
            tail[..chunk].copy_from_slice(&bytes[written..written + chunk]);
            self.len += chunk;
            written += chunk;
        }
        count
    }

    /// Lends the largest contiguous free part to `fill` (growing the
    /// storage first if it is full); `fill` returns how many bytes it wrote.
    pub fn write_with(&mut self, fill: impl FnOnce(&mut [u8]) -> usize) -> usize {
        if self.free() == 0 {
            return 0;
        }
        if self.len == self.storage.len() || self.storage.is_empty() {
            self.grow(self.len + 1);
        }
        let free = self.free();
        let tail = self.tail_chunk();
        let room = tail.len().min(free);
        let written = fill(&mut tail[..room]).min(room);
        self.len += written;
        written
    }

    /// The free bytes from the tail to the end of storage or the head.
    fn tail_chunk(&mut self) -> &mut [u8] {
        let size = self.storage.len();
        if self.head + self.len < size {
            &mut self.storage[self.head + self.len..]
        } else {
            let tail = self.head + self.len - size;
            &mut self.storage[tail..self.head]
        }
    }

    /// Copies the held bytes from `offset` on into `out` (exactly
    /// `out.len()` of them; the caller asks for no more than are held).
    pub fn copy_out(&self, offset: usize, out: &mut [u8]) {
        debug_assert!(offset + out.len() <= self.len);
        let size = self.storage.len();
        if out.is_empty() || size == 0 {
            return;
        }
        let start = (self.head + offset) % size;
        let first = out.len().min(size - start);
        out[..first].copy_from_slice(&self.storage[start..start + first]);
        let rest = out.len() - first;
        out[first..].copy_from_slice(&self.storage[..rest]);
    }

    /// Forgets the first `count` bytes (acknowledged); a drained buffer
    /// gives back storage beyond [`RETAINED`].
    pub fn consume(&mut self, count: usize) {
        let count = count.min(self.len);
        self.len -= count;
        if self.len == 0 {
            self.head = 0;
            if self.storage.len() > RETAINED {
                self.storage = Vec::new();
            }
        } else {
            self.head = (self.head + count) % self.storage.len();
        }
    }

    /// Forgets everything (the connection was reset) and frees the storage.
    pub fn clear(&mut self) {
        *self = Self::new(self.limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(buffer: &SendBuffer) -> Vec<u8> {
        let mut out = alloc::vec![0; buffer.len()];
        buffer.copy_out(0, &mut out);
        out
    }

    #[test]
    fn writes_wrap_and_grow_up_to_the_limit() {
        let mut buffer = SendBuffer::new(10_000);
        assert_eq!(buffer.write(&[1; 3000]), 3000);
        buffer.consume(2000);
        // Wraps around the 4096-byte storage.
        assert_eq!(buffer.write(&[2; 2500]), 2500);
        let held = contents(&buffer);
        assert_eq!(held.len(), 3500);
        assert!(held[..1000].iter().all(|b| *b == 1));
        assert!(held[1000..].iter().all(|b| *b == 2));
        // Grows past the retained size, keeping order.
        assert_eq!(buffer.write(&[3; 10_000]), 6500);
        assert_eq!(buffer.free(), 0);
        let held = contents(&buffer);
        assert_eq!(&held[999..1001], &[1, 2]);
        assert_eq!(held[9999], 3);
        buffer.consume(10_000);
        assert!(buffer.is_empty());
        assert_eq!(buffer.storage.len(), 0, "large storage is given back");
    }

    #[test]
    fn write_with_lends_contiguous_room() {
        let mut buffer = SendBuffer::new(100);
        let wrote = buffer.write_with(|room| {
            room[..5].copy_from_slice(b"hello");
            5
        });
        assert_eq!(wrote, 5);
        assert_eq!(buffer.write_with(|room| room.len()), 95);
        assert_eq!(buffer.write_with(|_| unreachable!()), 0);
        let mut out = [0u8; 5];
        buffer.copy_out(0, &mut out);
        assert_eq!(&out, b"hello");
        buffer.consume(3);
        assert_eq!(buffer.free(), 3);
        assert_eq!(buffer.write(b"abcdef"), 3);
    }

    #[test]
    fn copy_out_from_an_offset_across_the_wrap() {
        let mut buffer = SendBuffer::new(4096);
        buffer.write(&[0; 4000]);
        buffer.consume(3990);
        let bytes: Vec<u8> = (0..200).collect();
        buffer.write(&bytes);
        let mut out = [0u8; 150];
        buffer.copy_out(10, &mut out);
        assert_eq!(&out[..], &bytes[..150]);
    }
}
