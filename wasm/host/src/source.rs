//! Where module bytes come from: the platform's source, set once at start
//! (hosted reads files, bare metal looks up its boot modules).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Once;

/// Looks a module up by the spec's `module` value: its bytes, or why not
/// in a sentence.
pub type ModuleSource = fn(&str) -> Result<Arc<Vec<u8>>, String>;

static SOURCE: Once<ModuleSource> = Once::new();

/// Sets the platform's module source. The first call wins: a platform
/// sets it once, before it reads a spec.
pub fn set_module_source(source: ModuleSource) {
    SOURCE.call_once(|| source);
}

/// The bytes of module `name`: an upload (`upload:...`, see
/// [`crate::uploads`]), else from the platform's source.
pub fn load_module(name: &str) -> Result<Arc<Vec<u8>>, String> {
    if name.starts_with(crate::uploads::UPLOAD_PREFIX) {
        // Hot loaded through the management API: the bytes are in memory.
        return crate::uploads::uploaded(name).ok_or_else(|| {
            alloc::format!(
                "no uploaded module `{name}` (upload it with PUT /api/v1/modules/<name>)"
            )
        });
    }
    match SOURCE.get() {
        Some(source) => source(name),
        None => Err(String::from(
            "this platform has no source of Wasm modules (set_module_source was not called)",
        )),
    }
}
