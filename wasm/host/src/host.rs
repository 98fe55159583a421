//! The host side of one instance: its state in the wasmi store (the
//! packets of the call, the map, counters, log budget) and the imports of
//! module `"warpcore"` that read it.

use crate::config::plain_name;
use crate::map::{BoundedMap, MapRefusal};
use alloc::string::String;
use alloc::vec::Vec;
use dataplane::Batch;
use wasmi::{Caller, Linker, Memory, StoreLimits};

/// Most counters a module registers.
pub const MAX_MODULE_COUNTERS: usize = 32;
/// Log lines a module may write per second per core; more are counted
/// `log-suppressed`.
const LOG_LINES_PER_SECOND: u32 = 10;

/// What the host functions of one instance work on.
pub struct HostState {
    /// The packets of the batch being judged (moved in for the call).
    pub(crate) batch: Batch,
    /// The first packet of `batch` in slot 0 of the current call.
    pub(crate) start: usize,
    /// Slots filled in the current call.
    pub(crate) filled: usize,
    /// The module's memory, once instantiated.
    pub(crate) memory: Option<Memory>,
    /// Its map.
    pub(crate) map: BoundedMap,
    /// The clock at the call.
    pub(crate) now_ns: u64,
    /// True during `warpcore_init` (counters may be registered).
    pub(crate) in_init: bool,
    /// The registered counters' names.
    pub(crate) counter_names: Vec<String>,
    /// Deltas added to each registered counter since they were last taken.
    pub(crate) counter_deltas: [u64; MAX_MODULE_COUNTERS],
    /// Map updates refused: full, key or value too long.
    pub(crate) map_full: u64,
    pub(crate) map_too_long: u64,
    /// Log lines not written (over the rate).
    pub(crate) log_suppressed: u64,
    /// Log lines left this second, and when the second began.
    log_budget: u32,
    log_second_ns: u64,
    /// The module's last log line (reported with a refused init).
    pub(crate) last_log: String,
    /// The service's name and the core, for logs.
    pub(crate) service: &'static str,
    pub(crate) core: usize,
    /// The memory cap.
    pub(crate) limits: StoreLimits,
}

impl HostState {
    /// State for an instance of `service` on `core` with a map of
    /// `map_entries` and memory capped at `memory_bytes`.
    pub(crate) fn new(
        service: &'static str,
        core: usize,
        map_entries: usize,
        memory_bytes: usize,
    ) -> Self {
        Self {
            batch: Batch::new(),
            start: 0,
            filled: 0,
            memory: None,
            map: BoundedMap::new(map_entries),
            now_ns: 0,
            in_init: false,
            counter_names: Vec::new(),
            counter_deltas: [0; MAX_MODULE_COUNTERS],
            map_full: 0,
            map_too_long: 0,
            log_suppressed: 0,
            log_budget: LOG_LINES_PER_SECOND,
            log_second_ns: 0,
            last_log: String::new(),
            service,
            core,
            limits: wasmi::StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .memories(1)
                .tables(4)
                .table_elements(65_536)
                .instances(1)
                .build(),
        }
    }
}

/// `[start, start + len)` as a range of a memory of `size` bytes, if it
/// is one.
fn range(start: i32, len: i32, size: usize) -> Option<core::ops::Range<usize>> {
    let (start, len) = (usize::try_from(start).ok()?, usize::try_from(len).ok()?);
    let end = start.checked_add(len)?;
    (end <= size).then_some(start..end)
}

/// The index in the batch of slot `slot`, if it was filled.
fn packet_index(state: &HostState, slot: i32) -> Option<usize> {
    let slot = usize::try_from(slot).ok()?;
    (slot < state.filled).then_some(state.start + slot)
}

fn packet_read(
    mut caller: Caller<'_, HostState>,
    slot: i32,
    offset: i32,
    dst: i32,
    len: i32,
) -> i32 {
    let Some(memory) = caller.data().memory else {
        return -1;
    };
    let (memory, state) = memory.data_and_store_mut(&mut caller);
    let (Some(index), Some(dst), Ok(offset)) = (
        packet_index(state, slot),
        range(dst, len, memory.len()),
        usize::try_from(offset),
    ) else {
        return -1;
    };
    let Some(packet) = state.batch.iter().nth(index) else {
        return -1;
    };
    let bytes = packet.payload().get(offset..).unwrap_or(&[]);
    let n = bytes.len().min(dst.len());
    memory[dst.start..dst.start + n].copy_from_slice(&bytes[..n]);
    n as i32
}

fn packet_write(
    mut caller: Caller<'_, HostState>,
    slot: i32,
    offset: i32,
    src: i32,
    len: i32,
) -> i32 {
    let Some(memory) = caller.data().memory else {
        return -1;
    };
    let (memory, state) = memory.data_and_store_mut(&mut caller);
    let (Some(index), Some(src), Ok(offset)) = (
        packet_index(state, slot),
        range(src, len, memory.len()),
        usize::try_from(offset),
    ) else {
        return -1;
    };
    let Some(packet) = state.batch.packets_mut().get_mut(index) else {
        return -1;
    };
    let Some(bytes) = packet.payload_mut().get_mut(offset..) else {
        return 0;
    };
    let n = bytes.len().min(src.len());
    bytes[..n].copy_from_slice(&memory[src.start..src.start + n]);
    n as i32
}

