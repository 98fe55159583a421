//! Bring-up of one 82576 / I350 function: reset, interrupts masked, the MAC
//! address, link, and the receive and transmit queues programmed (82576
//! datasheet 4.5: "Software Initialization Sequence").

use crate::error::IgbError;
use crate::registers::{
    self, BMCR_AUTONEG_ENABLE, BMCR_AUTONEG_RESTART, CTRL, CTRL_EXT, Ctrl, CtrlExt, EIAC, EIAM,
    EICR, EIMC, EIMS, GPIE, Gpie, ICR, ICR_LSC, IMC, IMS, IVAR_VALID, MDIC, MDIC_REGISTER_SHIFT,
    MRQC, MRQC_ENABLE_RSS, MRQC_RSS_FIELDS, MTA, MTA_REGISTERS, Mdic, PHY_BMCR, QUEUE_THRESHOLDS,
    QUEUES, QueueControl, RCTL, RETA, RSSRK, RXCSUM, RXCSUM_PCSD, Rah, Rctl, STATUS, Srrctl,
    Status, TCTL, TCTL_COLD_FULL_DUPLEX, TCTL_CT_DEFAULT, Tctl, rx_queue, srrctl_packet_buffer,
    stats, tx_queue,
};
use crate::rss::{self, RedirectionTable};

/// How long a reset may take: the datasheet asks for at least 1 ms before
/// the first poll; the device then has up to 100 ms.
const RESET_POLLS: u32 = 100;
/// Microseconds between reset polls.
const RESET_POLL_MICROS: u32 = 1_000;
/// How many times to poll a queue's `ENABLE` bit or `MDIC.READY`, 10 µs apart.
const ENABLE_POLLS: u32 = 1_000;

/// The device's registers (BAR 0) and a delay, as the platform gives them.
///
/// # Safety
/// Implementors promise that `read` and `write` reach this function's
/// register BAR at `offset` (a multiple of 4 inside the BAR) with one
/// volatile 32-bit access, and nothing else.
pub unsafe trait Registers {
    /// Reads the 32-bit register at byte `offset`.
    fn read(&self, offset: u32) -> u32;
    /// Writes the 32-bit register at byte `offset`.
    fn write(&mut self, offset: u32, value: u32);
    /// Waits at least `micros` microseconds.
    fn delay_us(&mut self, micros: u32);
}

/// Link state as `STATUS` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    /// Link up.
    pub up: bool,
    /// Speed in Mb/s (meaningful while up).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// A descriptor ring in DMA memory, as the device sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueRings {
    /// Physical address of the ring (128-byte aligned).
    pub physical_address: u64,
    /// Descriptors in the ring: a multiple of 8, from 8 to 4096.
    pub descriptors: u16,
}

impl QueueRings {
    /// Checks what the device requires of a ring.
    fn validate(self) -> Result<Self, IgbError> {
        if self.descriptors < 8 || self.descriptors > 4096 || !self.descriptors.is_multiple_of(8) {
            return Err(IgbError::BadRingLength(self.descriptors));
        }
        if !self.physical_address.is_multiple_of(128) {
            return Err(IgbError::BadRingAddress(self.physical_address));
        }
        Ok(self)
    }

    /// `RDLEN` / `TDLEN`: the ring's length in bytes.
    fn length_bytes(self) -> u32 {
        u32::from(self.descriptors) * crate::descriptors::DESCRIPTOR_BYTES as u32
    }
}

/// The device's statistics registers summed since reset (they clear when
/// read, so every read is added here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Good packets received (`GPRC`).
    pub rx_good_packets: u64,
    /// Good octets received (`GORC`).
    pub rx_good_octets: u64,
    /// Good packets transmitted (`GPTC`).
    pub tx_good_packets: u64,
    /// Good octets transmitted (`GOTC`).
    pub tx_good_octets: u64,
    /// Packets missed for lack of room in the receive FIFO (`MPC`).
    pub rx_missed: u64,
    /// Receptions that found the ring empty (`RNBC`).
    pub rx_no_buffers: u64,
    /// Frames with CRC errors (`CRCERRS`).
    pub rx_crc_errors: u64,
}

