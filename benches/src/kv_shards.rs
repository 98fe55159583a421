//! Two cores of the `kv` appliance in one process, as the platforms build
//! them (`control::core_links` and `control::build_core` on a two-queue
//! spec: the shards' SPSC rings, the shared flow directory, a doorbell per
//! core), each on its own NIC of memcached clients, polled in turn. The
//! clients of both cores get a key of their own core's shard
//! ([`Placement::Local`]) or of the other core's ([`Placement::Remote`]):
//! the difference per get is what a get that crosses cores costs, the
//! request's way over the ring, the owner's work and the answer's way back
//! included.

use crate::http_clients::{FIRST_CLIENT_PORT, HttpClients, MAX_CLIENTS, Protocol};
use crate::pipelines::frozen_clock;
use control::Spec;
use dataplane::{Doorbell, Executor, Mempool, Nic, SharedNic};
use services::kv::hash::shard_of;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Cores (and shards) of the harness.
pub const CORES: usize = 2;
/// Buffers in each core's pool.
const POOL_BUFFERS: usize = 512;
/// Polls (of both cores) allowed per connection to open them all.
const OPEN_ROUNDS_PER_CONNECTION: usize = 4;

/// Where the clients' key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Each core's clients get a key its own shard holds.
    Local,
    /// Each core's clients get a key the other core's shard holds.
    Remote,
}

impl Placement {
    /// The placement called `name` (`local`, `remote`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "local" => Some(Self::Local),
            "remote" => Some(Self::Remote),
            _ => None,
        }
    }

    /// The shard whose key core `core`'s clients get.
    pub fn shard_for(self, core: usize) -> usize {
        match self {
            Self::Local => core,
            Self::Remote => (core + 1) % CORES,
        }
    }
}

/// The `kv` appliance on two queues of one interface, every core running
/// the service (so the store is sharded over both).
pub fn kv_two_core_spec() -> Spec {
    const SPEC: &str = r#"
[[interface]]
name = "eth0"
driver = "virtio"
mac = "02:00:00:00:00:01"
address = "10.0.0.2/24"
queues = 2

[[service]]
kind = "kv"
port = 11211
memory_bytes = 16777216
"#;
    Spec::parse(SPEC, &services::Registry::with_builtin()).expect("the two-core kv spec parses")
}

/// The clients' protocol whose key shard `shard` of two holds.
fn protocol_of_shard(shard: usize) -> Protocol {
    let protocol = [Protocol::MEMCACHE_GET, Protocol::MEMCACHE_GET_OTHER_KEY]
        .into_iter()
        .find(|protocol| shard_of(key_of(protocol), CORES) == shard);
    protocol.expect("`key` and `kez` lie on different shards of two")
}

/// The key a memcached protocol's steady `get KEY\r\n` asks for.
fn key_of(protocol: &Protocol) -> &'static [u8] {
    let request = protocol.steady.0;
    request
        .strip_prefix(b"get ")
        .and_then(|rest| rest.strip_suffix(b"\r\n"))
        .expect("a one-key get")
}

/// Two cores of the `kv` appliance and their clients, every connection
/// open, no request sent yet.
pub struct TwoShards {
    cores: Vec<Executor>,
    clients: Vec<SharedNic<HttpClients>>,
    /// Doorbell rings (wake-ups one core asked of the other).
    rings: Vec<Arc<AtomicU64>>,
    placement: Placement,
}

impl TwoShards {
    /// `connections` clients on each core sending up to `burst` requests
    /// per poll, their key placed by `placement`. A remote answer comes one
    /// round after its request, so a core needs at least two bursts of
    /// clients (panics otherwise).
    pub fn new(connections: usize, burst: usize, placement: Placement) -> Self {
        Self::with_clock(connections, burst, placement, frozen_clock)
    }

