//! Resume points: bare metal cannot unwind on stable Rust, so a panic in a
//! nanoservice returns to the executor through a resume point saved before
//! the call (`setjmp`/`longjmp` in two naked functions) instead of ending
//! the appliance. [`guard`] is the kernel's `dataplane::Guard`.
//!
//! What a jump back skips, and why it is still worth having (see
//! `dataplane/README.md`, "Supervision"): the destructors of every frame
//! between the node call and the panic do not run. Packets those frames
//! held (a batch being drained, a packet in hand) never return to their
//! pool, and their heap memory is never freed: at most a burst's worth per
//! failure, and failures are spaced by the backoff. A lock or `RefCell`
//! borrow held by a skipped frame stays taken; services take none of the
//! kernel's locks. Rust counts a jump over frames with destructors as
//! undefined behaviour (it breaks `Pin`'s drop guarantee, for one): the
//! frames skipped here are the failed service's own and the panic
//! machinery's, none of them pinned, and the service itself is never
//! called again (it is leaked, not dropped, when its replacement is built).
//!
//! Guarded calls nest, up to [`DEPTH`] deep: the executor guards the `tcp`
//! node's call, and the node guards each of its apps' calls inside it, so
//! that a panicking app jumps back to the node (which resets the app's
//! connections and goes on) rather than to the executor (which would stop
//! the whole TCP stack). A panic returns to the innermost armed point.

use crate::arch::percpu::{MAX_CORES, core_id};
use alloc::string::String;
use core::arch::naked_asm;
use core::cell::UnsafeCell;
use core::fmt::Write;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Callee-saved registers, the stack pointer after the call, its return
/// address and the flags (the interrupt flag among them): what the jump
/// back restores.
#[repr(C)]
#[derive(Default)]
struct Registers {
    rbx: u64,    // 0x00
    rbp: u64,    // 0x08
    r12: u64,    // 0x10
    r13: u64,    // 0x18
    r14: u64,    // 0x20
    r15: u64,    // 0x28
    rsp: u64,    // 0x30
    rip: u64,    // 0x38
    rflags: u64, // 0x40
}

const _: () = assert!(core::mem::size_of::<Registers>() == 0x48);

/// Longest panic message kept, in bytes (the rest is cut).
const MESSAGE_BYTES: usize = 160;

/// Guarded calls one core can nest (the executor's node call, a node's
/// call of its part, and room to spare); a call deeper than this runs
/// unguarded (the one around it catches its panic).
pub const DEPTH: usize = 4;

/// One core's resume points, innermost last.
struct Slot {
    /// Guarded calls running on this core: the armed points are
    /// `registers[..depth]`.
    depth: AtomicUsize,
    registers: UnsafeCell<[Registers; DEPTH]>,
    message: UnsafeCell<Message>,
}

// SAFETY: each slot is used by its own core only (indexed by `core_id`),
// from the guarded call and from the panic handler on that same core.
unsafe impl Sync for Slot {}

static SLOTS: [Slot; MAX_CORES] = [const {
    Slot {
        depth: AtomicUsize::new(0),
        registers: UnsafeCell::new(
            [const {
                Registers {
                    rbx: 0,
                    rbp: 0,
                    r12: 0,
                    r13: 0,
                    r14: 0,
                    r15: 0,
                    rsp: 0,
                    rip: 0,
                    rflags: 0,
                }
            }; DEPTH],
        ),
        message: UnsafeCell::new(Message::new()),
    }
}; MAX_CORES];

/// A panic message in a fixed buffer (the panic handler does not allocate).
struct Message {
    bytes: [u8; MESSAGE_BYTES],
    len: usize,
}

impl Message {
    const fn new() -> Self {
        Self {
            bytes: [0; MESSAGE_BYTES],
            len: 0,
        }
    }
}

