//! In-guest synthetic load (`test=synthetic`): core 0 generates UDP echo
//! requests and every other core runs the appliance's echo pipeline
//! (`services::pipeline::build_core` over the built-in echo spec) on a NIC made
//! of two `SpscRing`s, so pipeline capacity is measured without QEMU's device
//! emulation.
//!
//! The generator prebuilds `IN_FLIGHT` request frames per pipeline core. Each
//! reply that comes back is checked (addresses, ports, tag; with
//! `synthetic_verify=full` also checksums and payload) and turned around into
//! the request it answered (MACs, addresses and ports swapped back; the echo
//! keeps the checksums valid and the TTL at 64, as the request had it), so
//! the steady state allocates nothing. Nobody spins while idle: the
//! generator halts between bursts on a fast tick, and a pipeline core whose
//! request ring ran dry halts until the generator's IPI. Under TCG a spinning
//! vCPU takes a host core from the others.
//!
//! `synthetic_generator=local` (with `synthetic_ms`) moves the generator's
//! per-packet work onto the pipeline cores: core 0 still builds the requests
//! and collects the last echoes, but in between every pipeline core's ring
//! NIC checks and turns its own echoes around into requests. On a host with
//! fewer CPUs than vCPUs (this one has 2) the generator core competes with
//! the pipeline cores for host time; the local mode measures how the
//! pipeline scales without that, and its `cycles_per_packet` includes the
//! turn-around. The local mode runs tickless until the drain: the pipeline
//! cores stop their timer and core 0 sleeps on a one-shot timer set to the
//! next phase change. Under TCG every guest tick is a wake-up of QEMU's main
//! loop (which runs the APIC timers) and often of a vCPU thread; with a
//! pipeline vCPU on each of this host's CPUs those wake-ups preempt the
//! pipelines (measured: 250–800 preemptions per vCPU thread in a 2 s
//! window), while next to a single pipeline core they land on the idle
//! host CPU: a bias against two cores that was not the guest's work.
//!
//! `synthetic_slice_ms=S` (local mode, 2 pipeline cores or more) measures
//! 2 cores and 1 in the same boot, in alternating slices of S ms (see
//! `synthetic_slices`).
//!
//! Two ways to end: `synthetic_packets=N` sends exactly N requests (the
//! correctness scenario of `cargo xtask test`); `synthetic_ms=M` measures for
//! M ms after a warm-up (the benchmark). Either way every request must come
//! back echoed, and core 0 prints one machine-readable line:
//!
//! ```text
//! synthetic cores=2 generator=core packets=1234567 seconds=1.000 mpps=1.234 cycles_per_packet=1620.5 busy_percent=97 generator_percent=12 generated=... echoed=... errors=0
//! ```
//!
//! Before it, one `synthetic core=N packets=... busy_cycles=...
//! cycles_per_packet=... window_timer_interrupts=...` line per pipeline
//! core; in benchmark mode
//! `synthetic window=start` and `synthetic window=end` mark the measured
//! window for the host, which reads its vCPU threads' CPU time then.
//!
//! `cycles_per_packet` is TSC cycles per packet of one pipeline core,
//! counted only over polls that received packets (averaged over the cores);
//! `busy_percent` says how much of the window the pipeline cores had work,
//! `generator_percent` how much of it the generator core spent on replies.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use arrayvec::ArrayVec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence};

use control::Spec;
use dataplane::{
    BURST_SIZE, Batch, Consumer, LinkInfo, MacAddr, Mempool, MempoolConfig, Nic, Packet, Producer,
    SpscRing,
};
use spin::Mutex;

use crate::arch::percpu::{self, MAX_CORES};
use crate::arch::trap::TIMER_VECTOR;
use crate::dev::exit::{ExitCode, exit_qemu};
use crate::runtime::idle_forever;
use crate::scenarios::dispatch::fail;
use crate::scenarios::synthetic_frames::{
    APPLIANCE_MAC, Reply, Verify, build_request, turn_around,
};
use crate::scenarios::synthetic_slices::{self, Slicer};
use crate::{appliance::executor, arch::apic, arch::cpu, arch::smp, boot::cmdline, dev::time};

