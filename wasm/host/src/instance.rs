//! `Instance`: one core's instance of a module (its own store, memory and
//! map), and one batch through it: descriptors and windows in, one call
//! per `slots` packets under its fuel or deadline, verdicts and dirty windows
//! back.

use crate::descriptor::{self, DESCRIPTOR_SIZE, Descriptor, NONE, SlotVerdict};
use crate::engine::{AbiFunction, CallError, EngineInstance};
use crate::fault::FaultKind;
use crate::host::{HostState, MAX_MODULE_COUNTERS};
use crate::map::BoundedMap;
use crate::module::{ABI_VERSION, LoadedModule};
use crate::node::HOST_EVENTS;
use alloc::format;
use alloc::string::String;
use core::net::Ipv4Addr;
use dataplane::{BURST_SIZE, Batch, Ipv4Cidr};

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
    /// The engine's store and instance.
    engine: EngineInstance,
    /// Address of the buffer in the module's memory.
    buffer: usize,
    window: usize,
    slots: usize,
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

impl Instance {
    /// Instantiates `loaded` for `core` and runs its ABI handshake:
    /// version, buffer, init with the spec's config.
    pub fn new(loaded: &LoadedModule, core: usize, now_ns: u64) -> Result<Self, String> {
        let mut state = HostState::new(loaded.name, core, loaded.map_entries);
        state.now_ns = now_ns;
        let mut engine = loaded.compiled.instantiate(state, loaded.memory_bytes)?;
        let version = engine
            .call(AbiFunction::Version, 0, false)
            .map_err(|error| format!("warpcore_abi_version trapped: {error}"))?;
        if version != ABI_VERSION {
            return Err(format!(
                "speaks ABI version {version}; this host speaks version {ABI_VERSION}"
            ));
        }
        let size = loaded.buffer_size();
        let size_arg = i32::try_from(size).map_err(|_| String::from("buffer over 2 GiB"))?;
        let refuse_buffer = |why: &str| format!("warpcore_buffer({size}) {why}");
        let buffer = engine
            .call(AbiFunction::Buffer, size_arg, false)
            .map_err(|error| format!("warpcore_buffer trapped: {error}"))?;
        let buffer = usize::try_from(buffer)
            .ok()
            .filter(|buffer| *buffer != 0)
            .ok_or_else(|| refuse_buffer("returned 0 or a negative address"))?;
        if buffer % 8 != 0 {
            return Err(refuse_buffer("returned an address not 8-aligned"));
        }
        let (memory, state) = engine.memory_and_state();
        if buffer
            .checked_add(size)
            .is_none_or(|end| end > memory.len())
        {
            return Err(refuse_buffer("returned a buffer past the end of memory"));
        }
        let config_len = loaded.config.len();
        memory[buffer..buffer + config_len].copy_from_slice(&loaded.config);
        state.in_init = true;
        let accepted = engine.call(AbiFunction::Init, config_len as i32, false);
        engine.state_mut().in_init = false;
        match accepted {
            Ok(0) => {}
            Ok(code) => {
                let last = &engine.state().last_log;
                return Err(if last.is_empty() {
                    format!("warpcore_init refused its config with code {code}")
                } else {
                    format!("warpcore_init refused its config with code {code}: {last}")
                });
            }
            Err(error) => return Err(format!("warpcore_init trapped: {error}")),
        }
        let mut counter_events = [u8::MAX; MAX_MODULE_COUNTERS];
        for (id, name) in engine.state().counter_names.iter().enumerate() {
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
            engine,
            buffer,
            window: loaded.window,
            slots: loaded.slots,
            redirects: loaded.redirects.len(),
            counter_events,
            l3: [NONE; BURST_SIZE],
        })
    }

    /// The counters the module registered, by id.
    pub fn counter_names(&self) -> &[String] {
        &self.engine.state().counter_names
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
            let state = self.engine.state_mut();
            state.batch.swap(batch);
            state.now_ns = now_ns;
        }
        let mut start = 0;
        while start < total {
            let filled = self.slots.min(total - start);
            self.fill(start, filled, view);
            match self.engine.call(AbiFunction::Process, filled as i32, true) {
                Ok(_) => report.bad_descriptors += self.read_back(start, filled, outcomes),
                Err(error) => {
                    report.fault = Some(match error {
                        CallError::Fuel => FaultKind::Fuel,
                        CallError::Deadline => FaultKind::Deadline,
                        CallError::Trap(_) => FaultKind::Trap,
                    });
                    outcomes[start..total].fill(Outcome::Fault);
                    break;
                }
            }
            start += filled;
        }
        let state = self.engine.state_mut();
        state.batch.swap(batch);
        state.filled = 0;
        report
    }

    /// Writes the descriptors and windows of packets `start..start + n`:
    /// each packet's first `window` bytes (no more, and nothing zeroed
    /// past them: `len` says where they end). The slices are cut once per
    /// call, so the loop has no bounds checks of its own.
    #[inline(always)]
    fn fill(&mut self, start: usize, n: usize, view: &HookView) {
        let (buffer, window, slots) = (self.buffer, self.window, self.slots);
        let (memory, state) = self.engine.memory_and_state();
        state.start = start;
        state.filled = n;
        let (descriptors, windows) = memory[buffer..buffer + slots * (DESCRIPTOR_SIZE + window)]
            .split_at_mut(slots * DESCRIPTOR_SIZE);
        let (descriptors, _) = descriptors.as_chunks_mut::<DESCRIPTOR_SIZE>();
        let mut address = (buffer + slots * DESCRIPTOR_SIZE) as u32;
        let slots = state.batch.packets_mut()[start..start + n]
            .iter()
            .zip(descriptors)
            .zip(windows.chunks_exact_mut(window))
            .zip(&mut self.l3[start..start + n]);
        for (((packet, descriptor), window_bytes), l3_slot) in slots {
            let payload = packet.payload();
            let len = payload.len().min(window);
            window_bytes[..len].copy_from_slice(&payload[..len]);
            let (l3, l4) = descriptor::header_offsets(payload, view.ipv4_at(payload), len);
            *l3_slot = l3;
            Descriptor {
                window: address,
                len: len as u16,
                packet_len: payload.len().min(usize::from(u16::MAX)) as u16,
                interface: view.interface(payload, l3),
                l3,
                l4,
            }
            .write(descriptor);
            address += window as u32;
        }
    }

    /// Reads the verdicts of packets `start..start + n` and writes back
    /// the windows of dirty slots only (and the IPv4 checksum of those);
    /// returns how many descriptors were bad.
    #[inline(always)]
    fn read_back(&mut self, start: usize, n: usize, outcomes: &mut [Outcome; BURST_SIZE]) -> u32 {
        let (buffer, window, slots, redirects) =
            (self.buffer, self.window, self.slots, self.redirects);
        let (memory, state) = self.engine.memory_and_state();
        let area = &memory[buffer..buffer + slots * (DESCRIPTOR_SIZE + window)];
        let (descriptors, windows) = area.split_at(slots * DESCRIPTOR_SIZE);
        let (descriptors, _) = descriptors.as_chunks::<DESCRIPTOR_SIZE>();
        let mut bad = 0;
        let slots = state.batch.packets_mut()[start..start + n]
            .iter_mut()
            .zip(descriptors)
            .zip(windows.chunks_exact(window))
            .zip(&self.l3[start..start + n])
            .zip(&mut outcomes[start..start + n]);
        for ((((packet, descriptor), window_bytes), &l3), outcome) in slots {
            *outcome = match descriptor::judge(descriptor, redirects) {
                Some((verdict, dirty)) => {
                    if dirty {
                        let payload = packet.payload_mut();
                        let len = payload.len().min(window);
                        payload[..len].copy_from_slice(&window_bytes[..len]);
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
        let state = self.engine.state_mut();
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
        self.engine.state().map.len()
    }

    /// The module's map, to read (wasm/examples-test checks its values).
    pub fn map(&self) -> &BoundedMap {
        &self.engine.state().map
    }

    /// Fuel the last `warpcore_process_batch` call spent (each call
    /// starts with the spec's `fuel`).
    pub fn fuel_spent(&self) -> u64 {
        self.engine.fuel_spent()
    }

    /// Pages of memory the module has now.
    pub fn memory_pages(&self) -> u64 {
        self.engine.memory_pages()
    }
}
