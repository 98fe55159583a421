//! The wasmi engine: modules translated eagerly with fuel metering, one
//! store per instance with the memory cap as its limits.

use super::CallError;
use super::glue::engine_glue;
use crate::host::HostState;
use crate::module::one_line;
use alloc::format;
use alloc::string::String;
use wasmi::{CompilationMode, Engine, Module, Store, TrapCode};

engine_glue!(wasmi, Fuel);

/// Fuel per call: wasmi meters fuel only.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fuel(u64);

/// A module translated by wasmi.
pub(crate) type WasmiModule = EngineModule;

/// One core's wasmi store and instance.
pub(crate) type WasmiInstance = Instance;

/// A wasmi error as a sentence.
fn engine_error(what: &str, error: &wasmi::Error) -> String {
    one_line(&format!("{what}: {error}"))
}

/// A full tank for the next call.
#[inline(always)]
fn renew(store: &mut Store<StoreData>, Fuel(fuel): Fuel) {
    // Cannot fail: fuel metering is on in every engine we make.
    let _ = store.set_fuel(fuel);
}

/// Why a call did not return: out of fuel, or a trap.
fn call_error(error: wasmi::Error) -> CallError {
    match error.as_trap_code() {
        Some(TrapCode::OutOfFuel) => CallError::Fuel,
        _ => CallError::Trap(one_line(&format!("{error}"))),
    }
}

/// Fuel the last call spent.
fn fuel_spent(store: &Store<StoreData>, Fuel(fuel): Fuel) -> u64 {
    fuel - store.get_fuel().unwrap_or(fuel)
}

impl WasmiModule {
    /// Validates and translates `bytes` eagerly, fuel metering on, `fuel`
    /// units per call.
    pub(crate) fn compile(bytes: &[u8], fuel: u64) -> Result<Self, String> {
        let mut config = wasmi::Config::default();
        config
            .consume_fuel(true)
            .compilation_mode(CompilationMode::Eager);
        let engine = Engine::new(&config);
        let module = Module::new(&engine, bytes)
            .map_err(|error| one_line(&format!("invalid module: {error}")))?;
        Ok(Self {
            engine,
            module,
            meter: Fuel(fuel),
        })
    }

    /// A fresh store and instance (its start function run).
    pub(crate) fn instantiate(
        &self,
        host: HostState,
        memory_bytes: usize,
    ) -> Result<WasmiInstance, String> {
        let (mut store, linker) = self.new_store(host, memory_bytes)?;
        let Fuel(fuel) = self.meter;
        store
            .set_fuel(fuel)
            .map_err(|error| engine_error("fuel", &error))?;
        let instance = linker
            .instantiate_and_start(&mut store, &self.module)
            .map_err(|error| engine_error("instantiation refused", &error))?;
        Instance::bind(instance, store, self.meter)
    }
}
