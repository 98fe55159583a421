//! Each core's `dataplane` executor: a mempool on the core's share of the DMA region,
//! and the poll loop that halts after a run of empty polls until an interrupt arrives.

use core::ptr::NonNull;

use dataplane::{Executor, ExecutorBuilder, Mempool, MempoolConfig};

use crate::{cpu, dma, smp};

/// Empty polls in a row after which a core halts until the next interrupt.
pub const IDLE_POLLS_BEFORE_HALT: u32 = 64;

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
pub fn build(core_id: u32) -> Result<Executor, CoreExecutorError> {
    let region = dma_share(core_id)?;
    let pool =
        Mempool::new(region, MempoolConfig::default()).map_err(CoreExecutorError::Mempool)?;
    let mut builder = ExecutorBuilder::new();
    builder.pool(pool);
    builder.build().map_err(CoreExecutorError::Build)
}

/// Polls `executor` while `keep_going()` holds, halting after
/// `IDLE_POLLS_BEFORE_HALT` empty polls in a row (the LAPIC tick or an IPI wakes us).
pub fn run(executor: &mut Executor, mut keep_going: impl FnMut(&Executor) -> bool) {
    let mut idle = 0u32;
    while keep_going(executor) {
        if executor.poll_once() == 0 {
            idle += 1;
        } else {
            idle = 0;
        }
        if idle >= IDLE_POLLS_BEFORE_HALT {
            idle = 0;
            // SAFETY: the IDT is loaded on this core and handles every vector in use.
            unsafe { cpu::enable_interrupts_and_halt() };
        }
    }
}
