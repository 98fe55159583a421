//! The 82576's register map: byte offsets into BAR 0 and the bits the
//! driver uses, named as in the Intel 82576EB datasheet (section 8); the
//! I350 keeps the same offsets for everything here.

use bitflags::bitflags;

/// PCI vendor id of Intel.
pub const PCI_VENDOR_INTEL: u16 = 0x8086;
/// PCI device id of the 82576 copper NIC, the model QEMU's `-device igb` is.
pub const PCI_DEVICE_82576: u16 = 0x10c9;
/// PCI device id of the I350 copper NIC (same register layout here).
pub const PCI_DEVICE_I350: u16 = 0x1521;

/// Number of transmit and receive queues of the 82576.
pub const QUEUES: u16 = 16;

/// 0x00000: Device Control.
pub const CTRL: u32 = 0x0_0000;
/// 0x00008: Device Status (read-only).
pub const STATUS: u32 = 0x0_0008;
/// 0x00020: MDI Control: reads and writes PHY registers.
pub const MDIC: u32 = 0x0_0020;
/// 0x00018: Extended Device Control.
pub const CTRL_EXT: u32 = 0x0_0018;
/// 0x00100: Receive Control.
pub const RCTL: u32 = 0x0_0100;
/// 0x00400: Transmit Control.
pub const TCTL: u32 = 0x0_0400;
/// 0x000c0: Interrupt Cause Read (clear on read). The datasheet also
/// names 0x01500 for it; Linux's igb uses 0x000c0, and QEMU's model
/// implements only that address (at 0x01500 it reads 0).
pub const ICR: u32 = 0x0_00c0;
/// 0x000d0: Interrupt Mask Set/Read (as `ICR`, not 0x01508).
pub const IMS: u32 = 0x0_00d0;
/// 0x000d8: Interrupt Mask Clear (as `ICR`, not 0x0150c).
pub const IMC: u32 = 0x0_00d8;
/// `ICR` / `IMS` bit 2: Link Status Change.
pub const ICR_LSC: u32 = 1 << 2;
/// 0x01528: Extended Interrupt Mask Clear.
pub const EIMC: u32 = 0x0_1528;
/// 0x01580: Extended Interrupt Cause Read (write 1 to clear a cause).
pub const EICR: u32 = 0x0_1580;
/// 0x01514: General Purpose Interrupt Enable.
pub const GPIE: u32 = 0x0_1514;
/// 0x01524: Extended Interrupt Mask Set/Read.
pub const EIMS: u32 = 0x0_1524;
/// 0x0152c: Extended Interrupt Auto Clear: a cause whose bit is set here
/// clears when its MSI-X message is sent.
pub const EIAC: u32 = 0x0_152c;
/// 0x01530: Extended Interrupt Auto Mask.
pub const EIAM: u32 = 0x0_1530;
/// 0x01700: Interrupt Vector Allocation, 8 registers.
pub const IVAR0: u32 = 0x0_1700;
/// 0x01740: Interrupt Vector Allocation for the other causes.
pub const IVAR_MISC: u32 = 0x0_1740;
/// `IVAR` entry valid bit (each entry is a byte: vector number | valid).
pub const IVAR_VALID: u32 = 0x80;

bitflags! {
    /// `GPIE` bits (8.8.15).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Gpie: u32 {
        /// Non-selective interrupt clear on read of `ICR`.
        const NSICR = 1 << 0;
        /// MSI-X mode: `EICR` bits are MSI-X vectors, queues are mapped
        /// to them through `IVAR`.
        const MSIX_MODE = 1 << 4;
        /// Extended interrupt auto mask enable.
        const EIAME = 1 << 30;
        /// PBA support: the MSI-X pending bits reflect `EICR`.
        const PBA_SUPPORT = 1 << 31;
    }
}

/// The `IVAR0` register and bit shift of receive queue `queue`'s entry
/// (8.8.14 for the 82576: queues 0..8 in byte 0, 8..16 in byte 2 of
/// register `queue % 8`).
pub const fn ivar_rx(queue: u16) -> (u32, u32) {
    (
        IVAR0 + 4 * (queue as u32 % 8),
        if queue < 8 { 0 } else { 16 },
    )
}

