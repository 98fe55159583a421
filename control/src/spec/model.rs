//! The typed spec: interfaces, routes and services, as validated.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use dataplane::{Ipv4Cidr, MacAddr};
use services::HookPoint;
use services::reassembly::ReassemblyLimits;
use services::registry::{InterfaceInfo, ServiceConfig};

pub use services::MAX_INTERFACES;

/// Which driver runs an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Driver {
    /// virtio-net (appliance).
    Virtio,
    /// Intel 82576 / I350 (appliance; QEMU's `-device igb`).
    Igb,
    /// Linux tap (hosted).
    Tap,
    /// Linux AF_PACKET (hosted).
    AfPacket,
    /// Linux AF_XDP (hosted).
    AfXdp,
    /// In-memory loopback (tests).
    Loopback,
}

impl Driver {
    /// The name as written in a spec.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Virtio => "virtio",
            Self::Igb => "igb",
            Self::Tap => "tap",
            Self::AfPacket => "af-packet",
            Self::AfXdp => "af-xdp",
            Self::Loopback => "loopback",
        }
    }

    /// True for the drivers that run on a Linux interface (hosted only).
    pub const fn is_hosted(self) -> bool {
        matches!(self, Self::Tap | Self::AfPacket | Self::AfXdp)
    }
}

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Unique name, like `eth0`.
    pub name: String,
    /// The driver.
    pub driver: Driver,
    /// Our MAC address on it.
    pub mac: MacAddr,
    /// Our address and the connected subnet.
    pub address: Ipv4Cidr,
    /// Queue pairs (one per core that serves it); at least 1.
    pub queues: u16,
    /// Hosted drivers: the Linux interface it runs on (the spec's
    /// `ifname`); `None` means the one called [`name`](Self::name).
    pub ifname: Option<String>,
    /// af-xdp: the NIC queue core 0 binds (the spec's `first_queue`); core
    /// N binds `first_queue + N`. Zero for every other driver.
    pub first_queue: u32,
}

/// A static route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The destination subnet (host bits clear); `0.0.0.0/0` is the default.
    pub destination: Ipv4Cidr,
    /// Next hop; `None` means directly connected on `interface`.
    pub via: Option<Ipv4Addr>,
    /// Index into `Spec::interfaces` of the egress interface.
    pub interface: usize,
}

/// A service and where it runs.
#[derive(Debug, Clone)]
pub struct Service {
    /// Its kind's name, like `udp-echo`.
    pub kind: &'static str,
    /// Cores it runs on; `None` means every core.
    pub cores: Option<Vec<usize>>,
    /// Where it attaches: the spec's `attach`, else its kind's own.
    pub attach: Vec<HookPoint>,
    /// Its kind's configuration, from the rest of its table.
    pub config: Arc<dyn ServiceConfig>,
    /// The line of its `kind` key (for errors about the service).
    pub line: usize,
}

impl Service {
    /// True when the service runs on `core`.
    pub fn runs_on(&self, core: usize) -> bool {
        self.cores
            .as_ref()
            .is_none_or(|cores| cores.contains(&core))
    }
}

pub use services::tcp::TcpConfig;

/// Settings of the IPv4 stage of every core (`[ipv4]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ipv4Settings {
    /// Reassembly limits per core: `reassembly_datagrams` in progress at
    /// once (0 turns reassembly off) and `reassembly_max_bytes`, the
    /// largest datagram; the memory bound is their product.
    pub reassembly: ReassemblyLimits,
}

