//! The appliance's counters, readable from outside: every core registers its
//! executor's and NIC queues' counters here, and core 0 prints them all on the
//! serial console when a `c` arrives on the serial input (QEMU's stdin).
//!
//! The dump is machine-readable, one counter per line, between two markers:
//!
//! ```text
//! counters begin cores=2
//! counter core=0 executor=rx_packets value=412
//! counter core=0 idle=wakeups_by_packet value=97
//! counter core=0 nic=virtio0.q0 stat=rx_packets value=412
//! counter core=0 node=ipv4 stat=received value=300
//! counter core=0 node=ipv4 drop=bad-checksum value=3
//! counters end
//! ```
//!
//! Counters are read on core 0 while the others keep running: each value is
//! one that was true at some point (see `dataplane::Counter`).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use dataplane::stats::CoreCounters;
use spin::Mutex;
use virtio_net::QueueStats;

/// The serial byte that asks for a dump.
pub const DUMP_REQUEST: u8 = b'c';

/// One core's counters.
struct CoreReport {
    core: u32,
    executor: Arc<CoreCounters>,
    queues: Vec<(String, Arc<QueueStats>)>,
}

static REPORTS: Mutex<Vec<CoreReport>> = Mutex::new(Vec::new());

/// Registers core `core`'s counters (once, when its executor is built).
pub fn register(core: u32, executor: Arc<CoreCounters>, queues: Vec<(String, Arc<QueueStats>)>) {
    let mut reports = REPORTS.lock();
    reports.push(CoreReport {
        core,
        executor,
        queues,
    });
    reports.sort_by_key(|report| report.core);
}

/// Prints the dump if a request byte arrived on the serial input.
pub fn poll_request() {
    let mut requested = false;
    while let Some(byte) = crate::dev::serial::read_byte() {
        requested |= byte == DUMP_REQUEST;
    }
    if requested {
        print();
    }
}

/// Prints every registered counter.
pub fn print() {
    let reports = REPORTS.lock();
    crate::kprintln!("counters begin cores={}", reports.len());
    for report in reports.iter() {
        let core = report.core;
        let executor = &report.executor;
        for (name, value) in [
            ("polls", executor.polls.get()),
            ("rx_packets", executor.rx_packets.get()),
            ("tx_packets", executor.tx_packets.get()),
            ("tx_dropped", executor.tx_dropped.get()),
            ("queue_full_drops", executor.queue_full_drops.get()),
            ("pass_limit_drops", executor.pass_limit_drops.get()),
            ("unconsumed_drops", executor.unconsumed_drops.get()),
            ("discarded", executor.discarded.get()),
        ] {
            crate::kprintln!("counter core={core} executor={name} value={value}");
        }
        if let Some(record) = crate::arch::smp::record(core as usize) {
            for (name, value) in record.wakeups.entries() {
                crate::kprintln!("counter core={core} idle={name} value={value}");
            }
        }
        for (queue, stats) in &report.queues {
            for (name, value) in stats.entries() {
                crate::kprintln!("counter core={core} nic={queue} stat={name} value={value}");
            }
        }
        for node in &executor.nodes {
            let name = node.name;
            crate::kprintln!(
                "counter core={core} node={name} stat=received value={}",
                node.received.get()
            );
            crate::kprintln!(
                "counter core={core} node={name} stat=emitted value={}",
                node.emitted.get()
            );
            for (index, reason) in node.drop_reasons.iter().enumerate() {
                let value = node.drops[index.min(node.drops.len() - 1)].get();
                crate::kprintln!("counter core={core} node={name} drop={reason} value={value}");
            }
        }
    }
    crate::kprintln!("counters end");
}