/// The `IVAR0` register and bit shift of transmit queue `queue`'s entry
/// (byte 1, or byte 3 for queues 8..16).
pub const fn ivar_tx(queue: u16) -> (u32, u32) {
    (
        IVAR0 + 4 * (queue as u32 % 8),
        if queue < 8 { 8 } else { 24 },
    )
}
/// 0x05000: Receive Checksum Control.
pub const RXCSUM: u32 = 0x0_5000;
/// `RXCSUM.PCSD`: the descriptor's checksum field carries the RSS hash
/// instead (RSS needs it; the stack checks checksums itself anyway).
pub const RXCSUM_PCSD: u32 = 1 << 13;
/// 0x05818: Multiple Receive Queues Command.
pub const MRQC: u32 = 0x0_5818;
/// `MRQC.MRQE` = 010b: RSS over the receive queues.
pub const MRQC_ENABLE_RSS: u32 = 0x2;
/// `MRQC` hash fields: IPv4 / TCP, IPv4, IPv6 / TCP, IPv6, IPv4 / UDP, IPv6 / UDP.
pub const MRQC_RSS_FIELDS: u32 =
    (1 << 16) | (1 << 17) | (1 << 21) | (1 << 20) | (1 << 22) | (1 << 23);
/// 0x05c00: Redirection Table, 32 registers of four one-byte entries.
pub const RETA: u32 = 0x0_5c00;
/// Entries of the redirection table (indexed by the hash's low 7 bits).
pub const RETA_ENTRIES: usize = 128;
/// 0x05c80: RSS Random Key, 10 registers (40 bytes, little-endian).
pub const RSSRK: u32 = 0x0_5c80;
/// 0x05200: Multicast Table Array, 128 registers.
pub const MTA: u32 = 0x0_5200;
/// Number of `MTA` registers.
pub const MTA_REGISTERS: u32 = 128;

/// 0x05400 + 8n: Receive Address Low n (the MAC's first four bytes).
pub const fn ral(n: u32) -> u32 {
    0x0_5400 + 8 * n
}

/// 0x05404 + 8n: Receive Address High n (the MAC's last two bytes, `AV`).
pub const fn rah(n: u32) -> u32 {
    0x0_5404 + 8 * n
}

/// Registers of receive queue `n` (0..16), 0x40 apart from 0x0c000.
pub mod rx_queue {
    /// Base of queue `n`'s block.
    const fn base(n: u16) -> u32 {
        0x0_c000 + 0x40 * n as u32
    }
    /// 0x0c000: Receive Descriptor Base Address Low.
    pub const fn rdbal(n: u16) -> u32 {
        base(n)
    }
    /// 0x0c004: Receive Descriptor Base Address High.
    pub const fn rdbah(n: u16) -> u32 {
        base(n) + 0x04
    }
    /// 0x0c008: Receive Descriptor Ring Length in bytes.
    pub const fn rdlen(n: u16) -> u32 {
        base(n) + 0x08
    }
    /// 0x0c00c: Split and Replication Receive Control.
    pub const fn srrctl(n: u16) -> u32 {
        base(n) + 0x0c
    }
    /// 0x0c010: Receive Descriptor Head.
    pub const fn rdh(n: u16) -> u32 {
        base(n) + 0x10
    }
    /// 0x0c018: Receive Descriptor Tail (the doorbell).
    pub const fn rdt(n: u16) -> u32 {
        base(n) + 0x18
    }
    /// 0x0c028: Receive Descriptor Control.
    pub const fn rxdctl(n: u16) -> u32 {
        base(n) + 0x28
    }
}

/// Registers of transmit queue `n` (0..16), 0x40 apart from 0x0e000.
pub mod tx_queue {
    /// Base of queue `n`'s block.
    const fn base(n: u16) -> u32 {
        0x0_e000 + 0x40 * n as u32
    }
    /// 0x0e000: Transmit Descriptor Base Address Low.
    pub const fn tdbal(n: u16) -> u32 {
        base(n)
    }
    /// 0x0e004: Transmit Descriptor Base Address High.
    pub const fn tdbah(n: u16) -> u32 {
        base(n) + 0x04
    }
    /// 0x0e008: Transmit Descriptor Ring Length in bytes.
    pub const fn tdlen(n: u16) -> u32 {
        base(n) + 0x08
    }
    /// 0x0e010: Transmit Descriptor Head.
    pub const fn tdh(n: u16) -> u32 {
        base(n) + 0x10
    }
    /// 0x0e018: Transmit Descriptor Tail (the doorbell).
    pub const fn tdt(n: u16) -> u32 {
        base(n) + 0x18
    }
    /// 0x0e028: Transmit Descriptor Control.
    pub const fn txdctl(n: u16) -> u32 {
        base(n) + 0x28
    }
}

