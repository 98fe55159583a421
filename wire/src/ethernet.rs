//! Ethernet II frames: destination, source, EtherType, payload.

use crate::WireError;
use dataplane::MacAddr;

/// Byte ranges of the Ethernet II header.
mod field {
    use core::ops::Range;
    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
}

/// Length of the Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Longest untagged frame without FCS for a 1500-byte MTU.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + 1500;

/// EtherTypes we know by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EtherType(pub u16);

impl EtherType {
    /// IPv4.
    pub const IPV4: EtherType = EtherType(0x0800);
    /// ARP.
    pub const ARP: EtherType = EtherType(0x0806);
    /// IPv6.
    pub const IPV6: EtherType = EtherType(0x86dd);
}

/// A view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without checks; accessors may panic on short buffers.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` if it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC address.
    #[inline]
    pub fn destination(&self) -> MacAddr {
        mac_at(&self.buffer.as_ref()[field::DESTINATION])
    }

    /// Source MAC address.
    #[inline]
    pub fn source(&self) -> MacAddr {
        mac_at(&self.buffer.as_ref()[field::SOURCE])
    }

    /// The EtherType.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        let bytes = &self.buffer.as_ref()[field::ETHERTYPE];
        EtherType(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    /// Bytes after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address.
    #[inline]
    pub fn set_destination(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&mac.0);
    }

    /// Sets the source MAC address.
    #[inline]
    pub fn set_source(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&mac.0);
    }

    /// Sets the EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&ethertype.0.to_be_bytes());
    }

    /// Bytes after the header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// The MAC address in the first six bytes of `bytes` (which has six).
#[inline]
pub fn mac_at(bytes: &[u8]) -> MacAddr {
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&bytes[..6]);
    MacAddr(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: [u8; 16] = [
        0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x06, 0xaa, 0xbb,
    ];

    #[test]
    fn reads_and_writes_fields() {
        let frame = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(frame.destination(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(frame.source(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(frame.ethertype(), EtherType::ARP);
        assert_eq!(frame.payload(), &[0xaa, 0xbb]);
        let mut bytes = FRAME;
        let mut frame = EthernetFrame::new_checked(&mut bytes[..]).unwrap();
        frame.set_destination(MacAddr::BROADCAST);
        frame.set_source(MacAddr([2, 0, 0, 0, 0, 9]));
        frame.set_ethertype(EtherType::IPV4);
        frame.payload_mut()[0] = 0xcc;
        assert_eq!(
            bytes,
            [
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 9, 0x08, 0x00, 0xcc, 0xbb
            ]
        );
    }

    #[test]
    fn refuses_runts() {
        assert_eq!(
            EthernetFrame::new_checked(&FRAME[..13]).unwrap_err(),
            WireError::Truncated
        );
        assert!(
            EthernetFrame::new_checked(&FRAME[..14])
                .unwrap()
                .payload()
                .is_empty()
        );
        assert!(EthernetFrame::new_checked(&[][..]).is_err());
    }
}
