//! Programming a function's queue pairs at once, on the core that brought
//! it up: every pair's rings, RSS over them with our key, one MSI-X vector
//! per pair, receiver and transmitter on; each pair is then started by the
//! core that polls it.

use alloc::format;
use alloc::vec::Vec;

use dataplane::MacAddr;

use crate::device::{Igb, Registers};
use crate::error::IgbError;
use crate::queue::{PairParts, QueuePairSetup, RX_BUFFER_BYTES, RingMemory};
use crate::registers::QUEUES;
use crate::rss::{RedirectionTable, WARPCORE_RSS_KEY};

/// How the pairs of one function are programmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairOptions {
    /// Route each pair's receive and transmit causes to MSI-X vector
    /// `pair` (the platform routes the vector to the pair's core).
    pub msix: bool,
    /// With `msix`: route Link Status Change to MSI-X vector `pairs` (the
    /// platform routes it to pair 0's core, which reads `ICR` and counts
    /// the change).
    pub link_interrupt: bool,
}

/// The redirection table the function gets for `pairs` pairs: entry `i`
/// is queue `i % pairs`. With [`WARPCORE_RSS_KEY`] and
/// [`crate::rss::toeplitz_hash`] it tells which pair a flow lands on.
pub fn redirection_table(pairs: u16) -> RedirectionTable {
    RedirectionTable::spread(pairs.clamp(1, QUEUES) as u8)
}

/// Programs one queue pair per entry of `rings` (pair `i` on queues `i`),
/// RSS over them when there are several (our key, [`redirection_table`]),
/// MSI-X when `options` ask, and turns receiver and transmitter on.
/// Returns the pairs in queue order, named `{name}.q{i}`; pair 0 carries
/// the device (its statistics registers).
pub fn program_queue_pairs<R: Registers + Clone>(
    mut device: Igb<R>,
    rings: Vec<(RingMemory, RingMemory)>,
    name: &str,
    options: PairOptions,
) -> Result<Vec<QueuePairSetup<R>>, IgbError> {
    let pairs = u16::try_from(rings.len()).map_err(|_| IgbError::NoSuchQueue(u16::MAX))?;
    if pairs == 0 || pairs > QUEUES {
        return Err(IgbError::NoSuchQueue(pairs));
    }
    for (queue, (rx, tx)) in (0u16..).zip(&rings) {
        device.configure_rx_queue(queue, rx.device_rings(), RX_BUFFER_BYTES)?;
        device.configure_tx_queue(queue, tx.device_rings())?;
    }
    if pairs > 1 {
        device.configure_rss(&WARPCORE_RSS_KEY, &redirection_table(pairs));
    }
    if options.msix {
        device.configure_msix(pairs, options.link_interrupt)?;
    }
    device.enable_receiver();
    device.enable_transmitter();
    let mac = MacAddr(device.mac());
    // Every pair gets a handle on the registers for its own queue;
    // pair 0 also takes the device itself.
    let handles: Vec<R> = (0..pairs).map(|_| device.register_handle()).collect();
    let mut owner = Some(device);
    let mut setups = Vec::with_capacity(rings.len());
    for ((queue, (rx, tx)), registers) in (0u16..).zip(rings).zip(handles) {
        setups.push(QueuePairSetup::new(PairParts {
            queue,
            registers,
            device: owner.take(),
            rx,
            tx,
            mac,
            interrupts: options.msix,
            name: format!("{name}.q{queue}"),
        }));
    }
    Ok(setups)
}
