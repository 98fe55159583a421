//! The appliance's igb interfaces (`driver = "igb"`, or every virtio one
//! with `nic=igb` on the command line): the boot core resets each device,
//! asks for the link, waits for it (bounded), routes one MSI-X vector per
//! queue pair to the pair's core, and programs one queue pair per core
//! (the spec's `queues`, at most the cores) with RSS over them; core `i`
//! polls pair `i`.

use alloc::format;
use alloc::string::String;

use alloc::vec::Vec;
use control::spec::{Driver, Interface};
use igb::{Igb, PairOptions, QueuePairSetup, RingMemory};

use crate::arch::smp;
use crate::arch::trap::NIC_RX_VECTOR;
use crate::boot::cmdline;
use crate::dev::igb_platform::KernelIgbRegisters;
use crate::dev::pci::PciDevice;
use crate::mem::frames;

/// A queue pair waiting for its core.
pub type IgbPairSetup = QueuePairSetup<KernelIgbRegisters>;

/// Descriptors per ring.
const RING_DESCRIPTORS: u16 = 256;
/// How long the boot core waits for auto-negotiation (QEMU: about 500 ms);
/// a link still down after it is logged, and the queue polls anyway.
const LINK_BUDGET_MS: u32 = 3_000;

/// The driver that runs `interface`: its spec's, except that `nic=igb` on
/// the command line (`cargo xtask run --nic igb`) puts virtio interfaces on
/// igb functions.
pub fn effective_driver(interface: &Interface) -> Driver {
    match (interface.driver, cmdline::get("nic")) {
        (Driver::Virtio, Some("igb")) => Driver::Igb,
        (driver, _) => driver,
    }
}

/// Brings up `device` for `interface` (the spec's `index`-th): reset, link,
/// MSI-X, and `min(queues, cores)` queue pairs programmed; pair `i` is for
/// core `i`.
pub fn bring_up(
    interface: &Interface,
    index: usize,
    device: &PciDevice,
    cores: usize,
) -> Result<Vec<IgbPairSetup>, String> {
    let registers = KernelIgbRegisters::new(device)
        .ok_or_else(|| format!("{}: BAR 0 is not an assigned memory BAR", device.address))?;
    let mut nic = Igb::reset(registers).map_err(|error| format!("igb reset: {error}"))?;
    nic.set_link_up()
        .map_err(|error| format!("igb link: {error}"))?;
    let link = nic.wait_for_link(LINK_BUDGET_MS);
    let mac = dataplane::MacAddr(nic.mac());
    if mac != interface.mac {
        log::warn!(
            "interface `{}`: device MAC {mac} differs from the spec's {}",
            interface.name,
            interface.mac
        );
    }
    let pairs = interface
        .queues
        .min(u16::try_from(cores).unwrap_or(u16::MAX))
        .clamp(1, igb::registers::QUEUES);
    let bytes = RingMemory::bytes(RING_DESCRIPTORS) as u64;
    let ring = || -> Result<RingMemory, String> {
        let phys = frames::allocate_zeroed(bytes, frames::FRAME_BYTES)
            .map_err(|_| String::from("no memory for the igb rings"))?;
        let virt = core::ptr::NonNull::new(phys as *mut u8)
            .ok_or_else(|| String::from("igb ring at address 0"))?;
        // SAFETY: fresh zeroed frames owned by this ring from now on, never
        // freed, page aligned (so 128-byte aligned), identity mapped (the
        // device sees them at the same address), cache coherent (x86 DMA).
        Ok(unsafe { RingMemory::new(virt, phys, RING_DESCRIPTORS) })
    };
    let mut rings = Vec::new();
    for _ in 0..pairs {
        rings.push((ring()?, ring()?));
    }
    let mut msix = crate::appliance::setup::route_rx_interrupts(device, pairs);
    // Link Status Change on the entry after the queues', to core 0, whose
    // pair 0 reads `ICR` (the wake-up makes it look before sleeping again).
    let link_interrupt = match &mut msix {
        Some(table) if table.len() > pairs => {
            let core0 = smp::record(0).and_then(|record| u8::try_from(record.apic_id()).ok());
            match core0.map(|apic_id| table.set_entry(pairs, apic_id, NIC_RX_VECTOR)) {
                Some(Ok(())) => true,
                other => {
                    log::warn!(
                        "{}: link interrupt not routed ({other:?}): link changes are read, not signalled",
                        device.address
                    );
                    false
                }
            }
        }
        _ => false,
    };
    let options = PairOptions {
        msix: msix.is_some(),
        link_interrupt,
    };
    let setups = igb::program_queue_pairs(nic, rings, &format!("igb{index}"), options)
        .map_err(|error| format!("igb queues: {error}"))?;
    if let Some(table) = &msix {
        table.enable(device);
    }
    log::info!(
        "interface `{}` {} at {}: igb, mac {mac}, link {} {} Mb/s, {pairs} queue pairs of {RING_DESCRIPTORS} descriptors{}, {} wake on packet",
        interface.name,
        interface.address,
        device.address,
        if link.up { "up" } else { "down" },
        link.speed_mbps,
        if pairs > 1 { " (RSS)" } else { "" },
        if msix.is_some() { pairs } else { 0 },
    );
    if link_interrupt {
        log::info!(
            "interface `{}`: link status change on MSI-X entry {pairs} (core 0)",
            interface.name
        );
    }
    Ok(setups)
}
