//! Bring-up against a simulated 82576: a register file that behaves like
//! the device where bring-up depends on it (self-clearing reset that loads
//! the MAC, auto-negotiation that takes time after `CTRL.SLU`).

use super::*;
use std::collections::BTreeMap;

/// The simulated device.
struct SimulatedIgb {
    values: BTreeMap<u32, u32>,
    /// Every write, in order.
    writes: Vec<(u32, u32)>,
    /// Delays until a requested reset completes; `None`: it never does.
    reset_delays: Option<u32>,
    reset_pending: Option<u32>,
    /// Microseconds of delay after `CTRL.SLU` until the link is up.
    autoneg_micros: u64,
    since_link_up_requested: Option<u64>,
    /// The MAC the "EEPROM" loads into RAL0/RAH0 at reset.
    permanent_mac: [u8; 6],
    /// Queue control registers whose ENABLE never reads back.
    stuck_enable: Vec<u32>,
    /// Whether BMCR was written with auto-negotiation enabled and restarted.
    autoneg_requested: bool,
    /// The PHY's registers (clause 22), by number.
    phy: BTreeMap<u8, u16>,
    /// Whether MDIC transactions fail.
    phy_broken: bool,
}

impl SimulatedIgb {
    fn new() -> Self {
        Self {
            values: BTreeMap::new(),
            writes: Vec::new(),
            reset_delays: Some(3),
            reset_pending: None,
            autoneg_micros: 500_000,
            since_link_up_requested: None,
            permanent_mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
            stuck_enable: Vec::new(),
            autoneg_requested: false,
            phy: BTreeMap::from([(0, 0x1140)]),
            phy_broken: false,
        }
    }

    /// Auto-negotiation runs once the link is allowed up (`CTRL.SLU`) and
    /// the PHY was asked to negotiate, as in QEMU's model.
    fn maybe_start_autoneg(&mut self) {
        let slu = self.value(CTRL) & Ctrl::SLU.bits() != 0;
        if slu && self.autoneg_requested && self.since_link_up_requested.is_none() {
            self.since_link_up_requested = Some(0);
        }
    }

    fn value(&self, offset: u32) -> u32 {
        self.values.get(&offset).copied().unwrap_or(0)
    }

    fn complete_reset(&mut self) {
        self.values.clear();
        let mac = self.permanent_mac;
        self.values.insert(
            registers::ral(0),
            u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]),
        );
        self.values.insert(
            registers::rah(0),
            u32::from_le_bytes([mac[4], mac[5], 0, 0]) | Rah::AV.bits(),
        );
        // Stale statistics and causes the driver must not trust.
        self.values.insert(ICR, 0x4);
        self.since_link_up_requested = None;
    }
}

// SAFETY: plain memory, no device behind it.
unsafe impl Registers for SimulatedIgb {
    fn read(&self, offset: u32) -> u32 {
        let value = self.value(offset);
        if offset == CTRL && self.reset_pending.is_some() {
            return value | Ctrl::RST.bits();
        }
        if self.stuck_enable.contains(&offset) {
            return value & !QueueControl::ENABLE.bits();
        }
        value
    }

    fn write(&mut self, offset: u32, value: u32) {
        self.writes.push((offset, value));
        if offset == CTRL && value & Ctrl::RST.bits() != 0 {
            self.reset_pending = self.reset_delays.or(Some(u32::MAX));
            self.values.insert(CTRL, value & !Ctrl::RST.bits());
            return;
        }
        if offset == MDIC {
            let register = ((value >> MDIC_REGISTER_SHIFT) & 0x1f) as u8;
            let phy_address = (value >> 21) & 0x1f;
            let result = if self.phy_broken || phy_address != 1 {
                value | Mdic::ERROR.bits()
            } else if value & Mdic::OP_WRITE.bits() != 0 {
                let data = value as u16;
                if register == PHY_BMCR
                    && data & BMCR_AUTONEG_ENABLE != 0
                    && data & BMCR_AUTONEG_RESTART != 0
                {
                    self.autoneg_requested = true;
                }
                self.phy.insert(register, data & !BMCR_AUTONEG_RESTART);
                value | Mdic::READY.bits()
            } else {
                let data = self.phy.get(&register).copied().unwrap_or(0);
                (value & !0xffff) | u32::from(data) | Mdic::READY.bits()
            };
            self.values.insert(MDIC, result);
            self.maybe_start_autoneg();
            return;
        }
        self.values.insert(offset, value);
        if offset == CTRL {
            self.maybe_start_autoneg();
        }
    }