impl Write for Message {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        let room = MESSAGE_BYTES - self.len;
        let mut take = text.len().min(room);
        while !text.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Saves the resume point into `registers`, then calls `call(data)`;
/// returns 0 when the call returns, 1 when [`jump_back`] resumed here.
///
/// # Safety
/// 1. `registers` is valid for writes and stays so until this returns.
/// 2. `call(data)` is sound to call.
#[unsafe(naked)]
unsafe extern "sysv64" fn save_and_call(
    registers: *mut Registers,
    data: *mut (),
    call: unsafe extern "sysv64" fn(*mut ()),
) -> u64 {
    naked_asm!(
        "mov [rdi + 0x00], rbx",
        "mov [rdi + 0x08], rbp",
        "mov [rdi + 0x10], r12",
        "mov [rdi + 0x18], r13",
        "mov [rdi + 0x20], r14",
        "mov [rdi + 0x28], r15",
        // The stack pointer as the caller sees it after `ret`.
        "lea rax, [rsp + 8]",
        "mov [rdi + 0x30], rax",
        "mov rax, [rsp]",
        "mov [rdi + 0x38], rax",
        "pushfq",
        "pop rax",
        "mov [rdi + 0x40], rax",
        // Entered with the stack 8 off a 16-byte boundary (the return
        // address); realign for the call.
        "sub rsp, 8",
        "mov rdi, rsi",
        "call rdx",
        "add rsp, 8",
        "xor eax, eax",
        "ret",
    );
}

/// Restores the registers `save_and_call` saved and returns 1 from it.
///
/// # Safety
/// 1. `registers` was filled by a `save_and_call` that has not returned.
#[unsafe(naked)]
unsafe extern "sysv64" fn jump_back(registers: *const Registers) -> ! {
    naked_asm!(
        "mov rbx, [rdi + 0x00]",
        "mov rbp, [rdi + 0x08]",
        "mov r12, [rdi + 0x10]",
        "mov r13, [rdi + 0x18]",
        "mov r14, [rdi + 0x20]",
        "mov r15, [rdi + 0x28]",
        "mov rsp, [rdi + 0x30]",
        "push qword ptr [rdi + 0x40]",
        "popfq",
        "mov eax, 1",
        "jmp qword ptr [rdi + 0x38]",
    );
}

/// Calls the `&mut dyn FnMut()` that `data` points to.
///
/// # Safety
/// 1. `data` points to a live `&mut dyn FnMut()`.
unsafe extern "sysv64" fn trampoline(data: *mut ()) {
    // SAFETY: precondition 1.
    let call = unsafe { &mut *data.cast::<&mut dyn FnMut()>() };
    call();
}

/// The kernel's `dataplane::Guard`: runs `call` with a resume point of
/// this core armed; a panic inside comes back as its message (the panic
/// handler printed it). Guarded calls nest ([`DEPTH`] deep; deeper ones
/// run unguarded, and the one around catches their panic).
pub fn guard(mut call: &mut dyn FnMut()) -> Result<(), String> {
    let slot = &SLOTS[core_id() as usize % MAX_CORES];
    // Ordering: the depth is read by the panic handler on this same core
    // only; Relaxed with the compiler fences below keeps the store before
    // the call and the load after it.
    let depth = slot.depth.load(Ordering::Relaxed);
    if depth >= DEPTH {
        call();
        return Ok(());
    }
    slot.depth.store(depth + 1, Ordering::Relaxed);
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    let data = (&mut call as *mut &mut dyn FnMut()).cast::<()>();
    // SAFETY: in bounds (`depth < DEPTH`); the array lives forever.
    let registers = unsafe { slot.registers.get().cast::<Registers>().add(depth) };
    // SAFETY: 1. `registers` is this core's point at `depth`, which no
    // other running guarded call uses (those around this one hold the
    // points below it, and the depth is now past it); 2. `data` points to
    // `call`, live for the whole call.
    let resumed = unsafe { save_and_call(registers, data, trampoline) };
    core::sync::atomic::compiler_fence(Ordering::SeqCst);
    // Back to the calls around this one (the panic handler set it so too,
    // before jumping back).
    slot.depth.store(depth, Ordering::Relaxed);
    if resumed == 0 {
        return Ok(());
    }
    // SAFETY: the panic handler on this core wrote the message before the
    // jump back, and nothing else touches it until the next panic.
    let message = unsafe { &*slot.message.get() };
    Err(String::from_utf8_lossy(&message.bytes[..message.len]).into_owned())
}

/// From the panic handler: when a guarded call runs on this core, keeps
/// the panic's message and jumps back to the innermost one (never
/// returns); else returns.
pub fn resume_if_guarded(info: &core::panic::PanicInfo<'_>) {
    let slot = &SLOTS[core_id() as usize % MAX_CORES];
    // Ordering: see `guard`; the same core set it.
    let depth = slot.depth.load(Ordering::Relaxed);
    if depth == 0 {
        return;
    }
    // Disarmed before the jump: a panic while leaving goes to the point
    // around it.
    slot.depth.store(depth - 1, Ordering::Relaxed);
    // SAFETY: this core's slot; the guarded call is suspended in the panic.
    let message = unsafe { &mut *slot.message.get() };
    message.len = 0;
    let _ = write!(message, "{}", info.message());
    if let Some(location) = info.location() {
        let _ = write!(message, " at {}:{}", location.file(), location.line());
    }
    // SAFETY: in bounds (`depth - 1 < DEPTH`, as `guard` never arms past
    // it); the array lives forever.
    let registers = unsafe { slot.registers.get().cast::<Registers>().add(depth - 1) };
    // SAFETY: the point at `depth - 1` is armed, so its `save_and_call`
    // filled the registers and has not returned: that guarded call is
    // below us on this stack.
    unsafe { jump_back(registers) }
}