    /// [`TwoShards::new`] on the platform clock `clock` (tests move time
    /// to see timers fire).
    pub fn with_clock(
        connections: usize,
        burst: usize,
        placement: Placement,
        clock: fn() -> u64,
    ) -> Self {
        assert!(
            connections >= 2 * burst,
            "{connections} connections per core cannot keep a burst of {burst} going"
        );
        assert!(
            CORES * connections <= MAX_CLIENTS,
            "at most {} clients per core",
            MAX_CLIENTS / CORES
        );
        let spec = kv_two_core_spec();
        let mut links = control::core_links(&spec, CORES);
        let mut cores = Vec::with_capacity(CORES);
        let mut clients = Vec::with_capacity(CORES);
        let mut rings = Vec::with_capacity(CORES);
        for (core, mut core_links) in links.drain(..).enumerate() {
            let protocol = protocol_of_shard(placement.shard_for(core));
            let first_port = FIRST_CLIENT_PORT + (core * connections) as u16;
            let nic = SharedNic::new(
                HttpClients::with_protocol(connections, burst, protocol)
                    .with_first_port(first_port),
            );
            let rung = Arc::new(AtomicU64::new(0));
            let counter = Arc::clone(&rung);
            core_links.insert_shared(Arc::new(Doorbell::new(move || {
                // Ordering: a count read after the run, on this thread.
                counter.fetch_add(1, Ordering::Relaxed);
            })));
            let pool = Mempool::with_heap(POOL_BUFFERS, dataplane::mem::mempool::DEFAULT_HEADROOM)
                .expect("heap pool");
            let executor = control::build_core(
                &spec,
                core,
                vec![(0, Box::new(nic.clone()) as Box<dyn Nic>)],
                pool,
                clock,
                core_links,
            )
            .expect("the two-core kv spec builds");
            cores.push(executor);
            clients.push(nic);
            rings.push(rung);
        }
        let mut shards = Self {
            cores,
            clients,
            rings,
            placement,
        };
        shards.open(connections);
        shards
    }

    /// Polls both cores in turn until every client of both is open.
    fn open(&mut self, connections: usize) {
        let mut rounds = 0;
        while !self.clients.iter().all(|nic| nic.borrow().all_open()) {
            for core in &mut self.cores {
                core.poll_once();
            }
            rounds += 1;
            assert!(
                rounds <= OPEN_ROUNDS_PER_CONNECTION * connections + 8,
                "the connections did not open"
            );
        }
        for (core, executor) in self.cores.iter().enumerate() {
            let accepted = executor
                .counters()
                .node_events("tcp", "connections-accepted");
            assert_eq!(
                accepted, connections as u64,
                "connections core {core} accepted"
            );
        }
    }

    /// Requests both cores' clients send per round (one poll of each).
    pub fn requests_per_round(&self) -> u64 {
        self.clients
            .iter()
            .map(|nic| nic.borrow().burst() as u64)
            .sum()
    }

    /// Runs rounds (core 0 polls, then core 1) until the clients of both
    /// sent `requests` more (a multiple of [`Self::requests_per_round`]);
    /// panics when a poll receives less than a burst (an answer did not
    /// come in time for its client's next request) or a response was
    /// wrong.
    pub fn run(&mut self, requests: u64) {
        let per_round = self.requests_per_round();
        assert_eq!(requests % per_round, 0, "requests in whole rounds");
        for _ in 0..requests / per_round {
            for (core, executor) in self.cores.iter_mut().enumerate() {
                let received = executor.poll_once();
                let burst = self.clients[core].borrow().burst();
                assert_eq!(received, burst, "core {core}: an answer was missing");
            }
        }
        for (core, nic) in self.clients.iter().enumerate() {
            let counts = nic.borrow().counts();
            assert_eq!(counts.wrong, 0, "core {core}: wrong frames: {counts:?}");
        }
    }

    /// Requests not answered yet: a remote answer comes a round late, so
    /// after a run each core's last burst waits (none when local).
    pub fn expected_outstanding(&self) -> u64 {
        match self.placement {
            Placement::Local => 0,
            Placement::Remote => self.requests_per_round(),
        }
    }

    /// Requests sent and responses taken by the clients of both cores.
    pub fn exchanged(&self) -> (u64, u64) {
        self.clients
            .iter()
            .fold((0, 0), |(requests, responses), nic| {
                let counts = nic.borrow().counts();
                (requests + counts.requests, responses + counts.responses)
            })
    }

    /// Bare ACKs the clients of both cores took (a request acknowledged
    /// in a segment of its own before its answer).
    pub fn bare_acks(&self) -> u64 {
        self.clients
            .iter()
            .map(|nic| nic.borrow().counts().bare_acks)
            .sum()
    }

    /// Packets dropped anywhere on either core.
    pub fn drops(&self) -> u64 {
        self.cores
            .iter()
            .map(|executor| {
                let counters = executor.counters();
                let nodes: u64 = counters.nodes.iter().map(|node| node.total_drops()).sum();
                counters.executor_drops() + nodes
            })
            .sum()
    }

