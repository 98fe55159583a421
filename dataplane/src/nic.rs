//! The `Nic` trait: one receive/transmit queue pair of a network interface.

use crate::{Batch, MacAddr};
use alloc::sync::Arc;
use alloc::vec::Vec;

/// A queue's driver counters, readable from any core (the management
/// plane's `/metrics`): names like `rx_packets`, values that only grow,
/// except names ending in `link_up` (a 0/1 gauge).
pub trait NicCounters: Send + Sync + core::fmt::Debug {
    /// `(name, value)` of every counter.
    fn counter_entries(&self) -> Vec<(&'static str, u64)>;
}

/// What a driver knows about its link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// Carrier present.
    pub up: bool,
    /// Link speed in Mbit/s, 0 when unknown.
    pub speed_mbps: u32,
    /// Largest IP packet the link carries.
    pub mtu: u16,
}

/// One queue pair of a NIC, owned by one core. Drivers move packets in
/// bursts: one fence and at most one doorbell per call. (`Any` lets tests
/// reach the concrete driver behind an executor's port.)
pub trait Nic: core::any::Any {
    /// Appends up to `batch.remaining_capacity()` received packets to `batch`;
    /// returns how many.
    fn rx_burst(&mut self, batch: &mut Batch) -> usize;

    /// Transmits packets from the front of `batch`, removing those it took;
    /// packets it had no room for stay in `batch`, in order. Returns how many
    /// it took.
    fn tx_burst(&mut self, batch: &mut Batch) -> usize;

    /// The interface's MAC address.
    fn mac(&self) -> MacAddr;

    /// Link state.
    fn link(&self) -> LinkInfo;

    /// A short name for logs and counters, like `virtio0.q1` or `tap:wc0`.
    fn name(&self) -> &str;

    /// Before the core sleeps: asks the device to signal the next received
    /// packet (an interrupt on bare metal), then looks once more for packets
    /// that arrived before the request took effect. Returns false when
    /// packets are already waiting; the queue is then left polling and the
    /// caller polls instead of sleeping. Call with interrupts disabled and
    /// sleep atomically (`sti; hlt`), so a signal cannot slip in between.
    ///
    /// The default is for NICs that cannot signal: nothing to arm, so it
    /// says "may sleep" and the platform's periodic tick is their wake-up
    /// (a NIC that answered false instead would keep its core from ever
    /// sleeping).
    fn enable_wakeup(&mut self) -> bool {
        true
    }

    /// After the core woke: back to polling without signals. Harmless when
    /// `enable_wakeup` was not called.
    fn disable_wakeup(&mut self) {}

    /// The queue's driver counters, for the platform's counters board;
    /// `None` (the default) for a driver that exports none.
    fn counters(&self) -> Option<Arc<dyn NicCounters>> {
        None
    }
}