    fn delay_us(&mut self, micros: u32) {
        if let Some(left) = self.reset_pending {
            if left <= 1 {
                self.reset_pending = None;
                self.complete_reset();
            } else if left != u32::MAX {
                self.reset_pending = Some(left - 1);
            }
        }
        if let Some(elapsed) = self.since_link_up_requested.as_mut() {
            *elapsed += u64::from(micros);
            if *elapsed >= self.autoneg_micros {
                // 1000 Mb/s full duplex, as QEMU reports.
                let status = Status::LU | Status::FD | Status::SPEED_1;
                self.values.insert(STATUS, status.bits());
            }
        }
    }
}

fn rings(physical_address: u64, descriptors: u16) -> QueueRings {
    QueueRings {
        physical_address,
        descriptors,
    }
}

#[test]
fn reset_masks_interrupts_sets_drv_load_and_reads_the_mac() {
    let igb = Igb::reset(SimulatedIgb::new()).unwrap();
    assert_eq!(igb.mac(), [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    let device = &igb.registers;
    let writes = &device.writes;
    let reset_at = writes
        .iter()
        .position(|&(offset, value)| offset == CTRL && value & Ctrl::RST.bits() != 0)
        .unwrap();
    // Masked before the reset and again after it.
    assert!(writes[..reset_at].contains(&(IMC, !0)) && writes[..reset_at].contains(&(EIMC, !0)));
    assert!(writes[reset_at..].contains(&(IMC, !0)) && writes[reset_at..].contains(&(EIMC, !0)));
    assert_ne!(device.value(CTRL_EXT) & CtrlExt::DRV_LOAD.bits(), 0);
    assert!((0..MTA_REGISTERS).all(|index| writes.contains(&(MTA + 4 * index, 0))));
}

#[test]
fn a_reset_that_never_completes_is_an_error_not_a_hang() {
    let device = SimulatedIgb {
        reset_delays: None,
        ..SimulatedIgb::new()
    };
    assert_eq!(Igb::reset(device).err(), Some(IgbError::ResetTimeout));
}

#[test]
fn no_valid_mac_is_refused() {
    for mac in [[0; 6], [0x01, 0, 0x5e, 0, 0, 1]] {
        let device = SimulatedIgb {
            permanent_mac: mac,
            ..SimulatedIgb::new()
        };
        assert_eq!(Igb::reset(device).err(), Some(IgbError::NoMacAddress));
    }
}

#[test]
fn link_comes_up_after_auto_negotiation_within_the_budget() {
    let mut igb = Igb::reset(SimulatedIgb::new()).unwrap();
    assert!(!igb.link().up);
    igb.set_link_up().unwrap();
    assert_eq!(
        igb.registers.value(CTRL) & (Ctrl::SLU | Ctrl::FRCSPD | Ctrl::FRCDPX).bits(),
        Ctrl::SLU.bits()
    );
    // BMCR read, then written back with auto-negotiation enabled; the
    // restart bit clears itself, the rest (1000 Mb/s, full duplex) stays.
    assert_eq!(igb.registers.phy[&PHY_BMCR], 0x1140);
    // 100 ms is too short for QEMU's 500 ms auto-negotiation: down, no error.
    assert!(!igb.wait_for_link(100).up);
    let link = igb.wait_for_link(1_000);
    assert_eq!(
        link,
        LinkState {
            up: true,
            speed_mbps: 1000,
            full_duplex: true
        }
    );
}

#[test]
fn queues_are_programmed_as_the_datasheet_orders() {
    let mut igb = Igb::reset(SimulatedIgb::new()).unwrap();
    let start = igb.registers.writes.len();
    igb.configure_rx_queue(0, rings(0x1_2345_6780, 256), 2048)
        .unwrap();
    igb.configure_tx_queue(0, rings(0x40_0000, 256)).unwrap();
    igb.enable_receiver();
    igb.enable_transmitter();
    let device = &igb.registers;
    assert_eq!(device.value(rx_queue::rdbal(0)), 0x2345_6780);
    assert_eq!(device.value(rx_queue::rdbah(0)), 0x1);
    assert_eq!(device.value(rx_queue::rdlen(0)), 256 * 16);
    assert_eq!(
        device.value(rx_queue::srrctl(0)),
        (Srrctl::DESCTYPE_ADV_ONEBUF | Srrctl::DROP_EN).bits() | 2
    );
    assert_eq!(device.value(tx_queue::tdlen(0)), 256 * 16);
    assert_ne!(
        device.value(rx_queue::rxdctl(0)) & QueueControl::ENABLE.bits(),
        0
    );
    assert_ne!(
        device.value(tx_queue::txdctl(0)) & QueueControl::ENABLE.bits(),
        0
    );
    assert_eq!(
        device.value(RCTL),
        (Rctl::EN | Rctl::BAM | Rctl::SECRC).bits()
    );
    assert_ne!(device.value(TCTL) & Tctl::EN.bits(), 0);
    // The ring is disabled while it is programmed and enabled last; the
    // receiver comes on only after its queue.
    let writes = &device.writes[start..];
    let position = |wanted: (u32, u32)| writes.iter().position(|&write| write == wanted).unwrap();
    let disabled = position((rx_queue::rxdctl(0), 0));
    let base = position((rx_queue::rdbal(0), 0x2345_6780));
    let enabled = writes
        .iter()
        .position(|&(offset, value)| offset == rx_queue::rxdctl(0) && value != 0)
        .unwrap();
    let receiver = writes
        .iter()
        .position(|&(offset, _)| offset == RCTL)
        .unwrap();
    assert!(disabled < base && base < enabled && enabled < receiver);
}

#[test]
fn bad_rings_and_queues_are_refused() {
    let mut igb = Igb::reset(SimulatedIgb::new()).unwrap();
    assert_eq!(
        igb.configure_rx_queue(0, rings(0x1000, 12), 2048),
        Err(IgbError::BadRingLength(12))
    );
    assert_eq!(
        igb.configure_tx_queue(0, rings(0x1000, 8192)),
        Err(IgbError::BadRingLength(8192))
    );
    assert_eq!(
        igb.configure_tx_queue(0, rings(0x1040, 64)),
        Err(IgbError::BadRingAddress(0x1040))
    );
    assert_eq!(
        igb.configure_rx_queue(16, rings(0x1000, 64), 2048),
        Err(IgbError::NoSuchQueue(16))
    );
}

#[test]
fn a_queue_that_never_reports_enabled_is_an_error() {
    let device = SimulatedIgb {
        stuck_enable: vec![tx_queue::txdctl(1)],
        ..SimulatedIgb::new()
    };
    let mut igb = Igb::reset(device).unwrap();
    assert_eq!(
        igb.configure_tx_queue(1, rings(0x1000, 64)),
        Err(IgbError::QueueEnableTimeout {
            queue: 1,
            transmit: true
        })
    );
}

#[test]
fn statistics_accumulate_across_clear_on_read_registers() {
    let mut igb = Igb::reset(SimulatedIgb::new()).unwrap();
    let load = |igb: &mut Igb<SimulatedIgb>| {
        let values = &mut igb.registers.values;
        values.insert(stats::GPRC, 10);
        values.insert(stats::GORCL, 640);
        values.insert(stats::GORCH, 1);
        values.insert(stats::RNBC, 2);
    };
    load(&mut igb);
    igb.update_stats();
    load(&mut igb);
    let totals = igb.update_stats();
    assert_eq!(totals.rx_good_packets, 20);
    assert_eq!(totals.rx_good_octets, 2 * ((1 << 32) + 640));
    assert_eq!(totals.rx_no_buffers, 4);
    assert_eq!(totals.tx_good_packets, 0);
}

#[test]
fn without_an_auto_negotiation_restart_the_link_stays_down() {
    let mut igb = Igb::reset(SimulatedIgb::new()).unwrap();
    // CTRL.SLU alone, as a driver that skips the PHY would do it.
    let ctrl = igb.registers.value(CTRL);
    igb.registers.write(CTRL, ctrl | Ctrl::SLU.bits());
    assert!(!igb.wait_for_link(1_000).up);
}

#[test]
fn a_phy_that_does_not_answer_is_an_error() {
    let device = SimulatedIgb {
        phy_broken: true,
        ..SimulatedIgb::new()
    };
    let mut igb = Igb::reset(device).unwrap();
    assert_eq!(
        igb.set_link_up(),
        Err(IgbError::PhyAccess { register: PHY_BMCR })
    );
}

#[test]
fn rss_writes_key_table_and_hash_fields_and_the_receiver_keeps_pcsd() {
    use crate::registers::{MRQC, RETA, RSSRK, RXCSUM, RXCSUM_PCSD};
    use crate::rss::{RedirectionTable, WARPCORE_RSS_KEY};
    let mut igb = Igb::reset(SimulatedIgb::new()).unwrap();
    igb.configure_rss(&WARPCORE_RSS_KEY, &RedirectionTable::spread(2));
    igb.enable_receiver();
    for index in 0..10 {
        assert_eq!(igb.registers.value(RSSRK + 4 * index), 0x5a6d_5a6d);
    }
    for index in 0..32 {
        assert_eq!(igb.registers.value(RETA + 4 * index), 0x0100_0100);
    }
    // MRQE = RSS, IPv4 / IPv6 with TCP and UDP ports.
    assert_eq!(igb.registers.value(MRQC), 0x00f3_0002);
    // QEMU's model (and the datasheet) hash only with PCSD set.
    assert_eq!(igb.registers.value(RXCSUM), RXCSUM_PCSD);
}
