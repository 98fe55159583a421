//! The appliance: the spec (first PVH module, or the built-in examples/echo.toml),
//! one virtio-net device or igb function per spec interface with one queue
//! pair per core, and on every core an
//! executor built from the spec over that core's queue pairs.
//!
//! The boot core parses the spec and brings the devices up; an invalid spec or a
//! missing device is reported on serial and QEMU exits with the failure status.
//! The other cores wait for it, then each starts its own queue pairs with mempools
//! it creates itself (a mempool belongs to the core that made it).

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use control::CoreLinks;
use control::reconcile::CoreControl;
use control::spec::{Driver, IdleMode, Spec};
use dataplane::{Executor, Mempool, MempoolConfig, Nic};
use spin::{Mutex, Once};
use virtio_net::{QueuePairSetup, RxInterrupts, VirtioNet};

use crate::appliance::counters_dump::NicStats;
use crate::appliance::executor::IdlePolicy;
use crate::appliance::igb_setup::{self, IgbPairSetup};
use crate::arch::trap::{CONSOLE_VECTOR, NIC_RX_VECTOR};
use crate::dev::exit::{ExitCode, exit_qemu};
use crate::dev::igb_platform::igb_devices;
use crate::dev::msix::MsixTable;
use crate::dev::pci::PciDevice;
use crate::dev::virtio_platform::{KernelVirtioPlatform, virtio_net_devices};
use crate::{
    appliance::counters_dump, appliance::executor, arch::apic, arch::cpu, arch::ioapic,
    arch::percpu, arch::smp, boot::init, dev::serial, dev::time,
};

/// The spec used when the loader passes no module.
pub(crate) const DEFAULT_SPEC: &str = include_str!("../../../examples/echo.toml");
/// Receive buffers per queue pair: the ring (256) plus packets in flight.
const RX_POOL_BUFFERS: usize = 1024;
/// Polls between two looks at the serial input on core 0 while it polls
/// (asleep, the console's interrupt wakes it, and it looks at once).
const SERIAL_POLL_INTERVAL: u32 = 256;
/// The longest sleep of a core with a NIC queue that cannot interrupt
/// (`wakeup=off`, no MSI-X): the tick it woke on before hibernation.
const UNSIGNALLED_NIC_SLEEP_NS: u64 = 1_000_000;
/// The longest sleep of core 0 when the console cannot interrupt (no
/// IOAPIC): how late a `c` on the console may be answered.
const UNSIGNALLED_CONSOLE_SLEEP_NS: u64 = 100_000_000;

/// Bring-up state the waiting cores watch.
const PENDING: u8 = 0;
const READY: u8 = 1;
static STATE: AtomicU8 = AtomicU8::new(PENDING);
static SPEC: Once<Spec> = Once::new();
/// Queue pairs waiting for their core: `SETUPS[core]` holds (interface index, pair).
static SETUPS: Mutex<Vec<Vec<(usize, QueuePairSetup)>>> = Mutex::new(Vec::new());
/// igb queue pairs waiting for their core, as `SETUPS`.
static IGB_SETUPS: Mutex<Vec<Vec<(usize, IgbPairSetup)>>> = Mutex::new(Vec::new());
/// The links between cores the spec's services asked for: `LINKS[core]`
/// holds that core's ends, made once by the boot core.
static LINKS: Mutex<Vec<CoreLinks>> = Mutex::new(Vec::new());
/// True once the console's receive interrupt is routed to core 0.
static CONSOLE_INTERRUPTS: AtomicBool = AtomicBool::new(false);