/// One igb function after reset: owns its registers.
pub struct Igb<R: Registers> {
    registers: R,
    mac: [u8; 6],
    stats: DeviceStats,
    /// Link Status Change raises the "other" MSI-X vector.
    link_interrupt: bool,
}

impl<R: Registers> Igb<R> {
    /// Resets the device and takes it over: interrupts masked and their
    /// causes cleared, `CTRL_EXT.DRV_LOAD` set, the multicast table cleared,
    /// and the MAC address read from receive address 0 (which the reset
    /// loads from the EEPROM, or QEMU from `mac=`).
    pub fn reset(mut registers: R) -> Result<Self, IgbError> {
        mask_interrupts(&mut registers);
        let ctrl = registers.read(CTRL);
        registers.write(CTRL, ctrl | Ctrl::RST.bits());
        let mut polls = 0;
        loop {
            registers.delay_us(RESET_POLL_MICROS);
            if registers.read(CTRL) & Ctrl::RST.bits() == 0 {
                break;
            }
            polls += 1;
            if polls >= RESET_POLLS {
                return Err(IgbError::ResetTimeout);
            }
        }
        // The reset unmasks nothing, but the datasheet masks again after it
        // and reads the causes to clear them.
        mask_interrupts(&mut registers);
        let _ = registers.read(ICR);
        let _ = registers.read(EICR);
        let ctrl_ext = registers.read(CTRL_EXT);
        registers.write(CTRL_EXT, ctrl_ext | CtrlExt::DRV_LOAD.bits());
        for index in 0..MTA_REGISTERS {
            registers.write(MTA + 4 * index, 0);
        }
        let mac = read_mac(&registers)?;
        Ok(Self {
            registers,
            mac,
            stats: DeviceStats::default(),
            link_interrupt: false,
        })
    }

    /// The MAC address receive address 0 filters on.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Lets the link come up: `CTRL.SLU`, speed and duplex left to the
    /// PHY (nothing forced), and auto-negotiation (re)started in the PHY's
    /// `BMCR`, which a reset does not do (QEMU's model reports no link
    /// until it is asked to negotiate).
    pub fn set_link_up(&mut self) -> Result<(), IgbError> {
        let ctrl = Ctrl::from_bits_retain(self.registers.read(CTRL));
        let ctrl = (ctrl | Ctrl::SLU) - (Ctrl::FRCSPD | Ctrl::FRCDPX | Ctrl::PHY_RST);
        self.registers.write(CTRL, ctrl.bits());
        let bmcr = self.phy_read(PHY_BMCR)?;
        self.phy_write(PHY_BMCR, bmcr | BMCR_AUTONEG_ENABLE | BMCR_AUTONEG_RESTART)
    }

    /// Reads PHY register `register` through `MDIC`.
    pub fn phy_read(&mut self, register: u8) -> Result<u16, IgbError> {
        let command = (Mdic::PHY_INTERNAL | Mdic::OP_READ).bits()
            | (u32::from(register) << MDIC_REGISTER_SHIFT);
        self.mdic(command, register).map(|value| value as u16)
    }

    /// Writes PHY register `register` through `MDIC`.
    pub fn phy_write(&mut self, register: u8, value: u16) -> Result<(), IgbError> {
        let command = (Mdic::PHY_INTERNAL | Mdic::OP_WRITE).bits()
            | (u32::from(register) << MDIC_REGISTER_SHIFT)
            | u32::from(value);
        self.mdic(command, register).map(|_| ())
    }

    /// Starts an `MDIC` transaction and polls (every 10 µs, bounded) until
    /// it is ready; returns the register's final value.
    fn mdic(&mut self, command: u32, register: u8) -> Result<u32, IgbError> {
        self.registers.write(MDIC, command);
        for _ in 0..ENABLE_POLLS {
            let value = self.registers.read(MDIC);
            if value & Mdic::ERROR.bits() != 0 {
                return Err(IgbError::PhyAccess { register });
            }
            if value & Mdic::READY.bits() != 0 {
                return Ok(value);
            }
            self.registers.delay_us(10);
        }
        Err(IgbError::PhyAccess { register })
    }

