//! `BoundedMap`: a module's per-core key-value map, bounded in entries,
//! key and value length, with no heap allocation per entry.

use arrayvec::ArrayVec;
use hashbrown::HashMap;

/// The longest key, in bytes.
pub const MAX_KEY: usize = 64;
/// The longest value, in bytes.
pub const MAX_VALUE: usize = 256;

/// Why an update was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapRefusal {
    /// The map holds its maximum of entries already.
    Full,
    /// The key is over [`MAX_KEY`] or the value over [`MAX_VALUE`] bytes.
    TooLong,
}

/// A key-value map of at most `capacity` entries.
#[derive(Debug)]
pub struct BoundedMap {
    entries: HashMap<ArrayVec<u8, MAX_KEY>, ArrayVec<u8, MAX_VALUE>>,
    capacity: usize,
}

impl BoundedMap {
    /// An empty map of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity,
        }
    }

    /// The entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of `key`, if present.
    pub fn lookup(&self, key: &[u8]) -> Option<&[u8]> {
        let key = ArrayVec::try_from(key).ok()?;
        self.entries.get(&key).map(|value| value.as_slice())
    }

    /// Sets `key` to `value`.
    pub fn update(&mut self, key: &[u8], value: &[u8]) -> Result<(), MapRefusal> {
        let key: ArrayVec<u8, MAX_KEY> =
            ArrayVec::try_from(key).map_err(|_| MapRefusal::TooLong)?;
        let value: ArrayVec<u8, MAX_VALUE> =
            ArrayVec::try_from(value).map_err(|_| MapRefusal::TooLong)?;
        if let Some(slot) = self.entries.get_mut(&key) {
            *slot = value;
            return Ok(());
        }
        if self.entries.len() >= self.capacity {
            return Err(MapRefusal::Full);
        }
        self.entries.insert(key, value);
        Ok(())
    }

    /// Every entry, in no particular order (tests and tools read the map
    /// through this).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|(key, value)| (key.as_slice(), value.as_slice()))
    }

    /// Removes `key`; false when it was absent.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        match ArrayVec::<u8, MAX_KEY>::try_from(key) {
            Ok(key) => self.entries.remove(&key).is_some(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_in_entries_and_lengths() {
        let mut map = BoundedMap::new(2);
        assert_eq!(map.update(b"a", b"1"), Ok(()));
        assert_eq!(map.update(b"b", b"2"), Ok(()));
        assert_eq!(map.update(b"c", b"3"), Err(MapRefusal::Full));
        assert_eq!(map.update(b"a", b"11"), Ok(()), "an existing key updates");
        assert_eq!(map.lookup(b"a"), Some(&b"11"[..]));
        assert_eq!(map.update(&[0; 65], b"x"), Err(MapRefusal::TooLong));
        assert_eq!(map.update(b"d", &[0; 257]), Err(MapRefusal::TooLong));
        assert!(map.update(&[1; 64], &[2; 256]).is_err(), "still full");
        assert!(map.delete(b"a"));
        assert!(!map.delete(b"a"));
        assert_eq!(map.update(&[1; 64], &[2; 256]), Ok(()));
        assert_eq!(map.lookup(&[1; 64]).map(<[u8]>::len), Some(256));
        assert_eq!(map.lookup(&[0; 100]), None);
        assert_eq!(map.len(), 2);
    }
}
