//! `Instance`: one core's instance of a module (its own store, memory and
//! map), and one batch through it: descriptors and windows in, one call
//! per `slots` packets under the fuel limit, verdicts and dirty windows
//! back.

use crate::descriptor::{self, DESCRIPTOR_SIZE, Descriptor, NONE, SlotVerdict};
use crate::fault::FaultKind;
use crate::host::{self, HostState, MAX_MODULE_COUNTERS};
use crate::map::BoundedMap;
use crate::module::{ABI_VERSION, LoadedModule};
use crate::node::HOST_EVENTS;
use alloc::format;
use alloc::string::String;
use core::net::Ipv4Addr;
use dataplane::{BURST_SIZE, Batch, Ipv4Cidr};
use wasmi::{Memory, Store, TrapCode, TypedFunc};

/// What became of one packet of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The module judged it.
    Judged(SlotVerdict),
    /// A fault: the service's `on_fault` applies.
    Fault,
}

/// How packets look at the service's hook point.
#[derive(Debug, Clone, Default)]
pub struct HookView {
    /// True where packets start at the Ethernet header (`port:rx`,
    /// `eth:*`); false where they start at the IPv4 header.
    pub ethernet: bool,
    /// The port's interface, at a per-port hook point.
    pub interface: Option<u8>,
    /// Each interface's connected subnet, in `[[interface]]` order: at a
    /// per-core hook point the packet does not carry the interface it
    /// came in on, so the host names the one whose subnet holds the
    /// source address (255 when none does).
    pub subnets: alloc::vec::Vec<Ipv4Cidr>,
}

impl HookView {
    /// Where the IPv4 header of `packet` starts, if it is IPv4.
    #[inline(always)]
    fn ipv4_at(&self, packet: &[u8]) -> Option<usize> {
        if !self.ethernet {
            return Some(0);
        }
        (packet.get(12..14) == Some(&[0x08, 0x00])).then_some(14)
    }

    /// The interface `packet` came in on, as far as the host knows.
    #[inline(always)]
    fn interface(&self, packet: &[u8], l3: u16) -> u8 {
        if let Some(interface) = self.interface {
            return interface;
        }
        // With one interface, that is where everything came in.
        if self.subnets.len() == 1 {
            return 0;
        }
        let l3 = usize::from(l3);
        let Some(source) = packet.get(l3 + 12..l3 + 16) else {
            return u8::MAX;
        };
        let source = Ipv4Addr::new(source[0], source[1], source[2], source[3]);
        self.subnets
            .iter()
            .position(|subnet| subnet.contains(source))
            .map_or(u8::MAX, |index| index as u8)
    }
}

/// What one batch did, for the node's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// The call's fault (trap or fuel), if it had one: the packets it had
    /// not judged are [`Outcome::Fault`].
    pub fault: Option<FaultKind>,
    /// Packets whose descriptor was bad.
    pub bad_descriptors: u32,
}

/// A module instantiated for one core.
pub struct Instance {
    store: Store<HostState>,
    memory: Memory,
    process: TypedFunc<i32, ()>,
    /// Address of the buffer in the module's memory.
    buffer: usize,
    window: usize,
    slots: usize,
    fuel: u64,
    /// Outputs the module may redirect to.
    redirects: usize,
    /// For each counter id, its event index in the node's events.
    counter_events: [u8; MAX_MODULE_COUNTERS],
    /// Each packet's IPv4 header offset in the window (host-side: what
    /// the module writes into the descriptor is not trusted).
    l3: [u16; BURST_SIZE],
}

