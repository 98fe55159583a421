//! The engines a module runs on, behind one face: wasmi (an interpreter,
//! both platforms) and, with the `wasmtime` feature, wasmtime (Cranelift,
//! hosted only). Each compiles a module once ([`CompiledModule`]) and
//! gives each core an [`EngineInstance`] with its own store, memory cap
//! and fuel; the host's imports and the batch path above them are the
//! same for both.

#[cfg(feature = "wasmtime")]
mod cranelift;
mod glue;
mod interpreter;

use crate::host::HostState;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

/// The spec's `engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// wasmi: an interpreter, on every platform.
    #[default]
    Wasmi,
    /// wasmtime: Cranelift-compiled, hosted builds with the `wasmtime`
    /// feature only.
    Wasmtime,
}

impl EngineChoice {
    /// True when this build can run the engine.
    pub const fn available(self) -> bool {
        match self {
            Self::Wasmi => true,
            Self::Wasmtime => cfg!(feature = "wasmtime"),
        }
    }
}

/// The spec's `meter`: how a call that runs too long is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Meter {
    /// Fuel: `fuel` units per call, about one per Wasm instruction
    /// (both engines).
    #[default]
    Fuel,
    /// Epoch interruption (wasmtime only): a call may run `deadline_ms`
    /// of wall-clock time. Cheaper than fuel: the compiled code checks a
    /// counter at function entries and loop headers instead of adding to
    /// one in every basic block.
    Epoch,
}

/// How a compiled module's calls are stopped: the spec's `meter` with
/// its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    /// This much fuel per call.
    Fuel(u64),
    /// This many milliseconds per call (epoch interruption).
    Deadline(u32),
}

/// A value type in an export's signature, as the ABI checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueType {
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// Anything else (floats, vectors, references).
    Other,
}

/// What an export of a module is, as the ABI checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExportShape {
    /// A function of these parameters and results.
    Func(Vec<ValueType>, Vec<ValueType>),
    /// A memory of this initial size in pages.
    Memory(u64),
    /// A table or a global.
    Other,
}

/// The module's exports the host calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AbiFunction {
    /// `warpcore_abi_version() -> i32` (its argument ignored).
    Version,
    /// `warpcore_buffer(size) -> i32`.
    Buffer,
    /// `warpcore_init(config_len) -> i32`.
    Init,
    /// `warpcore_process_batch(n)` (returns 0).
    Process,
}

/// Why a call into the module did not return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// It ran out of fuel.
    Fuel,
    /// It ran past its deadline (epoch interruption).
    #[cfg_attr(
        not(feature = "wasmtime"),
        expect(dead_code, reason = "only wasmtime's epoch interruption has deadlines")
    )]
    Deadline,
    /// It trapped: the engine's reason.
    Trap(String),
}

impl core::fmt::Display for CallError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Fuel => f.write_str("all fuel consumed"),
            Self::Deadline => f.write_str("ran past its deadline"),
            Self::Trap(why) => f.write_str(why),
        }
    }
}

/// A module validated and compiled by its engine.
pub(crate) enum CompiledModule {
    /// On wasmi.
    Wasmi(interpreter::WasmiModule),
    /// On wasmtime.
    #[cfg(feature = "wasmtime")]
    Wasmtime(cranelift::WasmtimeModule),
}

impl CompiledModule {
    /// Validates and compiles `bytes` on `engine`, its calls metered by
    /// `budget`: the engine's reason when it refuses.
    pub(crate) fn compile(
        engine: EngineChoice,
        budget: Budget,
        bytes: &[u8],
    ) -> Result<Self, String> {
        match (engine, budget) {
            (EngineChoice::Wasmi, Budget::Fuel(fuel)) => {
                interpreter::WasmiModule::compile(bytes, fuel).map(Self::Wasmi)
            }
            (EngineChoice::Wasmi, Budget::Deadline(_)) => Err(String::from(
                "meter `epoch` needs engine = \"wasmtime\": wasmi meters fuel only",
            )),
            #[cfg(feature = "wasmtime")]
            (EngineChoice::Wasmtime, budget) => {
                cranelift::WasmtimeModule::compile(bytes, budget).map(Self::Wasmtime)
            }
            #[cfg(not(feature = "wasmtime"))]
            (EngineChoice::Wasmtime, _) => Err(String::from(
                "engine `wasmtime` is not in this build: the appliance runs wasmi only, \
                 hosted needs the `wasmtime` cargo feature; use engine = \"wasmi\"",
            )),
        }
    }

