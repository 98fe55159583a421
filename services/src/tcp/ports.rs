//! `EphemeralPorts`: the local ports of the connections a core opens.
//! Linux's range (32768 to 60999) is dealt out among the cores by
//! residue: core `c` of `n` takes the ports `p` with
//! `(p - 32768) % n == c`. Two cores never open the same four addresses,
//! and any core tells from a segment's destination port which core opened
//! its connection, with no table and no lock.

/// The first ephemeral port (Linux's `ip_local_port_range`).
pub const FIRST: u16 = 32768;
/// The last ephemeral port.
pub const LAST: u16 = 60999;

/// One core's share of the ephemeral ports and where its search resumes.
#[derive(Debug, Clone)]
pub struct EphemeralPorts {
    core: usize,
    cores: usize,
    /// Index of the next port to try among this core's share.
    next: usize,
}

impl EphemeralPorts {
    /// Core `core`'s share among `cores` cores (at least one); the search
    /// starts at a place `seed` chooses (RFC 6056: a predictable port
    /// helps an off-path attacker).
    pub fn new(core: usize, cores: usize, seed: u64) -> Self {
        let cores = cores.max(1);
        let mut ports = Self {
            core: core % cores,
            cores,
            next: 0,
        };
        ports.next = (seed as usize) % ports.share();
        ports
    }

    /// Ports in this core's share.
    pub fn share(&self) -> usize {
        let total = usize::from(LAST - FIRST) + 1;
        total / self.cores + usize::from(self.core < total % self.cores)
    }

    /// The core whose share `port` is in, when it is an ephemeral port.
    pub fn owner(&self, port: u16) -> Option<usize> {
        (FIRST..=LAST)
            .contains(&port)
            .then(|| usize::from(port - FIRST) % self.cores)
    }

    /// The next port of this core's share that `free` accepts, trying each
    /// at most once; `None` when every one is taken.
    pub fn allocate(&mut self, mut free: impl FnMut(u16) -> bool) -> Option<u16> {
        let share = self.share();
        for _ in 0..share {
            let index = self.next;
            self.next = (self.next + 1) % share;
            let port = FIRST as usize + self.core + index * self.cores;
            let port = port as u16;
            if free(port) {
                return Some(port);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_share_the_range_without_overlap_and_know_each_others_ports() {
        let mut seen = alloc::vec![false; usize::from(LAST) + 1];
        let mut total = 0;
        for core in 0..3 {
            let mut ports = EphemeralPorts::new(core, 3, 12345);
            let share = ports.share();
            total += share;
            for _ in 0..share {
                let port = ports.allocate(|_| true).unwrap();
                assert!(!seen[usize::from(port)], "port {port} given twice");
                seen[usize::from(port)] = true;
                assert_eq!(ports.owner(port), Some(core));
            }
        }
        assert_eq!(total, usize::from(LAST - FIRST) + 1);
        let ports = EphemeralPorts::new(0, 3, 0);
        assert_eq!(ports.owner(80), None);
        assert_eq!(ports.owner(FIRST + 4), Some(1));
    }

    #[test]
    fn taken_ports_are_skipped_and_a_full_share_says_so() {
        let mut ports = EphemeralPorts::new(1, 2, 0);
        let first = ports.allocate(|_| true).unwrap();
        let second = ports.allocate(|port| port != first + 2).unwrap();
        assert_eq!(second, first + 4);
        assert_eq!(ports.allocate(|_| false), None);
    }
}
