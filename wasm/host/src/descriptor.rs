//! The slot descriptor of `wasm/ABI.md`: what the host writes for each
//! packet, what it reads back (verdict, dirty, output), and the header
//! offsets and IPv4 checksum around them. Pure functions over bytes, so
//! the fuzz target drives them with what a guest could write.

use services::wire::checksum::checksum;

/// Bytes of one descriptor.
pub const DESCRIPTOR_SIZE: usize = 16;
/// `l3` / `l4` when there is no such header in the window.
pub const NONE: u16 = 0xffff;

/// Offsets of the fields in a descriptor.
mod field {
    pub(super) const LEN: usize = 4;
    pub(super) const PACKET_LEN: usize = 6;
    pub(super) const INTERFACE: usize = 8;
    pub(super) const VERDICT: usize = 9;
    pub(super) const DIRTY: usize = 10;
    pub(super) const OUTPUT: usize = 11;
    pub(super) const L3: usize = 12;
    pub(super) const L4: usize = 14;
}

/// What the host tells the module about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// Address of the slot's window in the module's memory.
    pub window: u32,
    /// Bytes of the packet in the window.
    pub len: u16,
    /// The packet's whole length from the hook point's start.
    pub packet_len: u16,
    /// The interface it arrived on.
    pub interface: u8,
    /// Offset of the IPv4 header in the window, or [`NONE`].
    pub l3: u16,
    /// Offset of the transport header in the window, or [`NONE`].
    pub l4: u16,
}

impl Descriptor {
    /// Writes the descriptor, with `verdict`, `dirty` and `output` at 0.
    #[inline(always)]
    pub fn write(&self, out: &mut [u8; DESCRIPTOR_SIZE]) {
        // One 16-byte store: the fields packed little-endian at their
        // offsets (`field`), verdict, dirty and output zero.
        let packed = u128::from(self.window)
            | u128::from(self.len) << (8 * field::LEN)
            | u128::from(self.packet_len) << (8 * field::PACKET_LEN)
            | u128::from(self.interface) << (8 * field::INTERFACE)
            | u128::from(self.l3) << (8 * field::L3)
            | u128::from(self.l4) << (8 * field::L4);
        *out = packed.to_le_bytes();
    }
}

/// What the module decided for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotVerdict {
    /// On to what follows the service.
    Pass,
    /// Dropped, counted `dropped-by-module`.
    Drop,
    /// Back out: the hook point's `out`.
    Tx,
    /// To the service's output of this index in its `outputs`.
    Redirect(u8),
}

/// Reads back a descriptor after a batch: the verdict and whether the
/// window is dirty, or `None` for a bad descriptor (a verdict above 3, a
/// dirty flag other than 0 and 1, a redirect to an output past
/// `outputs`). Nothing else of the descriptor is trusted.
#[inline(always)]
pub fn judge(descriptor: &[u8; DESCRIPTOR_SIZE], outputs: usize) -> Option<(SlotVerdict, bool)> {
    let dirty = match descriptor[field::DIRTY] {
        0 => false,
        1 => true,
        _ => return None,
    };
    let verdict = match descriptor[field::VERDICT] {
        0 => SlotVerdict::Pass,
        1 => SlotVerdict::Drop,
        2 => SlotVerdict::Tx,
        3 if usize::from(descriptor[field::OUTPUT]) < outputs => {
            SlotVerdict::Redirect(descriptor[field::OUTPUT])
        }
        _ => return None,
    };
    Some((verdict, dirty))
}