    /// The link as `STATUS` reports it now.
    pub fn link(&self) -> LinkState {
        link_state(&self.registers)
    }

    /// A second handle on the same registers, for a queue pair polled on
    /// another core (it touches only its own queue's registers).
    pub fn register_handle(&self) -> R
    where
        R: Clone,
    {
        self.registers.clone()
    }

    /// MSI-X mode (8.8.15, as Linux's `igb_configure_msix`): receive and
    /// transmit queue `q` of the first `queues` raise MSI-X vector `q`,
    /// which clears its own cause when sent (`EIAC`) and is left masked
    /// (`EIMS` clear) until its queue's core arms it before sleeping.
    ///
    /// With `link_interrupt`, the "other" causes get vector `queues`
    /// (`IVAR_MISC`), of which only Link Status Change is enabled (`IMS`);
    /// that vector stays unmasked and clears its own cause when sent, and
    /// `ICR` (read by [`take_link_change`](Self::take_link_change)) says
    /// what happened. A stale `ICR` is cleared first, so the link coming
    /// up during bring-up raises nothing.
    pub fn configure_msix(&mut self, queues: u16, link_interrupt: bool) -> Result<(), IgbError> {
        if queues == 0 || queues > QUEUES {
            return Err(IgbError::NoSuchQueue(queues));
        }
        let gpie = Gpie::MSIX_MODE | Gpie::PBA_SUPPORT | Gpie::EIAME | Gpie::NSICR;
        self.registers.write(GPIE, gpie.bits());
        let link_vector = if link_interrupt {
            self.registers
                .write(registers::IVAR_MISC, (u32::from(queues) | IVAR_VALID) << 8);
            1u32 << queues
        } else {
            self.registers.write(registers::IVAR_MISC, 0);
            0
        };
        for queue in 0..queues {
            let entry = u32::from(queue) | IVAR_VALID;
            for (register, shift) in [registers::ivar_rx(queue), registers::ivar_tx(queue)] {
                let value = self.registers.read(register) & !(0xff << shift);
                self.registers.write(register, value | (entry << shift));
            }
        }
        let vectors = queue_vectors(queues);
        self.registers.write(EIAC, vectors | link_vector);
        // No auto mask: a core masks its vector itself when it wakes
        // (`EIMC`), so that the contract does not hang on `EIAM`, which
        // QEMU's model does not apply.
        self.registers.write(EIAM, 0);
        self.registers.write(EIMC, !0);
        let _ = self.registers.read(EICR);
        self.registers.write(EICR, vectors | link_vector);
        if link_interrupt {
            // `ICR` clears on read (`GPIE.NSICR`): a change that happened
            // before this point is not announced again.
            let _ = self.registers.read(ICR);
            self.registers.write(IMS, ICR_LSC);
            self.registers.write(EIMS, link_vector);
        }
        self.link_interrupt = link_interrupt;
        Ok(())
    }

    /// Whether the link changed since the last call (`ICR.LSC`, which the
    /// read clears along with every other cause; only the link's are
    /// enabled in `IMS`, and queue causes travel in `EICR`). Always `false`
    /// without the link interrupt: nothing else reads `ICR`.
    pub fn take_link_change(&mut self) -> bool {
        self.link_interrupt && self.registers.read(ICR) & ICR_LSC != 0
    }

    /// Polls the link every millisecond for at most `budget_ms` ms (auto-
    /// negotiation takes QEMU about 500 ms, a real PHY up to a few seconds)
    /// and returns its last state; a link still down is not an error, the
    /// caller decides.
    pub fn wait_for_link(&mut self, budget_ms: u32) -> LinkState {
        for _ in 0..budget_ms {
            let link = self.link();
            if link.up {
                return link;
            }
            self.registers.delay_us(1_000);
        }
        self.link()
    }

