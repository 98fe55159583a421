//! `Packet`: an owned handle to one pool buffer, with head and tail offsets.

use super::checked::Checked;
use super::mempool::PoolShared;
use core::ptr::NonNull;

/// Why a packet could not be resized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// Not enough headroom in front of the data.
    NoHeadroom,
    /// Not enough room behind the data.
    NoTailroom,
    /// Asked to remove more bytes than the packet holds.
    TooShort,
}

impl core::fmt::Display for PacketError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NoHeadroom => "not enough headroom",
            Self::NoTailroom => "not enough tailroom",
            Self::TooShort => "packet shorter than the bytes to remove",
        })
    }
}

/// One packet buffer, owned. Data lives at `buffer[head..tail]`; dropping the
/// packet returns the buffer to the pool it came from, on whatever core.
pub struct Packet {
    buffer: NonNull<u8>,
    pool: NonNull<PoolShared>,
    /// The buffer's index in its pool (the low 24 bits) and the
    /// [`Checked`] claims about its bytes (the high 8), in one word so that
    /// the descriptor stays 24 bytes: at 32 bytes every burst moved costs
    /// more (macswap +3.6 instructions a packet, callgrind).
    slot: u32,
    head: u16,
    tail: u16,
}

/// The largest buffer index a packet names (pools hold at most 2^24
/// buffers).
pub(crate) const MAX_INDEX: u32 = (1 << CHECKED_SHIFT) - 1;
/// Where the claims start in `Packet::slot`.
const CHECKED_SHIFT: u32 = 24;

// SAFETY: a packet owns its buffer exclusively, and its only use of the pool
// from a foreign core is `PoolShared::release`, which checks the core id and
// takes the lock-free return queue there.
unsafe impl Send for Packet {}
// SAFETY: `&Packet` only reads the buffer.
unsafe impl Sync for Packet {}

impl Packet {
    /// Wraps buffer `index` of `pool`, empty, with the pool's headroom.
    ///
    /// # Safety
    /// 1. `pool` points to a live `PoolShared` that outlives the packet.
    /// 2. `index` is below the pool's capacity and the buffer is owned by
    ///    nobody else.
    pub(crate) unsafe fn from_pool(pool: NonNull<PoolShared>, index: u32) -> Self {
        // SAFETY: precondition 1.
        let shared = unsafe { pool.as_ref() };
        // SAFETY: precondition 2 keeps `index * stride` inside the region.
        let buffer = unsafe { shared.base.add(index as usize * shared.stride) };
        Self {
            buffer,
            pool,
            // Precondition 2 and the pool's limit keep the index in 24
            // bits; no claims yet.
            slot: index,
            head: shared.headroom,
            tail: shared.headroom,
        }
    }

    /// Wraps buffer `index` of `pool` with its data at `head..tail`.
    ///
    /// # Safety
    /// `from_pool`'s preconditions, and `head <= tail <= ` the pool's
    /// buffer length.
    #[inline]
    pub(crate) unsafe fn from_pool_range(
        pool: NonNull<PoolShared>,
        index: u32,
        head: u16,
        tail: u16,
    ) -> Self {
        // SAFETY: `from_pool`'s preconditions are ours.
        let mut packet = unsafe { Self::from_pool(pool, index) };
        packet.head = head;
        packet.tail = tail;
        packet
    }

    fn buffer_len(&self) -> usize {
        // SAFETY: the pool outlives its packets (`from_pool` precondition 1),
        // so its shared state, buffer length included, is readable.
        unsafe { self.pool.as_ref() }.buffer_len
    }

    /// Bytes of data.
    #[inline]
    pub fn len(&self) -> usize {
        // Widened before the subtraction (`head <= tail` always): a 16-bit
        // difference would need zero-extending again, an instruction in
        // every node's per-packet `payload`.
        usize::from(self.tail) - usize::from(self.head)
    }

    /// True when the packet holds no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    /// Bytes free in front of the data.
    #[inline]
    pub fn headroom(&self) -> usize {
        usize::from(self.head)
    }