/// Packets the generator moves per ring operation: larger than the
/// pipeline's bursts, to spend fewer ring-index updates per packet.
const GENERATOR_BURST: usize = 256;
/// Requests in flight per pipeline core; both rings hold them all.
const IN_FLIGHT: usize = 1536;
const RING_CAPACITY: usize = 2048;
/// The generator's tick while it runs: it halts between bursts and wakes at
/// least this often. A pipeline core needs about 1 ms for `IN_FLIGHT`
/// packets under TCG, twice the tick; every wake-up costs the host a thread
/// switch, so few large bursts leave more host CPU to the pipeline vCPUs
/// (20 kHz with 512 in flight measured 1.43x from 1 to 2 pipeline cores,
/// this 1.35x to 1.62x).
const GENERATOR_TICK_HZ: u64 = 2_000;
/// Shortest one-shot sleep core 0 arms in the local mode: a deadline that
/// has just passed still gets a timer that fires.
const MIN_ONE_SHOT_NS: u64 = 10_000;
/// Requests sent when neither `synthetic_packets` nor `synthetic_ms` is given.
const DEFAULT_PACKETS: u64 = 200_000;
/// Warm-up before the measured window (benchmark mode).
const WARM_UP_NS: u64 = 200_000_000;
/// Guest-time limit for the whole run, and for the drain at its end.
const TIMEOUT_NS: u64 = 120_000_000_000;
const DRAIN_TIMEOUT_NS: u64 = 5_000_000_000;

/// Printed by core 0 as the measured window (benchmark mode) opens and
/// closes; `cargo xtask bench` samples the host's view of QEMU's vCPU
/// threads when it reads them.
const WINDOW_START_LINE: &str = "synthetic window=start";
const WINDOW_END_LINE: &str = "synthetic window=end";

/// Phases core 0 announces to the pipeline cores.
const PHASE_SETUP: u8 = 0;
const PHASE_WARM_UP: u8 = 1;
const PHASE_MEASURE: u8 = 2;
const PHASE_DRAIN: u8 = 3;
const PHASE_DONE: u8 = 4;
static PHASE: AtomicU8 = AtomicU8::new(PHASE_SETUP);

/// A pipeline core's ring ends: requests in, replies out.
type PipelineEnds = (Consumer<Packet>, Producer<Packet>);
/// Ring ends for pipeline core `c` at index `c`.
static ENDS: Mutex<Vec<Option<PipelineEnds>>> = Mutex::new(Vec::new());

/// Where requests come from between the prefill and the drain.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Generator {
    /// Core 0 turns every echo around (`synthetic_generator=core`).
    Core,
    /// Each pipeline core turns its own echoes around (`synthetic_generator=local`).
    Local,
}

/// The generator mode core 0 chose, for the pipeline cores (true: local).
static LOCAL_GENERATOR: AtomicBool = AtomicBool::new(false);

/// What one pipeline core measured, published when it sees `PHASE_DONE`.
/// A cache line of its own: with the local generator its core writes the
/// `reflected` counts on every burst, and two cores' reports in one line
/// (40 bytes each) made the host bounce that line between the vCPU threads.
#[repr(align(64))]
struct PipelineReport {
    packets: AtomicU64,
    busy_cycles: AtomicU64,
    drops: AtomicU64,
    /// Local generator: echoes turned around into requests on this core.
    reflected: AtomicU64,
    /// Local generator: of those, the ones in the measured window.
    reflected_measured: AtomicU64,
    /// Timer interrupts this core took in the measured window (0 in the
    /// local mode, which stops the tick).
    window_timer_interrupts: AtomicU64,
    /// Local generator with `synthetic_slice_ms`: of the measured echoes,
    /// those in slices of all cores and in slices of one core alone.
    sliced: [AtomicU64; 2],
}

#[allow(clippy::declare_interior_mutable_const)] // only used to fill the array below
const EMPTY_REPORT: PipelineReport = PipelineReport {
    packets: AtomicU64::new(0),
    busy_cycles: AtomicU64::new(0),
    drops: AtomicU64::new(0),
    reflected: AtomicU64::new(0),
    reflected_measured: AtomicU64::new(0),
    window_timer_interrupts: AtomicU64::new(0),
    sliced: [AtomicU64::new(0), AtomicU64::new(0)],
};
static REPORTS: [PipelineReport; MAX_CORES] = [EMPTY_REPORT; MAX_CORES];
/// Pipeline cores that published their report.
static REPORTED: AtomicUsize = AtomicUsize::new(0);
/// Set by a pipeline core that is about to halt on an empty request ring;
/// the generator clears it and sends a wake-up IPI after its next push.
/// One cache line per core, so one core's sleep does not disturb another's.
static SLEEPING: [SleepFlag; MAX_CORES] = [const { SleepFlag(AtomicBool::new(false)) }; MAX_CORES];

/// A pipeline core's sleep flag, alone in its cache line.
#[repr(align(64))]
struct SleepFlag(AtomicBool);
/// Empty polls after which a pipeline core halts until the generator wakes
/// it: a spinning vCPU would take host time from the generator under TCG.
const PIPELINE_IDLE_POLLS: u32 = 16;