    /// Programs receive queue `queue` on `rings` with buffers of
    /// `buffer_bytes` (advanced one-buffer descriptors, dropped when the
    /// ring is empty rather than stalling other queues) and enables it. The
    /// tail stays at 0: the caller offers buffers and then writes the tail.
    pub fn configure_rx_queue(
        &mut self,
        queue: u16,
        rings: QueueRings,
        buffer_bytes: u32,
    ) -> Result<(), IgbError> {
        let rings = rings.validate()?;
        check_queue(queue)?;
        self.registers.write(rx_queue::rxdctl(queue), 0);
        self.registers
            .write(rx_queue::rdbal(queue), rings.physical_address as u32);
        self.registers.write(
            rx_queue::rdbah(queue),
            (rings.physical_address >> 32) as u32,
        );
        self.registers
            .write(rx_queue::rdlen(queue), rings.length_bytes());
        let srrctl = (Srrctl::DESCTYPE_ADV_ONEBUF | Srrctl::DROP_EN).bits()
            | srrctl_packet_buffer(buffer_bytes);
        self.registers.write(rx_queue::srrctl(queue), srrctl);
        self.registers.write(rx_queue::rdh(queue), 0);
        self.registers.write(rx_queue::rdt(queue), 0);
        self.registers.write(
            rx_queue::rxdctl(queue),
            QueueControl::ENABLE.bits() | QUEUE_THRESHOLDS,
        );
        self.wait_enabled(rx_queue::rxdctl(queue), queue, false)
    }

    /// Turns the receiver on: broadcasts accepted, the CRC stripped, 2 KiB
    /// buffers (`RCTL.BSIZE` = 0; the queues' `SRRCTL` overrides it), no
    /// promiscuous modes; receive checksum offload left off (the stack
    /// checks checksums itself) and `RXCSUM.PCSD` set, which RSS needs.
    pub fn enable_receiver(&mut self) {
        self.registers.write(RXCSUM, RXCSUM_PCSD);
        self.registers
            .write(RCTL, (Rctl::EN | Rctl::BAM | Rctl::SECRC).bits());
    }

    /// Turns RSS on: `key` into `RSSRK`, `table` into `RETA`, and `MRQC`
    /// hashing IPv4 and IPv6 with TCP and UDP ports (other packets go to
    /// queue 0). Call before `enable_receiver`; the queues `table` names
    /// must be configured.
    pub fn configure_rss(&mut self, key: &[u8; 40], table: &RedirectionTable) {
        for (index, value) in (0u32..).zip(rss::key_registers(key)) {
            self.registers.write(RSSRK + 4 * index, value);
        }
        for (index, value) in (0u32..).zip(table.registers()) {
            self.registers.write(RETA + 4 * index, value);
        }
        self.registers
            .write(MRQC, MRQC_ENABLE_RSS | MRQC_RSS_FIELDS);
    }

    /// Programs transmit queue `queue` on `rings` and enables it.
    pub fn configure_tx_queue(&mut self, queue: u16, rings: QueueRings) -> Result<(), IgbError> {
        let rings = rings.validate()?;
        check_queue(queue)?;
        self.registers.write(tx_queue::txdctl(queue), 0);
        self.registers
            .write(tx_queue::tdbal(queue), rings.physical_address as u32);
        self.registers.write(
            tx_queue::tdbah(queue),
            (rings.physical_address >> 32) as u32,
        );
        self.registers
            .write(tx_queue::tdlen(queue), rings.length_bytes());
        self.registers.write(tx_queue::tdh(queue), 0);
        self.registers.write(tx_queue::tdt(queue), 0);
        self.registers.write(
            tx_queue::txdctl(queue),
            QueueControl::ENABLE.bits() | QUEUE_THRESHOLDS,
        );
        self.wait_enabled(tx_queue::txdctl(queue), queue, true)
    }