/// Runs the appliance on the calling core; never returns.
pub fn run(core_id: u32) -> ! {
    if core_id == 0 {
        bring_up();
    } else {
        // Check-then-halt with interrupts off, as `runtime::core_main`: the
        // release IPI arriving between the look and the `hlt` stays pending
        // and ends the `hlt`, rather than running first and leaving this
        // core asleep until its next tick.
        loop {
            cpu::disable_interrupts();
            // Acquire pairs with the Release store in `bring_up`.
            if STATE.load(Ordering::Acquire) != PENDING {
                break;
            }
            // SAFETY: the IDT is loaded and the timer ticks on this core;
            // `sti; hlt` takes a pending interrupt only once `hlt` began.
            unsafe { cpu::enable_interrupts_and_halt() };
        }
        // Cores run the appliance with interrupts on, as they arrived.
        // SAFETY: the IDT is loaded and handles every vector in use.
        unsafe { cpu::enable_interrupts() };
    }
    // No periodic tick from here on: a core that sleeps arms a one-shot
    // timer for its next deadline, one that polls needs none.
    apic::stop_timer();
    let Some(spec) = SPEC.get() else {
        refuse(format_args!("no spec after bring-up"))
    };
    let setups = SETUPS
        .lock()
        .get_mut(core_id as usize)
        .map(core::mem::take)
        .unwrap_or_default();
    let igb_pairs = IGB_SETUPS
        .lock()
        .get_mut(core_id as usize)
        .map(core::mem::take)
        .unwrap_or_default();
    let mut links = LINKS
        .lock()
        .get_mut(core_id as usize)
        .map(core::mem::take)
        .unwrap_or_default();
    let unsignalled_igb = igb_pairs.iter().any(|(_, pair)| !pair.rx_interrupts());
    let policy = idle_policy(spec, core_id, &setups, unsignalled_igb);
    if spec.idle.sleeps() {
        links.insert_shared(executor::doorbell());
    }
    // A panicking service goes back to its executor, which restarts it.
    links.insert_shared(dataplane::Guard {
        run: crate::arch::resume::guard,
        unwinds: false,
    });
    // The reconcile controller's rings, when the spec has a management
    // plane to take new specs.
    let mut control = links.take_shared::<CoreControl>();
    let mut executor = match build_core(spec, core_id, setups, igb_pairs, links) {
        Ok(executor) => executor,
        Err(error) => refuse(format_args!("core {core_id}: {error}")),
    };
    if let (Some(control), Some(doorbell)) = (&control, executor.doorbell()) {
        control.set_doorbell(Arc::clone(doorbell));
    }
    log::info!(
        "core {core_id} appliance running (idle = {}{}{})",
        spec.idle.name(),
        match spec.idle {
            IdleMode::HaltPoll { max_window_us } => {
                alloc::format!(", polls at most {max_window_us} us before halting")
            }
            IdleMode::Halt | IdleMode::Poll => String::new(),
        },
        match policy.max_sleep_ns {
            Some(bound) => alloc::format!(", sleeps at most {} ms", bound / 1_000_000),
            None => String::new(),
        }
    );
    let console = &percpu::current().interrupts.console;
    let mut console_seen = 0;
    let mut polls = 0u32;
    executor::run(&mut executor, policy, |executor| {
        if let Some(control) = &mut control
            && control.pending()
        {
            swap_graph(executor, control, core_id);
        }
        if core_id == 0 {
            polls = polls.wrapping_add(1);
            // Ordering: Relaxed: bumped by this core's own console interrupt.
            let console_now = console.load(Ordering::Relaxed);
            if console_now != console_seen || polls.is_multiple_of(SERIAL_POLL_INTERVAL) {
                console_seen = console_now;
                counters_dump::poll_request();
            }
        }
        true
    });
    crate::runtime::idle_forever()
}

/// Builds the graph of the spec the controller sent (between polls: a
/// batch boundary) in place of the running one.
fn swap_graph(executor: &mut Executor, control: &mut CoreControl, core_id: u32) {
    let placeholder = match dataplane::ExecutorBuilder::new().build() {
        Ok(empty) => empty,
        // A graph without nodes has no output to leave unconnected.
        Err(error) => unreachable!("an empty graph: {error}"),
    };
    let running = core::mem::replace(executor, placeholder);
    *executor = control.apply(running);
    counters_dump::replace_executor(core_id, executor.counters().clone());
}

/// How core `core_id` idles: the spec's mode, with a bound on each sleep
/// when something it must notice cannot wake it (a NIC queue without a
/// receive interrupt: `wakeup=off`, or no MSI-X; on core 0, a console
/// without one).
fn idle_policy(
    spec: &Spec,
    core_id: u32,
    setups: &[(usize, QueuePairSetup)],
    unsignalled_queues: bool,
) -> IdlePolicy {
    if spec.idle == IdleMode::Poll {
        return IdlePolicy {
            mode: IdleMode::Poll,
            max_sleep_ns: None,
        };
    }
    let nic_bound = (unsignalled_queues || setups.iter().any(|(_, setup)| !setup.rx_interrupts()))
        .then_some(UNSIGNALLED_NIC_SLEEP_NS);
    // Ordering: Acquire pairs with the Release store in `route_console`,
    // made before the boot core released the others.
    let console_bound = (core_id == 0 && !CONSOLE_INTERRUPTS.load(Ordering::Acquire))
        .then_some(UNSIGNALLED_CONSOLE_SLEEP_NS);
    IdlePolicy {
        mode: spec.idle,
        max_sleep_ns: nic_bound.into_iter().chain(console_bound).min(),
    }
}

/// Routes the console's receive interrupt to the calling core (core 0)
/// and turns it on, so that a `c` wakes the core when it sleeps.
fn route_console() {
    match ioapic::route_isa(serial::COM1_IRQ, CONSOLE_VECTOR, apic::id()) {
        Ok(()) => {
            serial::enable_receive_interrupt();
            // Ordering: Release pairs with the Acquire in `idle_policy`.
            CONSOLE_INTERRUPTS.store(true, Ordering::Release);
        }
        Err(error) => log::warn!(
            "console: no receive interrupt ({error:?}): core 0 wakes at least every {} ms to read it",
            UNSIGNALLED_CONSOLE_SLEEP_NS / 1_000_000
        ),
    }
}