fn map_lookup(
    mut caller: Caller<'_, HostState>,
    key: i32,
    key_len: i32,
    value: i32,
    cap: i32,
) -> i32 {
    let Some(memory) = caller.data().memory else {
        return -1;
    };
    let (memory, state) = memory.data_and_store_mut(&mut caller);
    let (Some(key), Some(value)) = (
        range(key, key_len, memory.len()),
        range(value, cap, memory.len()),
    ) else {
        return -1;
    };
    let Some(found) = state.map.lookup(&memory[key]) else {
        return -1;
    };
    let n = found.len().min(value.len());
    memory[value.start..value.start + n].copy_from_slice(&found[..n]);
    found.len() as i32
}

fn map_update(
    mut caller: Caller<'_, HostState>,
    key: i32,
    key_len: i32,
    value: i32,
    value_len: i32,
) -> i32 {
    let Some(memory) = caller.data().memory else {
        return -1;
    };
    let (memory, state) = memory.data_and_store_mut(&mut caller);
    let (Some(key), Some(value)) = (
        range(key, key_len, memory.len()),
        range(value, value_len, memory.len()),
    ) else {
        return -1;
    };
    match state.map.update(&memory[key], &memory[value]) {
        Ok(()) => 0,
        Err(MapRefusal::Full) => {
            state.map_full += 1;
            -1
        }
        Err(MapRefusal::TooLong) => {
            state.map_too_long += 1;
            -1
        }
    }
}

fn map_delete(mut caller: Caller<'_, HostState>, key: i32, key_len: i32) -> i32 {
    let Some(memory) = caller.data().memory else {
        return -1;
    };
    let (memory, state) = memory.data_and_store_mut(&mut caller);
    match range(key, key_len, memory.len()) {
        Some(key) if state.map.delete(&memory[key.clone()]) => 0,
        _ => -1,
    }
}

fn log_line(mut caller: Caller<'_, HostState>, level: i32, message: i32, len: i32) {
    let Some(memory) = caller.data().memory else {
        return;
    };
    let (memory, state) = memory.data_and_store_mut(&mut caller);
    if state.now_ns.saturating_sub(state.log_second_ns) >= 1_000_000_000 {
        state.log_second_ns = state.now_ns;
        state.log_budget = LOG_LINES_PER_SECOND;
    }
    if state.log_budget == 0 {
        state.log_suppressed += 1;
        return;
    }
    state.log_budget -= 1;
    let Some(message) = range(message, len.min(512), memory.len()) else {
        return;
    };
    let text = String::from_utf8_lossy(&memory[message]);
    let service = state.service;
    // The trial instance of a module's check runs on no core.
    let core = match state.core {
        usize::MAX => String::from("check"),
        core => alloc::format!("core {core}"),
    };
    match level {
        0 => log::error!("wasm {service} {core}: {text}"),
        1 => log::warn!("wasm {service} {core}: {text}"),
        2 => log::info!("wasm {service} {core}: {text}"),
        _ => log::debug!("wasm {service} {core}: {text}"),
    }
    state.last_log.clear();
    state.last_log.push_str(&text);
}

fn counter(mut caller: Caller<'_, HostState>, name: i32, len: i32) -> i32 {
    let Some(memory) = caller.data().memory else {
        return -1;
    };
    let (memory, state) = memory.data_and_store_mut(&mut caller);
    let Some(name) = range(name, len, memory.len()) else {
        return -1;
    };
    let Ok(name) = core::str::from_utf8(&memory[name]) else {
        return -1;
    };
    if !state.in_init || !plain_name(name) {
        return -1;
    }
    if let Some(id) = state.counter_names.iter().position(|known| known == name) {
        return id as i32;
    }
    if state.counter_names.len() >= MAX_MODULE_COUNTERS {
        return -1;
    }
    state.counter_names.push(String::from(name));
    (state.counter_names.len() - 1) as i32
}

fn counter_add(mut caller: Caller<'_, HostState>, id: i32, delta: i64) {
    let state = caller.data_mut();
    if let Ok(id) = usize::try_from(id)
        && id < state.counter_names.len()
    {
        state.counter_deltas[id] = state.counter_deltas[id].wrapping_add(delta as u64);
    }
}

/// A linker with the imports of module `"warpcore"`.
pub(crate) fn linker(engine: &wasmi::Engine) -> Result<Linker<HostState>, wasmi::Error> {
    let mut linker = Linker::new(engine);
    linker.func_wrap("warpcore", "packet_read", packet_read)?;
    linker.func_wrap("warpcore", "packet_write", packet_write)?;
    linker.func_wrap("warpcore", "map_lookup", map_lookup)?;
    linker.func_wrap("warpcore", "map_update", map_update)?;
    linker.func_wrap("warpcore", "map_delete", map_delete)?;
    linker.func_wrap("warpcore", "clock_ns", |caller: Caller<'_, HostState>| {
        caller.data().now_ns as i64
    })?;
    linker.func_wrap("warpcore", "log", log_line)?;
    linker.func_wrap("warpcore", "counter", counter)?;
    linker.func_wrap("warpcore", "counter_add", counter_add)?;
    Ok(linker)
}