/// Runs the scenario's role for `core_id`.
pub fn run(core_id: u32) -> ! {
    if core_id == 0 {
        generator()
    } else {
        pipeline(core_id as usize)
    }
}

/// A NIC made of two rings to the generator core: requests in, replies out.
/// Written on every burst by its core, so its heap allocation gets cache
/// lines of its own (the pipeline cores allocate side by side at setup).
#[repr(align(64))]
struct RingNic {
    requests: Consumer<Packet>,
    replies: Producer<Packet>,
    /// Local generator mode: this core's own turn-around.
    reflector: Option<Reflector>,
}

/// The local generator of one pipeline core: until the drain, echoes are
/// checked and turned around here and come back in as requests.
struct Reflector {
    /// Turned-around requests, received before the ring.
    looped: VecDeque<Packet>,
    verify: Verify,
    /// Where the counts go (this core's `REPORTS` entry; only this core writes it).
    report: &'static PipelineReport,
}

impl Reflector {
    /// Turns the echoes of `batch` around into `looped`; leaves the frames
    /// that are not echoes of a request (and everything from the drain on)
    /// in `batch` for the generator core. Returns how many it took.
    fn take_echoes(&mut self, batch: &mut Batch) -> usize {
        // Acquire: pairs with the generator's Release phase changes.
        let phase = PHASE.load(Ordering::Acquire);
        if phase >= PHASE_DRAIN {
            return 0;
        }
        let before = self.looped.len();
        let mut others = ArrayVec::<Packet, BURST_SIZE>::new();
        for mut packet in batch.packets_mut().drain(..) {
            if turn_around(&mut packet, self.verify) == Reply::Echo {
                self.looped.push_back(packet);
            } else {
                others.push(packet);
            }
        }
        *batch.packets_mut() = others;
        let taken = (self.looped.len() - before) as u64;
        // Relaxed: single writer; published by the Release of `REPORTED`.
        let add = |counter: &AtomicU64| {
            counter.store(counter.load(Ordering::Relaxed) + taken, Ordering::Relaxed);
        };
        add(&self.report.reflected);
        if phase == PHASE_MEASURE {
            add(&self.report.reflected_measured);
            add(&self.report.sliced[synthetic_slices::current_kind()]);
        }
        taken as usize
    }
}

