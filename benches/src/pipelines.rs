//! The warpcore pipelines the benchmarks drive, set up once here for the
//! criterion benches, the callgrind counter and the tests alike.
//!
//! Every executor here runs on a frozen clock (always 0 ns): nodes tick on
//! the first poll only, and what is measured is the pipeline, not the
//! platform's clock source.

use crate::frames::{OUR_MAC, arp_request, echo_payload, ethernet_frame, udp_echo_request};
use crate::http_clients::{HttpClients, Protocol};
use crate::reflector::ReflectorNic;
use control::Spec;
use dataplane::{
    BURST_SIZE, CaptureBoard, Executor, ExecutorBuilder, LoopbackNic, Mempool, Nic, SharedNic,
    Target,
};
use services::MacSwap;
use std::process::ExitCode;
use std::sync::Arc;

/// Packets circulating in the macswap loop: a few bursts, so every poll
/// finds a full burst.
pub const MACSWAP_IN_FLIGHT: usize = 4 * BURST_SIZE;
/// UDP requests circulating in the echo loop: one burst, so every poll
/// answers exactly one full burst.
pub const ECHO_IN_FLIGHT: usize = BURST_SIZE;
/// Buffers in the echo core's pool: the requests in flight, the warm-up ARP
/// frames, and room for anything a node allocates.
const ECHO_POOL_BUFFERS: usize = 256;

/// The clock every benchmark executor reads: stuck at zero.
pub fn frozen_clock() -> u64 {
    0
}

/// The appliance's default spec, `examples/echo.toml`: one interface,
/// 02:00:00:00:00:01 at 10.0.0.2/24, UDP echo on port 7.
pub fn echo_spec() -> Spec {
    Spec::parse(
        include_str!("../../examples/echo.toml"),
        &services::Registry::with_builtin(),
    )
    .expect("examples/echo.toml parses")
}

/// The macswap forwarder on a looped loopback NIC, [`MACSWAP_IN_FLIGHT`]
/// frames circulating: every poll swaps and sends one burst of 32.
pub fn macswap_executor() -> Executor {
    macswap_with_tap(None)
}

/// [`macswap_executor`] with a capture tap of `board`, never armed, on its
/// port: what a platform serving the management plane builds, so the
/// difference is the tap's cost while nobody captures.
pub fn macswap_executor_tapped() -> Executor {
    macswap_with_tap(Some(Arc::new(CaptureBoard::new())))
}

fn macswap_with_tap(board: Option<Arc<CaptureBoard>>) -> Executor {
    let pool = Mempool::with_heap(MACSWAP_IN_FLIGHT, 128).expect("heap pool");
    let mut nic = LoopbackNic::looped(OUR_MAC, MACSWAP_IN_FLIGHT);
    let frame = ethernet_frame(OUR_MAC.0, [2, 0, 0, 0, 0, 2]);
    for _ in 0..MACSWAP_IN_FLIGHT {
        let mut packet = pool.alloc().expect("pool sized for the frames");
        packet
            .append(frame.len())
            .expect("a frame fits a buffer")
            .copy_from_slice(&frame);
        nic.inject(packet).expect("queue sized for the frames");
    }
    let mut builder = ExecutorBuilder::new();
    builder.clock(frozen_clock);
    let port = builder.add_port(Box::new(nic));
    let node = builder.add_node(Box::new(MacSwap));
    builder
        .route_rx(port, node)
        .expect("the port belongs to this builder");
    builder
        .connect(node, "out", Target::Port(port))
        .expect("macswap has an `out` output");
    if let Some(board) = board {
        builder
            .tap_port(port, board.tap(0, 0))
            .expect("the port belongs to this builder");
    }
    builder.build().expect("a complete graph")
}

/// A pool for the echo core.
pub fn echo_pool() -> Mempool {
    Mempool::with_heap(ECHO_POOL_BUFFERS, dataplane::mem::mempool::DEFAULT_HEADROOM)
        .expect("heap pool")
}

