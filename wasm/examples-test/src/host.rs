//! The product's `wasm` kind driven one batch at a time: a module loaded
//! and checked as a spec's `kind = "wasm"` service is
//! ([`WasmConfig::load_bytes`]: validation, translation, the ABI's
//! exports, the trial instance with its config), then one core's
//! [`Instance`] of it, the code every core of the appliance runs per
//! batch, fed real [`Packet`]s: each packet's verdict, its bytes after the
//! dirty write-back, the module's counters and its map, value by value.

use dataplane::{BURST_SIZE, Batch, Ipv4Cidr, Mempool};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use warpcore_wasm::{
    FaultKind, HookView, Instance, LoadedModule, Outcome as SlotOutcome, SlotVerdict, WasmConfig,
};

/// Where the hook point's packets start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// `port:rx`: at the Ethernet header (`l3` is 14 for IPv4).
    PortRx,
    /// `ipv4:*`: at the IPv4 header (`l3` is 0).
    Ipv4,
}

/// The spec's keys for the service that matter to the ABI.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Where packets start.
    pub hook: Hook,
    /// Bytes copied per packet (`window`, 64-9216).
    pub window: u16,
    /// Packets per call (`slots`, 1-256).
    pub slots: u16,
    /// Fuel per call.
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
        let spec = WasmConfig::new("example", "example.wasm");
        Self {
            hook: Hook::PortRx,
            window: spec.window as u16,
            slots: spec.slots as u16,
            fuel: spec.fuel,
            memory_pages: spec.memory_pages,
            map_entries: spec.map_entries as usize,
            outputs: 2,
        }
    }
}

/// Why a module was not loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The `wasm` kind refused it (the engine's validation, the ABI's
    /// exports, its memory cap, the handshake), with its reason.
    Kind(String),
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
    /// A descriptor the host refused (verdict over 3, dirty not 0/1, a
    /// redirect past the outputs): a fault for this packet.
    BadDescriptor,
}

/// A call that faulted as a whole (its packets not judged).
pub type BatchFault = FaultKind;

/// One loaded module on one core, with the counters it has added up.
pub struct Host {
    loaded: Arc<LoadedModule>,
    instance: Instance,
    view: HookView,
    settings: Settings,
    pool: Mempool,
    counters: Vec<(String, i64)>,
    events: BTreeMap<&'static str, u64>,
    fuel_spent: u64,
}

/// The prefix of the kind's refusal when `warpcore_init` returns non-zero.
const INIT_REFUSED: &str = "warpcore_init refused its config with code ";

impl Host {
    /// Loads `bytes` as a `wasm` service with `config` and `settings`, and
    /// instantiates it for core 0.
    pub fn load(bytes: &[u8], config: &[u8], settings: Settings) -> Result<Host, LoadError> {
        let mut spec = WasmConfig::new("example", "example.wasm");
        spec.config = String::from_utf8(config.to_vec()).expect("configs are text");
        spec.window = u32::from(settings.window);
        spec.slots = u32::from(settings.slots);
        spec.fuel = settings.fuel;
        spec.memory_pages = settings.memory_pages;
        spec.map_entries = settings.map_entries as u32;
        spec.outputs = (0..settings.outputs)
            .map(|index| format!("to-{index}"))
            .collect();
        let loaded = spec
            .load_bytes(bytes)
            .map(Arc::clone)
            .map_err(|why| refusal(why))?;
        let instance = Instance::new(&loaded, 0, 0).map_err(|why| refusal(&why))?;
        let counters = instance
            .counter_names()
            .iter()
            .map(|name| (name.clone(), 0))
            .collect();
        let view = match settings.hook {
            Hook::PortRx => HookView {
                ethernet: true,
                interface: Some(0),
                subnets: Vec::new(),
            },
            // One interface: the host names it (0) for every packet.
            Hook::Ipv4 => HookView {
                ethernet: false,
                interface: None,
                subnets: vec![Ipv4Cidr::new(Ipv4Addr::new(10, 0, 0, 0), 8).expect("a prefix")],
            },
        };
        Ok(Host {
            loaded,
            instance,
            view,
            settings,
            pool: Mempool::with_heap(2 * BURST_SIZE, 128).expect("a pool"),
            counters,
            events: BTreeMap::new(),
            fuel_spent: 0,
        })
    }

