//! The wasmi engine: modules translated eagerly with fuel metering, one
//! store per instance with the memory cap as its limits.

use super::{AbiFunction, CallError, ExportShape, ValueType};
use crate::host::{HostState, limits, link_imports};
use crate::module::one_line;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use wasmi::{
    Caller, CompilationMode, Engine, ExternType, Linker, Memory, Module, Store, StoreLimits,
    StoreLimitsBuilder, TrapCode, TypedFunc, ValType,
};

/// A module translated by wasmi.
pub(crate) struct WasmiModule {
    engine: Engine,
    module: Module,
    /// Fuel per call.
    fuel: u64,
}

/// What a wasmi store holds: the host's state, the memory once it
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

/// A wasmi error as a sentence.
fn engine_error(what: &str, error: &wasmi::Error) -> String {
    one_line(&format!("{what}: {error}"))
}

fn value_type(ty: &ValType) -> ValueType {
    match ty {
        ValType::I32 => ValueType::I32,
        ValType::I64 => ValueType::I64,
        _ => ValueType::Other,
    }
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
        self.module
            .imports()
            .map(|import| (import.module().to_string(), import.name().to_string()))
            .collect()
    }

    /// The export `name`.
    pub(crate) fn export(&self, name: &str) -> Option<ExportShape> {
        Some(match self.module.get_export(name)? {
            ExternType::Func(ty) => ExportShape::Func(
                ty.params().iter().map(value_type).collect(),
                ty.results().iter().map(value_type).collect(),
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
    ) -> Result<WasmiInstance, String> {
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
        store
            .set_fuel(self.fuel)
            .map_err(|error| engine_error("fuel", &error))?;
        let mut linker = Linker::new(&self.engine);
        let link = |linker: &mut Linker<StoreData>| -> Result<(), wasmi::Error> {
            link_imports!(linker, Caller<'_, StoreData>);
            Ok(())
        };
        link(&mut linker).map_err(|error| engine_error("imports", &error))?;
        let instance = linker
            .instantiate_and_start(&mut store, &self.module)
            .map_err(|error| engine_error("instantiation refused", &error))?;
        let memory = instance
            .get_memory(&store, "memory")
            .ok_or_else(|| String::from("does not export `memory`"))?;
        store.data_mut().memory = Some(memory);
        let typed = |name: &str| {
            instance
                .get_typed_func::<i32, i32>(&store, name)
                .map_err(|error| engine_error(name, &error))
        };
        let buffer = typed("warpcore_buffer")?;
        let init = typed("warpcore_init")?;
        let process = instance
            .get_typed_func::<i32, ()>(&store, "warpcore_process_batch")
            .map_err(|error| engine_error("warpcore_process_batch", &error))?;
        let version = instance
            .get_typed_func::<(), i32>(&store, "warpcore_abi_version")
            .map_err(|error| engine_error("warpcore_abi_version", &error))?;
        Ok(WasmiInstance {
            store,
            memory,
            version,
            buffer,
            init,
            process,
            fuel: self.fuel,
        })
    }
}

/// One core's wasmi store and instance.
pub(crate) struct WasmiInstance {
    store: Store<StoreData>,
    memory: Memory,
    version: TypedFunc<(), i32>,
    buffer: TypedFunc<i32, i32>,
    init: TypedFunc<i32, i32>,
    process: TypedFunc<i32, ()>,
    /// Fuel per call.
    fuel: u64,
}

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
            let _ = self.store.set_fuel(self.fuel);
        }
        let store = &mut self.store;
        match function {
            AbiFunction::Version => self.version.call(store, ()),
            AbiFunction::Buffer => self.buffer.call(store, argument),
            AbiFunction::Init => self.init.call(store, argument),
            AbiFunction::Process => self.process.call(store, argument).map(|()| 0),
        }
        .map_err(|error| match error.as_trap_code() {
            Some(TrapCode::OutOfFuel) => CallError::Fuel,
            _ => CallError::Trap(one_line(&format!("{error}"))),
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

    /// Fuel the last call spent.
    pub(crate) fn fuel_spent(&self) -> u64 {
        self.fuel - self.store.get_fuel().unwrap_or(self.fuel)
    }

    /// Pages of memory the module has now.
    pub(crate) fn memory_pages(&self) -> u64 {
        self.memory.size(&self.store)
    }
}
