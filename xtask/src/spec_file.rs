//! Everything xtask reads from or writes into spec files, in one place: the
//! examples, temporary variants of them, and specs read with the real
//! parser (`control::Spec`), so xtask sees a spec exactly as the appliance
//! will.

use crate::qemu::command_line::NicModel;
use crate::shell::host::workspace_root;
use anyhow::{Context, Result, anyhow, ensure};
use control::Spec;
use services::Registry;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What xtask needs to know about one `[[interface]]` of a spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecInterface {
    /// Its `mac`, as `02:00:00:00:00:01`.
    pub mac: String,
    /// Its `address` in CIDR form, as `10.0.0.2/24`.
    pub address: String,
    /// The NIC QEMU must give it (`driver = "igb"`: igb, else virtio-net).
    pub model: NicModel,
}

/// Every service kind an image or binary can be built with: the built-in
/// ones, the examples (cargo features `example-port-filter` and
/// `example-tcp-apps` of the kernel and of warpcore-hosted) and the
/// test-only `faulty-echo` (`test-services`).
pub fn registry() -> Registry {
    control::registry()
}

/// The directory `module = "..."` paths of the spec being read are
/// relative to, and the modules its parse read (for the boot bundle).
static MODULES: Mutex<(PathBuf, ReadModules)> = Mutex::new((PathBuf::new(), Vec::new()));

/// Modules read while parsing a spec: name and bytes.
type ReadModules = Vec<(String, Vec<u8>)>;

/// The Wasm kind's module source in xtask: files beside the spec being
/// read, as warpcore-hosted reads them; each one read is recorded.
fn module_source(name: &str) -> std::result::Result<Arc<Vec<u8>>, String> {
    let mut modules = MODULES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let path = modules.0.join(name);
    let bytes = std::fs::read(&path)
        .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
    modules.1.push((name.to_owned(), bytes.clone()));
    Ok(Arc::new(bytes))
}

/// The spec file at `path`, parsed and checked as the appliance will.
pub fn read(path: &Path) -> Result<Spec> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    warpcore_wasm::set_module_source(module_source);
    {
        let mut modules = MODULES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        modules.0 = path.parent().map(Path::to_path_buf).unwrap_or_default();
        modules.1.clear();
    }
    Spec::parse(&text, &registry()).map_err(|error| anyhow!("{}: {error}", path.display()))
}

/// What QEMU hands the appliance as its boot module for the spec file at
/// `spec`: the file itself, or, when it names Wasm modules, a bundle of
/// the spec and those modules (`warpcore_wasm::bundle`) in a temporary
/// file. A spec that does not parse goes as it is (the appliance refuses
/// it with the same error).
pub fn boot_module(spec: &Path) -> PathBuf {
    let (Ok(_), Ok(text)) = (read(spec), std::fs::read(spec)) else {
        return spec.to_owned();
    };
    let modules = std::mem::take(
        &mut MODULES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .1,
    );
    if modules.is_empty() {
        return spec.to_owned();
    }
    let named: Vec<(&str, &[u8])> = modules
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
        .collect();
    let path =
        std::env::temp_dir().join(format!("warpcore-{}-boot-module.bin", std::process::id()));
    match std::fs::write(&path, warpcore_wasm::bundle::encode(&text, &named)) {
        Ok(()) => path,
        Err(_) => spec.to_owned(),
    }
}

/// True when `spec` names a kind that is not built in, which only images
/// built with the feature `example-port-filter` know.
pub fn needs_example_services(spec: &Spec) -> bool {
    let builtin = Registry::with_builtin();
    spec.services
        .iter()
        .any(|service| !builtin.names().any(|name| name == service.kind))
}

/// The interfaces of the spec file at `path`, in order.
pub fn interfaces(path: &Path) -> Result<Vec<SpecInterface>> {
    Ok(read(path)?
        .interfaces
        .iter()
        .map(|interface| SpecInterface {
            mac: interface.mac.to_string(),
            address: interface.address.to_string(),
            model: match interface.driver {
                control::spec::Driver::Igb => NicModel::Igb,
                _ => NicModel::Virtio,
            },
        })
        .collect())
}

/// `examples/NAME` in the workspace.
pub fn example(name: &str) -> PathBuf {
    workspace_root().join("examples").join(name)
}

/// `text` (a spec whose interfaces say `queues = 1`) with `queues` queue
/// pairs per interface.
pub fn with_queues(text: &str, queues: u32) -> Result<String> {
    ensure!(
        text.contains("queues = 1"),
        "the spec has no `queues = 1` line to change"
    );
    Ok(text.replace("queues = 1", &format!("queues = {queues}")))
}

/// Writes `text` to a spec file unique to this process and `name`.
pub fn temporary(name: &str, text: &str) -> Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("warpcore-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_examples_read_and_take_more_queues() {
        let echo = interfaces(&example("echo.toml")).unwrap();
        assert_eq!(echo.len(), 1);
        assert_eq!(echo[0].address, "10.0.0.2/24");
        assert_eq!(echo[0].mac, "02:00:00:00:00:01");
        assert_eq!(interfaces(&example("router.toml")).unwrap().len(), 2);
        let text = std::fs::read_to_string(example("echo.toml")).unwrap();
        assert!(with_queues(&text, 2).unwrap().contains("queues = 2"));
        assert!(with_queues("queues = 3", 2).is_err());
    }

    #[test]
    fn specs_are_read_by_the_real_parser() {
        let filter = read(&example("port-filter.toml")).unwrap();
        assert!(needs_example_services(&filter));
        assert!(!needs_example_services(
            &read(&example("echo.toml")).unwrap()
        ));
        let broken = temporary(
            "broken",
            "[[interface]]\nname = \"eth0\" # a comment\nmac = 1\n",
        )
        .unwrap();
        let error = read(&broken).unwrap_err().to_string();
        std::fs::remove_file(&broken).unwrap();
        assert!(
            error.ends_with("line 1: interface[0].driver: required key is missing"),
            "{error}"
        );
    }
}
