//! The host side of one instance, whatever the engine: its state (the
//! packets of the call, the map, counters, log budget) and the imports of
//! module `"warpcore"` over the module's memory and that state. Each
//! engine links them through `link_imports!`.

use crate::config::plain_name;
use crate::map::{BoundedMap, MapRefusal};
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;
use dataplane::Batch;

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
}

impl HostState {
    /// State for an instance of `service` on `core` with a map of
    /// `map_entries`.
    pub(crate) fn new(service: &'static str, core: usize, map_entries: usize) -> Self {
        Self {
            batch: Batch::new(),
            start: 0,
            filled: 0,
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
        }
    }
}

/// The limits every engine's store puts on a module besides its memory
/// cap: one memory, at most 4 tables of 65 536 elements, one instance.
pub(crate) mod limits {
    /// Memories per instance.
    pub(crate) const MEMORIES: usize = 1;
    /// Tables per instance.
    pub(crate) const TABLES: usize = 4;
    /// Elements per table.
    pub(crate) const TABLE_ELEMENTS: usize = 65_536;
    /// Instances per store.
    pub(crate) const INSTANCES: usize = 1;
}

/// `[start, start + len)` as a range of a memory of `size` bytes, if it
/// is one.
fn range(start: i32, len: i32, size: usize) -> Option<Range<usize>> {
    let (start, len) = (usize::try_from(start).ok()?, usize::try_from(len).ok()?);
    let end = start.checked_add(len)?;
    (end <= size).then_some(start..end)
}

/// The index in the batch of slot `slot`, if it was filled.
fn packet_index(state: &HostState, slot: i32) -> Option<usize> {
    let slot = usize::try_from(slot).ok()?;
    (slot < state.filled).then_some(state.start + slot)
}

/// Which way `packet_read` and `packet_write` copy.
#[derive(Clone, Copy)]
enum Direction {
    /// Packet bytes into the module's memory.
    Read,
    /// The module's memory into the packet.
    Write,
}

