//! Advanced receive and transmit descriptors (82576 datasheet 7.1.5 and
//! 7.2.2.3): 16 bytes each, little-endian, written by the driver in their
//! read format and overwritten by the device in their write-back format.

use bitflags::bitflags;

/// Bytes of one descriptor; rings are multiples of 8 of them (128 bytes).
pub const DESCRIPTOR_BYTES: usize = 16;

/// An advanced receive descriptor, read format: where the device writes
/// the frame. After reception the device overwrites both words with the
/// write-back format ([`RxWriteBack`]).
#[repr(C, align(16))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxDescriptor {
    /// 0x00: physical address of the packet buffer.
    pub packet_address: u64,
    /// 0x08: physical address of the header buffer (0: no header split;
    /// bit 0 doubles as the DD bit once written back).
    pub header_address: u64,
}
const _: () = assert!(size_of::<RxDescriptor>() == DESCRIPTOR_BYTES);

impl RxDescriptor {
    /// A descriptor that offers the buffer at `packet_address` to the device.
    pub fn offer(packet_address: u64) -> Self {
        Self {
            packet_address,
            header_address: 0,
        }
    }

    /// The write-back view of the descriptor's second word.
    pub fn write_back(&self) -> RxWriteBack {
        RxWriteBack::from_upper(self.header_address)
    }
}

/// The second word of an advanced receive descriptor after write-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxWriteBack {
    /// Extended status and errors (bits 0..20 status, 20..32 errors).
    pub status_error: RxStatusError,
    /// Bytes written into the packet buffer.
    pub length: u16,
    /// The VLAN tag, when stripped.
    pub vlan: u16,
}

impl RxWriteBack {
    /// Splits the upper 64 bits of a written-back descriptor.
    pub fn from_upper(upper: u64) -> Self {
        Self {
            status_error: RxStatusError::from_bits_retain(upper as u32),
            length: (upper >> 32) as u16,
            vlan: (upper >> 48) as u16,
        }
    }

    /// Whether the device is done with the descriptor.
    pub fn done(&self) -> bool {
        self.status_error.contains(RxStatusError::DD)
    }

    /// Whether the frame arrived whole, in this descriptor, without errors:
    /// the driver only hands such frames on (the rest is a counted drop).
    pub fn good_single_buffer(&self) -> bool {
        self.status_error
            .contains(RxStatusError::DD | RxStatusError::EOP)
            && !self.status_error.intersects(RxStatusError::ERRORS)
    }
}

bitflags! {
    /// `STATUS` and `ERROR` of an advanced receive write-back (7.1.5.2).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct RxStatusError: u32 {
        /// Descriptor done.
        const DD = 1 << 0;
        /// End of packet: the last descriptor of a frame.
        const EOP = 1 << 1;
        /// VLAN packet.
        const VP = 1 << 3;
        /// UDP checksum calculated.
        const UDPCS = 1 << 4;
        /// TCP / UDP checksum calculated.
        const L4I = 1 << 5;
        /// IPv4 checksum calculated.
        const IPCS = 1 << 6;
        /// Header buffer overflow.
        const HBO = 1 << 23;
        /// RX data error (CRC, symbol, length).
        const RXE = 1 << 29;
        /// TCP / UDP checksum error.
        const L4E = 1 << 30;
        /// IPv4 header checksum error.
        const IPE = 1 << 31;
        /// Errors that make the frame unusable.
        const ERRORS = Self::RXE.bits() | Self::HBO.bits();
    }
}

/// An advanced transmit data descriptor (7.2.2.3): one buffer of a frame.
#[repr(C, align(16))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxDescriptor {
    /// 0x00: physical address of the data.
    pub buffer_address: u64,
    /// 0x08: `DTALEN` (bits 0..16), `DTYP` (20..24), `DCMD` (24..32).
    pub command_type_length: u32,
    /// 0x0c: `STA` (bits 0..4, DD written back), `PAYLEN` (14..32).
    pub offload_status: u32,
}
const _: () = assert!(size_of::<TxDescriptor>() == DESCRIPTOR_BYTES);

bitflags! {
    /// `DTYP` and `DCMD` of an advanced transmit data descriptor.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct TxCommand: u32 {
        /// `DTYP` = 0011: advanced data descriptor.
        const DTYP_DATA = 0b0011 << 20;
        /// End of packet.
        const EOP = 1 << 24;
        /// Insert the Ethernet FCS.
        const IFCS = 1 << 25;
        /// Report status: write DD back when done.
        const RS = 1 << 27;
        /// Descriptor extension: advanced format.
        const DEXT = 1 << 29;
    }
}

/// `STA.DD` in a written-back transmit descriptor.
pub const TX_STATUS_DD: u32 = 1 << 0;
/// Shift of `PAYLEN` in `offload_status`.
pub const TX_PAYLEN_SHIFT: u32 = 14;

impl TxDescriptor {
    /// A single-buffer frame of `length` bytes at `buffer_address`: end of
    /// packet, FCS inserted, status reported (so the driver can reclaim it).
    pub fn single_buffer(buffer_address: u64, length: u16) -> Self {
        let command = TxCommand::DTYP_DATA
            | TxCommand::EOP
            | TxCommand::IFCS
            | TxCommand::RS
            | TxCommand::DEXT;
        Self {
            buffer_address,
            command_type_length: command.bits() | u32::from(length),
            offload_status: u32::from(length) << TX_PAYLEN_SHIFT,
        }
    }

    /// Whether the device wrote the descriptor back (the frame is sent).
    pub fn done(&self) -> bool {
        self.offload_status & TX_STATUS_DD != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_write_back_reads_status_length_and_errors() {
        // DD | EOP, 60 bytes, no VLAN: a frame the driver hands on.
        let good = RxWriteBack::from_upper((60u64 << 32) | 0b11);
        assert!(good.done() && good.good_single_buffer());
        assert_eq!(good.length, 60);
        // DD without EOP: the frame spans descriptors; not handed on.
        assert!(!RxWriteBack::from_upper((2048u64 << 32) | 0b01).good_single_buffer());
        // DD | EOP | RXE: a data error.
        let bad = RxWriteBack::from_upper((64u64 << 32) | (1 << 29) | 0b11);
        assert!(bad.done() && !bad.good_single_buffer());
        // Not written back yet.
        assert!(!RxDescriptor::offer(0x1000).write_back().done());
    }

    #[test]
    fn transmit_descriptor_encodes_the_datasheet_bits() {
        let descriptor = TxDescriptor::single_buffer(0x20_0000, 60);
        // DEXT | RS | IFCS | EOP = 0x2b, DTYP = 3, DTALEN = 60.
        assert_eq!(descriptor.command_type_length, 0x2b30_003c);
        assert_eq!(descriptor.offload_status, 60 << 14);
        assert!(!descriptor.done());
        let sent = TxDescriptor {
            offload_status: descriptor.offload_status | TX_STATUS_DD,
            ..descriptor
        };
        assert!(sent.done());
    }
}
