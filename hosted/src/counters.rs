//! The counters dump: every executor, node and driver counter of every core
//! as `counter core=C <what>=<name>... value=N` lines between
//! `counters begin` and `counters end`, for people and for tests to parse,
//! written by the appliance's writer (`dataplane::stats::CountersDump`).

use af_packet_nic::AfPacketStats;
use af_xdp_nic::AfXdpStats;
use dataplane::stats::{CoreCounters, CountersDump};
use std::sync::{Arc, Mutex, PoisonError};
use tap_nic::TapStats;

/// A core's executor counters, replaced when a new spec swaps its graph
/// (the new ones go on from the old totals).
pub type CountersSlot = Arc<Mutex<Arc<CoreCounters>>>;

/// A driver's counters, kept after its NIC moved into an executor.
#[derive(Debug, Clone)]
pub enum DriverStats {
    /// A tap queue.
    Tap(Arc<TapStats>),
    /// An AF_PACKET socket.
    AfPacket(Arc<AfPacketStats>),
    /// An AF_XDP socket.
    AfXdp(Arc<AfXdpStats>),
}

/// What one core publishes once it runs.
#[derive(Debug, Clone)]
pub struct CoreReport {
    /// The core's index.
    pub core: usize,
    /// Its executor's counters.
    pub counters: CountersSlot,
    /// Its NIC queues: name and counters.
    pub nics: Vec<(String, DriverStats)>,
}

/// Formats the dump of `cores` (`dataplane::stats::CountersDump`).
pub fn dump(cores: &[CoreReport]) -> String {
    let mut text = String::new();
    write_dump(&mut text, cores).expect("writing to a String cannot fail");
    text
}

fn write_dump(text: &mut String, cores: &[CoreReport]) -> std::fmt::Result {
    let mut dump = CountersDump::begin(text, cores.len())?;
    for report in cores {
        let counters = Arc::clone(
            &report
                .counters
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        dump.executor(report.core, &counters)?;
        dump.nodes(report.core, &counters)?;
        for (nic, stats) in &report.nics {
            dump.stats(report.core, "nic", nic, driver_counters(stats))?;
        }
    }
    dump.end()
}

fn driver_counters(stats: &DriverStats) -> Vec<(&'static str, u64)> {
    match stats {
        DriverStats::Tap(tap) => vec![
            ("rx_packets", tap.rx_packets.get()),
            ("rx_bytes", tap.rx_bytes.get()),
            ("rx_errors", tap.rx_errors.get()),
            ("rx_no_buffer", tap.rx_no_buffer.get()),
            ("tx_packets", tap.tx_packets.get()),
            ("tx_bytes", tap.tx_bytes.get()),
            ("tx_full", tap.tx_full.get()),
            ("tx_errors", tap.tx_errors.get()),
        ],
        DriverStats::AfPacket(socket) => vec![
            ("rx_packets", socket.rx_packets.get()),
            ("rx_bytes", socket.rx_bytes.get()),
            ("rx_truncated", socket.rx_truncated.get()),
            (
                "rx_checksums_completed",
                socket.rx_checksums_completed.get(),
            ),
            ("rx_outgoing_skipped", socket.rx_outgoing_skipped.get()),
            ("rx_no_buffer", socket.rx_no_buffer.get()),
            ("tx_sendmmsg", socket.tx_sendmmsg.get()),
            ("tx_packets", socket.tx_packets.get()),
            ("tx_bytes", socket.tx_bytes.get()),
            ("tx_ring_full", socket.tx_ring_full.get()),
            ("tx_too_large", socket.tx_too_large.get()),
            ("tx_wrong_format", socket.tx_wrong_format.get()),
            ("tx_doorbell_errors", socket.tx_doorbell_errors.get()),
            ("tx_doorbell_busy", socket.tx_doorbell_busy.get()),
            ("tx_doorbells", socket.tx_doorbells.get()),
            ("tx_doorbells_pending", socket.tx_doorbells_pending.get()),
            (
                "tx_doorbells_cut_short",
                socket.tx_doorbells_cut_short.get(),
            ),
            ("tx_doorbells_rx_empty", socket.tx_doorbells_rx_empty.get()),
            (
                "tx_doorbells_deferred_polls",
                socket.tx_doorbells_deferred_polls.get(),
            ),
            ("tx_rekicks", socket.tx_rekicks.get()),
        ],
        DriverStats::AfXdp(socket) => vec![
            ("zero_copy", socket.zero_copy.get()),
            ("busy_poll", socket.busy_poll.get()),
            ("napi_id", socket.napi_id.get()),
            ("rx_busy_polls", socket.rx_busy_polls.get()),
            ("rx_packets", socket.rx_packets.get()),
            ("rx_bytes", socket.rx_bytes.get()),
            ("rx_invalid", socket.rx_invalid.get()),
            ("fill_posted", socket.fill_posted.get()),
            ("fill_no_buffer", socket.fill_no_buffer.get()),
            ("rx_wakeups", socket.rx_wakeups.get()),
            ("tx_packets", socket.tx_packets.get()),
            ("tx_bytes", socket.tx_bytes.get()),
            ("tx_copied", socket.tx_copied.get()),
            ("tx_ring_full", socket.tx_ring_full.get()),
            ("tx_no_buffer", socket.tx_no_buffer.get()),
            ("tx_wakeups", socket.tx_wakeups.get()),
            ("tx_completed", socket.tx_completed.get()),
            ("wakeups_busy", socket.wakeups_busy.get()),
            ("wakeup_errors", socket.wakeup_errors.get()),
            ("kernel_rx_dropped", socket.kernel_rx_dropped.get()),
            (
                "kernel_rx_invalid_descs",
                socket.kernel_rx_invalid_descs.get(),
            ),
            (
                "kernel_tx_invalid_descs",
                socket.kernel_tx_invalid_descs.get(),
            ),
            ("kernel_rx_ring_full", socket.kernel_rx_ring_full.get()),
            (
                "kernel_rx_fill_ring_empty",
                socket.kernel_rx_fill_ring_empty.get(),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_lists_executor_and_driver_counters() {
        let counters = Arc::new(CoreCounters::default());
        counters.rx_packets.add(5);
        let tap = Arc::new(TapStats::default());
        tap.tx_packets.add(3);
        let text = dump(&[CoreReport {
            core: 1,
            counters: Arc::new(Mutex::new(counters)),
            nics: vec![("tap:wc0.q1".into(), DriverStats::Tap(tap))],
        }]);
        assert!(text.contains("counter core=1 executor=rx_packets value=5\n"));
        assert!(text.contains("counter core=1 nic=tap:wc0.q1 stat=tx_packets value=3\n"));
        assert!(text.starts_with("counters begin cores=1\n"));
        assert!(text.ends_with("counters end\n"));
    }
}