/// Queues the echo loop's frames on `nic`: first an ARP request from the
/// peer (so the stack learns the peer's MAC during warm-up, as a real peer
/// would make it), then [`ECHO_IN_FLIGHT`] UDP echo requests with a 64-byte
/// payload.
pub fn prime_echo(nic: &mut ReflectorNic, pool: &Mempool) {
    let request = udp_echo_request(&echo_payload());
    let arp = arp_request();
    let frames = core::iter::once(&arp).chain(core::iter::repeat_n(&request, ECHO_IN_FLIGHT));
    for bytes in frames {
        let mut packet = pool.alloc().expect("pool sized for the frames");
        packet
            .append(bytes.len())
            .expect("a frame fits a buffer")
            .copy_from_slice(bytes);
        nic.inject(packet)
            .expect("reflector queue sized for the frames");
    }
}

/// The echo core, as every platform builds it (`control::build_core` on
/// [`echo_spec`]), on `nic`, after one warm-up poll: the first tick's
/// gratuitous ARP goes out, the peer's ARP request is answered and learned,
/// and the first requests are echoed.
pub fn udp_echo_core(nic: Box<dyn Nic>, pool: Mempool) -> Executor {
    udp_echo_core_links(nic, pool, control::CoreLinks::new())
}

/// [`udp_echo_core`] built with `links` (a shared capture board puts a tap
/// on the port).
fn udp_echo_core_links(nic: Box<dyn Nic>, pool: Mempool, links: control::CoreLinks) -> Executor {
    udp_echo_core_with(&echo_spec(), nic, pool, links)
}

/// The core of `spec` (an echo spec, perhaps with more services) built
/// as [`udp_echo_core`] builds the echo spec's, with `links`.
pub fn udp_echo_core_with(
    spec: &Spec,
    nic: Box<dyn Nic>,
    pool: Mempool,
    links: control::CoreLinks,
) -> Executor {
    let mut executor = control::build_core(spec, 0, vec![(0, nic)], pool, frozen_clock, links)
        .expect("the echo spec builds");
    executor.poll_once();
    executor
}

/// The echo core on a [`ReflectorNic`] primed by [`prime_echo`], warmed up:
/// every further poll answers [`ECHO_IN_FLIGHT`] requests.
pub fn udp_echo_executor() -> Executor {
    let pool = echo_pool();
    let mut nic = ReflectorNic::new(OUR_MAC, ECHO_IN_FLIGHT + 1);
    prime_echo(&mut nic, &pool);
    udp_echo_core(Box::new(nic), pool)
}

/// [`udp_echo_executor`] built as a platform serving the management plane
/// builds it: a capture board shared through its links puts a tap, never
/// armed, on the port.
pub fn udp_echo_executor_tapped() -> Executor {
    let pool = echo_pool();
    let mut nic = ReflectorNic::new(OUR_MAC, ECHO_IN_FLIGHT + 1);
    prime_echo(&mut nic, &pool);
    let mut links = control::CoreLinks::new();
    links.insert_shared(Arc::new(CaptureBoard::new()));
    udp_echo_core_links(Box::new(nic), pool, links)
}

/// [`udp_echo_executor`] built as the hosted runtime builds it: every
/// node call under the `catch_unwind` guard (supervision), so the
/// difference is the guard's cost.
pub fn udp_echo_executor_supervised() -> Executor {
    let pool = echo_pool();
    let mut nic = ReflectorNic::new(OUR_MAC, ECHO_IN_FLIGHT + 1);
    prime_echo(&mut nic, &pool);
    let mut links = control::CoreLinks::new();
    links.insert_shared(dataplane::supervise::CATCH_UNWIND);
    udp_echo_core_links(Box::new(nic), pool, links)
}

/// The `http` appliance the TCP benchmark drives: the interface of
/// `examples/http.toml` with its `/` route only (`hello from warpcore\n`).
pub fn http_spec() -> Spec {
    const SPEC: &str = r#"
[[interface]]
name = "eth0"
driver = "virtio"
mac = "02:00:00:00:00:01"
address = "10.0.0.2/24"
queues = 1

[[service]]
kind = "http"
port = 80
routes = [
  { path = "/", body = "hello from warpcore\n", content_type = "text/plain" },
]
"#;
    Spec::parse(SPEC, &services::Registry::with_builtin()).expect("the http spec parses")
}

/// The `kv` appliance the memcached benchmark drives: the same interface,
/// the `kv` app alone on port 11211, one core (every key is this core's).
pub fn kv_spec() -> Spec {
    const SPEC: &str = r#"
[[interface]]
name = "eth0"
driver = "virtio"
mac = "02:00:00:00:00:01"
address = "10.0.0.2/24"
queues = 1

[[service]]
kind = "kv"
port = 11211
memory_bytes = 16777216
"#;
    Spec::parse(SPEC, &services::Registry::with_builtin()).expect("the kv spec parses")
}