/// Statistics registers (section 8.19): 32-bit, clear on read, so the
/// driver adds each read to its own 64-bit totals.
pub mod stats {
    /// 0x04000: CRC Error Count.
    pub const CRCERRS: u32 = 0x0_4000;
    /// 0x04010: Missed Packets Count (no room in the receive FIFO).
    pub const MPC: u32 = 0x0_4010;
    /// 0x04074: Good Packets Received Count.
    pub const GPRC: u32 = 0x0_4074;
    /// 0x04080: Good Packets Transmitted Count.
    pub const GPTC: u32 = 0x0_4080;
    /// 0x04088: Good Octets Received Count, low 32 bits (read before `GORCH`).
    pub const GORCL: u32 = 0x0_4088;
    /// 0x0408c: Good Octets Received Count, high bits.
    pub const GORCH: u32 = 0x0_408c;
    /// 0x04090: Good Octets Transmitted Count, low 32 bits.
    pub const GOTCL: u32 = 0x0_4090;
    /// 0x04094: Good Octets Transmitted Count, high bits.
    pub const GOTCH: u32 = 0x0_4094;
    /// 0x040a0: Receive No Buffers Count (the ring was empty).
    pub const RNBC: u32 = 0x0_40a0;

    /// 0x0c030 + 0x40 * n: Receive Queue Drop Packet Count of queue `n`
    /// (8.19.x, per queue; frames dropped for want of a descriptor).
    pub const fn rqdpc(queue: u16) -> u32 {
        0x0_c030 + 0x40 * queue as u32
    }

    /// 0x10010 + 0x100 * n: Per Queue Good Packets Received Count.
    pub const fn pqgprc(queue: u16) -> u32 {
        0x1_0010 + 0x100 * queue as u32
    }

    /// 0x10014 + 0x100 * n: Per Queue Good Packets Transmitted Count.
    pub const fn pqgptc(queue: u16) -> u32 {
        0x1_0014 + 0x100 * queue as u32
    }
}

bitflags! {
    /// `CTRL` bits (8.2.1).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Ctrl: u32 {
        /// Full duplex.
        const FD = 1 << 0;
        /// Set Link Up: lets the MAC and PHY bring the link up.
        const SLU = 1 << 6;
        /// Force speed (ignore the PHY's resolution).
        const FRCSPD = 1 << 11;
        /// Force duplex.
        const FRCDPX = 1 << 12;
        /// Device reset: self-clearing; resets everything but PCI config.
        const RST = 1 << 26;
        /// Receive flow control enable.
        const RFCE = 1 << 27;
        /// Transmit flow control enable.
        const TFCE = 1 << 28;
        /// VLAN mode enable.
        const VME = 1 << 30;
        /// PHY reset.
        const PHY_RST = 1 << 31;
    }
}

bitflags! {
    /// `STATUS` bits (8.2.2).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Status: u32 {
        /// Full duplex.
        const FD = 1 << 0;
        /// Link up.
        const LU = 1 << 1;
        /// Transmission paused (flow control).
        const TXOFF = 1 << 4;
        /// Speed, bit 0 of 2 (00: 10, 01: 100, 1x: 1000 Mb/s).
        const SPEED_0 = 1 << 6;
        /// Speed, bit 1 of 2.
        const SPEED_1 = 1 << 7;
        /// PHY reset asserted.
        const PHYRA = 1 << 10;
    }
}

impl Status {
    /// The link speed these bits report, in Mb/s.
    pub fn speed_mbps(self) -> u32 {
        if self.contains(Self::SPEED_1) {
            1000
        } else if self.contains(Self::SPEED_0) {
            100
        } else {
            10
        }
    }
}

bitflags! {
    /// `MDIC` bits (8.2.4) beside the data (bits 0..16) and the PHY
    /// register number (bits 16..21).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Mdic: u32 {
        /// PHY address 1: the 82576's internal PHY (bits 21..26).
        const PHY_INTERNAL = 1 << 21;
        /// Opcode 01: write.
        const OP_WRITE = 1 << 26;
        /// Opcode 10: read.
        const OP_READ = 2 << 26;
        /// Ready: the device finished the transaction.
        const READY = 1 << 28;
        /// Error: the PHY did not answer, or a wrong address.
        const ERROR = 1 << 30;
        /// Data and register fields.
        const _ = !0;
    }
}

/// Shift of the PHY register number in `MDIC`.
pub const MDIC_REGISTER_SHIFT: u32 = 16;

/// PHY register 0: Basic Mode Control (IEEE 802.3 clause 22).
pub const PHY_BMCR: u8 = 0;
/// `BMCR.ANRESTART`: restart auto-negotiation (self-clearing).
pub const BMCR_AUTONEG_RESTART: u16 = 1 << 9;
/// `BMCR.ANENABLE`: auto-negotiation enabled.
pub const BMCR_AUTONEG_ENABLE: u16 = 1 << 12;

bitflags! {
    /// `CTRL_EXT` bits (8.2.3).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct CtrlExt: u32 {
        /// Driver loaded: tells firmware (manageability) that a driver owns the device.
        const DRV_LOAD = 1 << 28;
    }
}

