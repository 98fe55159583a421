//! Cross-core ping-pong: core 0 sends 10^6 sequence numbers to core 1 over one
//! `SpscRing`, core 1 checks each and echoes its complement back over another, and
//! core 0 checks every echo. Bursts of up to 32 keep the rings busy.

use arrayvec::ArrayVec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use dataplane::{Consumer, Producer, SpscRing};
use spin::Mutex;

use crate::dev::exit::{ExitCode, exit_qemu};
use crate::runtime::idle_forever;
use crate::scenarios::dispatch::fail;
use crate::{arch::cpu, boot::cmdline, dev::time};

/// Messages sent unless `messages=` says otherwise.
const DEFAULT_MESSAGES: u64 = 1_000_000;
/// Ring capacity in each direction.
const RING_CAPACITY: usize = 1024;
/// Burst size.
const BURST: usize = 32;
/// Guest-time limit for the whole exchange.
const TIMEOUT_NS: u64 = 60_000_000_000;

/// Core 1's ends: ping consumer, pong producer. Filled by core 0.
static CORE1_ENDS: Mutex<Option<(Consumer<u64>, Producer<u64>)>> = Mutex::new(None);
/// Sequence errors core 1 saw.
static CORE1_ERRORS: AtomicU64 = AtomicU64::new(0);
/// Set when core 1 has checked every message.
static CORE1_DONE: AtomicBool = AtomicBool::new(false);

/// Runs the scenario's role for `core_id`.
pub fn run(core_id: u32) -> ! {
    let messages = cmdline::get_u64("messages").unwrap_or(DEFAULT_MESSAGES);
    match core_id {
        0 => sender(messages),
        1 => echoer(messages),
        _ => idle_forever(),
    }
}

fn sender(messages: u64) -> ! {
    if crate::arch::smp::core_count() < 2 {
        fail("pingpong", format_args!("needs at least 2 cores"));
    }
    let rings = SpscRing::with_capacity(RING_CAPACITY)
        .and_then(|ping| Ok((ping, SpscRing::with_capacity(RING_CAPACITY)?)));
    let Ok(((mut ping_out, ping_in), (pong_out, mut pong_in))) = rings else {
        fail("pingpong", format_args!("could not make rings"))
    };
    *CORE1_ENDS.lock() = Some((ping_in, pong_out));
    let start = time::now_ns();
    let (mut sent, mut received, mut errors) = (0u64, 0u64, 0u64);
    let mut outgoing: ArrayVec<u64, BURST> = ArrayVec::new();
    let mut incoming: ArrayVec<u64, BURST> = ArrayVec::new();
    while received < messages {
        while sent < messages && !outgoing.is_full() {
            outgoing.push(sent);
            sent += 1;
        }
        ping_out.push_burst(&mut outgoing);
        pong_in.pop_burst(&mut incoming);
        for echo in incoming.drain(..) {
            if echo != !received {
                if errors == 0 {
                    crate::kprintln!("scenario pingpong: echo {received} came back as {echo:#x}");
                }
                errors += 1;
            }
            received += 1;
        }
        if incoming.is_empty() && time::now_ns() - start > TIMEOUT_NS {
            fail(
                "pingpong",
                format_args!("timed out after {received} of {messages} echoes"),
            );
        }
        cpu::pause();
    }
    let elapsed_ns = time::now_ns() - start;
    // Ordering: Acquire pairs with core 1's Release store of `CORE1_DONE`, so
    // its error count (stored before it) is visible below.
    while !CORE1_DONE.load(Ordering::Acquire) {
        cpu::pause();
    }
    let core1_errors = CORE1_ERRORS.load(Ordering::Acquire);
    crate::kprintln!(
        "scenario pingpong: messages={messages} echoed={received} errors={errors} core1_errors={core1_errors} elapsed_ms={} rate_per_s={}",
        elapsed_ns / 1_000_000,
        u128::from(messages) * 1_000_000_000 / u128::from(elapsed_ns.max(1))
    );
    if errors != 0 || core1_errors != 0 || received != messages {
        fail("pingpong", format_args!("sequence errors"));
    }
    crate::kprintln!("scenario pingpong: PASS");
    exit_qemu(ExitCode::Success)
}

fn echoer(messages: u64) -> ! {
    let (mut ping_in, mut pong_out) = loop {
        if let Some(ends) = CORE1_ENDS.lock().take() {
            break ends;
        }
        cpu::pause();
    };
    let (mut expected, mut errors) = (0u64, 0u64);
    let mut incoming: ArrayVec<u64, BURST> = ArrayVec::new();
    let mut echoes: ArrayVec<u64, BURST> = ArrayVec::new();
    while expected < messages || !echoes.is_empty() {
        if echoes.is_empty() {
            ping_in.pop_burst(&mut incoming);
            for message in incoming.drain(..) {
                if message != expected {
                    errors += 1;
                }
                expected += 1;
                echoes.push(!message);
            }
        }
        pong_out.push_burst(&mut echoes);
        cpu::pause();
    }
    // Ordering: Release is more than needed (the `done` store below publishes
    // it) and costs nothing on x86.
    CORE1_ERRORS.store(errors, Ordering::Release);
    // Release: the error count is visible to core 0 once it sees `done`.
    CORE1_DONE.store(true, Ordering::Release);
    idle_forever()
}