    /// Bytes free behind the data.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.buffer_len() - usize::from(self.tail)
    }

    /// The data.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        // SAFETY: `head <= tail <= capacity` is kept by every method, the
        // buffer is `capacity` bytes we own, and `&self` forbids writers.
        unsafe {
            core::slice::from_raw_parts(self.buffer.as_ptr().add(self.head.into()), self.len())
        }
    }

    /// The data, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.forget_checks();
        // SAFETY: as in `payload`, and `&mut self` makes the borrow unique.
        unsafe {
            core::slice::from_raw_parts_mut(self.buffer.as_ptr().add(self.head.into()), self.len())
        }
    }

    /// Grows the data by `n` bytes in front (for a header) and returns them.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> Result<&mut [u8], PacketError> {
        if n > self.headroom() {
            return Err(PacketError::NoHeadroom);
        }
        self.head -= n as u16;
        self.forget_checks();
        // SAFETY: the new `head + n` is the old head, so the `n` bytes lie
        // inside the data (`head <= tail <= capacity`), in the buffer we
        // own; `&mut self` makes the borrow unique. Made directly rather
        // than as `payload_mut()[..n]`, whose length check the compiler
        // cannot drop (ipv4-out writes a header per packet through it).
        Ok(unsafe {
            core::slice::from_raw_parts_mut(self.buffer.as_ptr().add(self.head.into()), n)
        })
    }

    /// Grows the data by `n` bytes at the end and returns them.
    #[inline]
    pub fn append(&mut self, n: usize) -> Result<&mut [u8], PacketError> {
        if n > self.tailroom() {
            return Err(PacketError::NoTailroom);
        }
        self.tail += n as u16;
        let len = self.len();
        Ok(&mut self.payload_mut()[len - n..])
    }

    /// Removes `n` bytes from the front (a parsed header).
    #[inline]
    pub fn trim_front(&mut self, n: usize) -> Result<(), PacketError> {
        if n > self.len() {
            return Err(PacketError::TooShort);
        }
        self.head += n as u16;
        self.forget_checks();
        Ok(())
    }

    /// Shortens the data to `len` bytes (padding behind a datagram).
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.tail = self.head + len as u16;
            self.forget_checks();
        }
    }

    /// Sets the data to `buffer[offset .. offset + len]`, for drivers whose
    /// device wrote `len` bytes at `offset` from the buffer start.
    pub fn set_range(&mut self, offset: usize, len: usize) -> Result<(), PacketError> {
        let end = offset.checked_add(len).ok_or(PacketError::NoTailroom)?;
        if end > self.buffer_len() {
            return Err(PacketError::NoTailroom);
        }
        self.head = offset as u16;
        self.tail = end as u16;
        self.forget_checks();
        Ok(())
    }

    /// What a parser upstream verified about the bytes from the head
    /// ([`Checked`]); `Checked::NONE` when nothing was, or when the bytes or
    /// bounds changed since.
    #[inline(always)]
    pub fn checked(&self) -> Checked {
        Checked::from_bits((self.slot >> CHECKED_SHIFT) as u8)
    }

    /// Records what the caller verified about the bytes from the head, as
    /// they are now (see [`Checked`] for what each claim promises).
    #[inline(always)]
    pub fn set_checked(&mut self, checked: Checked) {
        self.slot = self.index() | u32::from(checked.bits()) << CHECKED_SHIFT;
    }

    /// Forgets every claim (the bytes or the bounds may change).
    #[inline(always)]
    fn forget_checks(&mut self) {
        self.slot &= MAX_INDEX;
    }

    /// The pool the buffer belongs to.
    #[inline(always)]
    pub(crate) fn pool_ptr(&self) -> NonNull<PoolShared> {
        self.pool
    }

    /// The buffer's index in its pool.
    #[inline(always)]
    pub(crate) fn index(&self) -> u32 {
        self.slot & MAX_INDEX
    }

    /// Physical address of the first data byte, for DMA descriptors.
    #[inline]
    pub fn phys_addr(&self) -> u64 {
        // SAFETY: the pool outlives its packets (`from_pool` precondition 1).
        let shared = unsafe { self.pool.as_ref() };
        shared.phys + (self.index() as usize * shared.stride) as u64 + u64::from(self.head)
    }

    /// Physical address of the buffer's first byte and its size: where a
    /// driver lets the device write a received frame.
    #[inline]
    pub fn buffer_phys(&self) -> (u64, usize) {
        // SAFETY: the pool outlives its packets (`from_pool` precondition 1).
        let shared = unsafe { self.pool.as_ref() };
        (
            shared.phys + (self.index() as usize * shared.stride) as u64,
            self.buffer_len(),
        )
    }
}

impl Drop for Packet {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the pool outlives its packets (`from_pool` precondition 1).
        unsafe { self.pool.as_ref() }.release(self.index());
    }
}

impl core::fmt::Debug for Packet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Packet")
            .field("index", &self.index())
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::Mempool;

    #[test]
    fn offsets_move_and_are_checked() {
        let pool = Mempool::with_heap(2, 16).unwrap();
        let mut packet = pool.alloc().unwrap();
        assert!(packet.is_empty());
        assert_eq!(packet.headroom(), 16);
        assert_eq!(packet.tailroom(), 2048);
        packet.append(4).unwrap().copy_from_slice(b"data");
        packet.prepend(2).unwrap().copy_from_slice(b"hd");
        assert_eq!(packet.payload(), b"hddata");
        assert_eq!(packet.prepend(15), Err(super::PacketError::NoHeadroom));
        assert_eq!(packet.append(2049), Err(super::PacketError::NoTailroom));
        packet.trim_front(2).unwrap();
        assert_eq!(packet.payload(), b"data");
        assert_eq!(packet.trim_front(5), Err(super::PacketError::TooShort));
        packet.truncate(2);
        assert_eq!(packet.payload(), b"da");
        packet.payload_mut()[0] = b'D';
        assert_eq!(packet.payload(), b"Da");
        packet.set_range(0, 2064).unwrap();
        assert_eq!(packet.len(), 2064);
        assert!(packet.set_range(1, 2064).is_err());
        assert!(packet.set_range(usize::MAX, 2).is_err());
        assert_eq!(packet.buffer_phys().1, 2064);
    }

    #[test]
    fn packet_is_send_and_small() {
        fn assert_send<T: Send>() {}
        assert_send::<super::Packet>();
        // Two pointers, the index with the claims, the bounds.
        assert_eq!(core::mem::size_of::<super::Packet>(), 24);
        assert_eq!(core::mem::size_of::<Option<super::Packet>>(), 24);
    }
}
