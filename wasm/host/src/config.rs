//! `WasmConfig`: a `kind = "wasm"` service's spec table (the keys of
//! `wasm/ABI.md`, "The spec"), each number checked against its range where
//! it is read, so a mistake names its line and field.

use crate::engine::{Budget, EngineChoice, Meter};
use crate::module::LoadedModule;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use serde::Deserialize;
use serde::de::{Deserializer, Error as _};
use spin::Once;

/// What happens to the packets of a fault (and of a quarantined module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFault {
    /// Dropped, counted `fault-dropped`.
    #[default]
    Drop,
    /// Passed on unjudged, counted `fault-passed`.
    Pass,
}

/// A `[[service]] kind = "wasm"` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmConfig {
    /// The service's name: counters, status, logs and hot loading use it.
    #[serde(deserialize_with = "service_name")]
    pub name: String,
    /// Hosted: a file path; bare metal: a boot module of that name.
    pub module: String,
    /// The engine: `wasmi` (default, every platform) or `wasmtime`
    /// (hosted built with the `wasmtime` feature; refused elsewhere).
    #[serde(default)]
    pub engine: EngineChoice,
    /// Bytes handed to `warpcore_init`, verbatim.
    #[serde(default)]
    pub config: String,
    /// Bytes of each packet copied into its slot's window (64-9216).
    #[serde(default = "defaults::window", deserialize_with = "window")]
    pub window: u32,
    /// Packets per `warpcore_process_batch` call (1-256).
    #[serde(default = "defaults::slots", deserialize_with = "slots")]
    pub slots: u32,
    /// How a call that runs too long is stopped: `fuel` (default) or
    /// `epoch` (wasmtime only).
    #[serde(default)]
    pub meter: Meter,
    /// Wasm fuel per call (1 - 2^40), under `meter = "fuel"`.
    #[serde(default = "defaults::fuel", deserialize_with = "fuel")]
    pub fuel: u64,
    /// Milliseconds a call may run (1-1000), under `meter = "epoch"`.
    #[serde(default = "defaults::deadline_ms", deserialize_with = "deadline_ms")]
    pub deadline_ms: u32,
    /// Cap on the module's memory, in 64 KiB pages (1-65536).
    #[serde(default = "defaults::memory_pages", deserialize_with = "memory_pages")]
    pub memory_pages: u32,
    /// Entries of the module's map, per core (0-1048576).
    #[serde(default = "defaults::map_entries", deserialize_with = "map_entries")]
    pub map_entries: u32,
    /// What faults do to packets.
    #[serde(default)]
    pub on_fault: OnFault,
    /// Faults within `quarantine_window_ms` that quarantine the module (1-1000).
    #[serde(
        default = "defaults::quarantine_after",
        deserialize_with = "quarantine_after"
    )]
    pub quarantine_after: u32,
    /// The window faults are counted in, in milliseconds (1-3600000).
    #[serde(
        default = "defaults::quarantine_window_ms",
        deserialize_with = "quarantine_window_ms"
    )]
    pub quarantine_window_ms: u32,
    /// Redirect targets, by the hook point's output names (at most 16).
    #[serde(default, deserialize_with = "outputs")]
    pub outputs: Vec<String>,
    /// The module, loaded and checked once (by the spec's check), shared
    /// by every core's instance.
    #[serde(skip)]
    pub(crate) loaded: LoadedCell,
}

/// The compiled module of a configuration, or why it was refused.
#[derive(Default)]
pub(crate) struct LoadedCell(pub(crate) Once<Result<Arc<LoadedModule>, String>>);

impl WasmConfig {
    /// A configuration for module bytes given directly (tests, benches,
    /// hot loading): the defaults of the spec for everything else.
    pub fn new(name: &str, module: &str) -> Self {
        Self {
            name: String::from(name),
            module: String::from(module),
            engine: EngineChoice::Wasmi,
            config: String::new(),
            window: defaults::window(),
            slots: defaults::slots(),
            meter: Meter::Fuel,
            fuel: defaults::fuel(),
            deadline_ms: defaults::deadline_ms(),
            memory_pages: defaults::memory_pages(),
            map_entries: defaults::map_entries(),
            on_fault: OnFault::Drop,
            quarantine_after: defaults::quarantine_after(),
            quarantine_window_ms: defaults::quarantine_window_ms(),
            outputs: Vec::new(),
            loaded: LoadedCell::default(),
        }
    }

