//! Each core's `dataplane` executor: a mempool on the core's share of the DMA region,
//! and the poll loop that hibernates after a run of empty polls: NIC receive
//! interrupts armed, halted until a packet (or the tick) arrives.

use core::ptr::NonNull;
use core::sync::atomic::{Ordering, compiler_fence};

use dataplane::Executor;

use crate::{arch::cpu, arch::percpu, arch::smp, mem::dma};

/// Empty polls in a row after which a core halts until the next interrupt,
/// unless the command line says `idle_polls=N`. Short: under TCG a spinning
/// vCPU takes host time from QEMU's I/O thread, and a packet wakes the core.
pub const IDLE_POLLS_BEFORE_HALT: u32 = 16;

/// Why a core could not get its executor.
#[allow(dead_code)] // fields are reported through Debug
#[derive(Debug)]
pub enum CoreExecutorError {
    /// The DMA region is missing or too small to give this core a share.
    NoDmaShare,
    /// The mempool rejected the region.
    Mempool(dataplane::MempoolError),
    /// The graph could not be built.
    Build(dataplane::ExecutorError),
}

/// This core's share of the DMA region as a dataplane region.
pub fn dma_share(core_id: u32) -> Result<dataplane::DmaRegion, CoreExecutorError> {
    let region = dma::region().ok_or(CoreExecutorError::NoDmaShare)?;
    let share = region
        .part(smp::core_count(), core_id as usize)
        .ok_or(CoreExecutorError::NoDmaShare)?;
    let virt = NonNull::new(share.virt).ok_or(CoreExecutorError::NoDmaShare)?;
    let phys = region
        .virt_to_phys(share.virt)
        .ok_or(CoreExecutorError::NoDmaShare)?;
    debug_assert_eq!(region.phys_to_virt(phys), Some(share.virt));
    // SAFETY: shares of the DMA region are disjoint, 4 KiB aligned, identity mapped
    // (phys == virt), physically contiguous, never freed, and each core takes its own
    // share exactly once (this function is called once per core by `build`).
    Ok(unsafe { dataplane::DmaRegion::from_raw(virt, phys, share.len) })
}

/// Builds the calling core's executor with a mempool over its DMA share.
/// Call once per core, on that core (the pool belongs to the calling core).
/// Scenarios only: the appliance builds its graph from the spec.
#[cfg(feature = "scenarios")]
pub fn build(core_id: u32) -> Result<Executor, CoreExecutorError> {
    use dataplane::{ExecutorBuilder, Mempool, MempoolConfig};
    let region = dma_share(core_id)?;
    let pool =
        Mempool::new(region, MempoolConfig::default()).map_err(CoreExecutorError::Mempool)?;
    let mut builder = ExecutorBuilder::new();
    builder.pool(pool);
    builder.build().map_err(CoreExecutorError::Build)
}

/// Polls `executor` while `keep_going()` holds; after `IDLE_POLLS_BEFORE_HALT`
/// (or `idle_polls=N`) empty polls in a row the core hibernates until a
/// packet (or the tick) wakes it.
pub fn run(executor: &mut Executor, mut keep_going: impl FnMut(&Executor) -> bool) {
    let idle_polls_before_halt = crate::boot::cmdline::get_u64("idle_polls")
        .and_then(|polls| u32::try_from(polls).ok())
        .unwrap_or(IDLE_POLLS_BEFORE_HALT)
        .max(1);
    let mut idle = 0u32;
    while keep_going(executor) {
        if executor.poll_once() == 0 {
            idle += 1;
        } else {
            idle = 0;
        }
        if idle >= idle_polls_before_halt {
            idle = 0;
            hibernate(executor);
        }
    }
}

/// Arms every port's receive interrupt and halts until an interrupt arrives,
/// unless a port already has packets; then back to polling with the
/// interrupts off. Counts what ended the halt in this core's `Wakeups`.
///
/// Interrupts stay disabled from arming to `sti; hlt`: a receive interrupt
/// raised after `enable_wakeup` looked at the rings stays pending in the
/// LAPIC and ends the `hlt` at once, instead of running its handler before
/// the `hlt` and leaving us asleep until the tick.
fn hibernate(executor: &mut Executor) {
    let record = percpu::current();
    let wakeups = &record.wakeups;
    cpu::disable_interrupts();
    // Relaxed throughout: per-core statistics; the interrupt handlers that
    // bump `ticks` and `nic_interrupts` run on this core.
    if !executor.enable_wakeup() {
        wakeups.refused.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the IDT is loaded on this core and handles every vector in use.
        unsafe { cpu::enable_interrupts() };
        return;
    }
    let nic_before = record.nic_interrupts.load(Ordering::Relaxed);
    let ticks_before = record.ticks.load(Ordering::Relaxed);
    // The avail-flag stores of `enable_wakeup` are issued before the halt.
    compiler_fence(Ordering::SeqCst);
    // SAFETY: the IDT is loaded on this core and handles every vector in use.
    unsafe { cpu::enable_interrupts_and_halt() };
    compiler_fence(Ordering::SeqCst);
    executor.disable_wakeup();
    wakeups.halts.fetch_add(1, Ordering::Relaxed);
    let woken_by = if record.nic_interrupts.load(Ordering::Relaxed) != nic_before {
        &wakeups.by_packet
    } else if record.ticks.load(Ordering::Relaxed) != ticks_before {
        &wakeups.by_tick
    } else {
        &wakeups.by_other
    };
    woken_by.fetch_add(1, Ordering::Relaxed);
}
