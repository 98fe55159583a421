//! Fragmentation on the way out (RFC 791 section 3.2): an IPv4 packet
//! longer than the link MTU leaves as fragments in fresh pool buffers.
//!
//! Every fragment but the last carries a multiple of 8 payload bytes. The
//! first fragment keeps the whole header; later ones carry the first 20
//! bytes only (options are not copied: RFC 791 requires copying the few
//! options with the "copied" flag, which nothing here sends). Don't-
//! fragment is the caller's business: `ipv4-out` fragments what this host
//! originates, `l3fwd` answers DF packets with ICMP 3/4 instead.

use crate::wire::Ipv4Packet;
use crate::wire::ipv4;
use dataplane::{Packet, PacketError};

/// The MTU of every interface (Ethernet without jumbo frames).
pub const MTU: usize = 1500;

/// Why a packet could not be fragmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentationError {
    /// Not a valid IPv4 packet.
    Malformed,
    /// A buffer too small for the next fragment.
    NoRoom,
}

/// Cuts one IPv4 packet into fragments of at most `mtu` bytes, one per
/// call of [`write_next`](Self::write_next), each into a buffer the
/// caller brings (from its pool, so that no allocator is borrowed here).
#[derive(Debug)]
pub struct Fragmenter<'a> {
    bytes: &'a [u8],
    header_len: usize,
    payload_end: usize,
    /// Next payload byte to send, counted from the payload's start.
    next: usize,
    /// The packet's own offset and MF (when fragmenting a fragment).
    base_offset: usize,
    more_after: bool,
    mtu: usize,
}

impl<'a> Fragmenter<'a> {
    /// A fragmenter for `packet` (a valid IPv4 packet, header first); an
    /// `mtu` of at least 68 (RFC 791's minimum).
    pub fn new(packet: &'a [u8], mtu: usize) -> Result<Self, FragmentationError> {
        let view = Ipv4Packet::new_checked(packet).map_err(|_| FragmentationError::Malformed)?;
        if mtu < 68 {
            return Err(FragmentationError::Malformed);
        }
        Ok(Self {
            bytes: packet,
            header_len: view.header_len(),
            payload_end: usize::from(view.total_len()),
            next: 0,
            base_offset: usize::from(view.fragment_offset()),
            more_after: view.more_fragments(),
            mtu,
        })
    }

    /// True when every byte was written.
    pub fn is_done(&self) -> bool {
        self.header_len + self.next >= self.payload_end
    }

    /// Writes the next fragment into `buffer` (empty, with room for the
    /// MTU behind its headroom).
    pub fn write_next(&mut self, buffer: &mut Packet) -> Result<(), FragmentationError> {
        let payload = &self.bytes[self.header_len..self.payload_end];
        let own_header = if self.next == 0 {
            self.header_len
        } else {
            ipv4::HEADER_LEN
        };
        let room = (self.mtu - own_header) & !7;
        let end = (self.next + room).min(payload.len());
        let more = end < payload.len() || self.more_after;
        write_fragment(
            buffer,
            &self.bytes[..own_header],
            &payload[self.next..end],
            self.base_offset + self.next,
            more,
        )
        .map_err(|_| FragmentationError::NoRoom)?;
        self.next = end;
        Ok(())
    }
}

/// Writes one fragment: `header` (its IHL set to its length), then `data`
/// at `offset` of the original payload.
fn write_fragment(
    fragment: &mut Packet,
    header: &[u8],
    data: &[u8],
    offset: usize,
    more: bool,
) -> Result<(), PacketError> {
    let len = header.len() + data.len();
    let bytes = fragment.append(len)?;
    bytes[..header.len()].copy_from_slice(header);
    bytes[header.len()..].copy_from_slice(data);
    bytes[0] = 0x40 | (header.len() / 4) as u8;
    let mut ip = Ipv4Packet::new_unchecked(bytes);
    ip.set_total_len(len as u16);
    ip.set_fragment(false, more, offset as u16);
    ip.fill_checksum();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reassembly::{Outcome, Reassembly, ReassemblyLimits};
    use crate::wire::checksum;
    use alloc::vec::Vec;
    use dataplane::Mempool;

    fn datagram(pool: &Mempool, payload_len: usize) -> Packet {
        let mut packet = pool.alloc().unwrap();
        let bytes = packet.append(20 + payload_len).unwrap();
        bytes[..20].copy_from_slice(&[
            0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
        ]);
        bytes[2..4].copy_from_slice(&((20 + payload_len) as u16).to_be_bytes());
        for (index, byte) in bytes[20..].iter_mut().enumerate() {
            *byte = (index % 251) as u8;
        }
        let value = checksum::checksum(&bytes[..20]);
        bytes[10..12].copy_from_slice(&value.to_be_bytes());
        packet
    }

    #[test]
    fn a_large_datagram_leaves_in_mtu_sized_fragments_that_reassemble() {
        let big = Mempool::with_heap_data_size(1, 0, 65535).unwrap();
        let pool = Mempool::with_heap(64, 128).unwrap();
        let original = datagram(&big, 65515);
        let mut fragments = Vec::new();
        let mut cutter = Fragmenter::new(original.payload(), MTU).unwrap();
        while !cutter.is_done() {
            let mut piece = pool.alloc().unwrap();
            cutter.write_next(&mut piece).unwrap();
            fragments.push(piece);
        }
        assert_eq!(fragments.len(), 45);
        let mut table = Reassembly::new(ReassemblyLimits::default());
        let mut whole = None;
        for (index, piece) in fragments.iter().enumerate() {
            let ip = Ipv4Packet::new_checked(piece.payload()).unwrap();
            assert!(piece.len() <= MTU);
            assert!(ip.verify_checksum());
            assert!(!ip.dont_fragment(), "we may fragment what we send");
            assert_eq!(ip.more_fragments(), index < 44);
            assert_eq!(usize::from(ip.fragment_offset()), index * 1480);
            if let Outcome::Complete(packet) = table.insert(piece.payload(), 0) {
                whole = Some(packet);
            }
        }
        let whole = whole.expect("reassembled");
        assert_eq!(&whole.payload()[20..], &original.payload()[20..]);
        assert_eq!(&whole.payload()[..6], &original.payload()[..6]);
    }

    #[test]
    fn a_fragment_is_cut_again_keeping_its_offset_and_more_fragments() {
        let pool = Mempool::with_heap(8, 128).unwrap();
        let mut packet = datagram(&pool, 1000);
        {
            let bytes = packet.payload_mut();
            // Offset 800, MF: the middle of some larger datagram.
            bytes[6..8].copy_from_slice(&(0x2000u16 | 100).to_be_bytes());
            bytes[10..12].fill(0);
            let value = checksum::checksum(&bytes[..20]);
            bytes[10..12].copy_from_slice(&value.to_be_bytes());
        }
        let mut cutter = Fragmenter::new(packet.payload(), 576).unwrap();
        let mut pieces = Vec::new();
        while !cutter.is_done() {
            let mut piece = pool.alloc().unwrap();
            cutter.write_next(&mut piece).unwrap();
            pieces.push(piece);
        }
        let layout: Vec<(u16, bool, usize)> = pieces
            .iter()
            .map(|piece| {
                let ip = Ipv4Packet::new_checked(piece.payload()).unwrap();
                (
                    ip.fragment_offset(),
                    ip.more_fragments(),
                    ip.payload().len(),
                )
            })
            .collect();
        assert_eq!(layout, [(800, true, 552), (1352, true, 448)]);
        assert!(Fragmenter::new(packet.payload(), 60).is_err());
    }
}
