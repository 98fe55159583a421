//! A minimal host for wasm/ABI.md version 1 over wasmi: the imports, the
//! buffer and descriptor layout, the per-batch fuel and the write-back of
//! dirty slots, written from the document and nothing else.

use std::collections::BTreeMap;
use wasmi::{
    AsContextMut, Caller, Config, Engine, Linker, Memory, Module, Store, StoreLimits,
    StoreLimitsBuilder, TrapCode, TypedFunc,
};

/// `l3` / `l4` when the header is not there.
pub const ABSENT: u16 = 0xffff;

/// Where the hook point's packets start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// `port:rx`: at the Ethernet header (`l3` is 14 for IPv4).
    PortRx,
    /// `ipv4:*`: at the IPv4 header (`l3` is 0).
    Ipv4,
}

/// The spec's settings for the service that matter to the ABI.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Where packets start.
    pub hook: Hook,
    /// Bytes copied per packet (64-9216).
    pub window: u16,
    /// Packets per call (1-256).
    pub slots: u16,
    /// Fuel per batch.
    pub fuel: u64,
    /// Cap on the module's memory, in 64 KiB pages.
    pub memory_pages: u32,
    /// Entries of the module's map.
    pub map_entries: usize,
    /// How many named outputs the service has (redirect targets).
    pub outputs: u8,
}

impl Default for Settings {
    /// The spec's defaults (wasm/ABI.md, "The spec"), at `port:rx`.
    fn default() -> Self {
        Self {
            hook: Hook::PortRx,
            window: 128,
            slots: 32,
            fuel: 1_000_000,
            memory_pages: 16,
            map_entries: 4096,
            outputs: 2,
        }
    }
}

/// Why a module was not loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The engine refused it (validation, linking, instantiation), with its reason.
    Engine(String),
    /// It breaks the ABI (no memory, wrong version, no buffer ...).
    Abi(String),
    /// `warpcore_init` returned a non-zero code; the module's last log line.
    Refused {
        /// The code.
        code: i32,
        /// The last line the module logged, if any.
        log: Option<String>,
    },
}

/// What happened to one packet of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Verdict 0.
    Pass,
    /// Verdict 1.
    Drop,
    /// Verdict 2.
    Tx,
    /// Verdict 3, with the output index.
    Redirect(u8),
    /// A verdict above 3, a dirty flag other than 0/1 or a redirect to an
    /// output the service lacks: a fault for this packet.
    BadDescriptor,
}

/// A batch that faulted as a whole.
#[derive(Debug, PartialEq, Eq)]
pub enum BatchFault {
    /// The batch's fuel ran out.
    OutOfFuel,
    /// The module trapped.
    Trap(String),
}

/// The store's data: what the imports see.
struct State {
    /// The packets of the batch running now (whole, from the hook's start).
    packets: Vec<Vec<u8>>,
    /// Whether `warpcore_init` is running (`counter` works then only).
    in_init: bool,
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    map_entries: usize,
    counters: Vec<(String, i64)>,
    events: BTreeMap<&'static str, u64>,
    logs: Vec<(i32, String)>,
    clock_ns: i64,
    limits: StoreLimits,
}

/// One loaded module: a store of its own, its memory and its batch function.
pub struct Host {
    store: Store<State>,
    memory: Memory,
    process_batch: TypedFunc<i32, ()>,
    buffer: u32,
    settings: Settings,
    fuel_consumed: u64,
}

/// The `[start, start + len)` range of memory, if both are non-negative
/// and it lies inside `size` bytes.
fn memory_range(start: i32, len: i32, size: usize) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(start).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    (end <= size).then_some(start..end)
}

fn memory_of(caller: &Caller<'_, State>) -> Option<Memory> {
    caller.get_export("memory")?.into_memory()
}

/// Copies `[start, start + len)` out of the caller's memory.
fn read_memory(caller: &Caller<'_, State>, start: i32, len: i32) -> Option<Vec<u8>> {
    let memory = memory_of(caller)?;
    let data = memory.data(caller);
    Some(data[memory_range(start, len, data.len())?].to_vec())
}

