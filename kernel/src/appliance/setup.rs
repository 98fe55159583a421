//! The appliance: the spec (first PVH module, or the built-in examples/echo.toml),
//! one virtio-net device per spec interface with one queue pair per core, and on
//! every core an executor built from the spec over that core's queue pairs.
//!
//! The boot core parses the spec and brings the devices up; an invalid spec or a
//! missing device is reported on serial and QEMU exits with the failure status.
//! The other cores wait for it, then each starts its own queue pairs with mempools
//! it creates itself (a mempool belongs to the core that made it).

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, Ordering};

use control::CoreLinks;
use control::spec::{Driver, Spec};
use dataplane::{Executor, Mempool, MempoolConfig, Nic};
use spin::{Mutex, Once};
use virtio_net::{QueuePairSetup, RxInterrupts, VirtioNet};

use crate::arch::trap::{NIC_RX_VECTOR, TIMER_VECTOR};
use crate::dev::exit::{ExitCode, exit_qemu};
use crate::dev::msix::MsixTable;
use crate::dev::pci::PciDevice;
use crate::dev::virtio_platform::{KernelVirtioPlatform, virtio_net_devices};
use crate::{
    appliance::counters_dump, appliance::executor, arch::apic, arch::cpu, arch::smp, boot::init,
    dev::time,
};

/// The spec used when the loader passes no module.
pub(crate) const DEFAULT_SPEC: &str = include_str!("../../../examples/echo.toml");
/// Receive buffers per queue pair: the ring (256) plus packets in flight.
const RX_POOL_BUFFERS: usize = 1024;
/// Timer ticks per second while the appliance runs: a halted core wakes at
/// least this often (a packet wakes it sooner through its queue's MSI-X
/// vector).
const APPLIANCE_TICK_HZ: u64 = 1000;
/// Polls between two looks at the serial input on core 0.
const SERIAL_POLL_INTERVAL: u32 = 256;

/// Bring-up state the waiting cores watch.
const PENDING: u8 = 0;
const READY: u8 = 1;
static STATE: AtomicU8 = AtomicU8::new(PENDING);
static SPEC: Once<Spec> = Once::new();
/// Queue pairs waiting for their core: `SETUPS[core]` holds (interface index, pair).
static SETUPS: Mutex<Vec<Vec<(usize, QueuePairSetup)>>> = Mutex::new(Vec::new());
/// The links between cores the spec's services asked for: `LINKS[core]`
/// holds that core's ends, made once by the boot core.
static LINKS: Mutex<Vec<CoreLinks>> = Mutex::new(Vec::new());

/// Runs the appliance on the calling core; never returns.
pub fn run(core_id: u32) -> ! {
    if core_id == 0 {
        bring_up();
    } else {
        // Acquire pairs with the Release store in `bring_up`.
        while STATE.load(Ordering::Acquire) == PENDING {
            // SAFETY: the IDT is loaded and the timer ticks on this core.
            unsafe { cpu::enable_interrupts_and_halt() };
        }
    }
    apic::start_periodic_timer(TIMER_VECTOR, APPLIANCE_TICK_HZ);
    let Some(spec) = SPEC.get() else {
        refuse(format_args!("no spec after bring-up"))
    };
    let setups = SETUPS
        .lock()
        .get_mut(core_id as usize)
        .map(core::mem::take)
        .unwrap_or_default();
    let links = LINKS
        .lock()
        .get_mut(core_id as usize)
        .map(core::mem::take)
        .unwrap_or_default();
    let mut executor = match build_core(spec, core_id, setups, links) {
        Ok(executor) => executor,
        Err(error) => refuse(format_args!("core {core_id}: {error}")),
    };
    log::info!("core {core_id} appliance running");
    let mut polls = 0u32;
    executor::run(&mut executor, |_| {
        if core_id == 0 {
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(SERIAL_POLL_INTERVAL) {
                counters_dump::poll_request();
            }
        }
        true
    });
    crate::runtime::idle_forever()
}

/// Prints why the appliance will not start and exits QEMU with the failure status.
fn refuse(reason: core::fmt::Arguments<'_>) -> ! {
    crate::kprintln!("appliance: refusing to start: {reason}");
    exit_qemu(ExitCode::Failure)
}

