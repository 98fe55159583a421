//! The typed spec: interfaces, routes and services, as validated.

use crate::MacAddr;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

/// Most interfaces a spec may define (one pipeline output per interface).
pub const MAX_INTERFACES: usize = 4;

/// An IPv4 address with a prefix length, like `10.0.0.2/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    /// The address as written (host bits may be set for an interface).
    pub address: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    /// `address/prefix_len`; `None` when `prefix_len > 32`.
    pub const fn new(address: Ipv4Addr, prefix_len: u8) -> Option<Self> {
        if prefix_len > 32 {
            None
        } else {
            Some(Self {
                address,
                prefix_len,
            })
        }
    }

    /// The netmask as a host-order integer.
    pub const fn mask(&self) -> u32 {
        if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix_len as u32)
        }
    }

    /// The network address (host bits cleared).
    pub const fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.address.to_bits() & self.mask())
    }

    /// The subnet's directed broadcast address.
    pub const fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.address.to_bits() | !self.mask())
    }

    /// True when `address` is inside the subnet.
    pub const fn contains(&self, address: Ipv4Addr) -> bool {
        (address.to_bits() ^ self.address.to_bits()) & self.mask() == 0
    }
}

impl core::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl core::str::FromStr for Ipv4Cidr {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (address, prefix) = text.split_once('/').ok_or(())?;
        let address: Ipv4Addr = address.parse().map_err(|_| ())?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        let prefix_len: u8 = prefix.parse().map_err(|_| ())?;
        Self::new(address, prefix_len).ok_or(())
    }
}

/// Which driver runs an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Driver {
    /// virtio-net (appliance).
    Virtio,
    /// Linux tap (hosted).
    Tap,
    /// Linux AF_PACKET (hosted).
    AfPacket,
    /// In-memory loopback (tests).
    Loopback,
}

impl Driver {
    /// The name as written in a spec.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Virtio => "virtio",
            Self::Tap => "tap",
            Self::AfPacket => "af-packet",
            Self::Loopback => "loopback",
        }
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

/// What a service does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    /// Echoes UDP datagrams sent to `port`, in place.
    UdpEcho {
        /// The UDP port.
        port: u16,
    },
    /// Swaps MAC addresses and sends every frame back (no IP stack).
    L2fwd,
    /// Forwards IPv4 between interfaces (TTL decrement, ARP resolution).
    L3fwd,
    /// Answers ICMP echo; always on, accepted for explicitness.
    IcmpEcho,
}

impl ServiceKind {
    /// The name as written in a spec.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::UdpEcho { .. } => "udp-echo",
            Self::L2fwd => "l2fwd",
            Self::L3fwd => "l3fwd",
            Self::IcmpEcho => "icmp-echo",
        }
    }
}

/// A service and where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// What it does.
    pub kind: ServiceKind,
    /// Cores it runs on; `None` means every core.
    pub cores: Option<Vec<usize>>,
}

impl Service {
    /// True when the service runs on `core`.
    pub fn runs_on(&self, core: usize) -> bool {
        self.cores
            .as_ref()
            .is_none_or(|cores| cores.contains(&core))
    }
}

/// A validated spec: what should run. Build one with [`Spec::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spec {
    /// Interfaces, in file order (their index is used everywhere).
    pub interfaces: Vec<Interface>,
    /// Static routes (connected routes are implied by the interfaces).
    pub routes: Vec<Route>,
    /// Services.
    pub services: Vec<Service>,
}

impl Spec {
    /// The index of the interface called `name`.
    pub fn interface_index(&self, name: &str) -> Option<usize> {
        self.interfaces
            .iter()
            .position(|interface| interface.name == name)
    }

    /// The services that run on `core`.
    pub fn services_on(&self, core: usize) -> impl Iterator<Item = &Service> {
        self.services
            .iter()
            .filter(move |service| service.runs_on(core))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_arithmetic() {
        let cidr: Ipv4Cidr = "10.0.1.7/24".parse().unwrap();
        assert_eq!(cidr.network(), Ipv4Addr::new(10, 0, 1, 0));
        assert_eq!(cidr.broadcast(), Ipv4Addr::new(10, 0, 1, 255));
        assert!(cidr.contains(Ipv4Addr::new(10, 0, 1, 200)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 0, 2, 1)));
        let default: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(default.contains(Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!(default.mask(), 0);
        let host: Ipv4Cidr = "1.2.3.4/32".parse().unwrap();
        assert_eq!(host.mask(), u32::MAX);
        for bad in [
            "10.0.0.1",
            "10.0.0.1/33",
            "10.0.0.1/",
            "10.0.0/8",
            "10.0.0.1/+8",
            "x/8",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
        assert_eq!(cidr.to_string(), "10.0.1.7/24");
    }
}
