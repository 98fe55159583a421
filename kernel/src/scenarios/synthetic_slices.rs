//! Alternating slices of the synthetic local mode (`synthetic_slice_ms=S`):
//! one boot measures 2 pipeline cores and 1 in turn, so that a host CPU
//! that slows down for a few seconds weighs on both figures alike.
//!
//! The measured window is cut into slices of S ms: all pipeline cores, then
//! core 1 alone, all, core 2 alone, and so on (the core that runs alone
//! takes turns: this host's slow spells hit one of its CPUs at a time, and
//! the 1-core figure then averages the CPUs that the all-cores figure
//! sums). A core whose turn it is not parks: it halts, its echoes waiting
//! in its own queue, until core 0's wake-up IPI at the next slice. Each
//! pipeline core counts the echoes it turns around by the kind of slice
//! they fall in; core 0 adds up each kind's TSC time and prints
//!
//! ```text
//! synthetic slices=10 slice_ms=200 one_core_mpps=3.012 all_cores_mpps=6.105
//! ```
//!
//! packets per second of wall time in each kind of slice, the 1-core figure
//! per running core.

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering, fence};

use crate::arch::{apic, cpu, smp, trap::WAKEUP_VECTOR};

/// The slice kinds, index into the per-kind counts.
pub const SLICE_ALL: usize = 0;
/// One pipeline core runs, the others are parked.
pub const SLICE_ALONE: usize = 1;

/// Pipeline cores that may run (bit per core): all of them except in a
/// slice where one runs alone.
static ACTIVE: AtomicU64 = AtomicU64::new(u64::MAX);
/// The kind of the current slice.
static KIND: AtomicU8 = AtomicU8::new(SLICE_ALL as u8);

/// The kind of slice the calling pipeline core is in now.
pub fn current_kind() -> usize {
    // Ordering: Relaxed: a burst counted in the neighbouring slice moves a
    // few dozen packets between figures of millions.
    usize::from(KIND.load(Ordering::Relaxed)).min(SLICE_ALONE)
}

/// Whether pipeline core `core` may poll now.
pub fn may_run(core: usize) -> bool {
    // Acquire: pairs with core 0's Release in `Slicer::enter`.
    ACTIVE.load(Ordering::Acquire) & (1 << core) != 0
}

/// Halts pipeline core `core` while it is parked, until core 0's IPI.
pub fn park(core: usize) {
    cpu::disable_interrupts();
    if !may_run(core) {
        // SAFETY: the IDT is loaded; an IPI sent since the check is pending
        // and ends the `hlt` at once (`sti; hlt` opens no window).
        unsafe { cpu::enable_interrupts_and_halt() };
    } else {
        // SAFETY: the IDT is loaded on this core.
        unsafe { cpu::enable_interrupts() };
    }
}

/// Core 0's side: the slice schedule and each kind's TSC time.
pub struct Slicer {
    /// Slice length.
    pub slice_ns: u64,
    pipelines: usize,
    /// Slices begun so far, less one.
    index: u64,
    /// When the window began (ns): slice `i` is due at `origin + i × slice_ns`,
    /// however late core 0 wakes for the one before.
    origin: u64,
    /// When the current slice began (TSC).
    start: u64,
    /// TSC cycles spent in each kind of slice.
    cycles: [u64; 2],
}

impl Slicer {
    /// A schedule of `slice_ns` slices over `pipelines` pipeline cores.
    pub fn new(slice_ns: u64, pipelines: usize) -> Self {
        Self {
            slice_ns,
            pipelines,
            index: 0,
            origin: 0,
            start: 0,
            cycles: [0; 2],
        }
    }

    /// Opens the first slice (all cores) at the window's start.
    pub fn begin(&mut self, now: (u64, u64)) {
        (self.origin, self.start) = now;
        Self::enter(SLICE_ALL, u64::MAX, self.pipelines);
    }

    /// When the current slice ends (ns).
    pub fn deadline(&self) -> u64 {
        self.origin + (self.index + 1) * self.slice_ns
    }

    /// Moves to the next slice if the current one is over at `now`.
    pub fn advance(&mut self, now: (u64, u64)) {
        if now.0 < self.deadline() {
            return;
        }
        self.close(now.1);
        self.index += 1;
        self.start = now.1;
        if self.index.is_multiple_of(2) {
            Self::enter(SLICE_ALL, u64::MAX, self.pipelines);
        } else {
            let alone = 1 + (self.index / 2) as usize % self.pipelines;
            Self::enter(SLICE_ALONE, 1 << alone, self.pipelines);
        }
    }

    /// Ends the window at TSC `now`: every core runs again (for the drain).
    /// Returns the slices and each kind's TSC cycles.
    pub fn finish(&mut self, now: u64) -> (u64, [u64; 2]) {
        self.close(now);
        Self::enter(SLICE_ALL, u64::MAX, self.pipelines);
        (self.index + 1, self.cycles)
    }

    fn close(&mut self, now: u64) {
        let kind = current_kind();
        self.cycles[kind] += now.saturating_sub(self.start);
    }

    /// Publishes a slice and wakes every pipeline core to look at it.
    fn enter(kind: usize, active: u64, pipelines: usize) {
        // Release: a core that sees the new mask sees the kind too.
        KIND.store(kind as u8, Ordering::Release);
        ACTIVE.store(active, Ordering::Release);
        // Ordering: the stores before the IPIs (an x2APIC ICR write is not
        // a serializing instruction).
        fence(Ordering::SeqCst);
        for core in 1..=pipelines {
            if let Some(record) = smp::record(core) {
                apic::send_fixed(record.apic_id(), WAKEUP_VECTOR);
            }
        }
    }
}