/// Prints why the appliance will not start and exits QEMU with the failure status.
fn refuse(reason: core::fmt::Arguments<'_>) -> ! {
    crate::kprintln!("appliance: refusing to start: {reason}");
    exit_qemu(ExitCode::Failure)
}

/// Boot core: parse the spec, bring every interface's device up, hand out
/// pairs to their cores.
fn bring_up() {
    let text = match init::spec_module() {
        Some(bytes) => match core::str::from_utf8(
            super::modules::split_boot_module(bytes)
                .unwrap_or_else(|error| refuse(format_args!("boot module: {error}"))),
        ) {
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
    let mut igb_functions = igb_devices();
    let mut igb_per_core: Vec<Vec<(usize, IgbPairSetup)>> =
        (0..cores).map(|_| Vec::new()).collect();
    // What each core's TCP stack learns of the igb interfaces' RSS.
    let mut igb_steering = Vec::new();
    for (index, interface) in spec.interfaces.iter().enumerate() {
        match igb_setup::effective_driver(interface) {
            Driver::Virtio => {}
            Driver::Igb => {
                let Some(device) = igb_functions.next() else {
                    refuse(format_args!(
                        "interface `{}`: no igb PCI function left for it (give QEMU one \
                         -device igb per igb interface)",
                        interface.name
                    ))
                };
                match igb_setup::bring_up(interface, index, device, cores) {
                    Ok(pairs) => {
                        if pairs.len() > 1 {
                            let table = igb::redirection_table(pairs.len() as u16);
                            for pair in &pairs {
                                let queue = pair.queue();
                                igb_steering
                                    .push((usize::from(queue), table.steering(index, queue as u8)));
                            }
                        }
                        for pair in pairs {
                            igb_per_core[usize::from(pair.queue())].push((index, pair));
                        }
                    }
                    Err(error) => refuse(format_args!(
                        "interface `{}` ({}): {error}",
                        interface.name, device.address
                    )),
                }
                continue;
            }
            other => refuse(format_args!(
                "interface `{}`: driver `{}` is not available on bare metal (use virtio or igb)",
                interface.name,
                other.name()
            )),
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
    for (core, steering) in igb_steering {
        if let Some(core_links) = links.get_mut(core) {
            core_links.insert_shared(steering);
        }
    }
    if let Err(error) = management::attach(
        &spec,
        text,
        &mut links,
        "appliance",
        time::now_ns,
        time::now_ns(),
        // No wall clock (no RTC driver): captures count from boot.
        None,
        &crate::dev::console::LOG_RING,
    ) {
        refuse(format_args!("spec error ({source}): {error}"));
    }
    *LINKS.lock() = links;
    if spec.idle.sleeps() {
        route_console();
    }
    SPEC.call_once(|| spec);
    *SETUPS.lock() = per_core;
    *IGB_SETUPS.lock() = igb_per_core;
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
/// `wakeup=off`: its cores then sleep at most a millisecond at a time.
pub(crate) fn route_rx_interrupts(device: &PciDevice, pairs: u16) -> Option<MsixTable> {
    if crate::boot::cmdline::get("wakeup") == Some("off") {
        log::info!("wakeup=off: cores sleep at most a millisecond at a time");
        return None;
    }
    let mut table = match MsixTable::new(device) {
        Ok(table) => table,
        Err(error) => {
            log::warn!(
                "{}: no MSI-X ({error:?}): cores sleep at most a millisecond at a time",
                device.address
            );
            return None;
        }
    };
    if table.len() < pairs {
        log::warn!(
            "{}: {} MSI-X vectors for {pairs} queue pairs: cores sleep at most a millisecond at a time",
            device.address,
            table.len()
        );
        return None;
    }
    for pair in 0..pairs {
        let apic_id =
            smp::record(usize::from(pair)).and_then(|record| u8::try_from(record.apic_id()).ok());
        let Some(apic_id) = apic_id else {
            log::warn!(
                "core {pair}: no xAPIC-addressable id: cores sleep at most a millisecond at a time"
            );
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
    igb_pairs: Vec<(usize, IgbPairSetup)>,
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
        queue_stats.push((queue.name().to_string(), NicStats::Virtio(queue.stats())));
        ports.push((interface, Box::new(queue)));
    }
    for (interface, setup) in igb_pairs {
        let pool_region = region
            .split_off_front(rx_bytes)
            .ok_or("DMA share too small for the receive pools")?;
        let pool = Mempool::new(pool_region, rx_config).map_err(|error| error.to_string())?;
        let queue = setup
            .start(pool)
            .map_err(|error| alloc::format!("igb queue pair {core_id}: {error}"))?;
        queue_stats.push((queue.name().to_string(), NicStats::Igb(queue.stats())));
        ports.push((interface, Box::new(queue)));
    }
    let pool = Mempool::new(region, MempoolConfig::default()).map_err(|error| error.to_string())?;
    let executor = control::build_core(spec, core_id as usize, ports, pool, time::now_ns, links)
        .map_err(|error| error.to_string())?;
    counters_dump::register(core_id, executor.counters().clone(), queue_stats);
    Ok(executor)
}