    /// Turns the transmitter on: short frames padded, full-duplex collision
    /// settings.
    pub fn enable_transmitter(&mut self) {
        let tctl =
            (Tctl::EN | Tctl::PSP | Tctl::RTLC).bits() | TCTL_CT_DEFAULT | TCTL_COLD_FULL_DUPLEX;
        self.registers.write(TCTL, tctl);
    }

    /// Rings receive queue `queue`'s doorbell: descriptors before `tail`
    /// belong to the device.
    pub fn write_rx_tail(&mut self, queue: u16, tail: u16) {
        self.registers.write(rx_queue::rdt(queue), u32::from(tail));
    }

    /// Rings transmit queue `queue`'s doorbell: descriptors before `tail`
    /// are to be sent.
    pub fn write_tx_tail(&mut self, queue: u16, tail: u16) {
        self.registers.write(tx_queue::tdt(queue), u32::from(tail));
    }

    /// Reads the statistics registers (clearing them) into the totals and
    /// returns the totals.
    pub fn update_stats(&mut self) -> DeviceStats {
        let read = |registers: &R, offset| u64::from(registers.read(offset));
        let registers = &self.registers;
        let stats = &mut self.stats;
        stats.rx_good_packets += read(registers, stats::GPRC);
        stats.tx_good_packets += read(registers, stats::GPTC);
        // The low half first: reading the high half clears the pair.
        stats.rx_good_octets +=
            read(registers, stats::GORCL) | (read(registers, stats::GORCH) << 32);
        stats.tx_good_octets +=
            read(registers, stats::GOTCL) | (read(registers, stats::GOTCH) << 32);
        stats.rx_missed += read(registers, stats::MPC);
        stats.rx_no_buffers += read(registers, stats::RNBC);
        stats.rx_crc_errors += read(registers, stats::CRCERRS);
        *stats
    }

    /// Polls `register` until its `ENABLE` bit reads back.
    fn wait_enabled(&mut self, register: u32, queue: u16, transmit: bool) -> Result<(), IgbError> {
        for _ in 0..ENABLE_POLLS {
            if self.registers.read(register) & QueueControl::ENABLE.bits() != 0 {
                return Ok(());
            }
            self.registers.delay_us(10);
        }
        Err(IgbError::QueueEnableTimeout { queue, transmit })
    }
}

/// The link as `registers`' `STATUS` reports it now.
pub fn link_state(registers: &impl Registers) -> LinkState {
    let status = Status::from_bits_retain(registers.read(STATUS));
    LinkState {
        up: status.contains(Status::LU),
        speed_mbps: status.speed_mbps(),
        full_duplex: status.contains(Status::FD),
    }
}

/// The `EICR` / `EIMS` bits of the first `queues` MSI-X vectors.
pub const fn queue_vectors(queues: u16) -> u32 {
    if queues >= 32 {
        !0
    } else {
        (1u32 << queues) - 1
    }
}

/// Masks every legacy and extended interrupt.
fn mask_interrupts(registers: &mut impl Registers) {
    registers.write(IMC, !0);
    registers.write(EIMC, !0);
}

/// Fails for queues the device does not have.
fn check_queue(queue: u16) -> Result<(), IgbError> {
    if queue < QUEUES {
        Ok(())
    } else {
        Err(IgbError::NoSuchQueue(queue))
    }
}

/// The MAC address in receive address 0: `RAL0` holds bytes 0..4 and `RAH0`
/// bytes 4..6, little-endian, valid only with `RAH0.AV`.
fn read_mac(registers: &impl Registers) -> Result<[u8; 6], IgbError> {
    let low = registers.read(registers::ral(0));
    let high = registers.read(registers::rah(0));
    if high & Rah::AV.bits() == 0 {
        return Err(IgbError::NoMacAddress);
    }
    let [a, b, c, d] = low.to_le_bytes();
    let [e, f, _, _] = high.to_le_bytes();
    let mac = [a, b, c, d, e, f];
    // All zeros or a group address cannot be a station's address.
    if mac == [0; 6] || a & 1 != 0 {
        return Err(IgbError::NoMacAddress);
    }
    Ok(mac)
}

#[cfg(test)]
mod tests;
