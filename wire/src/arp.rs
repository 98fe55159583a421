//! ARP packets (RFC 826) for IPv4 over Ethernet.

use crate::WireError;
use crate::ethernet::mac_at;
use crate::fields::{self, field_getters};
use core::net::Ipv4Addr;
use dataplane::MacAddr;

/// Byte ranges of an Ethernet/IPv4 ARP packet.
mod field {
    use core::ops::Range;
    pub const HARDWARE_TYPE: Range<usize> = 0..2;
    pub const PROTOCOL_TYPE: Range<usize> = 2..4;
    pub const HARDWARE_LEN: usize = 4;
    pub const PROTOCOL_LEN: usize = 5;
    pub const OPERATION: Range<usize> = 6..8;
    pub const SENDER_MAC: Range<usize> = 8..14;
    pub const SENDER_IP: Range<usize> = 14..18;
    pub const TARGET_MAC: Range<usize> = 18..24;
    pub const TARGET_IP: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

/// The ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpOperation(pub u16);

impl ArpOperation {
    /// Who has `target_ip`?
    pub const REQUEST: ArpOperation = ArpOperation(1);
    /// `sender_ip` is at `sender_mac`.
    pub const REPLY: ArpOperation = ArpOperation(2);
}

/// A view of an ARP packet. `new_checked` checks the length; fields are at
/// the Ethernet/IPv4 offsets, so check [`is_ethernet_ipv4`](Self::is_ethernet_ipv4)
/// before trusting addresses.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps `buffer` without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` if it holds an Ethernet/IPv4 ARP packet's bytes.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < PACKET_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self { buffer })
    }

    /// True for hardware type Ethernet (1), protocol IPv4, lengths 6 and 4.
    pub fn is_ethernet_ipv4(&self) -> bool {
        self.hardware_type() == 1
            && self.protocol_type() == 0x0800
            && self.buffer.as_ref()[field::HARDWARE_LEN] == 6
            && self.buffer.as_ref()[field::PROTOCOL_LEN] == 4
    }

    field_getters! {
        /// Hardware type (1 = Ethernet).
        hardware_type: u16 = field::HARDWARE_TYPE;
        /// Protocol type (0x0800 = IPv4).
        protocol_type: u16 = field::PROTOCOL_TYPE;
        /// Sender protocol address.
        sender_ip: Ipv4Addr = field::SENDER_IP;
        /// Target protocol address.
        target_ip: Ipv4Addr = field::TARGET_IP;
    }

    /// Request or reply.
    pub fn operation(&self) -> ArpOperation {
        ArpOperation(fields::u16_at(self.buffer.as_ref(), field::OPERATION))
    }

    /// Sender hardware address.
    pub fn sender_mac(&self) -> MacAddr {
        mac_at(&self.buffer.as_ref()[field::SENDER_MAC])
    }

    /// Target hardware address.
    pub fn target_mac(&self) -> MacAddr {
        mac_at(&self.buffer.as_ref()[field::TARGET_MAC])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Writes a complete Ethernet/IPv4 ARP packet.
    pub fn emit(
        &mut self,
        operation: ArpOperation,
        sender: (MacAddr, Ipv4Addr),
        target: (MacAddr, Ipv4Addr),
    ) {
        let bytes = self.buffer.as_mut();
        bytes[field::HARDWARE_TYPE].copy_from_slice(&1u16.to_be_bytes());
        bytes[field::PROTOCOL_TYPE].copy_from_slice(&0x0800u16.to_be_bytes());
        bytes[field::HARDWARE_LEN] = 6;
        bytes[field::PROTOCOL_LEN] = 4;
        bytes[field::OPERATION].copy_from_slice(&operation.0.to_be_bytes());
        bytes[field::SENDER_MAC].copy_from_slice(&sender.0.0);
        bytes[field::SENDER_IP].copy_from_slice(&sender.1.octets());
        bytes[field::TARGET_MAC].copy_from_slice(&target.0.0);
        bytes[field::TARGET_IP].copy_from_slice(&target.1.octets());
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, operation: ArpOperation) {
        self.buffer.as_mut()[field::OPERATION].copy_from_slice(&operation.0.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who has 10.0.0.2? Tell 10.0.0.1 (02:00:00:00:00:02).
    pub const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, 2, 0, 0, 0, 0, 2, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0,
        10, 0, 0, 2,
    ];

    #[test]
    fn parses_a_request() {
        let arp = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert!(arp.is_ethernet_ipv4());
        assert_eq!(arp.operation(), ArpOperation::REQUEST);
        assert_eq!(arp.sender_mac(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(arp.sender_ip(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(arp.target_mac(), MacAddr([0; 6]));
        assert_eq!(arp.target_ip(), Ipv4Addr::new(10, 0, 0, 2));
    }

    #[test]
    fn emits_what_it_parses() {
        let mut bytes = [0u8; 28];
        ArpPacket::new_checked(&mut bytes[..]).unwrap().emit(
            ArpOperation::REQUEST,
            (MacAddr([2, 0, 0, 0, 0, 2]), Ipv4Addr::new(10, 0, 0, 1)),
            (MacAddr([0; 6]), Ipv4Addr::new(10, 0, 0, 2)),
        );
        assert_eq!(bytes, REQUEST);
        let mut arp = ArpPacket::new_unchecked(&mut bytes[..]);
        arp.set_operation(ArpOperation::REPLY);
        assert_eq!(bytes[7], 2);
    }

    #[test]
    fn refuses_short_and_flags_foreign_formats() {
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..27]).unwrap_err(),
            WireError::Truncated
        );
        let mut ipv6ish = REQUEST;
        ipv6ish[5] = 16;
        assert!(
            !ArpPacket::new_checked(&ipv6ish[..])
                .unwrap()
                .is_ethernet_ipv4()
        );
        let mut token_ring = REQUEST;
        token_ring[1] = 6;
        assert!(
            !ArpPacket::new_checked(&token_ring[..])
                .unwrap()
                .is_ethernet_ipv4()
        );
    }
}