/// The `l3` and `l4` fields for `packet` (from the hook point's start),
/// whose IPv4 header is at `ipv4_at` if it is IPv4, with `len` bytes in
/// the window.
#[inline(always)]
pub fn header_offsets(packet: &[u8], ipv4_at: Option<usize>, len: usize) -> (u16, u16) {
    let Some(l3) = ipv4_at else {
        return (NONE, NONE);
    };
    let Some(&version_ihl) = packet.get(l3) else {
        return (NONE, NONE);
    };
    if version_ihl >> 4 != 4 || packet.len() < l3 + 20 {
        return (NONE, NONE);
    }
    let header_len = usize::from(version_ihl & 0x0f) * 4;
    let fragment = u16::from_be_bytes([packet[l3 + 6], packet[l3 + 7]]) & 0x1fff;
    let protocol = packet[l3 + 9];
    let l4 = l3 + header_len;
    // The offset names at least the 8 bytes of a UDP or ICMP header (a
    // TCP header's ports and sequence number) inside the window.
    let transport = matches!(protocol, 1 | 6 | 17) && fragment == 0 && header_len >= 20;
    let l4 = if transport && l4 + 8 <= len {
        l4 as u16
    } else {
        NONE
    };
    (l3 as u16, l4)
}

/// Recomputes the IPv4 header checksum of the header at `l3` of `packet`,
/// when there is a whole header there.
#[inline]
pub fn fix_ipv4_checksum(packet: &mut [u8], l3: usize) {
    let Some(&version_ihl) = packet.get(l3) else {
        return;
    };
    let header_len = usize::from(version_ihl & 0x0f) * 4;
    if version_ihl >> 4 != 4 || header_len < 20 || packet.len() < l3 + header_len {
        return;
    }
    let header = &mut packet[l3..l3 + header_len];
    header[10] = 0;
    header[11] = 0;
    let sum = checksum(header);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_round_trip_and_bad_ones_are_refused() {
        let descriptor = Descriptor {
            window: 0x1234,
            len: 60,
            packet_len: 60,
            interface: 1,
            l3: 14,
            l4: 34,
        };
        let mut bytes = [0xaa; DESCRIPTOR_SIZE];
        descriptor.write(&mut bytes);
        assert_eq!(
            bytes,
            [0x34, 0x12, 0, 0, 60, 0, 60, 0, 1, 0, 0, 0, 14, 0, 34, 0]
        );
        assert_eq!(judge(&bytes, 0), Some((SlotVerdict::Pass, false)));
        bytes[9] = 1;
        bytes[10] = 1;
        assert_eq!(judge(&bytes, 0), Some((SlotVerdict::Drop, true)));
        bytes[9] = 2;
        assert_eq!(judge(&bytes, 0), Some((SlotVerdict::Tx, true)));
        bytes[9] = 3;
        bytes[11] = 1;
        assert_eq!(judge(&bytes, 1), None, "output 1 of one");
        assert_eq!(judge(&bytes, 2), Some((SlotVerdict::Redirect(1), true)));
        bytes[9] = 4;
        assert_eq!(judge(&bytes, 2), None);
        bytes[9] = 0;
        bytes[10] = 2;
        assert_eq!(judge(&bytes, 2), None);
    }

    #[test]
    fn offsets_follow_the_ip_header() {
        let mut frame = [0u8; 64];
        frame[14] = 0x45;
        frame[23] = 17;
        assert_eq!(header_offsets(&frame, Some(14), 64), (14, 34));
        assert_eq!(
            header_offsets(&frame, Some(14), 40),
            (14, NONE),
            "l4 past the window"
        );
        frame[14] = 0x46;
        assert_eq!(header_offsets(&frame, Some(14), 64), (14, 38));
        frame[20] = 0x00;
        frame[21] = 0x10;
        assert_eq!(
            header_offsets(&frame, Some(14), 64),
            (14, NONE),
            "a later fragment"
        );
        frame[14] = 0x65;
        assert_eq!(
            header_offsets(&frame, Some(14), 64),
            (NONE, NONE),
            "not version 4"
        );
        assert_eq!(header_offsets(&frame, None, 64), (NONE, NONE));
        assert_eq!(header_offsets(&frame[..20], Some(14), 20), (NONE, NONE));
    }

    #[test]
    fn the_ipv4_checksum_is_recomputed() {
        // RFC 1071's example header (checksum b861).
        let mut header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        fix_ipv4_checksum(&mut header, 0);
        assert_eq!(&header[10..12], &[0xb8, 0x61]);
        let mut short = [0x45u8; 10];
        fix_ipv4_checksum(&mut short, 0);
        assert_eq!(short, [0x45; 10]);
    }
}