fn valid_counter_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .iter()
            .all(|&byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

fn define_imports(linker: &mut Linker<State>) -> Result<(), wasmi::Error> {
    linker.func_wrap(
        "warpcore",
        "packet_read",
        |mut caller: Caller<'_, State>, slot: i32, offset: i32, dst: i32, len: i32| -> i32 {
            let Some(memory) = memory_of(&caller) else {
                return -1;
            };
            let (data, state) = memory.data_and_store_mut(&mut caller);
            let (Some(packet), Ok(offset), Some(range)) = (
                usize::try_from(slot)
                    .ok()
                    .and_then(|slot| state.packets.get(slot)),
                usize::try_from(offset),
                memory_range(dst, len, data.len()),
            ) else {
                return -1;
            };
            let bytes = packet.get(offset.min(packet.len())..).unwrap_or_default();
            let count = bytes.len().min(range.len());
            data[range.start..range.start + count].copy_from_slice(&bytes[..count]);
            count as i32
        },
    )?;
    linker.func_wrap(
        "warpcore",
        "packet_write",
        |mut caller: Caller<'_, State>, slot: i32, offset: i32, src: i32, len: i32| -> i32 {
            let Some(memory) = memory_of(&caller) else {
                return -1;
            };
            let (data, state) = memory.data_and_store_mut(&mut caller);
            let (Some(packet), Ok(offset), Some(range)) = (
                usize::try_from(slot)
                    .ok()
                    .and_then(|slot| state.packets.get_mut(slot)),
                usize::try_from(offset),
                memory_range(src, len, data.len()),
            ) else {
                return -1;
            };
            let start = offset.min(packet.len());
            let count = (packet.len() - start).min(range.len());
            packet[start..start + count].copy_from_slice(&data[range.start..range.start + count]);
            count as i32
        },
    )?;
    linker.func_wrap(
        "warpcore",
        "map_lookup",
        |mut caller: Caller<'_, State>, key: i32, key_len: i32, value: i32, cap: i32| -> i32 {
            let Some(key) = read_memory(&caller, key, key_len) else {
                return -1;
            };
            let Some(memory) = memory_of(&caller) else {
                return -1;
            };
            let (data, state) = memory.data_and_store_mut(&mut caller);
            let Some(range) = memory_range(value, cap, data.len()) else {
                return -1;
            };
            let Some(stored) = state.map.get(&key) else {
                return -1;
            };
            let count = stored.len().min(range.len());
            data[range.start..range.start + count].copy_from_slice(&stored[..count]);
            stored.len() as i32
        },
    )?;
    linker.func_wrap(
        "warpcore",
        "map_update",
        |mut caller: Caller<'_, State>, key: i32, key_len: i32, value: i32, len: i32| -> i32 {
            let (Some(key), Some(value)) = (
                read_memory(&caller, key, key_len),
                read_memory(&caller, value, len),
            ) else {
                return -1;
            };
            let state = caller.data_mut();
            if key.len() > 64 || value.len() > 256 {
                *state.events.entry("map-too-long").or_default() += 1;
                return -1;
            }
            if !state.map.contains_key(&key) && state.map.len() >= state.map_entries {
                *state.events.entry("map-full").or_default() += 1;
                return -1;
            }
            state.map.insert(key, value);
            0
        },
    )?;
    linker.func_wrap(
        "warpcore",
        "map_delete",
        |mut caller: Caller<'_, State>, key: i32, key_len: i32| -> i32 {
            let Some(key) = read_memory(&caller, key, key_len) else {
                return -1;
            };
            match caller.data_mut().map.remove(&key) {
                Some(_) => 0,
                None => -1,
            }
        },
    )?;
    linker.func_wrap("warpcore", "clock_ns", |caller: Caller<'_, State>| -> i64 {
        caller.data().clock_ns
    })?;
    linker.func_wrap(
        "warpcore",
        "log",
        |mut caller: Caller<'_, State>, level: i32, message: i32, len: i32| {
            if let Some(text) = read_memory(&caller, message, len) {
                let line = String::from_utf8_lossy(&text).into_owned();
                caller.data_mut().logs.push((level, line));
            }
        },
    )?;
    linker.func_wrap(
        "warpcore",
        "counter",
        |mut caller: Caller<'_, State>, name: i32, name_len: i32| -> i32 {
            let Some(name) = read_memory(&caller, name, name_len) else {
                return -1;
            };
            let state = caller.data_mut();
            if !state.in_init || !valid_counter_name(&name) || state.counters.len() >= 32 {
                return -1;
            }
            let name = String::from_utf8(name).unwrap_or_default();
            if let Some(id) = state.counters.iter().position(|(known, _)| *known == name) {
                return id as i32;
            }
            state.counters.push((name, 0));
            state.counters.len() as i32 - 1
        },
    )?;
    linker.func_wrap(
        "warpcore",
        "counter_add",
        |mut caller: Caller<'_, State>, id: i32, delta: i64| {
            let state = caller.data_mut();
            if let Some((_, value)) = usize::try_from(id)
                .ok()
                .and_then(|id| state.counters.get_mut(id))
            {
                *value = value.wrapping_add(delta);
            }
        },
    )?;
    Ok(())
}

