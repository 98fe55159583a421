//! `RoutingTable`: connected, static and default IPv4 routes with
//! longest-prefix match, and `LocalAddresses`: what counts as "for us".

use alloc::vec::Vec;
use core::net::Ipv4Addr;
use dataplane::Ipv4Cidr;

/// One route: where packets for `destination` leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteEntry {
    /// The destination subnet.
    pub destination: Ipv4Cidr,
    /// Egress interface (index in the spec).
    pub interface: usize,
    /// Next hop; `None` when the destination is directly connected.
    pub via: Option<Ipv4Addr>,
}

/// A routing table, longest prefix first. Built once per core; lookups scan
/// a handful of entries (a linear scan beats a trie at this size).
#[derive(Debug, Clone, Default)]
pub struct RoutingTable {
    routes: Vec<RouteEntry>,
}

impl RoutingTable {
    /// Connected routes for every interface address in `interfaces` (by
    /// index) plus the static `routes`.
    pub fn new(interfaces: &[Ipv4Cidr], routes: &[RouteEntry]) -> Self {
        let mut routes: Vec<RouteEntry> = interfaces
            .iter()
            .enumerate()
            .map(|(interface, address)| RouteEntry {
                destination: Ipv4Cidr {
                    address: address.network(),
                    prefix_len: address.prefix_len,
                },
                interface,
                via: None,
            })
            .chain(routes.iter().copied())
            .collect();
        // Stable sort: among equal prefixes, connected routes stay first.
        routes.sort_by_key(|route| core::cmp::Reverse(route.destination.prefix_len));
        Self { routes }
    }

    /// The egress interface and next hop for `destination`.
    #[inline]
    pub fn lookup(&self, destination: Ipv4Addr) -> Option<(usize, Ipv4Addr)> {
        self.routes
            .iter()
            .find(|route| route.destination.contains(destination))
            .map(|route| (route.interface, route.via.unwrap_or(destination)))
    }
}

/// How a destination address relates to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locality {
    /// One of our unicast addresses.
    Unicast,
    /// 255.255.255.255 or a connected subnet's broadcast address.
    Broadcast,
    /// Somebody else (to forward, or not for us).
    Remote,
}

/// Our addresses, one per spec interface.
#[derive(Debug, Clone, Default)]
pub struct LocalAddresses {
    addresses: Vec<Ipv4Cidr>,
}

impl LocalAddresses {
    /// Our addresses, by interface index.
    pub fn new(addresses: Vec<Ipv4Cidr>) -> Self {
        Self { addresses }
    }

    /// Whether `destination` is ours.
    #[inline]
    pub fn locality(&self, destination: Ipv4Addr) -> Locality {
        if destination.is_broadcast() {
            return Locality::Broadcast;
        }
        // One address (a core with one interface, the common case): no
        // loop to set up.
        if let [only] = self.addresses.as_slice()
            && only.address == destination
        {
            return Locality::Unicast;
        }
        for cidr in &self.addresses {
            if cidr.address == destination {
                return Locality::Unicast;
            }
            if cidr.prefix_len < 31 && cidr.broadcast() == destination {
                return Locality::Broadcast;
            }
        }
        Locality::Remote
    }

    /// Our only address, when there is one and it is not the limited
    /// broadcast: then `locality(a)` is `Unicast` exactly for it and
    /// `is_ours(a)` true exactly for it, so a per-packet caller can hold
    /// it in a register and compare (see `ipv4`).
    #[inline]
    pub fn single(&self) -> Option<Ipv4Addr> {
        match self.addresses.as_slice() {
            [only] if !only.address.is_broadcast() => Some(only.address),
            _ => None,
        }
    }

    /// True when `address` is one of our unicast addresses.
    #[inline]
    pub fn is_ours(&self, address: Ipv4Addr) -> bool {
        match self.addresses.as_slice() {
            // One address: one compare, no loop to set up.
            [only] => only.address == address,
            all => all.iter().any(|cidr| cidr.address == address),
        }
    }

    /// Our address on `interface`.
    #[inline]
    pub fn on_interface(&self, interface: usize) -> Option<Ipv4Addr> {
        self.addresses.get(interface).map(|cidr| cidr.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Ipv4Cidr {
        text.parse().unwrap()
    }

    fn route(destination: &str, interface: usize, via: Option<Ipv4Addr>) -> RouteEntry {
        RouteEntry {
            destination: cidr(destination),
            interface,
            via,
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let ip = |a, b, c, d| Ipv4Addr::new(a, b, c, d);
        let interfaces = [cidr("10.0.1.1/24"), cidr("10.0.2.1/24")];
        let mut routes = vec![
            route("0.0.0.0/0", 0, Some(ip(10, 0, 1, 254))),
            route("10.9.0.0/16", 1, Some(ip(10, 0, 2, 9))),
            route("10.9.9.0/24", 0, None),
        ];
        let table = RoutingTable::new(&interfaces, &routes);
        assert_eq!(table.lookup(ip(10, 0, 2, 7)), Some((1, ip(10, 0, 2, 7))));
        assert_eq!(table.lookup(ip(10, 0, 1, 7)), Some((0, ip(10, 0, 1, 7))));
        assert_eq!(table.lookup(ip(10, 9, 1, 1)), Some((1, ip(10, 0, 2, 9))));
        assert_eq!(table.lookup(ip(10, 9, 9, 1)), Some((0, ip(10, 9, 9, 1))));
        assert_eq!(table.lookup(ip(8, 8, 8, 8)), Some((0, ip(10, 0, 1, 254))));
        routes[0] = route("192.168.0.0/16", 0, Some(ip(10, 0, 1, 254)));
        assert_eq!(
            RoutingTable::new(&interfaces, &routes).lookup(ip(8, 8, 8, 8)),
            None
        );
        let local = LocalAddresses::new(interfaces.to_vec());
        assert_eq!(local.locality(ip(10, 0, 2, 1)), Locality::Unicast);
        assert_eq!(local.locality(ip(10, 0, 2, 255)), Locality::Broadcast);
        assert_eq!(local.locality(ip(255, 255, 255, 255)), Locality::Broadcast);
        assert_eq!(local.locality(ip(10, 0, 2, 2)), Locality::Remote);
        assert_eq!(local.on_interface(1), Some(ip(10, 0, 2, 1)));
    }
}
