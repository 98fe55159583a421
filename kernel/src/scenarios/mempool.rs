//! Mempool exhaustion and refill: core 0 drains its executor's pool to empty, checks
//! the count and the exhaustion counter, frees everything, and repeats; then it hands
//! every buffer to core 1, which drops them (the remote-return path), and checks that
//! all of them come back. Nothing may leak.

use alloc::vec::Vec;
use arrayvec::ArrayVec;
use core::sync::atomic::{AtomicU64, Ordering};
use dataplane::{Consumer, Mempool, Packet, SpscRing};
use spin::Mutex;

use crate::dev::exit::{ExitCode, exit_qemu};
use crate::runtime::idle_forever;
use crate::scenarios::dispatch::fail;
use crate::{appliance::executor, arch::cpu, dev::time};

/// Rounds of local exhaust-and-refill.
const ROUNDS: u64 = 3;
/// Ring from core 0 to core 1 carrying packets to drop remotely.
static TO_CORE1: Mutex<Option<Consumer<Packet>>> = Mutex::new(None);
/// Packets core 1 dropped.
static DROPPED_BY_CORE1: AtomicU64 = AtomicU64::new(0);

/// Runs the scenario's role for `core_id`.
pub fn run(core_id: u32) -> ! {
    match core_id {
        0 => owner(),
        1 => remote_dropper(),
        _ => idle_forever(),
    }
}

/// Allocates until the pool is empty; returns the packets.
fn drain(pool: &Mempool) -> Vec<Packet> {
    let mut packets = Vec::with_capacity(pool.capacity());
    while let Some(packet) = pool.alloc() {
        packets.push(packet);
    }
    packets
}

fn owner() -> ! {
    let executor = match executor::build(0) {
        Ok(executor) => executor,
        Err(error) => fail("mempool", format_args!("no executor: {error:?}")),
    };
    let Some(pool) = executor.pool() else {
        fail("mempool", format_args!("executor has no pool"))
    };
    let capacity = pool.capacity();
    for round in 1..=ROUNDS {
        let exhausted_before = pool.stats().exhausted;
        let packets = drain(pool);
        let mut addresses: Vec<u64> = packets.iter().map(Packet::phys_addr).collect();
        addresses.sort_unstable();
        addresses.dedup();
        if packets.len() != capacity || addresses.len() != capacity {
            fail(
                "mempool",
                format_args!(
                    "round {round}: {} packets, {} distinct, capacity {capacity}",
                    packets.len(),
                    addresses.len()
                ),
            );
        }
        if pool.stats().exhausted != exhausted_before + 1 || pool.alloc().is_some() {
            fail(
                "mempool",
                format_args!("round {round}: exhaustion not reported"),
            );
        }
        drop(packets);
        if pool.available() != capacity {
            fail(
                "mempool",
                format_args!(
                    "round {round}: {} of {capacity} back after refill",
                    pool.available()
                ),
            );
        }
    }
    crate::kprintln!("scenario mempool: {ROUNDS} local rounds of {capacity} buffers ok");
    if crate::arch::smp::core_count() >= 2 {
        remote_round(pool, capacity);
    }
    let stats = pool.stats();
    crate::kprintln!("scenario mempool: stats {stats:?}");
    if pool.available() != capacity {
        fail(
            "mempool",
            format_args!(
                "leak: {} of {capacity} available at the end",
                pool.available()
            ),
        );
    }
    crate::kprintln!("scenario mempool: PASS");
    exit_qemu(ExitCode::Success)
}

/// Sends every buffer to core 1 to be dropped there and waits for all to return.
fn remote_round(pool: &Mempool, capacity: usize) {
    let Ok((mut producer, consumer)) = SpscRing::with_capacity(1024) else {
        fail("mempool", format_args!("could not make ring"))
    };
    *TO_CORE1.lock() = Some(consumer);
    let remote_before = pool.stats().remote_returns;
    let mut packets = drain(pool);
    let start = time::now_ns();
    let mut burst: ArrayVec<Packet, 32> = ArrayVec::new();
    while !packets.is_empty() || !burst.is_empty() {
        while !burst.is_full() {
            let Some(packet) = packets.pop() else { break };
            burst.push(packet);
        }
        producer.push_burst(&mut burst);
        if time::now_ns() - start > 30_000_000_000 {
            fail("mempool", format_args!("core 1 stopped taking packets"));
        }
    }
    // Ordering: Acquire pairs with core 1's Release `fetch_add`: its drops (the
    // return-queue pushes) happened before the count we see.
    while DROPPED_BY_CORE1.load(Ordering::Acquire) < capacity as u64 {
        if time::now_ns() - start > 30_000_000_000 {
            fail(
                "mempool",
                format_args!(
                    "core 1 dropped only {}",
                    DROPPED_BY_CORE1.load(Ordering::Acquire)
                ),
            );
        }
        cpu::pause();
    }
    let available = pool.available();
    let remote = pool.stats().remote_returns - remote_before;
    crate::kprintln!(
        "scenario mempool: core 1 dropped {capacity}, {remote} came back remotely, {available} available"
    );
    if available != capacity || remote != capacity as u64 {
        fail(
            "mempool",
            format_args!(
                "remote refill incomplete: {available} available, {remote} remote returns"
            ),
        );
    }
}

fn remote_dropper() -> ! {
    let mut consumer = loop {
        if let Some(consumer) = TO_CORE1.lock().take() {
            break consumer;
        }
        cpu::pause();
    };
    let mut burst: ArrayVec<Packet, 32> = ArrayVec::new();
    loop {
        let count = consumer.pop_burst(&mut burst);
        burst.clear(); // drops the packets on this core: they return remotely
        // Release: the drops happened before the count is seen.
        DROPPED_BY_CORE1.fetch_add(count as u64, Ordering::Release);
        if count == 0 {
            cpu::pause();
        }
    }
}
