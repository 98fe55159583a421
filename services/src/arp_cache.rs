//! `ArpCache`: IPv4 → MAC bindings, bounded in size and expiring.

use arrayvec::ArrayVec;
use core::net::Ipv4Addr;
use dataplane::MacAddr;

/// Entries a cache holds; the oldest is replaced when full.
pub const ARP_CACHE_SIZE: usize = 64;
/// How long a binding is trusted.
pub const ARP_ENTRY_LIFETIME_NS: u64 = 60_000_000_000;

#[derive(Debug, Clone, Copy)]
struct Binding {
    ip: Ipv4Addr,
    mac: MacAddr,
    learned_ns: u64,
}

/// A bounded, expiring ARP cache (one per interface per core).
#[derive(Debug, Clone, Default)]
pub struct ArpCache {
    bindings: ArrayVec<Binding, ARP_CACHE_SIZE>,
}

impl ArpCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The MAC for `ip`, if known and not expired at `now_ns`.
    #[inline]
    pub fn lookup(&self, ip: Ipv4Addr, now_ns: u64) -> Option<MacAddr> {
        self.binding(ip, now_ns).map(|(mac, _)| mac)
    }

    /// The MAC for `ip` and when it was learned, if known and not expired
    /// at `now_ns`.
    #[inline]
    pub fn binding(&self, ip: Ipv4Addr, now_ns: u64) -> Option<(MacAddr, u64)> {
        self.bindings
            .iter()
            .find(|binding| binding.ip == ip)
            .filter(|binding| now_ns.saturating_sub(binding.learned_ns) < ARP_ENTRY_LIFETIME_NS)
            .map(|binding| (binding.mac, binding.learned_ns))
    }

    /// True when `ip` has a binding (fresh or not).
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.bindings.iter().any(|binding| binding.ip == ip)
    }

    /// Learns or refreshes `ip` → `mac`, replacing the oldest binding when full.
    pub fn insert(&mut self, ip: Ipv4Addr, mac: MacAddr, now_ns: u64) {
        let fresh = Binding {
            ip,
            mac,
            learned_ns: now_ns,
        };
        if let Some(binding) = self.bindings.iter_mut().find(|binding| binding.ip == ip) {
            *binding = fresh;
        } else if let Err(error) = self.bindings.try_push(fresh) {
            let oldest = self
                .bindings
                .iter_mut()
                .min_by_key(|binding| binding.learned_ns)
                .expect("a full cache has bindings");
            *oldest = error.element();
        }
    }

    /// When the oldest binding goes stale (nanoseconds), if any: the next
    /// [`expire`](Self::expire) with something to forget.
    pub fn next_expiry_ns(&self) -> Option<u64> {
        self.bindings
            .iter()
            .map(|binding| binding.learned_ns.saturating_add(ARP_ENTRY_LIFETIME_NS))
            .min()
    }

    /// Forgets bindings older than the lifetime.
    pub fn expire(&mut self, now_ns: u64) {
        self.bindings
            .retain(|binding| now_ns.saturating_sub(binding.learned_ns) < ARP_ENTRY_LIFETIME_NS);
    }

    /// Bindings held.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// True when no binding is held.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_expires_and_stays_bounded() {
        let mut cache = ArpCache::new();
        let mac = MacAddr([2, 0, 0, 0, 0, 7]);
        assert_eq!(cache.next_expiry_ns(), None);
        cache.insert(Ipv4Addr::new(10, 0, 0, 1), mac, 5);
        cache.insert(Ipv4Addr::new(10, 0, 0, 9), mac, 8);
        assert_eq!(cache.next_expiry_ns(), Some(5 + ARP_ENTRY_LIFETIME_NS));
        cache.insert(Ipv4Addr::new(10, 0, 0, 9), mac, 2);
        assert_eq!(cache.next_expiry_ns(), Some(2 + ARP_ENTRY_LIFETIME_NS));
        cache.expire(2 + ARP_ENTRY_LIFETIME_NS);
        assert_eq!(cache.next_expiry_ns(), Some(5 + ARP_ENTRY_LIFETIME_NS));
        assert_eq!(cache.lookup(Ipv4Addr::new(10, 0, 0, 1), 6), Some(mac));
        assert_eq!(
            cache.lookup(Ipv4Addr::new(10, 0, 0, 1), 5 + ARP_ENTRY_LIFETIME_NS),
            None
        );
        assert!(cache.contains(Ipv4Addr::new(10, 0, 0, 1)));
        cache.expire(5 + ARP_ENTRY_LIFETIME_NS);
        assert!(cache.is_empty());
        for host in 0..(ARP_CACHE_SIZE as u32 + 10) {
            cache.insert(Ipv4Addr::from_bits(host), mac, u64::from(host) + 100);
        }
        assert_eq!(cache.len(), ARP_CACHE_SIZE);
        assert!(!cache.contains(Ipv4Addr::from_bits(0)));
        assert!(cache.contains(Ipv4Addr::from_bits(ARP_CACHE_SIZE as u32 + 9)));
    }
}