/// Polls allowed per connection to open them all.
const OPEN_POLLS_PER_CONNECTION: usize = 4;

/// The `http` core (`control::build_core` on [`http_spec`]) on an
/// [`HttpClients`] NIC playing `connections` clients that send up to
/// `burst` requests per poll, every connection open (and accepted by the
/// stack), no request sent yet. The handle reaches the clients between
/// polls.
pub fn http_executor(connections: usize, burst: usize) -> (Executor, SharedNic<HttpClients>) {
    tcp_executor(&http_spec(), Protocol::HTTP, connections, burst)
}

/// As [`http_executor`], for the `kv` core ([`kv_spec`]) and clients that
/// set one key each and then get it ([`Protocol::MEMCACHE_GET`]).
pub fn kv_executor(connections: usize, burst: usize) -> (Executor, SharedNic<HttpClients>) {
    tcp_executor(&kv_spec(), Protocol::MEMCACHE_GET, connections, burst)
}

/// The core `spec` builds on clients speaking `protocol`, every
/// connection open.
fn tcp_executor(
    spec: &Spec,
    protocol: Protocol,
    connections: usize,
    burst: usize,
) -> (Executor, SharedNic<HttpClients>) {
    let clients = SharedNic::new(HttpClients::with_protocol(connections, burst, protocol));
    let pool = Mempool::with_heap(ECHO_POOL_BUFFERS, dataplane::mem::mempool::DEFAULT_HEADROOM)
        .expect("heap pool");
    let mut executor = control::build_core(
        spec,
        0,
        vec![(0, Box::new(clients.clone()) as Box<dyn Nic>)],
        pool,
        frozen_clock,
        control::CoreLinks::new(),
    )
    .expect("the TCP benchmark's spec builds");
    let mut polls = 0;
    // The poll that receives the last ACK also hands it to the stack.
    while !clients.borrow().all_open() {
        executor.poll_once();
        polls += 1;
        assert!(
            polls <= OPEN_POLLS_PER_CONNECTION * connections + 8,
            "the connections did not open: {:?}",
            clients.borrow().counts()
        );
    }
    let accepted = executor
        .counters()
        .node_events("tcp", "connections-accepted");
    assert_eq!(
        accepted, connections as u64,
        "connections the stack accepted"
    );
    (executor, clients)
}

/// Polls `executor` until its clients sent `requests` more requests (a
/// multiple of their burst); panics if a poll receives less than a burst
/// (a response was missing, so the next request could not go) or a
/// response was wrong.
pub fn run_requests(executor: &mut Executor, clients: &SharedNic<HttpClients>, requests: u64) {
    let burst = clients.borrow().burst();
    assert_eq!(requests % burst as u64, 0, "requests in whole bursts");
    for _ in 0..requests / burst as u64 {
        let received = executor.poll_once();
        assert_eq!(received, burst, "a response was missing");
    }
    let clients = clients.borrow();
    assert_eq!(
        clients.counts().wrong,
        0,
        "wrong frames: {:?}",
        clients.counts()
    );
}

/// A warpcore pipeline the callgrind counter can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// [`macswap_executor`].
    MacSwap,
    /// [`udp_echo_executor`].
    UdpEcho,
    /// [`macswap_executor_tapped`].
    MacSwapTapped,
    /// [`udp_echo_executor_tapped`].
    UdpEchoTapped,
    /// [`udp_echo_executor_supervised`].
    UdpEchoSupervised,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 5] = [
        Workload::MacSwap,
        Workload::UdpEcho,
        Workload::MacSwapTapped,
        Workload::UdpEchoTapped,
        Workload::UdpEchoSupervised,
    ];

    /// The workload's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::MacSwap => "macswap",
            Self::UdpEcho => "udp-echo",
            Self::MacSwapTapped => "macswap-tapped",
            Self::UdpEchoTapped => "udp-echo-tapped",
            Self::UdpEchoSupervised => "udp-echo-supervised",
        }
    }

    /// The workload called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|workload| workload.name() == name)
    }

    /// Its executor, set up and warmed up.
    pub fn executor(self) -> Executor {
        match self {
            Self::MacSwap => macswap_executor(),
            Self::UdpEcho => udp_echo_executor(),
            Self::MacSwapTapped => macswap_executor_tapped(),
            Self::UdpEchoTapped => udp_echo_executor_tapped(),
            Self::UdpEchoSupervised => udp_echo_executor_supervised(),
        }
    }
}