/// `packet_read` and `packet_write`: `len` bytes between offset `offset`
/// of slot `slot`'s packet (past the window too) and `span` of the
/// module's memory; the bytes copied, 0 past the packet's end, -1 when an
/// argument is out of range.
fn packet_copy(
    memory: &mut [u8],
    state: &mut HostState,
    direction: Direction,
    (slot, offset, span, len): (i32, i32, i32, i32),
) -> i32 {
    let (Some(index), Some(span), Ok(offset)) = (
        packet_index(state, slot),
        range(span, len, memory.len()),
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
    let n = bytes.len().min(span.len());
    let span = &mut memory[span.start..span.start + n];
    match direction {
        Direction::Read => span.copy_from_slice(&bytes[..n]),
        Direction::Write => bytes[..n].copy_from_slice(span),
    }
    n as i32
}

/// `packet_read(slot, offset, dst, len) -> i32`.
pub(crate) fn packet_read(
    memory: &mut [u8],
    state: &mut HostState,
    args: (i32, i32, i32, i32),
) -> i32 {
    packet_copy(memory, state, Direction::Read, args)
}

/// `packet_write(slot, offset, src, len) -> i32`.
pub(crate) fn packet_write(
    memory: &mut [u8],
    state: &mut HostState,
    args: (i32, i32, i32, i32),
) -> i32 {
    packet_copy(memory, state, Direction::Write, args)
}

/// `map_lookup(key, key_len, value, cap) -> i32`: the value's length,
/// its first `cap` bytes copied; -1 when absent or out of range.
pub(crate) fn map_lookup(
    memory: &mut [u8],
    state: &mut HostState,
    (key, key_len, value, cap): (i32, i32, i32, i32),
) -> i32 {
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

/// `map_update(key, key_len, value, value_len) -> i32`: 0, or -1 when
/// refused (counted) or out of range.
pub(crate) fn map_update(
    memory: &mut [u8],
    state: &mut HostState,
    (key, key_len, value, value_len): (i32, i32, i32, i32),
) -> i32 {
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

/// `map_delete(key, key_len) -> i32`: 0 when it was there, else -1.
pub(crate) fn map_delete(
    memory: &mut [u8],
    state: &mut HostState,
    (key, key_len): (i32, i32),
) -> i32 {
    match range(key, key_len, memory.len()) {
        Some(key) if state.map.delete(&memory[key.clone()]) => 0,
        _ => -1,
    }
}

/// `clock_ns() -> i64`: the clock at the call.
pub(crate) fn clock_ns(state: &HostState) -> i64 {
    state.now_ns as i64
}

/// `log(level, message, len)`: one line, at most 512 bytes, within the
/// rate.
pub(crate) fn log_line(
    memory: &mut [u8],
    state: &mut HostState,
    (level, message, len): (i32, i32, i32),
) {
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

/// `counter(name, len) -> i32`: the id of a counter registered during
/// init, else -1.
pub(crate) fn counter(memory: &mut [u8], state: &mut HostState, (name, len): (i32, i32)) -> i32 {
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

/// `counter_add(id, delta)`.
pub(crate) fn counter_add(state: &mut HostState, id: i32, delta: i64) {
    if let Ok(id) = usize::try_from(id)
        && id < state.counter_names.len()
    {
        state.counter_deltas[id] = state.counter_deltas[id].wrapping_add(delta as u64);
    }
}

/// Links the imports of module `"warpcore"` into `$linker`, whose
/// callers are `$caller`. The engine's module defines
/// `with_memory(&mut caller, missing, |memory, state| ...)` (`missing`:
/// what the import returns before the memory exists) and
/// `host_state(&mut caller)`; the imports are the functions above, the
/// same for every engine.
macro_rules! link_imports {
    ($linker:expr, $caller:ty) => {{
        use $crate::host;
        let linker = $linker;
        linker.func_wrap(
            "warpcore",
            "packet_read",
            |mut caller: $caller, a: i32, b: i32, c: i32, d: i32| {
                with_memory(&mut caller, -1, |memory, state| {
                    host::packet_read(memory, state, (a, b, c, d))
                })
            },
        )?;
        linker.func_wrap(
            "warpcore",
            "packet_write",
            |mut caller: $caller, a: i32, b: i32, c: i32, d: i32| {
                with_memory(&mut caller, -1, |memory, state| {
                    host::packet_write(memory, state, (a, b, c, d))
                })
            },
        )?;
        linker.func_wrap(
            "warpcore",
            "map_lookup",
            |mut caller: $caller, a: i32, b: i32, c: i32, d: i32| {
                with_memory(&mut caller, -1, |memory, state| {
                    host::map_lookup(memory, state, (a, b, c, d))
                })
            },
        )?;
        linker.func_wrap(
            "warpcore",
            "map_update",
            |mut caller: $caller, a: i32, b: i32, c: i32, d: i32| {
                with_memory(&mut caller, -1, |memory, state| {
                    host::map_update(memory, state, (a, b, c, d))
                })
            },
        )?;
        linker.func_wrap(
            "warpcore",
            "map_delete",
            |mut caller: $caller, a: i32, b: i32| {
                with_memory(&mut caller, -1, |memory, state| {
                    host::map_delete(memory, state, (a, b))
                })
            },
        )?;
        linker.func_wrap("warpcore", "clock_ns", |mut caller: $caller| {
            host::clock_ns(host_state(&mut caller))
        })?;
        linker.func_wrap(
            "warpcore",
            "log",
            |mut caller: $caller, a: i32, b: i32, c: i32| {
                with_memory(&mut caller, (), |memory, state| {
                    host::log_line(memory, state, (a, b, c))
                })
            },
        )?;
        linker.func_wrap(
            "warpcore",
            "counter",
            |mut caller: $caller, a: i32, b: i32| {
                with_memory(&mut caller, -1, |memory, state| {
                    host::counter(memory, state, (a, b))
                })
            },
        )?;
        linker.func_wrap(
            "warpcore",
            "counter_add",
            |mut caller: $caller, id: i32, delta: i64| {
                host::counter_add(host_state(&mut caller), id, delta)
            },
        )?;
    }};
}
pub(crate) use link_imports;
