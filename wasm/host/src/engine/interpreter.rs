//! The wasmi engine: modules translated eagerly with fuel metering, one
//! store per instance with the memory cap as its limits.

use super::glue::engine_glue;
use super::{AbiFunction, CallError, ExportShape};
use crate::host::HostState;
use crate::module::one_line;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use wasmi::{CompilationMode, Engine, Module, TrapCode};

engine_glue!(wasmi);

/// A module translated by wasmi.
pub(crate) struct WasmiModule {
    engine: Engine,
    module: Module,
    /// Fuel per call.
    fuel: u64,
}

/// A wasmi error as a sentence.
fn engine_error(what: &str, error: &wasmi::Error) -> String {
    one_line(&format!("{what}: {error}"))
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
            fuel,
        })
    }

    /// The imports, as (module, name).
    pub(crate) fn imports(&self) -> Vec<(String, String)> {
        imports(&self.module)
    }

    /// The export `name`.
    pub(crate) fn export(&self, name: &str) -> Option<ExportShape> {
        export(&self.module, name)
    }

    /// A fresh store and instance (its start function run).
    pub(crate) fn instantiate(
        &self,
        host: HostState,
        memory_bytes: usize,
    ) -> Result<WasmiInstance, String> {
        let (mut store, linker) = new_store(&self.engine, host, memory_bytes)?;
        store
            .set_fuel(self.fuel)
            .map_err(|error| engine_error("fuel", &error))?;
        let instance = linker
            .instantiate_and_start(&mut store, &self.module)
            .map_err(|error| engine_error("instantiation refused", &error))?;
        Instance::bind(instance, store, Fuel(self.fuel))
    }
}

/// Fuel per call.
pub(crate) struct Fuel(u64);

/// One core's wasmi store and instance.
pub(crate) type WasmiInstance = Instance<Fuel>;

impl WasmiInstance {
    /// Calls `function`.
    #[inline]
    pub(crate) fn call(
        &mut self,
        function: AbiFunction,
        argument: i32,
        renew: bool,
    ) -> Result<i32, CallError> {
        if renew {
            // Cannot fail: fuel metering is on in every engine we make.
            let _ = self.store.set_fuel(self.meter.0);
        }
        self.call_export(function, argument)
            .map_err(|error| match error.as_trap_code() {
                Some(TrapCode::OutOfFuel) => CallError::Fuel,
                _ => CallError::Trap(one_line(&format!("{error}"))),
            })
    }

    /// Fuel the last call spent.
    pub(crate) fn fuel_spent(&self) -> u64 {
        let Fuel(fuel) = self.meter;
        fuel - self.store.get_fuel().unwrap_or(fuel)
    }
}