    /// Doorbell rings of both cores (none while both poll).
    pub fn doorbell_rings(&self) -> u64 {
        // Ordering: counts written on this thread.
        self.rings
            .iter()
            .map(|rung| rung.load(Ordering::Relaxed))
            .sum()
    }

    /// Core `core`'s executor (its counters).
    pub fn core(&self, core: usize) -> &Executor {
        &self.cores[core]
    }

    /// Polls core `core` once (alone: the other core does not run);
    /// returns the packets it received.
    pub fn poll(&mut self, core: usize) -> usize {
        self.cores[core].poll_once()
    }

    /// The `tcp` node's count of `event` on both cores.
    pub fn tcp_events(&self, event: &str) -> u64 {
        self.cores
            .iter()
            .map(|executor| executor.counters().node_events("tcp", event))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_keys_lie_on_different_shards() {
        assert_ne!(
            shard_of(key_of(&Protocol::MEMCACHE_GET), CORES),
            shard_of(key_of(&Protocol::MEMCACHE_GET_OTHER_KEY), CORES)
        );
    }

    #[test]
    fn local_and_remote_gets_are_all_answered() {
        for placement in [Placement::Local, Placement::Remote] {
            let mut shards = TwoShards::new(8, 4, placement);
            shards.run(10 * shards.requests_per_round());
            let (requests, responses) = shards.exchanged();
            assert_eq!(requests, 80, "{placement:?}");
            assert_eq!(
                responses + shards.expected_outstanding(),
                requests,
                "{placement:?}"
            );
            assert_eq!(shards.drops(), 0, "{placement:?}");
            assert_eq!(shards.doorbell_rings(), 0, "{placement:?}");
            // A remote answer carries its request's ACK: no segment of
            // its own, every held ACK answered in time.
            assert_eq!(shards.bare_acks(), 0, "{placement:?}");
            let held = match placement {
                Placement::Local => 0,
                Placement::Remote => 80,
            };
            assert_eq!(shards.tcp_events("acks-held"), held, "{placement:?}");
            // The clock is frozen here, so no hold can expire
            // (`a_held_ack_goes_alone_when_the_answer_is_late` moves it);
            // none is released early either (all in-order requests of
            // less than two segments): every held ACK left with its answer.
            assert_eq!(shards.tcp_events("acks-held-released"), 0);
        }
    }

    /// The harness's clock for [`a_held_ack_goes_alone_when_the_answer_is_late`].
    static NOW_NS: AtomicU64 = AtomicU64::new(1_000_000_000);

    fn test_clock() -> u64 {
        // Ordering: one thread reads and moves it.
        NOW_NS.load(Ordering::Relaxed)
    }

    #[test]
    fn a_held_ack_goes_alone_when_the_answer_is_late() {
        let mut shards = TwoShards::with_clock(8, 4, Placement::Remote, test_clock);
        // Core 0 takes four requests (sets) for core 1's shard and holds
        // their ACKs; core 1 does not run.
        assert_eq!(shards.poll(0), 4);
        assert_eq!(shards.tcp_events("acks-held"), 4);
        assert_eq!(shards.bare_acks(), 0);
        // Past the hold: the next poll's tick sends those four ACKs
        // alone, then four more requests come and are held.
        let hold_ns = services::tcp::connection::ACK_HOLD_MS * 1_000_000;
        NOW_NS.fetch_add(hold_ns + 1, Ordering::Relaxed);
        assert_eq!(shards.poll(0), 4);
        assert_eq!(shards.tcp_events("acks-held-expired"), 4);
        assert_eq!(shards.bare_acks(), 4);
        assert_eq!(shards.tcp_events("acks-held"), 8);
        // Core 1 takes four requests of its own clients (held) and
        // answers core 0's eight.
        assert_eq!(shards.poll(1), 4);
        assert_eq!(shards.tcp_events("acks-held"), 12);
        // Core 0's next tick writes the eight answers: the four later
        // ones carry their ACKs, still held.
        NOW_NS.fetch_add(1_000_000, Ordering::Relaxed);
        assert_eq!(shards.poll(0), 0, "its clients all waited");
        assert_eq!(shards.exchanged(), (12, 8));
        assert_eq!(shards.bare_acks(), 4);
        assert_eq!(shards.tcp_events("acks-held-expired"), 4);
        assert_eq!(shards.drops(), 0);
    }
}