/// Polls `executor` for `bursts` full bursts; panics if a poll receives
/// less than a burst (the loop lost packets, so a count would be wrong).
pub fn run_bursts(executor: &mut Executor, bursts: u64) {
    for _ in 0..bursts {
        let received = executor.poll_once();
        assert_eq!(received, BURST_SIZE, "the benchmark loop lost packets");
    }
}

/// Bursts a counting binary runs before the counted ones, so that every
/// queue and cache line the loop touches has been touched once.
pub const WARM_UP_BURSTS: u64 = 16;

/// The body of `count-pipeline` and `count-driver` (made to run under
/// `valgrind --tool=callgrind`): parses `NAME PACKETS` from the command
/// line, builds NAME's executor with `executor` (`None`: unknown name)
/// once PACKETS is known to be good, and counts it ([`count_executor`]).
pub fn count_packets(usage: &str, executor: impl Fn(&str) -> Option<Executor>) -> ExitCode {
    match count_args(usage) {
        Ok((name, packets)) => count_executor(usage, &name, packets, executor(&name)),
        Err(code) => code,
    }
}

/// `NAME PACKETS` from a counting binary's command line, PACKETS a
/// multiple of the burst size; otherwise the usage is printed and the exit
/// code to return.
pub fn count_args(usage: &str) -> Result<(String, u64), ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, packets] = args.as_slice() else {
        eprintln!("{usage}");
        return Err(ExitCode::from(2));
    };
    match packets.parse() {
        Ok(count) if count % BURST_SIZE as u64 == 0 => Ok((name.clone(), count)),
        _ => {
            eprintln!("PACKETS `{packets}` is not a multiple of {BURST_SIZE}\n{usage}");
            Err(ExitCode::from(2))
        }
    }
}

/// Warms `executor` (NAME's; `None`: an unknown name) up, runs PACKETS
/// packets and fails if the loop dropped any.
pub fn count_executor(
    usage: &str,
    name: &str,
    packets: u64,
    executor: Option<Executor>,
) -> ExitCode {
    let Some(mut executor) = executor else {
        eprintln!("unknown workload `{name}`\n{usage}");
        return ExitCode::from(2);
    };
    run_bursts(&mut executor, WARM_UP_BURSTS);
    run_bursts(&mut executor, packets / BURST_SIZE as u64);
    let counters = executor.counters();
    if counters.executor_drops() != 0 {
        eprintln!(
            "{name}: the loop dropped {} packets",
            counters.executor_drops()
        );
        return ExitCode::FAILURE;
    }
    println!(
        "{name}: {packets} packets after {} warm-up",
        WARM_UP_BURSTS * BURST_SIZE as u64
    );
    ExitCode::SUCCESS
}

