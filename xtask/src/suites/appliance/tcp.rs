//! The TCP stack under QEMU: examples/tcp.toml booted once, its tap bridged
//! to a client namespace (so loss can be injected on the wire), then the
//! core TCP checks of `suites::tcp_traffic` in a row: echo and 10 MB, 10 MB
//! under 5 % loss toward the appliance, a closed port, the malformed
//! segments and a 20 000-SYN flood. One boot for all keeps the suite short.

use crate::net::bridged::{BridgedClient, Direction};
use crate::net::devices::Lan;
use crate::qemu::session::QemuSession;
use crate::spec_file::{self, example};
use crate::suites::proxy_traffic::Steering;
use crate::suites::tcp_traffic::{
    self, bulk_under_loss, closed_port, echo_round_trip, malformed_segments,
};
use crate::suites::traffic::wait_reachable;
use anyhow::Result;
use std::cell::RefCell;

/// Boots examples/management.toml (its test copy) on one core and runs
/// the management checks against it.
pub fn management_checks_in_qemu() -> Result<()> {
    let lan = Lan::create(1, false, Some("10.0.0.1/24"))?;
    let session = QemuSession::boot_appliance(
        &crate::suites::management_traffic::test_spec()?,
        1,
        &lan.netns,
        &lan.tap_names(),
        1,
    )?;
    let result = (|| -> Result<()> {
        wait_reachable(&lan.netns, tcp_traffic::APPLIANCE, 20)?;
        crate::suites::management_traffic::management_checks(&lan.netns)
    })();
    result.map_err(|error| error.context(format!("console:\n{}", session.log())))
}

/// Boots examples/management.toml (its test copy) on one core and runs
/// the reconcile checks against it: specs applied without a reboot.
pub fn reconcile_checks_in_qemu() -> Result<()> {
    let lan = Lan::create(1, false, Some("10.0.0.1/24"))?;
    let session = QemuSession::boot_appliance(
        &crate::suites::management_traffic::test_spec()?,
        1,
        &lan.netns,
        &lan.tap_names(),
        1,
    )?;
    let result = (|| -> Result<()> {
        wait_reachable(&lan.netns, tcp_traffic::APPLIANCE, 20)?;
        crate::suites::reconcile::reconcile_checks(&lan.netns, lan.tap())
    })();
    result.map_err(|error| error.context(format!("console:\n{}", session.log())))
}