    /// The module's imports, as (module, name).
    pub(crate) fn imports(&self) -> Vec<(String, String)> {
        match self {
            Self::Wasmi(module) => module.imports(),
            #[cfg(feature = "wasmtime")]
            Self::Wasmtime(module) => module.imports(),
        }
    }

    /// The export `name`, if there is one.
    pub(crate) fn export(&self, name: &str) -> Option<ExportShape> {
        match self {
            Self::Wasmi(module) => module.export(name),
            #[cfg(feature = "wasmtime")]
            Self::Wasmtime(module) => module.export(name),
        }
    }

    /// A fresh instance with its own store over `state`, memory capped at
    /// `memory_bytes`, one budget for the start function and the
    /// handshake.
    pub(crate) fn instantiate(
        &self,
        state: HostState,
        memory_bytes: usize,
    ) -> Result<EngineInstance, String> {
        match self {
            Self::Wasmi(module) => module
                .instantiate(state, memory_bytes)
                .map(EngineInstance::Wasmi),
            #[cfg(feature = "wasmtime")]
            Self::Wasmtime(module) => module
                .instantiate(state, memory_bytes)
                .map(EngineInstance::Wasmtime),
        }
    }
}

/// One core's instance of a module on its engine.
#[cfg_attr(
    feature = "wasmtime",
    expect(
        clippy::large_enum_variant,
        reason = "one per core, made once and never moved per batch; a box would add a load to every wasmi call"
    )
)]
pub(crate) enum EngineInstance {
    /// On wasmi.
    Wasmi(interpreter::WasmiInstance),
    /// On wasmtime.
    #[cfg(feature = "wasmtime")]
    Wasmtime(cranelift::WasmtimeInstance),
}

/// Calls `$body` with the engine instance of `$self` as `$instance`,
/// whichever engine it is.
macro_rules! each_engine {
    ($self:expr, $instance:ident => $body:expr) => {
        match $self {
            EngineInstance::Wasmi($instance) => $body,
            #[cfg(feature = "wasmtime")]
            EngineInstance::Wasmtime($instance) => $body,
        }
    };
}

impl EngineInstance {
    /// Calls `function` with `argument`, with a fresh budget (a full
    /// tank of fuel, or a deadline from now) when `renew`, else what is
    /// left of the last one.
    #[inline]
    pub(crate) fn call(
        &mut self,
        function: AbiFunction,
        argument: i32,
        renew: bool,
    ) -> Result<i32, CallError> {
        each_engine!(self, instance => instance.call(function, argument, renew))
    }

    /// The module's memory and the host's state, together.
    #[inline]
    pub(crate) fn memory_and_state(&mut self) -> (&mut [u8], &mut HostState) {
        each_engine!(self, instance => instance.memory_and_state())
    }

    /// The host's state.
    pub(crate) fn state(&self) -> &HostState {
        each_engine!(self, instance => instance.state())
    }

    /// The host's state, to change.
    #[inline]
    pub(crate) fn state_mut(&mut self) -> &mut HostState {
        each_engine!(self, instance => instance.state_mut())
    }

    /// Fuel the last call spent (0 under an epoch deadline, which meters
    /// time, not work).
    pub(crate) fn fuel_spent(&self) -> u64 {
        each_engine!(self, instance => instance.fuel_spent())
    }

    /// Pages of memory the module has now.
    pub(crate) fn memory_pages(&self) -> u64 {
        each_engine!(self, instance => instance.memory_pages())
    }
}
