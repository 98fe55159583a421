//! The I/O APIC: routes an ISA interrupt line (the serial console's) to one
//! core's local APIC, so that a byte on the console wakes a sleeping core 0.
//! Programmed once, on the boot core; the kernel uses no other line.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use kernel_core::acpi::{AcpiInfo, IsaRoute};

/// Register select (offset 0x00) and data window (offset 0x10) of the MMIO page.
const REGISTER_SELECT: u64 = 0x00;
const REGISTER_WINDOW: u64 = 0x10;
/// The version register: bits 16-23 hold the last redirection entry.
const VERSION: u32 = 0x01;
/// Redirection entry `n` is registers `0x10 + 2n` (low) and `0x11 + 2n` (high).
const REDIRECTION_BASE: u32 = 0x10;
/// Redirection entry low-word bits (Intel 82093AA datasheet, 3.2.4).
const ACTIVE_LOW: u32 = 1 << 13;
const MASKED: u32 = 1 << 16;

/// ISA interrupt lines.
const ISA_IRQS: usize = 16;

/// The IOAPIC's MMIO base (0: none) and its first GSI, from ACPI.
static BASE: AtomicU64 = AtomicU64::new(0);
static GSI_BASE: AtomicU32 = AtomicU32::new(0);
/// Where each ISA IRQ arrives, from ACPI's overrides.
static ISA_ROUTES: spin::Once<[IsaRoute; ISA_IRQS]> = spin::Once::new();

/// Why a line could not be routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoApicError {
    /// ACPI named no IOAPIC.
    Missing,
    /// The line's GSI is not among this IOAPIC's inputs.
    NoSuchInput(u32),
    /// The local APIC id does not fit the 8-bit destination field.
    DestinationTooHigh(u32),
    /// Not an ISA IRQ (0 to 15).
    NotIsa(u8),
    /// The line is level triggered: its source must be silenced in the
    /// handler, which the kernel's handlers do not do.
    LevelTriggered(u8),
}

/// Remembers the IOAPIC ACPI names. Call once on the boot core, before
/// any AP runs.
pub fn init(acpi: &AcpiInfo) {
    // Ordering: Relaxed: written on the boot core before the APs start and
    // read on the boot core only.
    BASE.store(acpi.io_apic_address.unwrap_or(0), Ordering::Relaxed);
    GSI_BASE.store(acpi.io_apic_gsi_base, Ordering::Relaxed);
    ISA_ROUTES.call_once(|| core::array::from_fn(|irq| acpi.isa_route(irq as u8)));
}

/// Reads IOAPIC register `register` at MMIO base `base`.
fn read(base: u64, register: u32) -> u32 {
    // SAFETY: `base` is the IOAPIC's MMIO page from the MADT, identity
    // mapped uncached (paging maps everything below 4 GiB outside RAM that
    // way); selecting a register and reading the window has no effect on
    // memory, and only the boot core touches the pair.
    unsafe {
        ((base + REGISTER_SELECT) as *mut u32).write_volatile(register);
        ((base + REGISTER_WINDOW) as *const u32).read_volatile()
    }
}

/// Writes `value` to IOAPIC register `register` at MMIO base `base`.
fn write(base: u64, register: u32, value: u32) {
    // SAFETY: as in `read`; the registers written are redirection entries,
    // which only steer interrupts.
    unsafe {
        ((base + REGISTER_SELECT) as *mut u32).write_volatile(register);
        ((base + REGISTER_WINDOW) as *mut u32).write_volatile(value);
    }
}

/// Delivers ISA IRQ `irq` as `vector` to the local APIC `apic_id` (fixed
/// delivery, physical destination), unmasked. Edge-triggered lines only:
/// the handler need not silence the device (the next edge comes once the
/// device's condition was cleared and raised again).
pub fn route_isa(irq: u8, vector: u8, apic_id: u32) -> Result<(), IoApicError> {
    // Ordering: Relaxed: see `init`.
    let base = BASE.load(Ordering::Relaxed);
    let routes = ISA_ROUTES.get().filter(|_| base != 0);
    let Some(routes) = routes else {
        return Err(IoApicError::Missing);
    };
    let route = *routes
        .get(usize::from(irq))
        .ok_or(IoApicError::NotIsa(irq))?;
    if route.level {
        return Err(IoApicError::LevelTriggered(irq));
    }
    let destination =
        u8::try_from(apic_id).map_err(|_| IoApicError::DestinationTooHigh(apic_id))?;
    let last_entry = (read(base, VERSION) >> 16) & 0xff;
    let input = route
        .gsi
        // Ordering: Relaxed: see `init`.
        .checked_sub(GSI_BASE.load(Ordering::Relaxed))
        .filter(|input| *input <= last_entry)
        .ok_or(IoApicError::NoSuchInput(route.gsi))?;
    let mut low = u32::from(vector);
    if route.active_low {
        low |= ACTIVE_LOW;
    }
    let register = REDIRECTION_BASE + 2 * input;
    // Masked while the halves change, then the destination, then unmasked.
    write(base, register, low | MASKED);
    write(base, register + 1, u32::from(destination) << 24);
    write(base, register, low);
    Ok(())
}
