//! The counters dump: every executor, node and driver counter of every core
//! as `counter core=C <what>=<name>... value=N` lines, ended by
//! `counters end`, for people and for tests to parse.

use af_packet_nic::AfPacketStats;
use dataplane::stats::CoreCounters;
use std::fmt::Write;
use std::sync::Arc;
use tap_nic::TapStats;

/// A driver's counters, kept after its NIC moved into an executor.
#[derive(Debug, Clone)]
pub enum DriverStats {
    /// A tap queue.
    Tap(Arc<TapStats>),
    /// An AF_PACKET socket.
    AfPacket(Arc<AfPacketStats>),
}

/// What one core publishes once it runs.
#[derive(Debug, Clone)]
pub struct CoreReport {
    /// The core's index.
    pub core: usize,
    /// Its executor's counters.
    pub counters: Arc<CoreCounters>,
    /// Its NIC queues: name and counters.
    pub nics: Vec<(String, DriverStats)>,
}

/// Formats the dump of `cores`.
pub fn dump(cores: &[CoreReport]) -> String {
    let mut text = String::new();
    for report in cores {
        let core = report.core;
        let counters = &report.counters;
        for (name, value) in [
            ("polls", counters.polls.get()),
            ("idle_polls", counters.idle_polls.get()),
            ("rx_packets", counters.rx_packets.get()),
            ("tx_packets", counters.tx_packets.get()),
            ("tx_dropped", counters.tx_dropped.get()),
            ("ring_out_packets", counters.ring_out_packets.get()),
            ("ring_full_drops", counters.ring_full_drops.get()),
            ("queue_full_drops", counters.queue_full_drops.get()),
            ("pass_limit_drops", counters.pass_limit_drops.get()),
            ("unconsumed_drops", counters.unconsumed_drops.get()),
            ("discarded", counters.discarded.get()),
        ] {
            let _ = writeln!(text, "counter core={core} executor={name} value={value}");
        }
        for node in &counters.nodes {
            let name = node.name;
            for (counter, value) in [
                ("received", node.received.get()),
                ("emitted", node.emitted.get()),
                ("invalid_output", node.invalid_output.get()),
            ] {
                let _ = writeln!(
                    text,
                    "counter core={core} node={name} counter={counter} value={value}"
                );
            }
            for reason in node.drop_reasons {
                let value = node.drops_named(reason).unwrap_or(0);
                let _ = writeln!(
                    text,
                    "counter core={core} node={name} drop={reason} value={value}"
                );
            }
        }
        for (nic, stats) in &report.nics {
            for (counter, value) in driver_counters(stats) {
                let _ = writeln!(
                    text,
                    "counter core={core} nic={nic} counter={counter} value={value}"
                );
            }
        }
    }
    text.push_str("counters end\n");
    text
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
            ("tx_packets", socket.tx_packets.get()),
            ("tx_bytes", socket.tx_bytes.get()),
            ("tx_ring_full", socket.tx_ring_full.get()),
            ("tx_too_large", socket.tx_too_large.get()),
            ("tx_wrong_format", socket.tx_wrong_format.get()),
            ("tx_doorbell_errors", socket.tx_doorbell_errors.get()),
            ("tx_doorbell_busy", socket.tx_doorbell_busy.get()),
            ("tx_rekicks", socket.tx_rekicks.get()),
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
            counters,
            nics: vec![("tap:wc0.q1".into(), DriverStats::Tap(tap))],
        }]);
        assert!(text.contains("counter core=1 executor=rx_packets value=5\n"));
        assert!(text.contains("counter core=1 nic=tap:wc0.q1 counter=tx_packets value=3\n"));
        assert!(text.ends_with("counters end\n"));
    }
}