    /// How each call is metered: the `meter` with its budget.
    pub(crate) fn budget(&self) -> Budget {
        match self.meter {
            Meter::Fuel => Budget::Fuel(self.fuel),
            Meter::Epoch => Budget::Deadline(self.deadline_ms),
        }
    }

    /// Loads the module from the platform's source and checks it, once;
    /// later calls give the first outcome.
    pub fn loaded(&self) -> Result<&Arc<LoadedModule>, &String> {
        self.loaded
            .0
            .call_once(|| {
                let bytes = crate::source::load_module(&self.module)?;
                LoadedModule::load(&bytes, self).map(Arc::new)
            })
            .as_ref()
    }

    /// Checks `bytes` as this configuration's module and keeps it, instead
    /// of asking the platform's source (tests, benches, hot loading).
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<&Arc<LoadedModule>, &String> {
        self.loaded
            .0
            .call_once(|| LoadedModule::load(bytes, self).map(Arc::new))
            .as_ref()
    }
}

impl fmt::Debug for WasmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmConfig")
            .field("name", &self.name)
            .field("module", &self.module)
            .field("engine", &self.engine)
            .field("config", &self.config)
            .field("window", &self.window)
            .field("slots", &self.slots)
            .field("meter", &self.meter)
            .field("fuel", &self.fuel)
            .field("deadline_ms", &self.deadline_ms)
            .field("memory_pages", &self.memory_pages)
            .field("map_entries", &self.map_entries)
            .field("on_fault", &self.on_fault)
            .field("quarantine_after", &self.quarantine_after)
            .field("quarantine_window_ms", &self.quarantine_window_ms)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

mod defaults {
    pub(super) fn window() -> u32 {
        128
    }
    pub(super) fn slots() -> u32 {
        32
    }
    pub(super) fn fuel() -> u64 {
        1_000_000
    }
    pub(super) fn deadline_ms() -> u32 {
        10
    }
    pub(super) fn memory_pages() -> u32 {
        16
    }
    pub(super) fn map_entries() -> u32 {
        4096
    }
    pub(super) fn quarantine_after() -> u32 {
        3
    }
    pub(super) fn quarantine_window_ms() -> u32 {
        10_000
    }
}

/// A number in `min..=max`, refused with the range otherwise.
fn ranged<'de, D: Deserializer<'de>>(deserializer: D, min: u64, max: u64) -> Result<u64, D::Error> {
    let value = u64::deserialize(deserializer)?;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(D::Error::custom(alloc::format!(
            "{value} is out of range: expected {min}-{max}"
        )))
    }
}

macro_rules! ranged_u32 {
    ($($name:ident: $min:expr, $max:expr;)*) => {$(
        fn $name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
            // Cannot truncate: the range's maximum fits u32.
            ranged(deserializer, $min, $max).map(|value| value as u32)
        }
    )*};
}

ranged_u32! {
    window: 64, 9216;
    slots: 1, 256;
    deadline_ms: 1, 1000;
    memory_pages: 1, 65536;
    map_entries: 0, 1_048_576;
    quarantine_after: 1, 1000;
    quarantine_window_ms: 1, 3_600_000;
}

fn fuel<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    ranged(deserializer, 1, 1 << 40)
}

/// True for a name counters and URLs take as it is: `[a-z0-9-]`, 1-32.
pub(crate) fn plain_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn service_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let name = String::deserialize(deserializer)?;
    if plain_name(&name) {
        Ok(name)
    } else {
        Err(D::Error::custom(alloc::format!(
            "`{name}` is not a service name: expected 1-32 of a-z, 0-9 and -"
        )))
    }
}

fn outputs<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let outputs = Vec::<String>::deserialize(deserializer)?;
    if outputs.len() > 16 {
        return Err(D::Error::custom("at most 16 outputs"));
    }
    for (index, output) in outputs.iter().enumerate() {
        if outputs[..index].contains(output) {
            return Err(D::Error::custom(alloc::format!(
                "output `{output}` is named twice"
            )));
        }
    }
    Ok(outputs)
}
