//! The boot bundle: how bare metal gets module bytes. QEMU and Firecracker
//! hand a PVH guest one initrd, the spec; `cargo xtask` appends the spec's
//! modules to it after a zero byte (which TOML text never holds):
//!
//! ```text
//! spec TOML | 0x00 | "WCWASM01" | { name_len: u16 LE | name | len: u32 LE | bytes }*
//! ```
//!
//! A spec without modules is the plain spec file, as before.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// What follows the zero byte.
pub const MAGIC: &[u8; 8] = b"WCWASM01";

/// A bundle's modules, by name.
pub type Modules = Vec<(String, Arc<Vec<u8>>)>;

/// Splits a boot module into the spec's bytes and its modules; `Err`
/// says where the module part is malformed.
pub fn split(bytes: &[u8]) -> Result<(&[u8], Modules), String> {
    let Some(end) = bytes.iter().position(|&byte| byte == 0) else {
        return Ok((bytes, Vec::new()));
    };
    let (text, rest) = (&bytes[..end], &bytes[end + 1..]);
    // Loaders pad modules with zero bytes: a spec followed by zeros only
    // has no modules.
    if rest.iter().all(|&byte| byte == 0) {
        return Ok((text, Vec::new()));
    }
    let mut rest = rest.strip_prefix(&MAGIC[..]).ok_or_else(|| {
        String::from("bytes after the spec that are not a module bundle (WCWASM01)")
    })?;
    let mut modules = Vec::new();
    while !rest.is_empty() && !rest.iter().all(|&byte| byte == 0) {
        let take = |rest: &mut &[u8], n: usize, what: &str| -> Result<Vec<u8>, String> {
            if rest.len() < n {
                return Err(alloc::format!("module bundle cut short in {what}"));
            }
            let (taken, left) = rest.split_at(n);
            *rest = left;
            Ok(taken.to_vec())
        };
        let name_len = take(&mut rest, 2, "a name length")?;
        let name_len = usize::from(u16::from_le_bytes([name_len[0], name_len[1]]));
        let name = String::from_utf8(take(&mut rest, name_len, "a name")?)
            .map_err(|_| String::from("module bundle: a name is not UTF-8"))?;
        let len = take(&mut rest, 4, "a module length")?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let module = take(&mut rest, len, "module bytes")?;
        modules.push((name, Arc::new(module)));
    }
    Ok((text, modules))
}

/// A bundle of `spec` and `modules` (what `cargo xtask` boots).
pub fn encode(spec: &[u8], modules: &[(&str, &[u8])]) -> Vec<u8> {
    let mut bytes = spec.to_vec();
    if modules.is_empty() {
        return bytes;
    }
    bytes.push(0);
    bytes.extend_from_slice(MAGIC);
    for (name, module) in modules {
        bytes.extend_from_slice(&(name.len() as u16).to_le_bytes());
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(&(module.len() as u32).to_le_bytes());
        bytes.extend_from_slice(module);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_round_trip_and_bad_ones_are_refused() {
        let bytes = encode(b"[spec]\n", &[("acl.wasm", b"\0asm1"), ("b", b"")]);
        let (text, modules) = split(&bytes).unwrap();
        assert_eq!(text, b"[spec]\n");
        assert_eq!(modules.len(), 2);
        assert_eq!(
            (modules[0].0.as_str(), modules[0].1.as_slice()),
            ("acl.wasm", &b"\0asm1"[..])
        );
        assert_eq!(modules[1].0, "b");
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0; 7]);
        assert_eq!(split(&padded).unwrap().1.len(), 2, "padding is ignored");
        assert_eq!(
            split(b"[spec]\n\0\0\0").unwrap(),
            (&b"[spec]\n"[..], Vec::new())
        );
        assert_eq!(split(b"[spec]\n").unwrap().1.len(), 0);
        assert!(split(b"x\0junk").is_err());
        for cut in 9..bytes.len() - 1 {
            // Every cut inside a record is refused or reads fewer modules,
            // never a panic.
            let _ = split(&bytes[..cut]);
        }
        assert!(split(&bytes[..bytes.len() - 3]).is_err());
    }
}