impl core::fmt::Debug for Instance {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Instance")
            .field("buffer", &self.buffer)
            .field("window", &self.window)
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

/// A wasmi error as a sentence.
fn engine_error(what: &str, error: &wasmi::Error) -> String {
    crate::module::one_line(&format!("{what}: {error}"))
}

impl Instance {
    /// Instantiates `loaded` for `core` and runs its ABI handshake:
    /// version, buffer, init with the spec's config.
    pub fn new(loaded: &LoadedModule, core: usize, now_ns: u64) -> Result<Self, String> {
        let mut state = HostState::new(loaded.name, core, loaded.map_entries, loaded.memory_bytes);
        state.now_ns = now_ns;
        let mut store = Store::new(&loaded.engine, state);
        store.limiter(|state| &mut state.limits);
        store
            .set_fuel(loaded.fuel)
            .map_err(|error| engine_error("fuel", &error))?;
        let linker =
            host::linker(&loaded.engine).map_err(|error| engine_error("imports", &error))?;
        let instance = linker
            .instantiate_and_start(&mut store, &loaded.module)
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
        let buffer_func = typed("warpcore_buffer")?;
        let init = typed("warpcore_init")?;
        let process = instance
            .get_typed_func::<i32, ()>(&store, "warpcore_process_batch")
            .map_err(|error| engine_error("warpcore_process_batch", &error))?;
        let version = instance
            .get_typed_func::<(), i32>(&store, "warpcore_abi_version")
            .map_err(|error| engine_error("warpcore_abi_version", &error))?
            .call(&mut store, ())
            .map_err(|error| engine_error("warpcore_abi_version trapped", &error))?;
        if version != ABI_VERSION {
            return Err(format!(
                "speaks ABI version {version}; this host speaks version {ABI_VERSION}"
            ));
        }
        let size = loaded.buffer_size();
        let size_arg = i32::try_from(size).map_err(|_| String::from("buffer over 2 GiB"))?;
        let refuse_buffer = |why: &str| format!("warpcore_buffer({size}) {why}");
        let buffer = buffer_func
            .call(&mut store, size_arg)
            .map_err(|error| engine_error("warpcore_buffer trapped", &error))?;
        let buffer = usize::try_from(buffer)
            .ok()
            .filter(|buffer| *buffer != 0)
            .ok_or_else(|| refuse_buffer("returned 0 or a negative address"))?;
        if buffer % 8 != 0 {
            return Err(refuse_buffer("returned an address not 8-aligned"));
        }
        if buffer
            .checked_add(size)
            .is_none_or(|end| end > memory.data(&store).len())
        {
            return Err(refuse_buffer("returned a buffer past the end of memory"));
        }
        let config_len = loaded.config.len();
        memory.data_mut(&mut store)[buffer..buffer + config_len].copy_from_slice(&loaded.config);
        store.data_mut().in_init = true;
        let accepted = init.call(&mut store, config_len as i32);
        store.data_mut().in_init = false;
        match accepted {
            Ok(0) => {}
            Ok(code) => {
                let last = &store.data().last_log;
                return Err(if last.is_empty() {
                    format!("warpcore_init refused its config with code {code}")
                } else {
                    format!("warpcore_init refused its config with code {code}: {last}")
                });
            }
            Err(error) => return Err(engine_error("warpcore_init trapped", &error)),
        }
        let mut counter_events = [u8::MAX; MAX_MODULE_COUNTERS];
        for (id, name) in store.data().counter_names.iter().enumerate() {
            // A trial instance (the loaded events are the host's only)
            // maps nothing; a core's maps each name to its event.
            if let Some(index) = loaded
                .events
                .iter()
                .skip(HOST_EVENTS.len())
                .position(|event| event == name)
            {
                counter_events[id] = (HOST_EVENTS.len() + index) as u8;
            }
        }
        Ok(Self {
            store,
            memory,
            process,
            buffer,
            window: loaded.window,
            slots: loaded.slots,
            fuel: loaded.fuel,
            redirects: loaded.redirects.len(),
            counter_events,
            l3: [NONE; BURST_SIZE],
        })
    }

    /// The counters the module registered, by id.
    pub fn counter_names(&self) -> &[String] {
        &self.store.data().counter_names
    }

    /// Judges `batch` (which it leaves in place, dirty windows written
    /// back): each packet's outcome into `outcomes`.
    pub fn run(
        &mut self,
        batch: &mut Batch,
        view: &HookView,
        now_ns: u64,
        outcomes: &mut [Outcome; BURST_SIZE],
    ) -> BatchReport {
        let total = batch.len();
        let mut report = BatchReport::default();
        {
            let state = self.store.data_mut();
            state.batch.swap(batch);
            state.now_ns = now_ns;
        }
        let mut start = 0;
        while start < total {
            let filled = self.slots.min(total - start);
            self.fill(start, filled, view);
            // Cannot fail: fuel metering is on in every engine we make.
            let _ = self.store.set_fuel(self.fuel);
            match self.process.call(&mut self.store, filled as i32) {
                Ok(()) => report.bad_descriptors += self.read_back(start, filled, outcomes),
                Err(error) => {
                    report.fault = Some(match error.as_trap_code() {
                        Some(TrapCode::OutOfFuel) => FaultKind::Fuel,
                        _ => FaultKind::Trap,
                    });
                    outcomes[start..total].fill(Outcome::Fault);
                    break;
                }
            }
            start += filled;
        }
        let state = self.store.data_mut();
        state.batch.swap(batch);
        state.filled = 0;
        report
    }

