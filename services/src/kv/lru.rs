//! `Lru`: recency order over slab indexes, as an intrusive doubly linked
//! list kept beside the slab: touching, inserting and evicting are O(1).

use alloc::vec::Vec;

/// No index (the end of the list).
const NONE: u32 = u32::MAX;

/// The neighbours of one slab index in the list.
#[derive(Debug, Clone, Copy)]
struct Link {
    /// Towards the most recently used.
    newer: u32,
    /// Towards the least recently used.
    older: u32,
}

/// Slab indexes from most to least recently used.
#[derive(Debug)]
pub struct Lru {
    links: Vec<Link>,
    newest: u32,
    oldest: u32,
}

impl Default for Lru {
    fn default() -> Self {
        Self::new()
    }
}

impl Lru {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            links: Vec::new(),
            newest: NONE,
            oldest: NONE,
        }
    }

    /// Puts `index` (not in the list) first, as the most recently used.
    pub fn push_newest(&mut self, index: u32) {
        let slot = index as usize;
        if self.links.len() <= slot {
            self.links.resize(
                slot + 1,
                Link {
                    newer: NONE,
                    older: NONE,
                },
            );
        }
        self.links[slot] = Link {
            newer: NONE,
            older: self.newest,
        };
        match self.newest {
            NONE => self.oldest = index,
            newest => self.links[newest as usize].newer = index,
        }
        self.newest = index;
    }

    /// Takes `index` (in the list) out.
    pub fn remove(&mut self, index: u32) {
        let Link { newer, older } = self.links[index as usize];
        match newer {
            NONE => self.newest = older,
            newer => self.links[newer as usize].older = older,
        }
        match older {
            NONE => self.oldest = newer,
            older => self.links[older as usize].newer = newer,
        }
    }

    /// Makes `index` (in the list) the most recently used.
    pub fn touch(&mut self, index: u32) {
        if self.newest != index {
            self.remove(index);
            self.push_newest(index);
        }
    }

    /// The least recently used index.
    pub fn oldest(&self) -> Option<u32> {
        (self.oldest != NONE).then_some(self.oldest)
    }

    /// Empties the list.
    pub fn clear(&mut self) {
        self.links.clear();
        self.newest = NONE;
        self.oldest = NONE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list from oldest to newest, following `newer` links.
    fn order(lru: &Lru) -> Vec<u32> {
        let mut out = Vec::new();
        let mut at = lru.oldest;
        while at != NONE {
            out.push(at);
            at = lru.links[at as usize].newer;
        }
        out
    }

    #[test]
    fn touch_moves_to_newest_and_removal_relinks() {
        let mut lru = Lru::new();
        for index in [0, 1, 2, 3] {
            lru.push_newest(index);
        }
        assert_eq!(order(&lru), [0, 1, 2, 3]);
        lru.touch(0);
        lru.touch(2);
        assert_eq!(order(&lru), [1, 3, 0, 2]);
        lru.remove(1);
        lru.remove(2);
        assert_eq!(order(&lru), [3, 0]);
        assert_eq!(lru.oldest(), Some(3));
        lru.remove(3);
        lru.remove(0);
        assert_eq!(lru.oldest(), None);
        lru.push_newest(5);
        assert_eq!(order(&lru), [5]);
    }
}
