//! The wasmtime engine (hosted, the `wasmtime` feature): modules compiled
//! by Cranelift, one store per instance with the memory cap as its
//! limits. Same imports, same traps as wasmi, and either the same fuel
//! meaning (units per call, out of fuel is a fault) or, with `meter =
//! "epoch"`, a wall-clock deadline per call: a thread per module ticks
//! the engine's epoch every millisecond, and the compiled code checks it
//! at function entries and loop headers.

use super::glue::engine_glue;
use super::{Budget, CallError};
use crate::host::HostState;
use crate::module::one_line;
use alloc::format;
use alloc::string::String;
use std::time::Duration;
use wasmtime::{Config, Engine, Module, OptLevel, Store, Trap};

engine_glue!(wasmtime, Budget);

/// How often the epoch ticks under `meter = "epoch"`.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// A module compiled by wasmtime.
pub(crate) type WasmtimeModule = EngineModule;

/// One core's wasmtime store and instance.
pub(crate) type WasmtimeInstance = Instance;

/// A wasmtime error as a sentence.
fn engine_error(what: &str, error: &wasmtime::Error) -> String {
    one_line(&format!("{what}: {error:#}"))
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
            meter: budget,
        })
    }

    /// A fresh store and instance.
    pub(crate) fn instantiate(
        &self,
        host: HostState,
        memory_bytes: usize,
    ) -> Result<WasmtimeInstance, String> {
        let (mut store, linker) = self.new_store(host, memory_bytes)?;
        match self.meter {
            Budget::Fuel(fuel) => store
                .set_fuel(fuel)
                .map_err(|error| engine_error("fuel", &error))?,
            Budget::Deadline(ms) => {
                store.epoch_deadline_trap();
                store.set_epoch_deadline(deadline_ticks(ms));
            }
        }
        let instance = linker
            .instantiate(&mut store, &self.module)
            .map_err(|error| engine_error("instantiation refused", &error))?;
        Instance::bind(instance, store, self.meter)
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

/// A fresh budget for the next call: a full tank, or a deadline from now.
#[inline(always)]
fn renew(store: &mut Store<StoreData>, budget: Budget) {
    match budget {
        Budget::Fuel(fuel) => {
            // Cannot fail: fuel metering is on for this budget.
            let _ = store.set_fuel(fuel);
        }
        Budget::Deadline(ms) => store.set_epoch_deadline(deadline_ticks(ms)),
    }
}

/// Why a call did not return: out of fuel, past its deadline, or a trap.
fn call_error(error: wasmtime::Error) -> CallError {
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => CallError::Fuel,
        Some(Trap::Interrupt) => CallError::Deadline,
        _ => CallError::Trap(one_line(&format!("{error:#}"))),
    }
}

/// Fuel the last call spent (0 under an epoch deadline).
fn fuel_spent(store: &Store<StoreData>, budget: Budget) -> u64 {
    match budget {
        Budget::Fuel(fuel) => fuel - store.get_fuel().unwrap_or(fuel),
        Budget::Deadline(_) => 0,
    }
}