/// Boot core: parse the spec, bring every interface's device up, hand out pairs.
fn bring_up() {
    let text = match init::spec_module() {
        Some(bytes) => match core::str::from_utf8(bytes) {
            // Loaders pad modules with zero bytes; they are not part of the text.
            Ok(text) => text.trim_end_matches('\0'),
            Err(error) => refuse(format_args!("spec module is not UTF-8: {error}")),
        },
        None => DEFAULT_SPEC,
    };
    let source = if init::spec_module().is_some() {
        "PVH module"
    } else {
        "built-in examples/echo.toml"
    };
    let spec = match Spec::parse(text, &control::registry()) {
        Ok(spec) => spec,
        Err(error) => refuse(format_args!("spec error ({source}): {error}")),
    };
    let cores = smp::core_count();
    let mut per_core: Vec<Vec<(usize, QueuePairSetup)>> = (0..cores).map(|_| Vec::new()).collect();
    let mut devices = virtio_net_devices();
    for (index, interface) in spec.interfaces.iter().enumerate() {
        if interface.driver != Driver::Virtio {
            refuse(format_args!(
                "interface `{}`: driver `{}` is not available on bare metal (use virtio)",
                interface.name,
                interface.driver.name()
            ));
        }
        let Some(device) = devices.next() else {
            refuse(format_args!(
                "interface `{}`: no virtio-net PCI device left for it (give QEMU one \
                 -device virtio-net-pci per spec interface)",
                interface.name
            ))
        };
        let wanted = interface.queues.min(cores as u16).max(1);
        let platform = KernelVirtioPlatform::new(device);
        let msix = route_rx_interrupts(device, wanted);
        let interrupts = if msix.is_some() {
            RxInterrupts::MsixEntryPerPair
        } else {
            RxInterrupts::Never
        };
        let (nic, setups) = match VirtioNet::init(&platform, wanted, interrupts) {
            Ok(result) => result,
            Err(error) => refuse(format_args!(
                "interface `{}` ({}): virtio-net: {error}",
                interface.name, device.address
            )),
        };
        if nic.mac() != interface.mac {
            log::warn!(
                "interface `{}`: device MAC {} differs from the spec's {}",
                interface.name,
                nic.mac(),
                interface.mac
            );
        }
        if let Some(table) = &msix {
            table.enable(device);
        }
        let waking = setups.iter().filter(|setup| setup.rx_interrupts()).count();
        log::info!(
            "interface `{}` {} at {}: mac {}, {} of {} queue pairs ({waking} wake on packet), features {:#x}",
            interface.name,
            interface.address,
            device.address,
            nic.mac(),
            nic.queue_pairs(),
            nic.max_queue_pairs(),
            nic.features().bits()
        );
        for setup in setups {
            per_core[usize::from(setup.index())].push((index, setup));
        }
    }
    let mut links = control::core_links(&spec, cores);
    if let Err(error) = management::attach(
        &spec,
        text,
        &mut links,
        "appliance",
        time::now_ns(),
        // No wall clock (no RTC driver): captures count from boot.
        None,
        &crate::dev::console::LOG_RING,
    ) {
        refuse(format_args!("spec error ({source}): {error}"));
    }
    *LINKS.lock() = links;
    SPEC.call_once(|| spec);
    *SETUPS.lock() = per_core;
    // Release: the spec and the setups are visible to cores that see READY.
    STATE.store(READY, Ordering::Release);
    for core_id in 1..cores {
        if let Some(record) = smp::record(core_id) {
            apic::send_fixed(record.apic_id(), crate::arch::trap::WAKEUP_VECTOR);
        }
    }
}

/// Routes MSI-X table entry `pair` of `device` to the local APIC of core
/// `pair` (the core that polls queue pair `pair`) on `NIC_RX_VECTOR`, for
/// every pair. Returns the table, to be enabled once the device is up, or
/// `None` (logged) when the device cannot do it or the command line says
/// `wakeup=off`: its cores then wake on the tick only.
fn route_rx_interrupts(device: &PciDevice, pairs: u16) -> Option<MsixTable> {
    if crate::boot::cmdline::get("wakeup") == Some("off") {
        log::info!("wakeup=off: cores wake on the tick only");
        return None;
    }
    let mut table = match MsixTable::new(device) {
        Ok(table) => table,
        Err(error) => {
            log::warn!(
                "{}: no MSI-X ({error:?}): cores wake on the tick only",
                device.address
            );
            return None;
        }
    };
    if table.len() < pairs {
        log::warn!(
            "{}: {} MSI-X vectors for {pairs} queue pairs: cores wake on the tick only",
            device.address,
            table.len()
        );
        return None;
    }
    for pair in 0..pairs {
        let apic_id =
            smp::record(usize::from(pair)).and_then(|record| u8::try_from(record.apic_id()).ok());
        let Some(apic_id) = apic_id else {
            log::warn!("core {pair}: no xAPIC-addressable id: cores wake on the tick only");
            return None;
        };
        if let Err(error) = table.set_entry(pair, apic_id, NIC_RX_VECTOR) {
            log::warn!("{}: MSI-X entry {pair}: {error:?}", device.address);
            return None;
        }
    }
    Some(table)
}

/// Builds the calling core's executor: a receive pool per queue pair and the
/// executor's own pool, all from this core's DMA share, created on this core.
fn build_core(
    spec: &Spec,
    core_id: u32,
    setups: Vec<(usize, QueuePairSetup)>,
    links: CoreLinks,
) -> Result<Executor, String> {
    let mut region = executor::dma_share(core_id).map_err(|error| alloc::format!("{error:?}"))?;
    let rx_config = MempoolConfig {
        buffer_count: Some(RX_POOL_BUFFERS),
        ..MempoolConfig::default()
    };
    let rx_bytes = RX_POOL_BUFFERS * (rx_config.headroom + 2048).next_multiple_of(64);
    let mut ports: Vec<(usize, Box<dyn Nic>)> = Vec::new();
    let mut queue_stats = Vec::new();
    for (interface, setup) in setups {
        let pool_region = region
            .split_off_front(rx_bytes)
            .ok_or("DMA share too small for the receive pools")?;
        let pool = Mempool::new(pool_region, rx_config).map_err(|error| error.to_string())?;
        let queue = setup.start(pool);
        queue_stats.push((queue.name().to_string(), queue.stats()));
        ports.push((interface, Box::new(queue)));
    }
    let pool = Mempool::new(region, MempoolConfig::default()).map_err(|error| error.to_string())?;
    let executor = control::build_core(spec, core_id as usize, ports, pool, time::now_ns, links)
        .map_err(|error| error.to_string())?;
    counters_dump::register(core_id, executor.counters().clone(), queue_stats);
    Ok(executor)
}
