//! Where hosted finds Wasm modules: `module = "acl.wasm"` is a file path,
//! relative to the spec file's directory unless absolute.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// The spec file's directory.
static SPEC_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Makes module paths relative to `spec`'s directory and sets the source.
pub fn install(spec: &std::path::Path) {
    let dir = spec.parent().map(PathBuf::from).unwrap_or_default();
    let _ = SPEC_DIR.set(dir);
    warpcore_wasm::set_module_source(read);
}

/// Reads module `name`.
fn read(name: &str) -> Result<Arc<Vec<u8>>, String> {
    let path = SPEC_DIR
        .get()
        .map_or_else(|| PathBuf::from(name), |dir| dir.join(name));
    std::fs::read(&path)
        .map(Arc::new)
        .map_err(|error| format!("cannot read `{}`: {error}", path.display()))
}