/// Where the IPv4 and transport headers of `packet` are, as the host
/// tells the module: `(l3, l4)`, [`ABSENT`] for what is not there. `l4`
/// names a TCP, UDP or ICMP header of a first fragment whose first 8 bytes
/// (ports, or ICMP type to identifier) are inside the first `window` bytes.
pub fn header_offsets(packet: &[u8], hook: Hook, window: usize) -> (u16, u16) {
    let l3 = match hook {
        Hook::PortRx if packet.len() >= 14 && packet[12..14] == [0x08, 0x00] => 14,
        Hook::PortRx => return (ABSENT, ABSENT),
        Hook::Ipv4 => 0,
    };
    let Some(ip) = packet
        .get(l3..)
        .filter(|ip| ip.len() >= 20 && ip[0] >> 4 == 4)
    else {
        return (ABSENT, ABSENT);
    };
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    let fragment_offset = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
    let l4 = l3 + header_len;
    let transport = matches!(ip[9], 1 | 6 | 17) && fragment_offset == 0 && header_len >= 20;
    if !transport || l4 + 8 > window.min(packet.len()) {
        return (l3 as u16, ABSENT);
    }
    (l3 as u16, l4 as u16)
}

/// The Internet checksum of `bytes` (RFC 1071).
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u64 = bytes
        .chunks(2)
        .map(|pair| u64::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Recomputes the IPv4 header checksum of the header at `l3`.
fn refresh_ipv4_checksum(packet: &mut [u8], l3: usize) {
    let Some(first) = packet.get(l3) else { return };
    let end = l3 + usize::from(first & 0x0f) * 4;
    if end > packet.len() || end < l3 + 20 {
        return;
    }
    packet[l3 + 10..l3 + 12].fill(0);
    let checksum = internet_checksum(&packet[l3..end]);
    packet[l3 + 10..l3 + 12].copy_from_slice(&checksum.to_be_bytes());
}

impl Host {
    /// Validates and instantiates `bytes`, checks its ABI version, gives it
    /// its buffer and calls `warpcore_init` with `config`.
    pub fn load(bytes: &[u8], config: &[u8], settings: Settings) -> Result<Host, LoadError> {
        let engine_error = |error: wasmi::Error| LoadError::Engine(error.to_string());
        let mut engine_config = Config::default();
        engine_config.consume_fuel(true);
        let engine = Engine::new(&engine_config);
        let module = Module::new(&engine, bytes).map_err(engine_error)?;
        let state = State {
            packets: Vec::new(),
            in_init: false,
            map: BTreeMap::new(),
            map_entries: settings.map_entries,
            counters: Vec::new(),
            events: BTreeMap::new(),
            logs: Vec::new(),
            clock_ns: 0,
            limits: StoreLimitsBuilder::new()
                .memory_size(settings.memory_pages as usize * 65536)
                .build(),
        };
        let mut store = Store::new(&engine, state);
        store.limiter(|state| &mut state.limits);
        store.set_fuel(settings.fuel).map_err(engine_error)?;
        let mut linker = Linker::new(&engine);
        define_imports(&mut linker).map_err(engine_error)?;
        let instance = linker
            .instantiate_and_start(&mut store, &module)
            .map_err(engine_error)?;
        let memory = instance
            .get_memory(&store, "memory")
            .ok_or_else(|| LoadError::Abi("no exported memory".into()))?;
        let memory_type = memory.ty(&store);
        let cap = u64::from(settings.memory_pages);
        if memory_type.minimum() > cap || memory_type.maximum().is_some_and(|maximum| maximum > cap)
        {
            return Err(LoadError::Abi("memory over memory_pages".into()));
        }
        let function = |name: &str| LoadError::Abi(format!("no export {name} of the right type"));
        let version = instance
            .get_typed_func::<(), i32>(&store, "warpcore_abi_version")
            .map_err(|_| function("warpcore_abi_version"))?
            .call(&mut store, ())
            .map_err(engine_error)?;
        if version != 1 {
            return Err(LoadError::Abi(format!("ABI version {version}, not 1")));
        }
        let slots = usize::from(settings.slots);
        let size = config
            .len()
            .max(slots * (16 + usize::from(settings.window)));
        let buffer = instance
            .get_typed_func::<i32, i32>(&store, "warpcore_buffer")
            .map_err(|_| function("warpcore_buffer"))?
            .call(&mut store, size as i32)
            .map_err(engine_error)? as u32;
        let buffer_end = buffer as usize + size;
        if buffer == 0 || !buffer.is_multiple_of(8) || buffer_end > memory.data(&store).len() {
            return Err(LoadError::Abi(format!(
                "warpcore_buffer gave {buffer:#x} for {size} bytes"
            )));
        }
        memory.data_mut(&mut store)[buffer as usize..buffer as usize + config.len()]
            .copy_from_slice(config);
        let init = instance
            .get_typed_func::<i32, i32>(&store, "warpcore_init")
            .map_err(|_| function("warpcore_init"))?;
        store.data_mut().in_init = true;
        let code = init
            .call(&mut store, config.len() as i32)
            .map_err(engine_error)?;
        store.data_mut().in_init = false;
        if code != 0 {
            let log = store.data().logs.last().map(|(_, line)| line.clone());
            return Err(LoadError::Refused { code, log });
        }
        let process_batch = instance
            .get_typed_func::<i32, ()>(&store, "warpcore_process_batch")
            .map_err(|_| function("warpcore_process_batch"))?;
        Ok(Host {
            store,
            memory,
            process_batch,
            buffer,
            settings,
            fuel_consumed: 0,
        })
    }

    /// Runs one batch (1 to `slots` packets) arrived on `interface`: fills
    /// the slots, calls `warpcore_process_batch`, checks each descriptor
    /// and writes back the dirty ones (the IPv4 header checksum redone).
    pub fn process(
        &mut self,
        packets: &mut [Vec<u8>],
        interface: u8,
    ) -> Result<Vec<Outcome>, BatchFault> {
        let slots = usize::from(self.settings.slots);
        let window = usize::from(self.settings.window);
        assert!((1..=slots).contains(&packets.len()), "1 <= n <= slots");
        let buffer = self.buffer as usize;
        let mut offsets = Vec::with_capacity(packets.len());
        let data = self.memory.data_mut(&mut self.store);
        for (index, packet) in packets.iter().enumerate() {
            let descriptor = buffer + 16 * index;
            let window_at = buffer + 16 * slots + window * index;
            let len = packet.len().min(window);
            let (l3, l4) = header_offsets(packet, self.settings.hook, window);
            offsets.push((window_at, len, l3));
            let mut fields = [0u8; 16];
            fields[0..4].copy_from_slice(&(window_at as u32).to_le_bytes());
            fields[4..6].copy_from_slice(&(len as u16).to_le_bytes());
            fields[6..8].copy_from_slice(&(packet.len().min(65535) as u16).to_le_bytes());
            fields[8] = interface;
            fields[12..14].copy_from_slice(&l3.to_le_bytes());
            fields[14..16].copy_from_slice(&l4.to_le_bytes());
            data[descriptor..descriptor + 16].copy_from_slice(&fields);
            data[window_at..window_at + len].copy_from_slice(&packet[..len]);
        }
        self.store.data_mut().packets = packets.to_vec();
        self.store
            .set_fuel(self.settings.fuel)
            .expect("fuel is enabled");
        let result = self
            .process_batch
            .call(&mut self.store, packets.len() as i32);
        let left = self.store.get_fuel().expect("fuel is enabled");
        self.fuel_consumed = self.settings.fuel - left;
        if let Err(error) = result {
            return Err(match error.as_trap_code() {
                Some(TrapCode::OutOfFuel) => BatchFault::OutOfFuel,
                _ => BatchFault::Trap(error.to_string()),
            });
        }
        let mut written = std::mem::take(&mut self.store.data_mut().packets);
        let data = self.memory.data(&self.store);
        let mut outcomes = Vec::with_capacity(packets.len());
        for (index, &(window_at, len, l3)) in offsets.iter().enumerate() {
            let descriptor = &data[buffer + 16 * index..buffer + 16 * index + 16];
            let (verdict, dirty, output) = (descriptor[9], descriptor[10], descriptor[11]);
            let outcome = match (verdict, dirty) {
                (_, 2..) | (4.., _) => Outcome::BadDescriptor,
                (3, _) if output >= self.settings.outputs => Outcome::BadDescriptor,
                (0, _) => Outcome::Pass,
                (1, _) => Outcome::Drop,
                (2, _) => Outcome::Tx,
                (_, _) => Outcome::Redirect(output),
            };
            if dirty == 1 && outcome != Outcome::BadDescriptor {
                written[index][..len].copy_from_slice(&data[window_at..window_at + len]);
                if l3 != ABSENT {
                    refresh_ipv4_checksum(&mut written[index], usize::from(l3));
                }
            }
            outcomes.push(outcome);
        }
        for (packet, written) in packets.iter_mut().zip(written) {
            *packet = written;
        }
        Ok(outcomes)
    }

    /// Runs `packets` in batches of at most `slots`, all on interface 0.
    pub fn process_all(&mut self, packets: &mut [Vec<u8>]) -> Result<Vec<Outcome>, BatchFault> {
        let mut outcomes = Vec::with_capacity(packets.len());
        for batch in packets.chunks_mut(usize::from(self.settings.slots)) {
            outcomes.extend(self.process(batch, 0)?);
        }
        Ok(outcomes)
    }

    /// Fuel the last batch consumed.
    pub fn fuel_consumed(&self) -> u64 {
        self.fuel_consumed
    }

    /// The counters the module registered, in registration order, with their values.
    pub fn counters(&self) -> &[(String, i64)] {
        &self.store.data().counters
    }

    /// The value of counter `name`, if registered.
    pub fn counter(&self, name: &str) -> Option<i64> {
        self.counters()
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| *value)
    }

    /// The module's map.
    pub fn map(&self) -> &BTreeMap<Vec<u8>, Vec<u8>> {
        &self.store.data().map
    }

    /// How often the host counted `event` (`map-full`, `map-too-long`).
    pub fn event(&self, event: &str) -> u64 {
        self.store.data().events.get(event).copied().unwrap_or(0)
    }

    /// The lines the module logged.
    pub fn logs(&self) -> &[(i32, String)] {
        &self.store.data().logs
    }

    /// Sets what `clock_ns` answers.
    pub fn set_clock_ns(&mut self, now: i64) {
        self.store.data_mut().clock_ns = now;
    }

    /// Pages of memory the module has now.
    pub fn memory_pages(&mut self) -> u64 {
        let store = self.store.as_context_mut();
        self.memory.size(store)
    }
}
