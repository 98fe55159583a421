//! What the two engines share, written once: wasmi follows wasmtime's
//! API (stores with limits, linkers, typed functions, memories), but each
//! type is its own crate's, so the shared code is [`engine_glue!`], which
//! each engine's module expands over its crate. The engines keep what
//! differs: configuring and compiling, instantiating (wasmi runs the
//! start function itself), metering, and reading traps.

/// Expands, in an engine's module, to a module `shared` over the engine's
/// crate `$api` whose calls are metered by `$meter` (a `Copy` value), and
/// imports from it [`EngineModule`] (a compiled module: its imports and
/// export shapes as the ABI checks them, and a fresh store with the
/// memory cap, [`crate::host::limits`] and the host's imports linked) and
/// `Instance` (one core's store, memory and the ABI's typed exports: the
/// calls and the accessors). The engine's module defines the four things
/// that differ:
///
/// - `engine_error(what, &$api::Error) -> String`, the engine's error as
///   a sentence;
/// - `renew(&mut Store<StoreData>, $meter)`, a fresh budget for a call;
/// - `call_error($api::Error) -> CallError`, why a call did not return;
/// - `fuel_spent(&Store<StoreData>, $meter) -> u64`, what the last call
///   spent.
macro_rules! engine_glue {
    ($api:ident, $meter:ident) => {
        use shared::{EngineModule, Instance, StoreData};

        /// The glue over this engine's crate (see `engine::glue`).
        mod shared {
            use super::{call_error, engine_error, fuel_spent, renew, $meter};
            use alloc::string::{String, ToString};
            use alloc::vec::Vec;
            use core::borrow::Borrow;
            use $api::{
                Caller, Engine, ExternType, Linker, Memory, Module, Store, StoreLimits,
                StoreLimitsBuilder, TypedFunc, ValType,
            };
            use $crate::engine::{AbiFunction, CallError, ExportShape, ValueType};
            use $crate::host::{HostState, limits, link_imports};

            /// What a store holds: the host's state, the memory once it
            /// exists, the limits.
            pub(crate) struct StoreData {
                host: HostState,
                memory: Option<Memory>,
                limits: StoreLimits,
            }

            /// Calls `with` with the module's memory and the host's state;
            /// `missing` before the memory exists.
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

            fn value_type(ty: &ValType) -> ValueType {
                match ty {
                    ValType::I32 => ValueType::I32,
                    ValType::I64 => ValueType::I64,
                    _ => ValueType::Other,
                }
            }

            /// A module compiled by the engine, and the meter of its calls.
            pub(crate) struct EngineModule {
                pub(super) engine: Engine,
                pub(super) module: Module,
                pub(super) meter: $meter,
            }

            impl EngineModule {
                /// The imports, as (module, name).
                pub(crate) fn imports(&self) -> Vec<(String, String)> {
                    self.module
                        .imports()
                        .map(|import| (import.module().to_string(), import.name().to_string()))
                        .collect()
                }

                /// The export `name`. (wasmi lists a signature's types as a
                /// slice, wasmtime as values: both borrow as `ValType`.)
                pub(crate) fn export(&self, name: &str) -> Option<ExportShape> {
                    Some(match self.module.get_export(name)? {
                        ExternType::Func(ty) => ExportShape::Func(
                            ty.params()
                                .into_iter()
                                .map(|ty| value_type(ty.borrow()))
                                .collect(),
                            ty.results()
                                .into_iter()
                                .map(|ty| value_type(ty.borrow()))
                                .collect(),
                        ),
                        ExternType::Memory(memory) => ExportShape::Memory(memory.minimum()),
                        _ => ExportShape::Other,
                    })
                }

                /// A store over `host`, memory capped at `memory_bytes`, and
                /// a linker with the host's imports.
                pub(super) fn new_store(
                    &self,
                    host: HostState,
                    memory_bytes: usize,
                ) -> Result<(Store<StoreData>, Linker<StoreData>), String> {
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
                    let mut linker = Linker::new(&self.engine);
                    let link = |linker: &mut Linker<StoreData>| -> Result<(), $api::Error> {
                        link_imports!(linker, Caller<'_, StoreData>);
                        Ok(())
                    };
                    link(&mut linker).map_err(|error| engine_error("imports", &error))?;
                    Ok((store, linker))
                }
            }

            /// One core's store and instance.
            pub(crate) struct Instance {
                store: Store<StoreData>,
                memory: Memory,
                version: TypedFunc<(), i32>,
                buffer: TypedFunc<i32, i32>,
                init: TypedFunc<i32, i32>,
                process: TypedFunc<i32, ()>,
                meter: $meter,
            }

            impl Instance {
                /// Binds `instance` in `store`: its memory (noted in the
                /// store for the imports) and the ABI's exports, typed.
                pub(super) fn bind(
                    instance: $api::Instance,
                    mut store: Store<StoreData>,
                    meter: $meter,
                ) -> Result<Self, String> {
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
                    Ok(Self {
                        store,
                        memory,
                        version,
                        buffer,
                        init,
                        process,
                        meter,
                    })
                }

                /// Calls `function` with `argument`, with a fresh budget when
                /// `renew`, else what is left of the last one.
                #[inline]
                pub(crate) fn call(
                    &mut self,
                    function: AbiFunction,
                    argument: i32,
                    renew_budget: bool,
                ) -> Result<i32, CallError> {
                    if renew_budget {
                        renew(&mut self.store, self.meter);
                    }
                    let store = &mut self.store;
                    match function {
                        AbiFunction::Version => self.version.call(store, ()),
                        AbiFunction::Buffer => self.buffer.call(store, argument),
                        AbiFunction::Init => self.init.call(store, argument),
                        AbiFunction::Process => self.process.call(store, argument).map(|()| 0),
                    }
                    .map_err(call_error)
                }

                /// Fuel the last call spent.
                pub(crate) fn fuel_spent(&self) -> u64 {
                    fuel_spent(&self.store, self.meter)
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

                /// Pages of memory the module has now.
                pub(crate) fn memory_pages(&self) -> u64 {
                    self.memory.size(&self.store)
                }
            }
        }
    };
}

pub(crate) use engine_glue;