bitflags! {
    /// `RCTL` bits (8.10.1).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Rctl: u32 {
        /// Receiver enable.
        const EN = 1 << 1;
        /// Store bad packets.
        const SBP = 1 << 2;
        /// Unicast promiscuous.
        const UPE = 1 << 3;
        /// Multicast promiscuous.
        const MPE = 1 << 4;
        /// Long packets (over 1522 bytes) accepted.
        const LPE = 1 << 5;
        /// Broadcast accept mode.
        const BAM = 1 << 15;
        /// Strip the Ethernet CRC before the frame reaches host memory.
        const SECRC = 1 << 26;
    }
}

bitflags! {
    /// `TCTL` bits (8.12.1); the collision fields are values, see
    /// [`TCTL_CT_DEFAULT`] and [`TCTL_COLD_FULL_DUPLEX`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Tctl: u32 {
        /// Transmitter enable.
        const EN = 1 << 1;
        /// Pad short packets to 64 bytes.
        const PSP = 1 << 3;
        /// Retransmit on late collision.
        const RTLC = 1 << 24;
        /// The collision fields (`CT`, `COLD`), set from the constants below.
        const _ = !0;
    }
}

/// `TCTL.CT` (collision threshold, bits 4..12): the datasheet's 0x0f.
pub const TCTL_CT_DEFAULT: u32 = 0x0f << 4;
/// `TCTL.COLD` (collision distance, bits 12..22): 0x3f for full duplex.
pub const TCTL_COLD_FULL_DUPLEX: u32 = 0x3f << 12;

bitflags! {
    /// `SRRCTL` bits (8.10.2); `BSIZEPACKET` is a value in 1 KiB units,
    /// see [`srrctl_packet_buffer`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Srrctl: u32 {
        /// `DESCTYPE` = 001: advanced descriptors, one buffer.
        const DESCTYPE_ADV_ONEBUF = 1 << 25;
        /// Drop packets when the queue has no descriptors (instead of
        /// stalling the shared receive FIFO and every other queue).
        const DROP_EN = 1 << 31;
        /// The buffer size field.
        const _ = !0;
    }
}

/// `SRRCTL.BSIZEPACKET` for receive buffers of `bytes` (rounded down to
/// whole KiB, 1 to 127).
pub const fn srrctl_packet_buffer(bytes: u32) -> u32 {
    let kib = bytes / 1024;
    if kib == 0 {
        1
    } else if kib > 0x7f {
        0x7f
    } else {
        kib
    }
}

bitflags! {
    /// `RXDCTL` / `TXDCTL` bits (8.10.10, 8.12.13); the threshold fields
    /// are values.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct QueueControl: u32 {
        /// Queue enable: software sets it and polls until it reads back.
        const ENABLE = 1 << 25;
        /// Receive software flush (RXDCTL only).
        const SWFLSH = 1 << 26;
        /// The prefetch, host and write-back thresholds.
        const _ = !0;
    }
}

/// Prefetch threshold 8, host threshold 1, write-back threshold 1 (a
/// poll-mode driver wants completions written back without waiting for a
/// batch of descriptors): the values DPDK's igb driver uses.
pub const QUEUE_THRESHOLDS: u32 = 8 | (1 << 8) | (1 << 16);

bitflags! {
    /// `RAH` bits beside the address.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Rah: u32 {
        /// Address valid: the filter is in use.
        const AV = 1 << 31;
        /// The MAC's last two bytes and the pool fields.
        const _ = !0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_registers_sit_where_the_datasheet_puts_them() {
        assert_eq!(rx_queue::rdbal(0), 0xc000);
        assert_eq!(rx_queue::rdt(0), 0xc018);
        assert_eq!(rx_queue::rxdctl(1), 0xc068);
        assert_eq!(rx_queue::srrctl(15), 0xc3cc);
        assert_eq!(tx_queue::tdbal(0), 0xe000);
        assert_eq!(tx_queue::tdt(2), 0xe098);
        assert_eq!(tx_queue::txdctl(0), 0xe028);
        assert_eq!((ral(0), rah(0), rah(1)), (0x5400, 0x5404, 0x540c));
        assert_eq!(ivar_rx(1), (0x1704, 0));
        assert_eq!(ivar_tx(1), (0x1704, 8));
        assert_eq!(ivar_rx(9), (0x1704, 16));
        assert_eq!(ivar_tx(15), (0x171c, 24));
    }

    #[test]
    fn status_reads_speed_and_buffer_sizes_round() {
        assert_eq!(Status::from_bits_retain(0x0000_0083).speed_mbps(), 1000);
        assert_eq!(Status::from_bits_retain(0x0000_0043).speed_mbps(), 100);
        assert_eq!(Status::LU.speed_mbps(), 10);
        assert_eq!(srrctl_packet_buffer(2048), 2);
        assert_eq!(srrctl_packet_buffer(100), 1);
        assert_eq!(srrctl_packet_buffer(1 << 20), 0x7f);
    }
}
