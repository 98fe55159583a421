//! Modules uploaded through the management API (`PUT
//! /api/v1/modules/<name>`): their bytes kept in memory and named in the
//! spec as `module = "upload:<name>:<hash>"`, so hot loading needs no file
//! and no boot bundle on either platform.
//!
//! Only the spec check reads the store (off the data cores: it runs where
//! the management API parses a spec); cores get the module already loaded
//! in the parsed spec, so the lock is never taken on a data path.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

/// The prefix of a spec's `module` value that names an uploaded module.
pub const UPLOAD_PREFIX: &str = "upload:";

/// Uploaded modules by reference (`upload:<name>:<hash>`).
static UPLOADED: Mutex<BTreeMap<String, Arc<Vec<u8>>>> = Mutex::new(BTreeMap::new());

/// Keeps `bytes` under `reference` (which starts with [`UPLOAD_PREFIX`]).
pub fn store_upload(reference: &str, bytes: Arc<Vec<u8>>) {
    UPLOADED.lock().insert(String::from(reference), bytes);
}

/// The bytes stored under `reference`.
pub fn uploaded(reference: &str) -> Option<Arc<Vec<u8>>> {
    UPLOADED.lock().get(reference).cloned()
}

/// Forgets every upload `keep` does not name (a module no spec in use
/// refers to any more); the instances of a loaded module hold their own
/// compiled copy, so nothing running depends on the store.
pub fn retain_uploads(keep: impl Fn(&str) -> bool) {
    UPLOADED.lock().retain(|reference, _| keep(reference));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_finds_and_forgets() {
        let reference = "upload:acl:00112233";
        store_upload(reference, Arc::new(alloc::vec![0, 97, 115, 109]));
        assert_eq!(uploaded(reference).map(|bytes| bytes.len()), Some(4));
        retain_uploads(|name| name != reference);
        assert!(uploaded(reference).is_none());
    }
}