/// What a core does when it has no work: the spec's top-level `idle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdleMode {
    /// `"halt"` (the default): after a run of empty polls the core arms
    /// its NICs' receive interrupts and a one-shot timer for its services'
    /// next deadline, and sleeps until one of them or another core's
    /// handoff wakes it. Under load it never sleeps.
    #[default]
    Halt,
    /// `"poll"`: the core polls without pause, never sleeping (no wake-up
    /// to pay on the guest's side), at the price of a whole CPU per core,
    /// busy or not.
    Poll,
    /// `"haltpoll"`: like `"halt"`, but after its run of empty polls the
    /// core keeps polling for an adaptive window before it sleeps, grown
    /// when wake-ups come soon after a halt and shrunk when they come
    /// late ([`dataplane::HaltPoll`], Linux's guest halt polling): work
    /// that comes back within the window costs no wake-up; an idle core
    /// shrinks its window to 0 and sleeps as under `"halt"`.
    HaltPoll {
        /// The largest window in microseconds (`halt_poll_us`, default
        /// [`DEFAULT_HALT_POLL_US`], at most [`MAX_HALT_POLL_US`]).
        max_window_us: u32,
    },
}

/// The default largest halt-polling window (`halt_poll_us`): Linux's
/// `guest_halt_poll_ns` default, 200 µs.
pub const DEFAULT_HALT_POLL_US: u32 = (dataplane::haltpoll::DEFAULT_MAX_WINDOW_NS / 1000) as u32;
/// The largest `halt_poll_us` a spec may ask for (10 ms): beyond it a
/// core would spin through whole scheduler quanta of its host.
pub const MAX_HALT_POLL_US: u32 = 10_000;

impl IdleMode {
    /// The name as written in a spec.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Halt => "halt",
            Self::Poll => "poll",
            Self::HaltPoll { .. } => "haltpoll",
        }
    }

    /// Whether idle cores sleep (`"halt"` and `"haltpoll"`): they need a
    /// doorbell and their wake-up sources armed.
    pub const fn sleeps(self) -> bool {
        !matches!(self, Self::Poll)
    }
}

/// A validated spec: what should run. Build one with [`Spec::parse`].
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// Interfaces, in file order (their index is used everywhere).
    pub interfaces: Vec<Interface>,
    /// Static routes (connected routes are implied by the interfaces).
    pub routes: Vec<Route>,
    /// Services.
    pub services: Vec<Service>,
    /// The IPv4 stage's settings.
    pub ipv4: Ipv4Settings,
    /// The TCP stack's settings (`[tcp]`), the same on every core.
    pub tcp: TcpConfig,
    /// The management plane (`[management]`), if the spec asks for it.
    pub management: Option<Management>,
    /// What idle cores do (`idle = "halt" | "poll" | "haltpoll"` and
    /// `halt_poll_us`, top-level keys).
    pub idle: IdleMode,
    /// How failing services are restarted (`[supervision]`).
    pub supervision: dataplane::SupervisionPolicy,
}

/// Where the management plane listens and who may use it (`[management]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Management {
    /// Our address and TCP port it listens on (`listen = "10.0.0.2:8080"`).
    pub listen: core::net::SocketAddrV4,
    /// SHA-256 of the bearer token (`token_sha256`, 64 hex digits); the
    /// endpoints that need a token refuse every request without one.
    pub token_sha256: Option<[u8; 32]>,
    /// The core whose TCP stack serves it (`core`, default 0).
    pub core: usize,
    /// A connection idle this long is closed (`idle_timeout_ms`, default
    /// [`DEFAULT_IDLE_TIMEOUT_MS`]); one stalled mid-request is reset.
    pub idle_timeout_ms: u32,
}

/// `[management] idle_timeout_ms` when the spec does not say: 60 s.
pub const DEFAULT_IDLE_TIMEOUT_MS: u32 = 60_000;

impl Spec {
    /// The index of the interface called `name`.
    pub fn interface_index(&self, name: &str) -> Option<usize> {
        self.interfaces
            .iter()
            .position(|interface| interface.name == name)
    }

    /// The interfaces as services see them.
    pub fn interface_infos(&self) -> Vec<InterfaceInfo> {
        self.interfaces
            .iter()
            .map(|interface| InterfaceInfo {
                name: interface.name.clone(),
                mac: interface.mac,
                address: interface.address,
            })
            .collect()
    }

    /// The services that run on `core`.
    pub fn services_on(&self, core: usize) -> impl Iterator<Item = &Service> {
        self.services
            .iter()
            .filter(move |service| service.runs_on(core))
    }
}
