//! Trap dispatch: CPU exceptions are reported and fail the run; device vectors are serviced.

use crate::dev::exit::{ExitCode, exit_qemu};
use crate::{arch::apic, arch::cpu, arch::percpu};

/// LAPIC timer vector.
pub const TIMER_VECTOR: u8 = 0x40;
/// IPI vector used to wake a halted core.
pub const WAKEUP_VECTOR: u8 = 0x41;
/// MSI-X vector of the NIC receive queues: a packet arrived for a halted core.
pub const NIC_RX_VECTOR: u8 = 0x42;
/// IOAPIC vector of the serial console's receive interrupt (core 0): a
/// byte arrived, such as the `c` that asks for the counters.
pub const CONSOLE_VECTOR: u8 = 0x43;
/// LAPIC spurious-interrupt vector.
pub const SPURIOUS_VECTOR: u8 = 0xff;

/// Registers saved by the entry stubs, lowest address first.
#[repr(C)]
#[derive(Debug)]
#[allow(missing_docs)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Vector number pushed by the stub.
    pub vector: u64,
    /// CPU error code, or 0 for vectors without one.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Called by `idt::trap_common` with the saved frame.
pub extern "C" fn dispatch(frame: &mut TrapFrame) {
    match frame.vector as u8 {
        // Each of these only wakes the core and is counted; its poll loop
        // does the work (and tells the causes apart by the counts).
        TIMER_VECTOR => {
            percpu::count_interrupt(|counts| &counts.timer);
            apic::end_of_interrupt();
        }
        WAKEUP_VECTOR => {
            percpu::count_interrupt(|counts| &counts.wakeup);
            apic::end_of_interrupt();
        }
        NIC_RX_VECTOR => {
            percpu::count_interrupt(|counts| &counts.nic);
            apic::end_of_interrupt();
        }
        CONSOLE_VECTOR => {
            // The line stays raised until the bytes are read (core 0's
            // loop does); the IOAPIC is edge triggered, so the next byte
            // after that interrupts again.
            percpu::count_interrupt(|counts| &counts.console);
            apic::end_of_interrupt();
        }
        SPURIOUS_VECTOR => {}
        _ => report_exception(frame),
    }
}

/// Exception names indexed by vector.
const NAMES: [&str; 32] = [
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack fault",
    "#GP general protection",
    "#PF page fault",
    "reserved",
    "#MF x87 floating point",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD floating point",
    "#VE virtualization",
    "#CP control protection",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "#HV hypervisor injection",
    "#VC VMM communication",
    "#SX security",
    "reserved",
];

/// Prints the exception with a register dump and exits QEMU with a failure status.
fn report_exception(frame: &TrapFrame) -> ! {
    let vector = frame.vector as usize;
    let name = NAMES.get(vector).copied().unwrap_or("unexpected interrupt");
    crate::kprintln!(
        "EXCEPTION {name} vector={vector} error={:#x} rip={:#018x} cr2={:#018x} core={}",
        frame.error_code,
        frame.rip,
        cpu::read_cr2(),
        percpu::core_id()
    );
    crate::kprintln!(
        "  rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}",
        frame.rax,
        frame.rbx,
        frame.rcx,
        frame.rdx
    );
    crate::kprintln!(
        "  rsi={:#018x} rdi={:#018x} rbp={:#018x} rsp={:#018x}",
        frame.rsi,
        frame.rdi,
        frame.rbp,
        frame.rsp
    );
    crate::kprintln!(
        "  r8 ={:#018x} r9 ={:#018x} r10={:#018x} r11={:#018x}",
        frame.r8,
        frame.r9,
        frame.r10,
        frame.r11
    );
    crate::kprintln!(
        "  r12={:#018x} r13={:#018x} r14={:#018x} r15={:#018x}",
        frame.r12,
        frame.r13,
        frame.r14,
        frame.r15
    );
    crate::kprintln!(
        "  cs={:#x} ss={:#x} rflags={:#x} cr3={:#x}",
        frame.cs,
        frame.ss,
        frame.rflags,
        cpu::read_cr3()
    );
    exit_qemu(ExitCode::Exception)
}