/// Runs `executor` for eight bursts and checks that each received and sent
/// a full burst without a drop (the tests of every workload list).
#[cfg(test)]
pub(crate) fn assert_full_bursts(mut executor: Executor, name: &str) {
    let counters = executor.counters().clone();
    let (rx, tx) = (counters.rx_packets.get(), counters.tx_packets.get());
    run_bursts(&mut executor, 8);
    assert_eq!(
        counters.rx_packets.get() - rx,
        8 * BURST_SIZE as u64,
        "{name}"
    );
    assert_eq!(
        counters.tx_packets.get() - tx,
        8 * BURST_SIZE as u64,
        "{name}"
    );
    assert_eq!(counters.executor_drops(), 0, "{name}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{ECHO_PORT, OUR_IP, PEER_IP, PEER_MAC, PEER_PORT, UdpSummary};
    use dataplane::SharedNic;

    #[test]
    fn echo_loop_echoes_every_request_unchanged() {
        let pool = echo_pool();
        let shared = SharedNic::new(ReflectorNic::new(OUR_MAC, ECHO_IN_FLIGHT + 1));
        prime_echo(&mut shared.borrow_mut(), &pool);
        let mut executor = udp_echo_core(Box::new(shared.clone()), pool);
        let warm = shared.borrow().counts();
        // Warm-up: the ARP request and the first 31 UDP requests in; the
        // ARP reply and the gratuitous ARP went out and were not reflected.
        assert_eq!(warm.received, BURST_SIZE as u64);
        assert_eq!(warm.ignored, 2);
        assert_eq!(warm.reflected, BURST_SIZE as u64 - 1);

        let polls = 10u64;
        run_bursts(&mut executor, polls);
        let counts = shared.borrow().counts();
        assert_eq!(counts.received - warm.received, polls * BURST_SIZE as u64);
        assert_eq!(counts.reflected - warm.reflected, polls * BURST_SIZE as u64);
        assert_eq!((counts.ignored, counts.overflowed), (2, 0));

        let counters = executor.counters();
        assert_eq!(counters.rx_packets.get(), (polls + 1) * BURST_SIZE as u64);
        assert_eq!(counters.executor_drops(), 0);
        let echoed: u64 = counters
            .nodes
            .iter()
            .filter(|node| node.name == "udp-echo")
            .map(|node| node.emitted.get())
            .sum();
        assert_eq!(echoed, counts.reflected);
        assert_eq!(counters.node_drops("udp", "bad-checksum"), 0);
        let node_drops: u64 = counters.nodes.iter().map(|node| node.total_drops()).sum();
        assert_eq!(node_drops, 0);

        // Every frame on the wire is a valid request again, payload intact.
        let nic = shared.borrow();
        assert_eq!(nic.waiting().count(), ECHO_IN_FLIGHT);
        for packet in nic.waiting() {
            let request = UdpSummary::of(packet.payload()).expect("valid checksums");
            assert_eq!(request.macs, (OUR_MAC, PEER_MAC));
            assert_eq!(request.addresses, (PEER_IP, OUR_IP));
            assert_eq!(request.ports, (PEER_PORT, ECHO_PORT));
            assert_eq!(request.payload, echo_payload());
        }
    }

    #[test]
    fn http_clients_get_every_response_over_opened_and_cookie_connections() {
        for (connections, burst, cookies) in [(10, 32, 0), (40, 32, 0), (1100, 32, 1100 - 1024)] {
            let (mut executor, clients) = http_executor(connections, burst);
            clients.borrow_mut().verify_checksums(true);
            let counts = clients.borrow().counts();
            assert_eq!(counts.syn_acks, connections as u64);
            assert_eq!(
                (counts.ignored, counts.wrong),
                (2, 0),
                "gratuitous ARP, ARP reply"
            );
            let counters = executor.counters().clone();
            assert_eq!(counters.node_events("tcp", "syn-cookies-sent"), cookies);
            let burst = clients.borrow().burst();
            assert_eq!(burst, connections.min(32));
            let requests = 2 * connections.div_ceil(burst) as u64 * burst as u64;
            run_requests(&mut executor, &clients, requests);
            let counts = clients.borrow().counts();
            assert_eq!(counts.requests, requests);
            assert_eq!(counts.responses, requests);
            assert_eq!(counts.wrong, 0);
            assert_eq!(counters.executor_drops(), 0);
            let node_drops: u64 = counters.nodes.iter().map(|node| node.total_drops()).sum();
            assert_eq!(node_drops, 0);
            assert_eq!(
                counters.node_events("tcp", "connections-accepted"),
                connections as u64
            );
        }
    }

    #[test]
    fn memcached_clients_set_then_get_every_value() {
        for (connections, burst) in [(10, 10), (40, 32)] {
            let (mut executor, clients) = kv_executor(connections, burst);
            clients.borrow_mut().verify_checksums(true);
            let burst = clients.borrow().burst();
            // A set per client, then gets.
            let requests = 3 * connections.div_ceil(burst) as u64 * burst as u64;
            run_requests(&mut executor, &clients, requests);
            let counts = clients.borrow().counts();
            assert_eq!((counts.requests, counts.responses), (requests, requests));
            assert_eq!(counts.wrong, 0);
            let counters = executor.counters();
            assert_eq!(counters.executor_drops(), 0);
            let node_drops: u64 = counters.nodes.iter().map(|node| node.total_drops()).sum();
            assert_eq!(node_drops, 0);
        }
    }

    #[test]
    fn workloads_run_full_bursts() {
        for workload in Workload::ALL {
            assert_eq!(Workload::from_name(workload.name()), Some(workload));
            assert_full_bursts(workload.executor(), workload.name());
        }
        assert_eq!(Workload::from_name("l3fwd"), None);
    }
}
