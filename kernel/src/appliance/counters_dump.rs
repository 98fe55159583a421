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
//! counter core=0 interrupts=timer value=3
//! counter core=0 nic=virtio0.q0 stat=rx_packets value=412
//! counter core=0 node=ipv4 stat=received value=300
//! counter core=0 node=ipv4 stat=emitted value=290
//! counter core=0 node=ipv4 drop=bad-checksum value=3
//! counters end
//! ```
//!
//! Counters are read on core 0 while the others keep running: each value is
//! one that was true at some point (see `dataplane::Counter`).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use dataplane::stats::{CoreCounters, CountersDump};
use spin::Mutex;

/// The counters of one NIC queue pair, by driver.
pub enum NicStats {
    /// A virtio-net queue pair.
    Virtio(Arc<virtio_net::QueueStats>),
    /// An igb queue pair, with its device's statistics registers.
    Igb(Arc<igb::QueueStats>),
}

/// The serial byte that asks for a dump.
pub const DUMP_REQUEST: u8 = b'c';

/// One core's counters.
struct CoreReport {
    core: u32,
    executor: Arc<CoreCounters>,
    queues: Vec<(String, NicStats)>,
}

static REPORTS: Mutex<Vec<CoreReport>> = Mutex::new(Vec::new());

/// Registers core `core`'s counters (once, when its executor is built).
pub fn register(core: u32, executor: Arc<CoreCounters>, queues: Vec<(String, NicStats)>) {
    let mut reports = REPORTS.lock();
    reports.push(CoreReport {
        core,
        executor,
        queues,
    });
    reports.sort_by_key(|report| report.core);
}

/// Core `core` swapped its graph (a new spec): its executor counters are
/// `executor` from now on (they go on from the old totals).
pub fn replace_executor(core: u32, executor: Arc<CoreCounters>) {
    if let Some(report) = REPORTS.lock().iter_mut().find(|report| report.core == core) {
        report.executor = executor;
    }
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

/// Prints every registered counter, the whole dump in one console write so
/// that no other core's log line lands inside it.
pub fn print() {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = write_dump(&mut text);
    crate::kprint!("{text}");
}

/// Writes the dump of every registered core into `text`.
fn write_dump(text: &mut String) -> fmt::Result {
    let reports = REPORTS.lock();
    let mut dump = CountersDump::begin(text, reports.len())?;
    for report in reports.iter() {
        let core = report.core as usize;
        dump.executor(core, &report.executor)?;
        if let Some(record) = crate::arch::smp::record(core) {
            dump.labelled(core, "interrupts", record.interrupts.entries())?;
        }
        for (queue, stats) in &report.queues {
            match stats {
                NicStats::Virtio(stats) => dump.stats(core, "nic", queue, stats.entries())?,
                NicStats::Igb(stats) => dump.stats(core, "nic", queue, stats.entries())?,
            }
        }
        dump.nodes(core, &report.executor)?;
    }
    dump.end()
}
