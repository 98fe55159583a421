//! `LoadedModule`: a module validated, translated and checked against the
//! ABI once (off the data cores, when the spec is checked or a module
//! uploaded), then instantiated by every core.

use crate::config::WasmConfig;
use crate::descriptor::DESCRIPTOR_SIZE;
use crate::engine::{CompiledModule, EngineChoice, ExportShape, ValueType};
use crate::instance::Instance;
use crate::node::HOST_EVENTS;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// The ABI version this host speaks (`warpcore_abi_version`).
pub const ABI_VERSION: i32 = 1;
/// Bytes of a Wasm page.
pub const PAGE: usize = 65_536;

/// A checked module and what its instances need to know.
pub struct LoadedModule {
    /// The engine it runs on.
    pub(crate) engine: EngineChoice,
    /// Validated and compiled by that engine.
    pub(crate) compiled: CompiledModule,
    /// The service's name, leaked once per load: node names are `'static`.
    pub(crate) name: &'static str,
    /// `pass`, `out`, then the spec's `outputs`.
    pub(crate) outputs: &'static [&'static str],
    /// For each of the spec's `outputs`, the node's output index.
    pub(crate) redirects: Vec<u8>,
    /// The host's events, then the counters the module registered.
    pub(crate) events: &'static [&'static str],
    pub(crate) window: usize,
    pub(crate) slots: usize,
    pub(crate) memory_bytes: usize,
    pub(crate) map_entries: usize,
    pub(crate) config: Vec<u8>,
}

impl core::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("name", &self.name)
            .field("engine", &self.engine)
            .field("outputs", &self.outputs)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// Leaks `text`: names that counters keep for the life of the process.
fn leak(text: &str) -> &'static str {
    Box::leak(text.to_string().into_boxed_str())
}

impl LoadedModule {
    /// Validates and translates `bytes`, checks its exports against the
    /// ABI and `config`'s memory cap, and runs one trial instance (its
    /// `warpcore_init` with the spec's config): a module that would be
    /// refused on a core is refused here, with the reason.
    pub fn load(bytes: &[u8], config: &WasmConfig) -> Result<Self, String> {
        let compiled = CompiledModule::compile(config.engine, config.budget(), bytes)?;
        check_exports(&compiled, config.memory_pages)?;
        for (module, name) in compiled.imports() {
            if module != "warpcore" {
                return Err(format!(
                    "imports `{module}.{name}`: only module \"warpcore\" is provided (no WASI)"
                ));
            }
        }
        let mut outputs: Vec<&'static str> = alloc::vec!["pass", "out"];
        let mut redirects = Vec::with_capacity(config.outputs.len());
        for output in &config.outputs {
            // `pass` and `out` are the node's first two outputs already.
            match outputs.iter().position(|known| known == output) {
                Some(index) => redirects.push(index as u8),
                None => {
                    redirects.push(outputs.len() as u8);
                    outputs.push(leak(output));
                }
            }
        }
        let mut loaded = Self {
            engine: config.engine,
            compiled,
            name: leak(&config.name),
            outputs: Box::leak(outputs.into_boxed_slice()),
            redirects,
            events: HOST_EVENTS,
            window: config.window as usize,
            slots: config.slots as usize,
            memory_bytes: config.memory_pages as usize * PAGE,
            map_entries: config.map_entries as usize,
            config: config.config.as_bytes().to_vec(),
        };
        let trial = Instance::new(&loaded, usize::MAX, 0)?;
        let mut events: Vec<&'static str> = HOST_EVENTS.to_vec();
        events.extend(trial.counter_names().iter().map(|name| leak(name)));
        loaded.events = Box::leak(events.into_boxed_slice());
        Ok(loaded)
    }

    /// The service's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The engine it runs on.
    pub fn engine(&self) -> EngineChoice {
        self.engine
    }

    /// The node's events: the host's, then the module's counters.
    pub fn events(&self) -> &'static [&'static str] {
        self.events
    }

    /// Bytes the module's buffer holds: the descriptors and windows.
    pub(crate) fn buffer_size(&self) -> usize {
        (self.slots * (DESCRIPTOR_SIZE + self.window)).max(self.config.len())
    }
}

/// `text` on one line: the engine's messages spread byte arrays over many.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks the exports the ABI requires.
fn check_exports(module: &CompiledModule, memory_pages: u32) -> Result<(), String> {
    use ValueType::I32;
    let function = |name: &str, params: &[ValueType], results: &[ValueType]| match module
        .export(name)
    {
        Some(ExportShape::Func(have_params, have_results))
            if have_params == params && have_results == results =>
        {
            Ok(())
        }
        Some(ExportShape::Func(have_params, have_results)) => Err(format!(
            "export `{name}` has type {have_params:?} -> {have_results:?}, the ABI says {params:?} -> {results:?}"
        )),
        Some(_) => Err(format!("export `{name}` is not a function")),
        None => Err(format!(
            "does not export `{name}` (wasm/ABI.md, version {ABI_VERSION})"
        )),
    };
    match module.export("memory") {
        Some(ExportShape::Memory(minimum)) => {
            if minimum > u64::from(memory_pages) {
                return Err(format!(
                    "its memory starts at {minimum} pages, over memory_pages = {memory_pages}"
                ));
            }
        }
        Some(_) => return Err("export `memory` is not a memory".to_string()),
        None => return Err("does not export `memory`".to_string()),
    }
    function("warpcore_abi_version", &[], &[I32])?;
    function("warpcore_buffer", &[I32], &[I32])?;
    function("warpcore_init", &[I32], &[I32])?;
    function("warpcore_process_batch", &[I32], &[])?;
    Ok(())
}
