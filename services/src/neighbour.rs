//! `Neighbour`: the binding one interface's `arp` learned or used last,
//! published for `ipv4-out` on the same core, so that packets to that
//! next hop leave with their whole Ethernet header written, straight to
//! the port, without a pass through `arp` (VPP's `ip4-rewrite`, which
//! reads the adjacency ARP filled in).
//!
//! The cell is one more reader of `arp`'s cache, never a second source of
//! truth: `arp` publishes a binding from its cache with the time the
//! cache itself stops trusting it (`learned + ARP_ENTRY_LIFETIME_NS`), and
//! `ipv4-out` uses it only for that next hop and only until then. Anything
//! else (another next hop, broadcast, a binding not yet known, the reply
//! hint) goes the old way, through `arp`.

use crate::arp_cache::ARP_ENTRY_LIFETIME_NS;
use core::net::Ipv4Addr;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use dataplane::MacAddr;

/// One next hop's MAC and how long it holds (see the module docs).
///
/// One core writes and reads it (its `arp` and `ipv4-out` nodes): the
/// fields are atomics only so that the cell is `Sync` and can sit in an
/// `Arc` that both nodes' factories hold; `Relaxed` suffices, since no
/// other thread touches it and a core sees its own stores in order.
#[derive(Debug, Default)]
pub struct Neighbour {
    /// The next hop's address bits; 0 (0.0.0.0, never a next hop `arp`
    /// resolves) when nothing is published.
    address: AtomicU32,
    /// The MAC in the low 48 bits (byte 0 lowest).
    mac: AtomicU64,
    /// First clock reading (nanoseconds) at which the binding no longer
    /// holds.
    valid_until_ns: AtomicU64,
}

impl Neighbour {
    /// An empty cell: nothing resolves through it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes `address` at `mac`, learned at `learned_ns` (as the ARP
    /// cache holds it: it expires when the cache's binding does).
    #[inline]
    pub fn publish(&self, address: Ipv4Addr, mac: MacAddr, learned_ns: u64) {
        let [b0, b1, b2, b3, b4, b5] = mac.0;
        let mac = u64::from_le_bytes([b0, b1, b2, b3, b4, b5, 0, 0]);
        self.mac.store(mac, Ordering::Relaxed);
        self.valid_until_ns.store(
            learned_ns.saturating_add(ARP_ENTRY_LIFETIME_NS),
            Ordering::Relaxed,
        );
        self.address.store(address.to_bits(), Ordering::Relaxed);
    }

    /// Forgets what was published.
    #[inline]
    pub fn clear(&self) {
        self.address.store(0, Ordering::Relaxed);
    }

    /// The address published, if any.
    #[inline]
    pub fn address(&self) -> Option<Ipv4Addr> {
        match self.address.load(Ordering::Relaxed) {
            0 => None,
            bits => Some(Ipv4Addr::from_bits(bits)),
        }
    }

    /// The MAC of `next_hop` when it is the published one and its binding
    /// still holds at `now_ns`.
    #[inline(always)]
    pub fn lookup(&self, next_hop: Ipv4Addr, now_ns: u64) -> Option<MacAddr> {
        let bits = next_hop.to_bits();
        if bits == 0 || self.address.load(Ordering::Relaxed) != bits {
            return None;
        }
        if now_ns >= self.valid_until_ns.load(Ordering::Relaxed) {
            return None;
        }
        let [b0, b1, b2, b3, b4, b5, _, _] = self.mac.load(Ordering::Relaxed).to_le_bytes();
        Some(MacAddr([b0, b1, b2, b3, b4, b5]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_only_the_published_next_hop_while_it_holds() {
        let cell = Neighbour::new();
        let peer = Ipv4Addr::new(10, 0, 0, 2);
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        assert_eq!(cell.lookup(peer, 0), None, "empty");
        assert_eq!(cell.lookup(Ipv4Addr::UNSPECIFIED, 0), None);
        cell.publish(peer, mac, 100);
        assert_eq!(cell.address(), Some(peer));
        assert_eq!(cell.lookup(peer, 100), Some(mac));
        assert_eq!(cell.lookup(peer, 99 + ARP_ENTRY_LIFETIME_NS), Some(mac));
        assert_eq!(
            cell.lookup(peer, 100 + ARP_ENTRY_LIFETIME_NS),
            None,
            "stale when the cache's binding is"
        );
        assert_eq!(cell.lookup(Ipv4Addr::new(10, 0, 0, 3), 100), None);
        let moved = MacAddr([2, 0, 0, 0, 0, 10]);
        cell.publish(peer, moved, 200);
        assert_eq!(cell.lookup(peer, 200), Some(moved));
        cell.clear();
        assert_eq!(cell.lookup(peer, 200), None);
        assert_eq!(cell.address(), None);
    }
}