impl Nic for RingNic {
    fn rx_burst(&mut self, batch: &mut Batch) -> usize {
        if let Some(reflector) = &mut self.reflector {
            let packets = batch.packets_mut();
            let count = reflector.looped.len().min(packets.remaining_capacity());
            packets.extend(reflector.looped.drain(..count));
            if !packets.is_full() {
                self.requests.pop_burst(packets);
            }
            return packets.len();
        }
        self.requests.pop_burst(batch.packets_mut())
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> usize {
        let reflected = match &mut self.reflector {
            Some(reflector) => reflector.take_echoes(batch),
            None => 0,
        };
        reflected + self.replies.push_burst(batch.packets_mut())
    }

    fn mac(&self) -> MacAddr {
        APPLIANCE_MAC
    }

    fn link(&self) -> LinkInfo {
        LinkInfo {
            up: true,
            speed_mbps: 0,
            mtu: 1500,
        }
    }

    fn name(&self) -> &str {
        "synthetic"
    }

    fn enable_wakeup(&mut self) -> bool {
        self.requests.is_empty() && self.reflector.as_ref().is_none_or(|r| r.looped.is_empty())
    }
}

/// A pipeline core: the appliance's echo graph over a `RingNic`, polled
/// without halting until core 0 says done.
fn pipeline(core: usize) -> ! {
    let ends = loop {
        if let Some(ends) = ENDS.lock().get_mut(core).and_then(Option::take) {
            break ends;
        }
        // SAFETY: the IDT is loaded and the timer ticks on this core.
        unsafe { cpu::enable_interrupts_and_halt() };
    };
    let spec = match Spec::parse(crate::appliance::setup::DEFAULT_SPEC, &control::registry()) {
        Ok(spec) => spec,
        Err(error) => fail("synthetic", format_args!("echo spec: {error}")),
    };
    let pool = executor::dma_share(core as u32)
        .map_err(|error| alloc::format!("{error:?}"))
        .and_then(|region| {
            Mempool::new(region, MempoolConfig::default()).map_err(|e| alloc::format!("{e}"))
        });
    let pool = match pool {
        Ok(pool) => pool,
        Err(error) => fail("synthetic", format_args!("core {core}: pool: {error}")),
    };
    // Acquire: core 0 set the mode before it published the ring ends.
    let reflector = LOCAL_GENERATOR.load(Ordering::Acquire).then(|| Reflector {
        looped: VecDeque::with_capacity(IN_FLIGHT),
        verify: verify_mode(),
        report: &REPORTS[core],
    });
    // Local generator: no ticks until the drain (see the module's note).
    // This core polls without a break until then, and it is never left
    // asleep: its requests are its own echoes, and core 0 wakes it for the
    // drain.
    let mut ticking = reflector.is_none();
    let nic = RingNic {
        requests: ends.0,
        replies: ends.1,
        reflector,
    };
    let ports: Vec<(usize, Box<dyn Nic>)> = vec![(0, Box::new(nic))];
    // The echo spec asks for no links between cores.
    let links = control::CoreLinks::new();
    let mut executor = match control::build_core(&spec, core, ports, pool, time::now_ns, links) {
        Ok(executor) => executor,
        Err(error) => fail("synthetic", format_args!("core {core}: {error}")),
    };
    if !ticking {
        // Interrupts are on (`runtime::run_on_core`): a tick latched before
        // the stop is taken now, before the loop below counts this core's
        // ticks for the measured window.
        apic::stop_timer();
    }
    let (mut packets, mut busy_cycles, mut idle) = (0u64, 0u64, 0u32);
    // This core's timer interrupts when it saw the window open and close
    // (a core asleep through the drain sees it close at the end).
    let (mut seen_phase, mut window_timer) = (PHASE_SETUP, [0u64; 2]);
    loop {
        // Acquire: pairs with the generator's Release phase changes.
        let phase = PHASE.load(Ordering::Acquire);
        if phase != seen_phase {
            let timer = percpu::current().interrupts.read().timer;
            if phase == PHASE_MEASURE {
                window_timer[0] = timer;
            }
            if phase >= PHASE_DRAIN && seen_phase < PHASE_DRAIN {
                window_timer[1] = timer;
                if !ticking {
                    // The drain halts between polls: the tick is back as
                    // the safety net beside core 0's wake-ups.
                    apic::start_periodic_timer(TIMER_VECTOR, crate::runtime::TICK_HZ);
                    ticking = true;
                }
            }
            seen_phase = phase;
        }
        if phase == PHASE_DONE {
            break;
        }
        if phase == PHASE_MEASURE && !synthetic_slices::may_run(core) {
            // Not this core's slice: its echoes wait in its queue.
            synthetic_slices::park(core);
            continue;
        }
        let start = cpu::rdtsc();
        let received = executor.poll_once();
        if received > 0 {
            idle = 0;
            if phase == PHASE_MEASURE {
                busy_cycles += cpu::rdtsc() - start;
                packets += received as u64;
            }
        } else {
            idle += 1;
            if idle >= PIPELINE_IDLE_POLLS {
                idle = 0;
                sleep_until_fed(core, &mut executor, phase);
            }
        }
    }
    let counters = executor.counters();
    let drops = counters.tx_dropped.get()
        + counters.queue_full_drops.get()
        + counters.pass_limit_drops.get()
        + counters.unconsumed_drops.get()
        + counters.discarded.get();
    let report = &REPORTS[core];
    // Ordering: Relaxed: the Release increment of `REPORTED` below publishes
    // these to core 0's Acquire load.
    report.packets.store(packets, Ordering::Relaxed);
    report.busy_cycles.store(busy_cycles, Ordering::Relaxed);
    report.window_timer_interrupts.store(
        window_timer[1].wrapping_sub(window_timer[0]),
        Ordering::Relaxed,
    );
    report.drops.store(drops, Ordering::Relaxed);
    // Release: the report is visible before the count that announces it.
    REPORTED.fetch_add(1, Ordering::Release);
    idle_forever()
}

/// Halts a pipeline core whose request ring is empty until the generator's
/// IPI (or the tick). The flag store and the ring check are ordered by a
/// full fence, as are the generator's ring push and flag load: one of the
/// two sides sees the other, so a request cannot wait unseen.
fn sleep_until_fed(core: usize, executor: &mut dataplane::Executor, phase: u8) {
    cpu::disable_interrupts();
    // Ordering: Relaxed store, then a SeqCst fence before the ring check: with
    // the fence in `wake_if_sleeping` (after the push, before the flag load)
    // one side must see the other (store-load on both sides).
    SLEEPING[core].0.store(true, Ordering::Relaxed);
    fence(Ordering::SeqCst);
    // Acquire: as in the poll loop.
    if executor.enable_wakeup() && PHASE.load(Ordering::Acquire) == phase {
        // SAFETY: the IDT is loaded; an IPI sent since the flag was set is
        // pending and ends the `hlt` at once.
        unsafe { cpu::enable_interrupts_and_halt() };
    } else {
        // SAFETY: the IDT is loaded on this core.
        unsafe { cpu::enable_interrupts() };
    }
    executor.disable_wakeup();
    // Ordering: Relaxed: we are awake and polling; a stale `true` seen by the
    // generator only costs a spurious IPI.
    SLEEPING[core].0.store(false, Ordering::Relaxed);
}

/// Wakes pipeline core `core` if it went to sleep on an empty request ring;
/// call after pushing requests to it.
fn wake_if_sleeping(core: usize) {
    // Ordering: the SeqCst fence orders the caller's ring push before the flag
    // load (the mirror of `sleep_until_fed`); the swap itself can be Relaxed.
    fence(Ordering::SeqCst);
    if SLEEPING[core].0.swap(false, Ordering::Relaxed)
        && let Some(record) = smp::record(core)
    {
        apic::send_fixed(record.apic_id(), crate::arch::trap::WAKEUP_VECTOR);
    }
}

/// The generator's side of one pipeline core.
struct Lane {
    requests: Producer<Packet>,
    replies: Consumer<Packet>,
    /// Turned-around requests waiting for room in `requests`.
    outgoing: ArrayVec<Packet, GENERATOR_BURST>,
    incoming: ArrayVec<Packet, GENERATOR_BURST>,
    generated: u64,
    echoed: u64,
    errors: u64,
    /// Frames the pipeline sent on its own (not counted as echoes).
    unsolicited: u64,
    /// Echoes that came back during the measured window.
    measured: u64,
}

impl Lane {
    fn in_flight(&self) -> u64 {
        self.generated - self.echoed - self.errors
    }
}

/// `synthetic_verify=full` checks checksums and payload too.
fn verify_mode() -> Verify {
    match cmdline::get("synthetic_verify") {
        Some("full") => Verify::Full,
        _ => Verify::Headers,
    }
}

/// Core 0: builds the rings and requests, keeps every pipeline core fed,
/// checks and counts the echoes, and reports.
fn generator() -> ! {
    let pipelines = smp::core_count().saturating_sub(1);
    if pipelines == 0 {
        fail("synthetic", format_args!("needs at least 2 cores"));
    }
    let verify = verify_mode();
    let window_ns = cmdline::get_u64("synthetic_ms").map(|ms| ms * 1_000_000);
    let mode = match cmdline::get("synthetic_generator") {
        None | Some("core") => Generator::Core,
        Some("local") if window_ns.is_some() => Generator::Local,
        Some("local") => fail(
            "synthetic",
            format_args!("synthetic_generator=local measures a window: give synthetic_ms"),
        ),
        Some(other) => fail(
            "synthetic",
            format_args!("synthetic_generator takes core or local, not `{other}`"),
        ),
    };
    // One boot, 1 and 2 cores in turn (`synthetic_slices`).
    let mut slicer = match cmdline::get_u64("synthetic_slice_ms") {
        None => None,
        Some(ms) if ms > 0 && mode == Generator::Local && pipelines >= 2 => {
            Some(Slicer::new(ms * 1_000_000, pipelines))
        }
        Some(_) => fail(
            "synthetic",
            format_args!(
                "synthetic_slice_ms needs synthetic_generator=local, 2 pipeline cores or more and a length above 0"
            ),
        ),
    };
    // Release: published before the ring ends the pipeline cores wait for.
    LOCAL_GENERATOR.store(mode == Generator::Local, Ordering::Release);
    let packet_budget = match window_ns {
        Some(_) => u64::MAX,
        None => cmdline::get_u64("synthetic_packets").unwrap_or(DEFAULT_PACKETS),
    };
    let region = match executor::dma_share(0) {
        Ok(region) => region,
        Err(error) => fail("synthetic", format_args!("DMA share: {error:?}")),
    };
    let pool = match Mempool::new(region, MempoolConfig::default()) {
        Ok(pool) => pool,
        Err(error) => fail("synthetic", format_args!("pool: {error}")),
    };
    let mut lanes = Vec::with_capacity(pipelines);
    {
        let mut ends = ENDS.lock();
        ends.resize_with(pipelines + 1, || None);
        for core in 1..=pipelines {
            let rings = SpscRing::with_capacity(RING_CAPACITY)
                .and_then(|requests| Ok((requests, SpscRing::with_capacity(RING_CAPACITY)?)));
            let Ok(((requests_out, requests_in), (replies_out, replies_in))) = rings else {
                fail("synthetic", format_args!("could not make rings"))
            };
            ends[core] = Some((requests_in, replies_out));
            lanes.push(Lane {
                requests: requests_out,
                replies: replies_in,
                outgoing: ArrayVec::new(),
                incoming: ArrayVec::new(),
                generated: 0,
                echoed: 0,
                errors: 0,
                unsolicited: 0,
                measured: 0,
            });
        }
    }
    for core in 1..=pipelines {
        if let Some(record) = smp::record(core) {
            apic::send_fixed(record.apic_id(), crate::arch::trap::WAKEUP_VECTOR);
        }
    }
    // Prefill: IN_FLIGHT requests per pipeline core, fewer if the budget is small.
    let mut generated = 0u64;
    for (index, lane) in lanes.iter_mut().enumerate() {
        for _ in 0..IN_FLIGHT {
            if generated >= packet_budget {
                break;
            }
            let Some(mut packet) = pool.alloc() else {
                fail("synthetic", format_args!("pool ran dry while prefilling"))
            };
            let tag = (index as u64) << 32 | lane.generated;
            if !build_request(&mut packet, tag) {
                fail("synthetic", format_args!("request does not fit a buffer"));
            }
            if lane.requests.push(packet).is_err() {
                fail(
                    "synthetic",
                    format_args!("request ring full while prefilling"),
                );
            }
            lane.generated += 1;
            generated += 1;
        }
    }
    // A local generator's core 0 only watches the clock until the drain:
    // it sleeps on a one-shot timer to the next phase change (below).
    match mode {
        Generator::Core => apic::start_periodic_timer(TIMER_VECTOR, GENERATOR_TICK_HZ),
        Generator::Local => apic::stop_timer(),
    }
    let start_ns = time::now_ns();
    // Release: the rings' contents are visible to pipelines that see the phase.
    PHASE.store(PHASE_WARM_UP, Ordering::Release);
    let (mut measure_start, mut measure_end) = (None, None);
    let mut phase = PHASE_WARM_UP;
    if window_ns.is_none() {
        measure_start = Some((start_ns, cpu::rdtsc()));
        phase = PHASE_MEASURE;
        // Ordering: Release, as for the warm-up phase above.
        PHASE.store(phase, Ordering::Release);
    }
    let mut drain_start = 0u64;
    // The slices' count and each kind's TSC cycles, once the window closed.
    let mut slices: Option<(u64, [u64; 2])> = None;
    let mut generator_busy_cycles = 0u64;
    loop {
        let now = time::now_ns();
        let iteration_start = cpu::rdtsc();
        if let Some(window) = window_ns {
            if phase == PHASE_WARM_UP && now - start_ns >= WARM_UP_NS {
                phase = PHASE_MEASURE;
                measure_start = Some((now, cpu::rdtsc()));
                if let (Some(slicer), Some(start)) = (&mut slicer, measure_start) {
                    slicer.begin(start);
                }
                // Ordering: Release pairs with the pipelines' Acquire loads.
                PHASE.store(phase, Ordering::Release);
                // For the host: the benchmark reads what QEMU's vCPU threads got
                // of the host between these two lines.
                crate::kprintln!("{WINDOW_START_LINE}");
            } else if let Some(slicer) = slicer.as_mut().filter(|_| {
                phase == PHASE_MEASURE
                    && measure_start.is_some_and(|(begin, _)| now - begin < window)
            }) {
                slicer.advance((now, cpu::rdtsc()));
            }
            if phase == PHASE_MEASURE
                && measure_start.is_some_and(|(begin, _)| now - begin >= window)
            {
                phase = PHASE_DRAIN;
                measure_end = Some((now, cpu::rdtsc()));
                drain_start = now;
                // Ordering: Release pairs with the pipelines' Acquire loads.
                PHASE.store(phase, Ordering::Release);
                // After the phase: a parked core wakes into the drain.
                if let (Some(slicer), Some((_, end))) = (&mut slicer, measure_end) {
                    slices = Some(slicer.finish(end));
                }
                crate::kprintln!("{WINDOW_END_LINE}");
                if mode == Generator::Local {
                    // The drain polls for the last echoes: ticks again, and
                    // the pipeline cores awake to see the phase.
                    apic::start_periodic_timer(TIMER_VECTOR, crate::runtime::TICK_HZ);
                    for core in 1..=pipelines {
                        wake_if_sleeping(core);
                    }
                }
            }
        } else if phase == PHASE_MEASURE && generated >= packet_budget {
            phase = PHASE_DRAIN;
            measure_end = Some((now, cpu::rdtsc()));
            drain_start = now;
            // Ordering: Release pairs with the pipelines' Acquire loads.
            PHASE.store(phase, Ordering::Release);
        }
        let sending = phase < PHASE_DRAIN;
        let mut moved = 0usize;
        for (index, lane) in lanes.iter_mut().enumerate() {
            if !lane.outgoing.is_empty() {
                if lane.requests.push_burst(&mut lane.outgoing) > 0 {
                    wake_if_sleeping(index + 1);
                }
                if !lane.outgoing.is_empty() {
                    continue;
                }
            }
            moved += lane.replies.pop_burst(&mut lane.incoming);
            for mut packet in lane.incoming.drain(..) {
                let reply = turn_around(&mut packet, verify);
                if reply == Reply::Unsolicited {
                    lane.unsolicited += 1;
                    continue;
                }
                if reply == Reply::Bad {
                    if lane.errors == 0 {
                        crate::kprintln!(
                            "synthetic: bad echo ({} bytes): {:02x?}",
                            packet.len(),
                            &packet.payload()[..packet.len().min(48)]
                        );
                    }
                    lane.errors += 1;
                    continue;
                }
                lane.echoed += 1;
                if phase == PHASE_MEASURE {
                    lane.measured += 1;
                }
                if sending && generated < packet_budget {
                    lane.outgoing.push(packet);
                    lane.generated += 1;
                    generated += 1;
                }
            }
            if lane.requests.push_burst(&mut lane.outgoing) > 0 {
                wake_if_sleeping(index + 1);
            }
        }
        if phase == PHASE_DRAIN {
            if lanes.iter().all(|lane| lane.in_flight() == 0) {
                break;
            }
            if now - drain_start > DRAIN_TIMEOUT_NS {
                let missing: u64 = lanes.iter().map(Lane::in_flight).sum();
                fail(
                    "synthetic",
                    format_args!("{missing} requests never came back"),
                );
            }
        }
        if now - start_ns > TIMEOUT_NS {
            fail("synthetic", format_args!("timed out"));
        }
        if phase == PHASE_MEASURE && moved > 0 {
            generator_busy_cycles += cpu::rdtsc() - iteration_start;
        }
        if moved == 0 {
            if mode == Generator::Local && phase < PHASE_DRAIN {
                // Tickless: wake at the next phase change. Armed before
                // every halt, so a timer that fires a little early (its rate
                // and the TSC's are calibrated apart) only sleeps again; and
                // armed with interrupts off, so one that fires before the
                // `hlt` ends it rather than leave core 0 asleep for good.
                let deadline = match (phase, measure_start, window_ns) {
                    (PHASE_MEASURE, Some((begin, _)), Some(window)) => {
                        let end = begin + window;
                        slicer
                            .as_ref()
                            .map_or(end, |slicer| slicer.deadline().min(end))
                    }
                    _ => start_ns + WARM_UP_NS,
                };
                // SAFETY: the IDT is loaded and handles the timer vector.
                unsafe { apic::halt_until(TIMER_VECTOR, deadline, MIN_ONE_SHOT_NS) };
            } else {
                // Nothing came back: sleep until the next tick rather than spin.
                // SAFETY: the IDT is loaded and the periodic tick runs on this core.
                unsafe { cpu::enable_interrupts_and_halt() };
            }
        }
    }
    apic::start_periodic_timer(TIMER_VECTOR, crate::runtime::TICK_HZ);
    // Release: the pipelines stop polling; their rings are empty.
    PHASE.store(PHASE_DONE, Ordering::Release);
    for core in 1..=pipelines {
        wake_if_sleeping(core);
    }
    let deadline = time::now_ns() + DRAIN_TIMEOUT_NS;
    // Ordering: Acquire pairs with each pipeline's Release increment, so the
    // Relaxed report fields read in `report` are complete.
    while REPORTED.load(Ordering::Acquire) < pipelines {
        if time::now_ns() > deadline {
            fail("synthetic", format_args!("pipeline cores did not report"));
        }
        cpu::pause();
    }
    if let (Some(slicer), Some((count, cycles))) = (&slicer, slices) {
        report_slices(pipelines, slicer.slice_ns, count, cycles);
    }
    report(
        &lanes,
        mode,
        measure_start,
        measure_end,
        pipelines,
        generator_busy_cycles,
    )
}

/// Prints the `synthetic slices=` line: packets per second of each kind of
/// slice's wall time (TSC), all pipeline cores and one alone.
fn report_slices(pipelines: usize, slice_ns: u64, count: u64, cycles: [u64; 2]) {
    let milli_mpps = |kind: usize| {
        let packets: u64 = REPORTS[1..=pipelines]
            .iter()
            // Ordering: Relaxed: published by `REPORTED` (see the wait above).
            .map(|report| report.sliced[kind].load(Ordering::Relaxed))
            .sum();
        let ns = time::ticks_to_ns(cycles[kind]).max(1);
        u128::from(packets) * 1_000_000 / u128::from(ns)
    };
    let (one, all) = (
        milli_mpps(synthetic_slices::SLICE_ALONE),
        milli_mpps(synthetic_slices::SLICE_ALL),
    );
    crate::kprintln!(
        "synthetic slices={count} slice_ms={} one_core_mpps={}.{:03} all_cores_mpps={}.{:03}",
        slice_ns / 1_000_000,
        one / 1000,
        one % 1000,
        all / 1000,
        all % 1000
    );
}

/// Prints the result line and exits: success when every request came back
/// echoed and nothing was dropped.
fn report(
    lanes: &[Lane],
    mode: Generator,
    measure_start: Option<(u64, u64)>,
    measure_end: Option<(u64, u64)>,
    pipelines: usize,
    generator_busy_cycles: u64,
) -> ! {
    let (Some((begin_ns, begin_tsc)), Some((end_ns, end_tsc))) = (measure_start, measure_end)
    else {
        fail("synthetic", format_args!("no measured window"))
    };
    // A reflected echo is both an echo and the next request.
    let reflected: u64 = REPORTS[1..=pipelines]
        .iter()
        // Ordering: Relaxed here and below: published by `REPORTED` (see the wait
        // in `generate`).
        .map(|report| report.reflected.load(Ordering::Relaxed))
        .sum();
    let reflected_measured: u64 = REPORTS[1..=pipelines]
        .iter()
        .map(|report| report.reflected_measured.load(Ordering::Relaxed))
        .sum();
    let generated = lanes.iter().map(|lane| lane.generated).sum::<u64>() + reflected;
    let echoed = lanes.iter().map(|lane| lane.echoed).sum::<u64>() + reflected;
    let errors: u64 = lanes.iter().map(|lane| lane.errors).sum();
    let measured = lanes.iter().map(|lane| lane.measured).sum::<u64>() + reflected_measured;
    let unsolicited: u64 = lanes.iter().map(|lane| lane.unsolicited).sum();
    let (mut pipeline_packets, mut busy_cycles, mut drops) = (0u64, 0u64, 0u64);
    for (core, report) in REPORTS.iter().enumerate().take(pipelines + 1).skip(1) {
        // Ordering: Relaxed: published by `REPORTED`, as above.
        let packets = report.packets.load(Ordering::Relaxed);
        let cycles = report.busy_cycles.load(Ordering::Relaxed);
        pipeline_packets += packets;
        busy_cycles += cycles;
        drops += report.drops.load(Ordering::Relaxed);
        // Each core's share of the work and what a packet cost it: an uneven
        // split or one core slower than the other shows here.
        let deci_cycles = u128::from(cycles) * 10 / u128::from(packets.max(1));
        crate::kprintln!(
            "synthetic core={core} packets={packets} busy_cycles={cycles} cycles_per_packet={}.{} window_timer_interrupts={}",
            deci_cycles / 10,
            deci_cycles % 10,
            report.window_timer_interrupts.load(Ordering::Relaxed)
        );
    }
    let window_ns = (end_ns - begin_ns).max(1);
    let window_cycles = (end_tsc - begin_tsc).max(1);
    // Fixed point: thousandths of Mpps, tenths of cycles, whole percent.
    let milli_mpps = u128::from(measured) * 1_000_000 / u128::from(window_ns);
    let deci_cycles = u128::from(busy_cycles) * 10 / u128::from(pipeline_packets.max(1));
    let busy_percent =
        u128::from(busy_cycles) * 100 / (u128::from(window_cycles) * pipelines as u128);
    let generator_percent = u128::from(generator_busy_cycles) * 100 / u128::from(window_cycles);
    crate::kprintln!(
        "synthetic cores={pipelines} generator={} packets={measured} seconds={}.{:03} mpps={}.{:03} cycles_per_packet={}.{} busy_percent={busy_percent} generator_percent={generator_percent} generated={generated} echoed={echoed} errors={errors} drops={drops} unsolicited={unsolicited}",
        match mode {
            Generator::Core => "core",
            Generator::Local => "local",
        },
        window_ns / 1_000_000_000,
        window_ns / 1_000_000 % 1000,
        milli_mpps / 1000,
        milli_mpps % 1000,
        deci_cycles / 10,
        deci_cycles % 10,
    );
    if errors != 0 || drops != 0 || echoed != generated || generated == 0 {
        fail(
            "synthetic",
            format_args!("{echoed} of {generated} requests echoed, {errors} bad, {drops} dropped"),
        );
    }
    crate::kprintln!("scenario synthetic: PASS");
    exit_qemu(ExitCode::Success)
}
