//! Wasm modules on bare metal: the boot module is the spec followed by a
//! bundle of the modules it names (`warpcore_wasm::bundle`, written by
//! `cargo xtask`); `module = "acl.wasm"` looks them up by name.

use spin::Once;
use warpcore_wasm::bundle::{self, Modules};

static MODULES: Once<Modules> = Once::new();

/// Splits the boot module into the spec's bytes and its modules, and
/// makes the modules the Wasm kind's source.
pub fn split_boot_module(bytes: &'static [u8]) -> Result<&'static [u8], alloc::string::String> {
    let (text, modules) = bundle::split(bytes)?;
    MODULES.call_once(|| modules);
    warpcore_wasm::set_module_source(lookup);
    Ok(text)
}

/// Module `name` of the bundle.
fn lookup(name: &str) -> Result<alloc::sync::Arc<alloc::vec::Vec<u8>>, alloc::string::String> {
    MODULES
        .get()
        .and_then(|modules| modules.iter().find(|(known, _)| known == name))
        .map(|(_, bytes)| bytes.clone())
        .ok_or_else(|| {
            alloc::format!(
                "no boot module named `{name}` (cargo xtask bundles the modules a spec names after it)"
            )
        })
}
