//! Each core's `dataplane` executor: a mempool on the core's share of the DMA region,
//! and the poll loop that hibernates after a run of empty polls (and, with
//! `idle = "haltpoll"`, an adaptive polling window): NIC receive interrupts
//! armed, a one-shot timer for the services' next deadline, halted until a
//! packet, another core's wake-up IPI or the timer arrives.

use alloc::sync::Arc;
use core::ptr::NonNull;
use core::sync::atomic::{Ordering, compiler_fence};

use control::spec::IdleMode;
use dataplane::{Doorbell, Executor, HaltPoll, Idle, WakeCause};

use crate::arch::trap::{TIMER_VECTOR, WAKEUP_VECTOR};
use crate::{arch::apic, arch::cpu, arch::percpu, arch::smp, dev::time, mem::dma};

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

/// How a core idles: the spec's `idle`, and the longest it may sleep
/// (`None`: until something wakes it).
#[derive(Clone, Copy, Debug)]
pub struct IdlePolicy {
    /// Halt when idle, poll a while and then halt, or never halt.
    pub mode: IdleMode,
    /// A bound on each sleep, for a core that some source of work cannot
    /// wake: a NIC queue without a receive interrupt (`wakeup=off`, no
    /// MSI-X), or core 0 when the console has no interrupt line.
    pub max_sleep_ns: Option<u64>,
}

impl IdlePolicy {
    /// Halt when idle, until a packet, a doorbell or a deadline (the
    /// scenarios' cores, whose periodic tick also wakes them).
    #[cfg(feature = "scenarios")]
    pub const HALT: Self = Self {
        mode: IdleMode::Halt,
        max_sleep_ns: None,
    };
}

/// The calling core's doorbell: other cores wake it with `WAKEUP_VECTOR`.
pub fn doorbell() -> Arc<Doorbell> {
    let apic_id = percpu::current().apic_id();
    Arc::new(Doorbell::new(move || {
        apic::send_fixed(apic_id, WAKEUP_VECTOR);
    }))
}

/// Polls `executor` while `keep_going()` holds (asked before each poll,
/// a batch boundary: it may replace the executor). With `policy.mode` halt,
/// after `IDLE_POLLS_BEFORE_HALT` (or `idle_polls=N`) empty polls in a row
/// the core hibernates until a packet, a doorbell or its next deadline; with
/// haltpoll it first keeps polling for its adaptive window ([`HaltPoll`],
/// measured from the end of that run of empty polls), and sleeps only when
/// the window runs out; with poll it never stops polling.
pub fn run(
    executor: &mut Executor,
    policy: IdlePolicy,
    mut keep_going: impl FnMut(&mut Executor) -> bool,
) {
    let idle_polls_before_halt = crate::boot::cmdline::get_u64("idle_polls")
        .and_then(|polls| u32::try_from(polls).ok())
        .unwrap_or(IDLE_POLLS_BEFORE_HALT)
        .max(1);
    let mut window = match policy.mode {
        IdleMode::HaltPoll { max_window_us } => {
            Some(HaltPoll::new(u64::from(max_window_us) * 1000))
        }
        IdleMode::Halt | IdleMode::Poll => None,
    };
    let mut idle = 0u32;
    // When the current idle stretch reached `idle_polls_before_halt`
    // (haltpoll only): the start of its polling window.
    let mut window_opened_ns: Option<u64> = None;
    while keep_going(executor) {
        if executor.poll_once() > 0 {
            idle = 0;
            if window_opened_ns.take().is_some() {
                executor.counters().idle.poll_windows_caught.increment();
            }
            continue;
        }
        idle += 1;
        if idle < idle_polls_before_halt || policy.mode == IdleMode::Poll {
            continue;
        }
        let Some(window) = &mut window else {
            idle = 0;
            hibernate(executor, policy.max_sleep_ns);
            continue;
        };
        let now = time::now_ns();
        let opened = *window_opened_ns.get_or_insert(now);
        if window.keep_polling(now.saturating_sub(opened)) {
            continue;
        }
        idle = 0;
        window_opened_ns = None;
        executor.counters().idle.poll_windows_timed_out.increment();
        if hibernate(executor, policy.max_sleep_ns) {
            window.after_sleep(time::now_ns().saturating_sub(opened));
            executor
                .counters()
                .idle
                .poll_window_ns
                .set(window.window_ns());
        }
    }
}

/// Prepares the sleep (doorbell announced, receive interrupts armed, one
/// more look for work) and, unless work turned up, halts until an interrupt
/// arrives, with the LAPIC timer armed once for the services' next deadline
/// (bounded by `max_sleep_ns`); then back to polling, the sleep counted
/// under what ended it. Without a deadline or bound no timer is armed: a
/// periodic timer the core runs (the scenarios') stays as it is. Returns
/// whether the core slept (false: the last look found work).
///
/// Interrupts stay disabled from preparing to `sti; hlt`: a receive
/// interrupt or wake-up IPI raised after the last look stays pending in the
/// LAPIC and ends the `hlt` at once, instead of running its handler before
/// the `hlt` and leaving the core asleep.
fn hibernate(executor: &mut Executor, max_sleep_ns: Option<u64>) -> bool {
    let interrupts = &percpu::current().interrupts;
    cpu::disable_interrupts();
    let Idle::Sleep { deadline_ns } = executor.prepare_sleep() else {
        // SAFETY: the IDT is loaded on this core and handles every vector in use.
        unsafe { cpu::enable_interrupts() };
        return false;
    };
    let now = time::now_ns();
    let sleep_ns = [
        deadline_ns.map(|deadline| deadline.saturating_sub(now)),
        max_sleep_ns,
    ]
    .into_iter()
    .flatten()
    .min();
    if let Some(sleep_ns) = sleep_ns {
        apic::start_one_shot_timer(TIMER_VECTOR, sleep_ns);
    }
    let before = interrupts.read();
    // The avail-flag stores of `prepare_sleep` are issued before the halt.
    compiler_fence(Ordering::SeqCst);
    // SAFETY: the IDT is loaded on this core and handles every vector in use.
    unsafe { cpu::enable_interrupts_and_halt() };
    compiler_fence(Ordering::SeqCst);
    if sleep_ns.is_some() {
        apic::stop_timer();
    }
    let after = interrupts.read();
    let woken_by = if after.nic != before.nic {
        WakeCause::Packet
    } else if after.wakeup != before.wakeup {
        WakeCause::Doorbell
    } else if after.timer != before.timer {
        WakeCause::Timer
    } else {
        WakeCause::Other
    };
    executor.finish_sleep(woken_by);
    true
}
