//! The wasmtime engine (hosted, the `wasmtime` feature): modules compiled
//! by Cranelift, one store per instance with the memory cap as its
//! limits. Same imports, same traps as wasmi, and either the same fuel
//! meaning (units per call, out of fuel is a fault) or, with `meter =
//! "epoch"`, a wall-clock deadline per call: a thread per module ticks
//! the engine's epoch every millisecond, and the compiled code checks it
//! at function entries and loop headers.

use super::{AbiFunction, Budget, CallError, ExportShape, ValueType};
use crate::host::{HostState, limits, link_imports};
use crate::module::one_line;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use std::time::Duration;
use wasmtime::{
    Caller, Config, Engine, ExternType, Linker, Memory, Module, OptLevel, Store, StoreLimits,
    StoreLimitsBuilder, Trap, TypedFunc, ValType,
};

/// How often the epoch ticks under `meter = "epoch"`.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// A module compiled by wasmtime.
pub(crate) struct WasmtimeModule {
    engine: Engine,
    module: Module,
    budget: Budget,
}

/// What a wasmtime store holds: the host's state, the memory once it
/// exists, the limits.
pub(crate) struct StoreData {
    host: HostState,
    memory: Option<Memory>,
    limits: StoreLimits,
}

/// Calls `with` with the module's memory and the host's state; `missing`
/// before the memory exists.
#[inline(always)]
fn with_memory<R>(
    caller: &mut Caller<'_, StoreData>,
    missing: R,
    with: impl FnOnce(&mut [u8], &mut HostState) -> R,
) -> R {
    let Some(memory) = caller.data().memory else {
        return missing;
    };
    let (memory, data) = memory.data_and_store_mut(caller);
    with(memory, &mut data.host)
}

/// The host's state of a call.
#[inline(always)]
fn host_state<'a>(caller: &'a mut Caller<'_, StoreData>) -> &'a mut HostState {
    &mut caller.data_mut().host
}

/// A wasmtime error as a sentence.
fn engine_error(what: &str, error: &wasmtime::Error) -> String {
    one_line(&format!("{what}: {error:#}"))
}

fn value_type(ty: &ValType) -> ValueType {
    match ty {
        ValType::I32 => ValueType::I32,
        ValType::I64 => ValueType::I64,
        _ => ValueType::Other,
    }
}

impl WasmtimeModule {
    /// Validates and compiles `bytes` with Cranelift, metered by
    /// `budget`: fuel, or epoch interruption with a ticking thread that
    /// lives as long as the engine.
    pub(crate) fn compile(bytes: &[u8], budget: Budget) -> Result<Self, String> {
        let mut config = Config::new();
        config
            .consume_fuel(matches!(budget, Budget::Fuel(_)))
            .epoch_interruption(matches!(budget, Budget::Deadline(_)))
            .cranelift_opt_level(OptLevel::Speed)
            // A trap is counted and logged by the host; nobody reads its
            // Wasm backtrace, so do not pay for one.
            .wasm_backtrace_max_frames(None);
        let engine = Engine::new(&config).map_err(|error| engine_error("wasmtime", &error))?;
        let module = Module::new(&engine, bytes)
            .map_err(|error| one_line(&format!("invalid module: {error:#}")))?;
        if let Budget::Deadline(_) = budget {
            tick_epochs(&engine)?;
        }
        Ok(Self {
            engine,
            module,
            budget,
        })
    }

    /// The imports, as (module, name).
    pub(crate) fn imports(&self) -> Vec<(String, String)> {
        self.module
            .imports()
            .map(|import| (import.module().to_string(), import.name().to_string()))
            .collect()
    }

    /// The export `name`.
    pub(crate) fn export(&self, name: &str) -> Option<ExportShape> {
        Some(match self.module.get_export(name)? {
            ExternType::Func(ty) => ExportShape::Func(
                ty.params().map(|ty| value_type(&ty)).collect(),
                ty.results().map(|ty| value_type(&ty)).collect(),
            ),
            ExternType::Memory(memory) => ExportShape::Memory(memory.minimum()),
            _ => ExportShape::Other,
        })
    }