/// Boots examples/management.toml (its test copy) with udp-echo on port
/// 9 too, on one core, and runs the Wasm hot-loading checks
/// (`suites::hot_load`): the example modules, built first (`cargo xtask
/// wasm-examples`), and the hostile ones pushed, checked and removed
/// through the management API, their bytes carried in memory (no boot
/// bundle).
pub fn hot_load_checks_in_qemu() -> Result<()> {
    let examples_folder = crate::commands::wasm_examples::build()?;
    let dir = crate::suites::hosted::wasm::module_dir()?;
    let outcome = (|| -> Result<()> {
        let management = std::fs::read_to_string(crate::suites::management_traffic::test_spec()?)?;
        let spec = dir.join("hot-load.toml");
        std::fs::write(&spec, crate::suites::hot_load::hot_load_spec(&management))?;
        let lan = Lan::create(1, false, Some("10.0.0.1/24"))?;
        let session = QemuSession::boot_appliance(&spec, 1, &lan.netns, &lan.tap_names(), 1)?;
        let result = (|| -> Result<()> {
            wait_reachable(&lan.netns, tcp_traffic::APPLIANCE, 20)?;
            let modules = crate::suites::hot_load::HotLoadModules {
                examples_folder: &examples_folder,
                examples: &QEMU_EXAMPLES,
                test_modules: &dir,
            };
            crate::suites::hot_load::hot_load_checks(&lan.netns, lan.tap(), &modules, 1)
        })();
        result.map_err(|error| error.context(format!("console:\n{}", session.log())))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

/// The example modules the QEMU case pushes: all nine.
const QEMU_EXAMPLES: [crate::suites::hot_load::ExampleModule; 9] =
    crate::suites::hot_load::ExampleModule::ALL;

/// Boots examples/tcp-proxy.toml on two cores and two queue pairs, its
/// backend (python http.server) and clients in the tap's namespace, and
/// runs the proxy checks (`suites::proxy_traffic`).
pub fn proxy_checks_in_qemu() -> Result<()> {
    proxy_checks_on(Nic::Virtio)
}

/// The proxy checks with the interface on igb (one queue pair per core,
/// our RSS): every backend connection's answers land on the core that
/// dialled, so no segment strays.
pub fn proxy_checks_on_igb() -> Result<()> {
    proxy_checks_on(Nic::Igb)
}

/// The NIC a case runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nic {
    /// virtio-net (QEMU's multi-queue tap steers).
    Virtio,
    /// igb (`driver = "igb"`; the device's RSS with our key steers).
    Igb,
}

impl Nic {
    /// `text` with its virtio interfaces on this NIC.
    pub fn spec(self, text: &str) -> Result<String> {
        match self {
            Self::Virtio => Ok(text.to_owned()),
            Self::Igb => {
                anyhow::ensure!(
                    text.contains("driver = \"virtio\""),
                    "the spec has no virtio interface to put on igb"
                );
                Ok(text.replace("driver = \"virtio\"", "driver = \"igb\""))
            }
        }
    }

    /// Whether the tap needs a queue per queue pair (virtio-net's are tap
    /// queues; igb spreads one tap queue itself).
    pub fn multi_queue_tap(self) -> bool {
        self == Self::Virtio
    }
}

fn proxy_checks_on(nic: Nic) -> Result<()> {
    let text = spec_file::with_queues(&std::fs::read_to_string(example("tcp-proxy.toml"))?, 2)?;
    let spec = spec_file::temporary("px", &nic.spec(&text)?)?;
    let lan = Lan::create(1, nic.multi_queue_tap(), Some("10.0.0.1/24"))?;
    let booted = QemuSession::boot_appliance(&spec, 2, &lan.netns, &lan.tap_names(), 2);
    let _ = std::fs::remove_file(&spec);
    let session = RefCell::new(booted?);
    let mut counters = || session.borrow_mut().counters();
    let steering = match nic {
        Nic::Virtio => Steering::Host,
        Nic::Igb => Steering::OurRss,
    };
    let result = (|| -> Result<()> {
        wait_reachable(&lan.netns, tcp_traffic::APPLIANCE, 20)?;
        crate::suites::proxy_traffic::proxy_checks(&lan.netns, &mut counters, 2, steering)
    })();
    result.map_err(|error| error.context(format!("console:\n{}", session.borrow().log())))
}

/// Boots examples/tcp.toml on one core and runs the TCP checks against it.
pub fn tcp_checks() -> Result<()> {
    let lan = Lan::create(1, false, None)?;
    let link = BridgedClient::create(&lan.netns, lan.tap(), "10.0.0.1/24")?;
    let session =
        QemuSession::boot_appliance(&example("tcp.toml"), 1, &lan.netns, &lan.tap_names(), 1)?;
    let session = RefCell::new(session);
    let mut counters = || session.borrow_mut().counters();
    let result = (|| -> Result<()> {
        let client = &link.client;
        wait_reachable(client, tcp_traffic::APPLIANCE, 20)?;
        eprintln!("xtask: [appliance] tcp echo");
        echo_round_trip(client, &mut counters)?;
        eprintln!("xtask: [appliance] tcp under loss");
        bulk_under_loss(
            &link,
            &mut counters,
            10_000_000,
            5,
            &[Direction::ToAppliance],
            180,
        )?;
        eprintln!("xtask: [appliance] tcp closed port");
        closed_port(client, &mut counters)?;
        eprintln!("xtask: [appliance] tcp malformed segments");
        malformed_segments(client, link.client_ifname(), &mut counters)?;
        eprintln!("xtask: [appliance] tcp syn flood");
        tcp_traffic::syn_flood(client, link.client_ifname(), &mut counters, 20_000, 5_000)
    })();
    result.map_err(|error| error.context(format!("console:\n{}", session.borrow().log())))
}
