//! The module's key-value map (one per core, bounded by the spec's
//! `map_entries`; keys up to 64 bytes, values up to 256).

/// The map is full, or the key or value too long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapFull;

/// Copies the value of `key` into `value` (up to its length); the value's
/// whole length, `None` if absent.
pub fn lookup(key: &[u8], value: &mut [u8]) -> Option<usize> {
    usize::try_from(crate::imports::map_lookup(key, value)).ok()
}

/// Inserts or replaces the value of `key`.
pub fn update(key: &[u8], value: &[u8]) -> Result<(), MapFull> {
    match crate::imports::map_update(key, value) {
        0 => Ok(()),
        _ => Err(MapFull),
    }
}

/// Removes `key`; whether it was there.
pub fn delete(key: &[u8]) -> bool {
    crate::imports::map_delete(key) == 0
}