    /// A fresh store and instance.
    pub(crate) fn instantiate(
        &self,
        host: HostState,
        memory_bytes: usize,
    ) -> Result<WasmtimeInstance, String> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_bytes)
            .memories(limits::MEMORIES)
            .tables(limits::TABLES)
            .table_elements(limits::TABLE_ELEMENTS)
            .instances(limits::INSTANCES)
            .build();
        let data = StoreData {
            host,
            memory: None,
            limits,
        };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|data| &mut data.limits);
        match self.budget {
            Budget::Fuel(fuel) => store
                .set_fuel(fuel)
                .map_err(|error| engine_error("fuel", &error))?,
            Budget::Deadline(ms) => {
                store.epoch_deadline_trap();
                store.set_epoch_deadline(deadline_ticks(ms));
            }
        }
        let mut linker = Linker::new(&self.engine);
        let link = |linker: &mut Linker<StoreData>| -> wasmtime::Result<()> {
            link_imports!(linker, Caller<'_, StoreData>);
            Ok(())
        };
        link(&mut linker).map_err(|error| engine_error("imports", &error))?;
        let instance = linker
            .instantiate(&mut store, &self.module)
            .map_err(|error| engine_error("instantiation refused", &error))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| String::from("does not export `memory`"))?;
        store.data_mut().memory = Some(memory);
        let mut typed = |name: &str| {
            instance
                .get_typed_func::<i32, i32>(&mut store, name)
                .map_err(|error| engine_error(name, &error))
        };
        let buffer = typed("warpcore_buffer")?;
        let init = typed("warpcore_init")?;
        let process = instance
            .get_typed_func::<i32, ()>(&mut store, "warpcore_process_batch")
            .map_err(|error| engine_error("warpcore_process_batch", &error))?;
        let version = instance
            .get_typed_func::<(), i32>(&mut store, "warpcore_abi_version")
            .map_err(|error| engine_error("warpcore_abi_version", &error))?;
        Ok(WasmtimeInstance {
            store,
            memory,
            version,
            buffer,
            init,
            process,
            budget: self.budget,
        })
    }
}

/// Epoch ticks of a deadline of `ms` milliseconds: one more than `ms`,
/// since the first tick may come at once.
fn deadline_ticks(ms: u32) -> u64 {
    u64::from(ms) + 1
}

/// Starts the thread that ticks `engine`'s epoch every [`EPOCH_TICK`]
/// until the engine is dropped (the module unloaded).
fn tick_epochs(engine: &Engine) -> Result<(), String> {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name(String::from("wasm-epoch"))
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
        .map_err(|error| format!("starting the epoch thread: {error}"))
}

/// One core's wasmtime store and instance.
pub(crate) struct WasmtimeInstance {
    store: Store<StoreData>,
    memory: Memory,
    version: TypedFunc<(), i32>,
    buffer: TypedFunc<i32, i32>,
    init: TypedFunc<i32, i32>,
    process: TypedFunc<i32, ()>,
    budget: Budget,
}

impl WasmtimeInstance {
    /// Calls `function`.
    #[inline]
    pub(crate) fn call(
        &mut self,
        function: AbiFunction,
        argument: i32,
        renew: bool,
    ) -> Result<i32, CallError> {
        if renew {
            match self.budget {
                Budget::Fuel(fuel) => {
                    // Cannot fail: fuel metering is on for this budget.
                    let _ = self.store.set_fuel(fuel);
                }
                Budget::Deadline(ms) => self.store.set_epoch_deadline(deadline_ticks(ms)),
            }
        }
        let store = &mut self.store;
        match function {
            AbiFunction::Version => self.version.call(store, ()),
            AbiFunction::Buffer => self.buffer.call(store, argument),
            AbiFunction::Init => self.init.call(store, argument),
            AbiFunction::Process => self.process.call(store, argument).map(|()| 0),
        }
        .map_err(|error| match error.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => CallError::Fuel,
            Some(Trap::Interrupt) => CallError::Deadline,
            _ => CallError::Trap(one_line(&format!("{error:#}"))),
        })
    }

    /// The memory and the host's state.
    #[inline(always)]
    pub(crate) fn memory_and_state(&mut self) -> (&mut [u8], &mut HostState) {
        let (memory, data) = self.memory.data_and_store_mut(&mut self.store);
        (memory, &mut data.host)
    }

    /// The host's state.
    pub(crate) fn state(&self) -> &HostState {
        &self.store.data().host
    }

    /// The host's state, to change.
    #[inline(always)]
    pub(crate) fn state_mut(&mut self) -> &mut HostState {
        &mut self.store.data_mut().host
    }

    /// Fuel the last call spent (0 under an epoch deadline).
    pub(crate) fn fuel_spent(&self) -> u64 {
        match self.budget {
            Budget::Fuel(fuel) => fuel - self.store.get_fuel().unwrap_or(fuel),
            Budget::Deadline(_) => 0,
        }
    }

    /// Pages of memory the module has now.
    pub(crate) fn memory_pages(&self) -> u64 {
        self.memory.size(&self.store)
    }
}