    /// Writes the descriptors and windows of packets `start..start + n`.
    #[inline(always)]
    fn fill(&mut self, start: usize, n: usize, view: &HookView) {
        let (buffer, window, slots) = (self.buffer, self.window, self.slots);
        let (memory, state) = self.memory.data_and_store_mut(&mut self.store);
        state.start = start;
        state.filled = n;
        let (descriptors, windows) = memory[buffer..buffer + slots * (DESCRIPTOR_SIZE + window)]
            .split_at_mut(slots * DESCRIPTOR_SIZE);
        for (slot, packet) in state.batch.packets_mut()[start..start + n]
            .iter()
            .enumerate()
        {
            let payload = packet.payload();
            let len = payload.len().min(window);
            let window_bytes = &mut windows[slot * window..slot * window + len];
            window_bytes.copy_from_slice(&payload[..len]);
            let (l3, l4) = descriptor::header_offsets(payload, view.ipv4_at(payload), len);
            self.l3[start + slot] = l3;
            let interface = view.interface(payload, l3);
            let descriptor = Descriptor {
                window: (buffer + slots * DESCRIPTOR_SIZE + slot * window) as u32,
                len: len as u16,
                packet_len: payload.len().min(usize::from(u16::MAX)) as u16,
                interface,
                l3,
                l4,
            };
            let bytes: &mut [u8; DESCRIPTOR_SIZE] = (&mut descriptors
                [slot * DESCRIPTOR_SIZE..(slot + 1) * DESCRIPTOR_SIZE])
                .try_into()
                .expect("a descriptor is 16 bytes");
            descriptor.write(bytes);
        }
    }

    /// Reads the verdicts of packets `start..start + n` and writes dirty
    /// windows back; returns how many descriptors were bad.
    #[inline(always)]
    fn read_back(&mut self, start: usize, n: usize, outcomes: &mut [Outcome; BURST_SIZE]) -> u32 {
        let (buffer, window, slots, redirects) =
            (self.buffer, self.window, self.slots, self.redirects);
        let (memory, state) = self.memory.data_and_store_mut(&mut self.store);
        let area = &memory[buffer..buffer + slots * (DESCRIPTOR_SIZE + window)];
        let (descriptors, windows) = area.split_at(slots * DESCRIPTOR_SIZE);
        let mut bad = 0;
        let packets = state.batch.packets_mut();
        for slot in 0..n {
            let bytes: &[u8; DESCRIPTOR_SIZE] = descriptors
                [slot * DESCRIPTOR_SIZE..(slot + 1) * DESCRIPTOR_SIZE]
                .try_into()
                .expect("a descriptor is 16 bytes");
            let index = start + slot;
            outcomes[index] = match descriptor::judge(bytes, redirects) {
                Some((verdict, dirty)) => {
                    if dirty {
                        let payload = packets[index].payload_mut();
                        let len = payload.len().min(window);
                        payload[..len]
                            .copy_from_slice(&windows[slot * window..slot * window + len]);
                        let l3 = self.l3[index];
                        if l3 != NONE {
                            descriptor::fix_ipv4_checksum(payload, usize::from(l3));
                        }
                    }
                    Outcome::Judged(verdict)
                }
                None => {
                    bad += 1;
                    Outcome::Fault
                }
            };
        }
        bad
    }

    /// Hands each counter's delta since the last call to `add` (with its
    /// event index) and the host's map and log tallies.
    pub fn take_counters(&mut self, mut add: impl FnMut(usize, u64)) -> (u64, u64, u64) {
        let state = self.store.data_mut();
        for (id, delta) in state
            .counter_deltas
            .iter_mut()
            .enumerate()
            .take(state.counter_names.len())
        {
            if *delta != 0 {
                if self.counter_events[id] != u8::MAX {
                    add(usize::from(self.counter_events[id]), *delta);
                }
                *delta = 0;
            }
        }
        let tallies = (state.map_full, state.map_too_long, state.log_suppressed);
        state.map_full = 0;
        state.map_too_long = 0;
        state.log_suppressed = 0;
        tallies
    }

    /// Entries in the module's map.
    pub fn map_len(&self) -> usize {
        self.store.data().map.len()
    }

    /// The module's map, to read (wasm/examples-test checks its values).
    pub fn map(&self) -> &BoundedMap {
        &self.store.data().map
    }

    /// Fuel the last `warpcore_process_batch` call spent (each call
    /// starts with the spec's `fuel`).
    pub fn fuel_spent(&self) -> u64 {
        self.fuel - self.store.get_fuel().unwrap_or(self.fuel)
    }

    /// Pages of memory the module has now.
    pub fn memory_pages(&self) -> u64 {
        self.memory.size(&self.store)
    }
}