    /// Runs one batch of at most 32 packets (the core's burst) through the
    /// instance, `slots` per call: each packet's outcome, the packets
    /// rewritten where the module marked them dirty.
    pub fn process(&mut self, packets: &mut [Vec<u8>]) -> Result<Vec<Outcome>, BatchFault> {
        assert!(
            (1..=BURST_SIZE).contains(&packets.len()),
            "1 to {BURST_SIZE} packets"
        );
        let mut batch = Batch::new();
        for bytes in packets.iter() {
            let mut packet = self.pool.alloc().expect("the pool has room for a burst");
            packet
                .append(bytes.len())
                .expect("test frames fit a buffer")
                .copy_from_slice(bytes);
            batch.push(packet).expect("at most a burst");
        }
        let mut outcomes = [SlotOutcome::Fault; BURST_SIZE];
        let report = self.instance.run(&mut batch, &self.view, 0, &mut outcomes);
        self.fuel_spent = self.instance.fuel_spent();
        let loaded = &self.loaded;
        let counters = &mut self.counters;
        let (map_full, map_too_long, log_suppressed) =
            self.instance.take_counters(|event, delta| {
                let name = loaded.events()[event];
                if let Some((_, value)) = counters.iter_mut().find(|(known, _)| known == name) {
                    *value = value.wrapping_add(delta as i64);
                }
            });
        for (event, count) in [
            ("map-full", map_full),
            ("map-too-long", map_too_long),
            ("log-suppressed", log_suppressed),
        ] {
            *self.events.entry(event).or_default() += count;
        }
        if let Some(fault) = report.fault {
            return Err(fault);
        }
        for (bytes, packet) in packets.iter_mut().zip(batch.iter()) {
            bytes.clear();
            bytes.extend_from_slice(packet.payload());
        }
        Ok(outcomes[..packets.len()]
            .iter()
            .map(|outcome| match outcome {
                SlotOutcome::Judged(SlotVerdict::Pass) => Outcome::Pass,
                SlotOutcome::Judged(SlotVerdict::Drop) => Outcome::Drop,
                SlotOutcome::Judged(SlotVerdict::Tx) => Outcome::Tx,
                SlotOutcome::Judged(SlotVerdict::Redirect(output)) => Outcome::Redirect(*output),
                SlotOutcome::Fault => Outcome::BadDescriptor,
            })
            .collect())
    }

    /// Runs `packets` in bursts of `slots` (at most 32, a core's burst).
    pub fn process_all(&mut self, packets: &mut [Vec<u8>]) -> Result<Vec<Outcome>, BatchFault> {
        let burst = usize::from(self.settings.slots).min(BURST_SIZE);
        let mut outcomes = Vec::with_capacity(packets.len());
        for batch in packets.chunks_mut(burst) {
            outcomes.extend(self.process(batch)?);
        }
        Ok(outcomes)
    }

    /// Fuel the last call spent.
    pub fn fuel_consumed(&self) -> u64 {
        self.fuel_spent
    }

    /// The counters the module registered, in registration order, with
    /// their values.
    pub fn counters(&self) -> &[(String, i64)] {
        &self.counters
    }

    /// The value of counter `name`, if registered.
    pub fn counter(&self, name: &str) -> Option<i64> {
        self.counters
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| *value)
    }

    /// The module's map.
    pub fn map(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.instance
            .map()
            .iter()
            .map(|(key, value)| (key.to_vec(), value.to_vec()))
            .collect()
    }

    /// How often the host counted `event` (`map-full`, `map-too-long`).
    pub fn event(&self, event: &str) -> u64 {
        self.events.get(event).copied().unwrap_or(0)
    }

    /// Pages of memory the module has now.
    pub fn memory_pages(&self) -> u64 {
        self.instance.memory_pages()
    }
}

/// The kind's refusal as a [`LoadError`].
fn refusal(why: &str) -> LoadError {
    match why.strip_prefix(INIT_REFUSED) {
        Some(rest) => {
            let (code, log) = rest.split_once(": ").unwrap_or((rest, ""));
            LoadError::Refused {
                code: code.parse().unwrap_or(i32::MIN),
                log: (!log.is_empty()).then(|| log.to_owned()),
            }
        }
        None => LoadError::Kind(why.to_owned()),
    }
}
