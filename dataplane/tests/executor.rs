//! The executor end to end on loopback NICs: routing between nodes, fan-in,
//! rings to another executor, every kind of drop counted.

use std::cell::RefCell;
use std::rc::Rc;

use dataplane::{
    Batch, DropCode, ExecutorBuilder, ExecutorError, LoopbackNic, MacAddr, Mempool, Nanoservice,
    Outputs, SpscRing, Target, Verdict,
};

/// Sends packets whose first byte is even to `even`, odd to `odd`, drops
/// empty ones as `empty`, and emits byte 0xff on an output it does not have.
struct Classify;

impl Nanoservice for Classify {
    fn name(&self) -> &'static str {
        "classify"
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["even", "odd"]
    }
    fn drop_reasons(&self) -> &'static [&'static str] {
        &["empty"]
    }
    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        for packet in batch.drain() {
            match packet.payload().first() {
                None => out.drop(packet, DropCode(0)),
                Some(0xff) => out.emit(7, packet),
                Some(byte) => out.emit(usize::from(byte % 2), packet),
            }
        }
    }
}

/// Adds one to the first byte and passes the packet on.
struct Increment;

impl Nanoservice for Increment {
    fn name(&self) -> &'static str {
        "increment"
    }
    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        for mut packet in batch.drain() {
            packet.payload_mut()[0] += 1;
            out.emit(0, packet);
        }
    }
}

/// Keeps every packet it is given in its batch: a buggy service.
struct Hoarder;

impl Nanoservice for Hoarder {
    fn name(&self) -> &'static str {
        "hoarder"
    }
    fn outputs(&self) -> &'static [&'static str] {
        &[]
    }
    fn process(&mut self, _batch: &mut Batch, _out: &mut Outputs<'_>) {}
}

fn packet_with(pool: &Mempool, first_byte: Option<u8>) -> dataplane::Packet {
    let mut packet = pool.alloc().unwrap();
    if let Some(byte) = first_byte {
        packet.append(1).unwrap()[0] = byte;
    }
    packet
}

#[test]
fn routes_between_nodes_and_counts_drops() {
    let pool = Mempool::with_heap(64, 0).unwrap();
    let mut nic = LoopbackNic::new(MacAddr::default(), 64);
    for byte in [Some(1), Some(2), None, Some(0xff), Some(4)] {
        nic.inject(packet_with(&pool, byte)).unwrap();
    }
    let mut builder = ExecutorBuilder::new();
    let port = builder.add_port(Box::new(nic));
    let classify = builder.add_node(Box::new(Classify));
    let increment = builder.add_node(Box::new(Increment));
    builder.route_rx(port, classify).unwrap();
    builder
        .connect(classify, "even", Target::Port(port))
        .unwrap();
    builder
        .connect(classify, "odd", Target::Node(increment))
        .unwrap();
    builder
        .connect(increment, "out", Target::Port(port))
        .unwrap();
    let mut executor = builder.build().unwrap();

    assert_eq!(executor.poll_once(), 5);
    let nic = executor.nic_as::<LoopbackNic>(port).unwrap();
    let sent: Vec<u8> = std::iter::from_fn(|| nic.take_transmitted())
        .map(|p| p.payload()[0])
        .collect();
    // Even bytes go straight out in this poll's first burst; the odd one
    // went through `increment`, which runs after `classify`.
    assert_eq!(sent, [2, 4, 2]);
    let counters = executor.counters();
    assert_eq!(
        counters.nodes[classify.index()].drops_named("empty"),
        Some(1)
    );
    assert_eq!(counters.nodes[classify.index()].invalid_output.get(), 1);
    assert_eq!(counters.nodes[classify.index()].received.get(), 5);
    assert_eq!(counters.nodes[classify.index()].emitted.get(), 3);
    assert_eq!(counters.nodes[increment.index()].received.get(), 1);
    assert_eq!(counters.tx_packets.get(), 3);
    assert_eq!(counters.rx_packets.get(), 5);
    assert_eq!(pool.available(), 64);

    assert_eq!(executor.poll_once(), 0);
    assert_eq!(executor.counters().idle_polls.get(), 1);
    assert_eq!(executor.counters().polls.get(), 2);
}

#[test]
fn unconnected_and_unknown_outputs_are_errors() {
    let mut builder = ExecutorBuilder::new();
    let node = builder.add_node(Box::new(Classify));
    let error = builder
        .connect(node, "purple", Target::Discard)
        .err()
        .unwrap();
    assert_eq!(
        error,
        ExecutorError::UnknownOutput {
            service: "classify",
            output: "purple".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "service `classify` has no output `purple`"
    );
    builder.connect(node, "even", Target::Discard).unwrap();
    let error = builder.build().err().unwrap();
    assert_eq!(
        error,
        ExecutorError::UnconnectedOutput {
            service: "classify",
            output: "odd"
        }
    );
}

#[test]
fn packets_a_service_keeps_are_dropped_and_counted() {
    let pool = Mempool::with_heap(8, 0).unwrap();
    let mut nic = LoopbackNic::new(MacAddr::default(), 8);
    nic.inject(packet_with(&pool, Some(1))).unwrap();
    let mut builder = ExecutorBuilder::new();
    let port = builder.add_port(Box::new(nic));
    let node = builder.add_node(Box::new(Hoarder));
    builder.route_rx(port, node).unwrap();
    let mut executor = builder.build().unwrap();
    executor.poll_once();
    assert_eq!(executor.counters().unconsumed_drops.get(), 1);
    assert_eq!(pool.available(), 8);
}

#[test]
fn a_cycle_hits_the_pass_limit_instead_of_spinning() {
    let pool = Mempool::with_heap(8, 0).unwrap();
    let mut nic = LoopbackNic::new(MacAddr::default(), 8);
    nic.inject(packet_with(&pool, Some(0))).unwrap();
    let mut builder = ExecutorBuilder::new();
    let port = builder.add_port(Box::new(nic));
    let node = builder.add_node(Box::new(Increment));
    builder.route_rx(port, node).unwrap();
    builder.connect(node, "out", Target::Node(node)).unwrap();
    let mut executor = builder.build().unwrap();
    executor.poll_once();
    assert_eq!(executor.counters().pass_limit_drops.get(), 1);
    assert_eq!(pool.available(), 8);
}

#[test]
fn fan_in_beyond_the_queue_depth_is_counted() {
    let pool = Mempool::with_heap(1024, 0).unwrap();
    let mut builder = ExecutorBuilder::new();
    let sink = builder.add_node(Box::new(Increment));
    builder.connect(sink, "out", Target::Discard).unwrap();
    // Many ports feed one node; each port's burst runs straight away only
    // while the node's queue is empty, so nothing is lost here.
    for _ in 0..16 {
        let mut nic = LoopbackNic::new(MacAddr::default(), 32);
        for _ in 0..32 {
            nic.inject(packet_with(&pool, Some(0))).unwrap();
        }
        let port = builder.add_port(Box::new(nic));
        builder.route_rx(port, sink).unwrap();
    }
    let mut executor = builder.build().unwrap();
    assert_eq!(executor.poll_once(), 16 * 32);
    assert_eq!(executor.counters().discarded.get(), 16 * 32);
    assert_eq!(executor.counters().queue_full_drops.get(), 0);
    assert_eq!(pool.available(), 1024);
}

#[test]
fn rings_carry_packets_to_another_executor() {
    let pool = Mempool::with_heap(64, 0).unwrap();
    let (producer, consumer) = SpscRing::with_capacity(16).unwrap();

    let mut nic = LoopbackNic::new(MacAddr::default(), 64);
    for byte in 0..20 {
        nic.inject(packet_with(&pool, Some(byte))).unwrap();
    }
    let mut first = ExecutorBuilder::new();
    let port = first.add_port(Box::new(nic));
    let node = first.add_node(Box::new(Increment));
    let ring = first.add_ring_out(producer);
    first.route_rx(port, node).unwrap();
    first.connect(node, "out", Target::Ring(ring)).unwrap();
    let mut first = first.build().unwrap();

    let mut second = ExecutorBuilder::new();
    let out_port = second.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 64)));
    let node = second.add_node(Box::new(Increment));
    second.add_ring_in(consumer, node).unwrap();
    second.connect(node, "out", Target::Port(out_port)).unwrap();
    let mut second = second.build().unwrap();

    assert_eq!(first.poll_once(), 20);
    // The ring holds 16: four packets did not fit and were counted.
    assert_eq!(first.counters().ring_out_packets.get(), 16);
    assert_eq!(first.counters().ring_full_drops.get(), 4);
    assert_eq!(second.poll_once(), 16);
    let nic = second.nic_as::<LoopbackNic>(out_port).unwrap();
    let bytes: Vec<u8> = std::iter::from_fn(|| nic.take_transmitted())
        .map(|p| p.payload()[0])
        .collect();
    assert_eq!(bytes, (2..18).collect::<Vec<u8>>());
    assert_eq!(pool.available(), 64);
}

#[test]
fn services_allocate_from_the_core_pool() {
    struct Reply;
    impl Nanoservice for Reply {
        fn name(&self) -> &'static str {
            "reply"
        }
        fn drop_reasons(&self) -> &'static [&'static str] {
            &["no-buffer"]
        }
        fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
            for packet in batch.drain() {
                match out.alloc() {
                    Some(mut reply) => {
                        reply.append(1).unwrap()[0] = 42;
                        out.emit(0, reply);
                        out.emit(0, packet);
                    }
                    None => out.drop(packet, DropCode(0)),
                }
            }
        }
    }
    let pool = Mempool::with_heap(3, 0).unwrap();
    let mut nic = LoopbackNic::new(MacAddr::default(), 8);
    nic.inject(packet_with(&pool, Some(1))).unwrap();
    nic.inject(packet_with(&pool, Some(2))).unwrap();
    let mut builder = ExecutorBuilder::new();
    builder.pool(pool);
    let port = builder.add_port(Box::new(nic));
    let node = builder.add_node(Box::new(Reply));
    builder.route_rx(port, node).unwrap();
    builder.connect(node, "out", Target::Port(port)).unwrap();
    let mut executor = builder.build().unwrap();
    executor.poll_once();
    // One spare buffer: the first packet gets a reply, the second does not.
    assert_eq!(
        executor.counters().nodes[0].drops_named("no-buffer"),
        Some(1)
    );
    assert_eq!(executor.counters().tx_packets.get(), 2);
    assert_eq!(executor.pool().unwrap().stats().exhausted, 1);
}

#[test]
fn nodes_tick_on_the_first_poll_and_then_by_the_clock() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NOW: AtomicU64 = AtomicU64::new(0);
    fn clock() -> u64 {
        // Ordering: Relaxed: a fake clock read and written by this test's thread.
        NOW.load(Ordering::Relaxed)
    }
    /// Sends one fresh packet per tick, stamped with the tick time in ms.
    struct Beacon;
    impl Nanoservice for Beacon {
        fn name(&self) -> &'static str {
            "beacon"
        }
        fn process(&mut self, batch: &mut Batch, _out: &mut Outputs<'_>) {
            batch.clear();
        }
        fn tick(&mut self, out: &mut Outputs<'_>) {
            if let Some(mut packet) = out.alloc() {
                packet.append(1).unwrap()[0] = (out.now_ns() / 1_000_000) as u8;
                out.emit(0, packet);
            }
        }
    }
    let mut builder = ExecutorBuilder::new();
    builder.pool(Mempool::with_heap(8, 0).unwrap()).clock(clock);
    let port = builder.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 8)));
    let node = builder.add_node(Box::new(Beacon));
    builder.connect(node, "out", Target::Port(port)).unwrap();
    let mut executor = builder.build().unwrap();
    executor.poll_once();
    // Ordering: Relaxed: the fake clock lives on this test's thread only.
    NOW.store(999_999, Ordering::Relaxed);
    executor.poll_once();
    NOW.store(3_000_000, Ordering::Relaxed);
    executor.poll_once();
    let nic = executor.nic_as::<LoopbackNic>(port).unwrap();
    let stamps: Vec<u8> = std::iter::from_fn(|| nic.take_transmitted())
        .map(|p| p.payload()[0])
        .collect();
    assert_eq!(stamps, [0, 3]);
}

/// A NIC that records whether its wake-up signal is armed.
struct WakeProbe {
    pending: bool,
    armed: std::rc::Rc<std::cell::Cell<bool>>,
}

impl dataplane::Nic for WakeProbe {
    fn rx_burst(&mut self, _batch: &mut Batch) -> usize {
        0
    }
    fn tx_burst(&mut self, _batch: &mut Batch) -> usize {
        0
    }
    fn mac(&self) -> MacAddr {
        MacAddr::default()
    }
    fn link(&self) -> dataplane::LinkInfo {
        dataplane::LinkInfo {
            up: true,
            speed_mbps: 0,
            mtu: 1500,
        }
    }
    fn name(&self) -> &str {
        "probe"
    }
    fn enable_wakeup(&mut self) -> bool {
        if self.pending {
            return false;
        }
        self.armed.set(true);
        true
    }
    fn disable_wakeup(&mut self) {
        self.armed.set(false);
    }
}

#[test]
fn wakeup_arms_every_port_or_none() {
    let probe = |pending| {
        let armed = std::rc::Rc::new(std::cell::Cell::new(false));
        (
            Box::new(WakeProbe {
                pending,
                armed: armed.clone(),
            }),
            armed,
        )
    };
    let (quiet, quiet_armed) = probe(false);
    let (busy, busy_armed) = probe(true);
    let mut builder = ExecutorBuilder::new();
    builder.add_port(quiet);
    builder.add_port(busy);
    let mut executor = builder.build().unwrap();
    assert!(!executor.enable_wakeup(), "the second port has packets");
    assert!(!quiet_armed.get(), "the first port was disarmed again");
    assert!(!busy_armed.get());

    let (quiet, quiet_armed) = probe(false);
    let mut builder = ExecutorBuilder::new();
    builder.add_port(quiet);
    let mut executor = builder.build().unwrap();
    assert!(executor.enable_wakeup());
    assert!(quiet_armed.get());
    executor.disable_wakeup();
    assert!(!quiet_armed.get());
}

#[test]
fn wakeup_is_refused_while_an_input_ring_holds_packets() {
    let pool = Mempool::with_heap(4, 0).unwrap();
    let (mut producer, consumer) = SpscRing::with_capacity(4).unwrap();
    let mut builder = ExecutorBuilder::new();
    let node = builder.add_node(Box::new(Hoarder));
    builder.add_ring_in(consumer, node).unwrap();
    let mut executor = builder.build().unwrap();
    assert!(executor.enable_wakeup(), "empty ring: may sleep");
    assert!(producer.push(pool.alloc().unwrap()).is_ok());
    assert!(!executor.enable_wakeup(), "a packet waits in the ring");
    let mut nic = LoopbackNic::new(MacAddr::default(), 4);
    assert!(dataplane::Nic::enable_wakeup(&mut nic));
    nic.inject(pool.alloc().unwrap()).unwrap();
    assert!(!dataplane::Nic::enable_wakeup(&mut nic));
}

/// `Classify` on `Outputs::dispatch`: even first bytes go to `even`, empty
/// packets are dropped, 0xff goes to an output it does not have, and odd
/// ones are kept and then emitted on `odd` by hand.
struct Dispatcher;

impl Nanoservice for Dispatcher {
    fn name(&self) -> &'static str {
        "dispatcher"
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["even", "odd"]
    }
    fn drop_reasons(&self) -> &'static [&'static str] {
        &["empty"]
    }
    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        out.dispatch(batch, |packet, _| match packet.payload().first() {
            None => Verdict::drop(DropCode(0)),
            Some(0xff) => Verdict::emit(7),
            Some(byte) if byte % 2 == 0 => Verdict::emit(0),
            Some(_) => Verdict::Keep,
        });
        for packet in batch.drain() {
            out.emit(1, packet);
        }
    }
}

/// Runs `Dispatcher` once on frames with these first bytes; returns the
/// first bytes sent on `even` and on `odd`, in order, and the executor.
fn dispatch_once(bytes: &[Option<u8>]) -> (Vec<u8>, Vec<u8>, dataplane::Executor, Mempool) {
    let pool = Mempool::with_heap(64, 0).unwrap();
    let mut even_nic = LoopbackNic::new(MacAddr::default(), 64);
    for byte in bytes {
        even_nic.inject(packet_with(&pool, *byte)).unwrap();
    }
    let odd_nic = LoopbackNic::new(MacAddr::default(), 64);
    let mut builder = ExecutorBuilder::new();
    let even = builder.add_port(Box::new(even_nic));
    let odd = builder.add_port(Box::new(odd_nic));
    let node = builder.add_node(Box::new(Dispatcher));
    builder.route_rx(even, node).unwrap();
    builder.connect(node, "even", Target::Port(even)).unwrap();
    builder.connect(node, "odd", Target::Port(odd)).unwrap();
    let mut executor = builder.build().unwrap();
    assert_eq!(executor.poll_once(), bytes.len());
    let mut sent = |port| -> Vec<u8> {
        let nic = executor.nic_as::<LoopbackNic>(port).unwrap();
        std::iter::from_fn(|| nic.take_transmitted())
            .map(|packet| packet.payload()[0])
            .collect()
    };
    let (even_sent, odd_sent) = (sent(even), sent(odd));
    (even_sent, odd_sent, executor, pool)
}

#[test]
fn dispatch_sends_mixed_verdicts_in_order_and_keeps_what_it_is_told() {
    let bytes = [Some(1), Some(2), None, Some(0xff), Some(4), Some(3)];
    let (even, odd, executor, pool) = dispatch_once(&bytes);
    assert_eq!(even, [2, 4]);
    assert_eq!(odd, [1, 3]);
    let node = &executor.counters().nodes[0];
    assert_eq!(node.drops_named("empty"), Some(1));
    assert_eq!(node.invalid_output.get(), 1);
    assert_eq!(node.emitted.get(), 4);
    drop(executor);
    assert_eq!(pool.available(), 64);
}

#[test]
fn dispatch_moves_a_uniform_batch_whole() {
    let (even, odd, executor, _pool) = dispatch_once(&[Some(2); 32]);
    assert_eq!((even.len(), odd.len()), (32, 0));
    assert_eq!(executor.counters().nodes[0].emitted.get(), 32);
    let (even, odd, executor, _pool) = dispatch_once(&[None; 5]);
    assert!(even.is_empty() && odd.is_empty());
    assert_eq!(executor.counters().nodes[0].drops_named("empty"), Some(5));
    let (even, odd, executor, _pool) = dispatch_once(&[Some(0xff); 3]);
    assert!(even.is_empty() && odd.is_empty());
    assert_eq!(executor.counters().nodes[0].invalid_output.get(), 3);
}

#[test]
fn dispatch_sends_packets_like_an_emitted_first_one_on_its_output() {
    // The first packet is emitted; those like it later in the burst are
    // stored as "the same as the first", and must go to `even` too, not
    // be kept or dropped.
    let bytes = [Some(2), None, Some(4), Some(1), Some(6), None, Some(8)];
    let (even, odd, executor, pool) = dispatch_once(&bytes);
    assert_eq!(even, [2, 4, 6, 8]);
    assert_eq!(odd, [1]);
    let node = &executor.counters().nodes[0];
    assert_eq!(node.drops_named("empty"), Some(2));
    assert_eq!(node.emitted.get(), 5);
    assert_eq!(node.invalid_output.get(), 0);
    drop(executor);
    assert_eq!(pool.available(), 64);
}

#[test]
fn drops_in_the_middle_and_at_the_end_of_a_full_burst_are_counted_exactly() {
    // 32 packets: even bytes in order, with empty ones (dropped) at the
    // first, a middle and the last place, and one odd (kept, then sent on
    // `odd`) beside them: every way a full burst's verdicts can differ
    // from its first packet's.
    let mut bytes: Vec<Option<u8>> = (0..32u8).map(|index| Some(2 * index)).collect();
    for index in [0, 15, 31] {
        bytes[index] = None;
    }
    bytes[16] = Some(33);
    let (even, odd, executor, pool) = dispatch_once(&bytes);
    let expected: Vec<u8> = (0..32u8)
        .filter(|index| ![0, 15, 16, 31].contains(index))
        .map(|index| 2 * index)
        .collect();
    assert_eq!(even, expected);
    assert_eq!(odd, [33]);
    let node = &executor.counters().nodes[0];
    assert_eq!(node.received.get(), 32);
    assert_eq!(node.drops_named("empty"), Some(3));
    assert_eq!(node.emitted.get(), 29);
    assert_eq!(node.invalid_output.get(), 0);
    // Only the last packet differs: the burst is not taken for uniform.
    let mut bytes = [Some(2); 32];
    bytes[31] = None;
    let (even, odd, executor, _pool) = dispatch_once(&bytes);
    assert_eq!((even.len(), odd.len()), (31, 0));
    assert_eq!(executor.counters().nodes[0].drops_named("empty"), Some(1));
    drop(executor);
    assert_eq!(pool.available(), 64);
}

/// On `Outputs::dispatch_fast`: the fast test sends even first bytes
/// below 0x80 to `fast`; the rest go to the slow one, which drops empty
/// packets as `empty` and bytes from 0x80 up as `high`, and keeps odd
/// ones, which are noted and then emitted on `kept` by hand. The first
/// bytes the slow one saw are noted too.
struct FastDispatcher {
    slow_seen: Rc<RefCell<Vec<Option<u8>>>>,
    kept: Rc<RefCell<Vec<u8>>>,
}

impl Nanoservice for FastDispatcher {
    fn name(&self) -> &'static str {
        "fast-dispatcher"
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["fast", "kept"]
    }
    fn drop_reasons(&self) -> &'static [&'static str] {
        &["empty", "high"]
    }
    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        let slow_seen = &self.slow_seen;
        out.dispatch_fast(
            batch,
            |packet| match packet.payload().first() {
                Some(&byte) if byte < 0x80 && byte % 2 == 0 => Some(0),
                _ => None,
            },
            |packet, _| {
                let first = packet.payload().first().copied();
                slow_seen.borrow_mut().push(first);
                match first {
                    None => Verdict::drop(DropCode(0)),
                    Some(byte) if byte >= 0x80 => Verdict::drop(DropCode(1)),
                    Some(_) => Verdict::Keep,
                }
            },
        );
        self.kept
            .borrow_mut()
            .extend(batch.iter_mut().map(|packet| packet.payload()[0]));
        for packet in batch.drain() {
            out.emit(1, packet);
        }
    }
}

/// What one run of `FastDispatcher` did.
struct FastRun {
    /// First bytes sent on `fast`, in order.
    fast: Vec<u8>,
    /// First bytes left in the batch after `dispatch_fast`, in order.
    kept: Vec<u8>,
    /// First bytes the slow test was asked about, in order.
    slow_seen: Vec<Option<u8>>,
    executor: dataplane::Executor,
    pool: Mempool,
}

/// Runs `FastDispatcher` once on frames with these first bytes.
fn dispatch_fast_once(bytes: &[Option<u8>]) -> FastRun {
    let pool = Mempool::with_heap(64, 0).unwrap();
    let mut nic = LoopbackNic::new(MacAddr::default(), 64);
    for byte in bytes {
        nic.inject(packet_with(&pool, *byte)).unwrap();
    }
    let kept_nic = LoopbackNic::new(MacAddr::default(), 64);
    let (slow_seen, kept) = (Rc::default(), Rc::default());
    let node = FastDispatcher {
        slow_seen: Rc::clone(&slow_seen),
        kept: Rc::clone(&kept),
    };
    let mut builder = ExecutorBuilder::new();
    let fast_port = builder.add_port(Box::new(nic));
    let kept_port = builder.add_port(Box::new(kept_nic));
    let node = builder.add_node(Box::new(node));
    builder.route_rx(fast_port, node).unwrap();
    builder
        .connect(node, "fast", Target::Port(fast_port))
        .unwrap();
    builder
        .connect(node, "kept", Target::Port(kept_port))
        .unwrap();
    let mut executor = builder.build().unwrap();
    assert_eq!(executor.poll_once(), bytes.len());
    let fast = {
        let nic = executor.nic_as::<LoopbackNic>(fast_port).unwrap();
        std::iter::from_fn(|| nic.take_transmitted())
            .map(|packet| packet.payload()[0])
            .collect()
    };
    let kept_sent: Vec<u8> = {
        let nic = executor.nic_as::<LoopbackNic>(kept_port).unwrap();
        std::iter::from_fn(|| nic.take_transmitted())
            .map(|packet| packet.payload()[0])
            .collect()
    };
    let kept = kept.take();
    assert_eq!(
        kept_sent, kept,
        "kept packets are the ones left in the batch"
    );
    FastRun {
        fast,
        kept,
        slow_seen: slow_seen.take(),
        executor,
        pool,
    }
}

#[test]
fn dispatch_fast_sends_both_paths_in_order_and_keeps_what_slow_keeps() {
    // Fast, slow drop (empty), fast, slow keep, slow drop (high), slow
    // keep, fast, slow drop (high), fast.
    let bytes = [
        Some(2),
        None,
        Some(4),
        Some(1),
        Some(0x80),
        Some(3),
        Some(6),
        Some(0x81),
        Some(8),
    ];
    let run = dispatch_fast_once(&bytes);
    assert_eq!(run.fast, [2, 4, 6, 8]);
    assert_eq!(run.kept, [1, 3]);
    // The slow test is asked about exactly what the fast one declined.
    assert_eq!(
        run.slow_seen,
        [None, Some(1), Some(0x80), Some(3), Some(0x81)]
    );
    let node = &run.executor.counters().nodes[0];
    assert_eq!(node.received.get(), 9);
    assert_eq!(node.drops_named("empty"), Some(1));
    assert_eq!(node.drops_named("high"), Some(2));
    assert_eq!(node.emitted.get(), 6);
    assert_eq!(node.invalid_output.get(), 0);
    assert_eq!(run.executor.counters().unconsumed_drops.get(), 0);
    drop(run.executor);
    assert_eq!(run.pool.available(), 64);
}

#[test]
fn dispatch_fast_handles_a_uniform_batch_of_either_path() {
    // All fast: the whole burst moves on, the slow test never asked.
    let run = dispatch_fast_once(&[Some(2); 32]);
    assert_eq!((run.fast.len(), run.kept.len()), (32, 0));
    assert!(run.slow_seen.is_empty());
    assert_eq!(run.executor.counters().nodes[0].emitted.get(), 32);
    // All slow drops.
    let run = dispatch_fast_once(&[Some(0x90); 5]);
    assert!(run.fast.is_empty() && run.kept.is_empty());
    assert_eq!(run.slow_seen.len(), 5);
    assert_eq!(
        run.executor.counters().nodes[0].drops_named("high"),
        Some(5)
    );
    // All kept: every packet stays in the batch, in order.
    let run = dispatch_fast_once(&[Some(1), Some(3), Some(5)]);
    assert!(run.fast.is_empty());
    assert_eq!(run.kept, [1, 3, 5]);
    assert_eq!(
        run.executor.counters().nodes[0].drops_named("high"),
        Some(0)
    );
}

#[test]
fn dispatch_fast_handles_a_burst_that_starts_on_the_slow_path() {
    // Slow drop, fast, fast, slow drop: the first packet's verdict is a
    // drop, and the last, like it, must be dropped under the same reason.
    let run = dispatch_fast_once(&[None, Some(2), Some(4), None]);
    assert_eq!(run.fast, [2, 4]);
    assert!(run.kept.is_empty());
    assert_eq!(run.slow_seen, [None, None]);
    let node = &run.executor.counters().nodes[0];
    assert_eq!(node.drops_named("empty"), Some(2));
    assert_eq!(node.drops_named("high"), Some(0));
    assert_eq!(node.emitted.get(), 2);
    // Slow keep, fast, fast, slow drop under another reason.
    let run = dispatch_fast_once(&[Some(1), Some(2), Some(4), Some(0x80)]);
    assert_eq!(run.fast, [2, 4]);
    assert_eq!(run.kept, [1]);
    assert_eq!(run.slow_seen, [Some(1), Some(0x80)]);
    let node = &run.executor.counters().nodes[0];
    assert_eq!(node.drops_named("empty"), Some(0));
    assert_eq!(node.drops_named("high"), Some(1));
    assert_eq!(run.executor.counters().unconsumed_drops.get(), 0);
    drop(run.executor);
    assert_eq!(run.pool.available(), 64);
}

#[test]
fn dispatch_fast_handles_a_single_packet_burst_on_either_path() {
    let run = dispatch_fast_once(&[Some(2)]);
    assert_eq!(run.fast, [2]);
    assert!(run.kept.is_empty() && run.slow_seen.is_empty());
    let run = dispatch_fast_once(&[Some(3)]);
    assert!(run.fast.is_empty());
    assert_eq!(run.kept, [3]);
    assert_eq!(run.slow_seen, [Some(3)]);
    let run = dispatch_fast_once(&[None]);
    assert!(run.fast.is_empty() && run.kept.is_empty());
    assert_eq!(
        run.executor.counters().nodes[0].drops_named("empty"),
        Some(1)
    );
}

#[test]
fn dispatch_fast_sends_the_differing_last_packet_of_a_full_burst_its_own_way() {
    // 31 fast packets, then one the slow test drops.
    let mut bytes: Vec<Option<u8>> = (0..32u8).map(|index| Some(2 * index)).collect();
    bytes[31] = None;
    let run = dispatch_fast_once(&bytes);
    let expected: Vec<u8> = (0..31u8).map(|index| 2 * index).collect();
    assert_eq!(run.fast, expected);
    assert!(run.kept.is_empty());
    assert_eq!(run.slow_seen, [None]);
    let node = &run.executor.counters().nodes[0];
    assert_eq!(node.received.get(), 32);
    assert_eq!(node.drops_named("empty"), Some(1));
    assert_eq!(node.emitted.get(), 31);
    // 31 fast packets, then one the slow test keeps.
    bytes[31] = Some(5);
    let run = dispatch_fast_once(&bytes);
    assert_eq!(run.fast, expected);
    assert_eq!(run.kept, [5]);
    assert_eq!(run.slow_seen, [Some(5)]);
    drop(run.executor);
    assert_eq!(run.pool.available(), 64);
}

/// Hands its burst on as two whole bursts: the packets at even places
/// on `first`, those at odd places on `second`, one `emit_batch` each.
struct Alternate;

impl Nanoservice for Alternate {
    fn name(&self) -> &'static str {
        "alternate"
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["first", "second"]
    }
    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        let (mut first, mut second) = (Batch::new(), Batch::new());
        for (index, packet) in batch.drain().enumerate() {
            let half = if index % 2 == 0 {
                &mut first
            } else {
                &mut second
            };
            let _ = half.push(packet);
        }
        out.emit_batch(0, &mut first);
        out.emit_batch(1, &mut second);
    }
}

#[test]
fn a_burst_split_across_two_nodes_runs_both_the_handed_on_and_the_queued_part() {
    // `alternate` hands its first half straight to one `increment` (the
    // hand-off) and its second to another, which finds the hand-off taken
    // and so waits in its node queue: both must run in the same poll, in
    // the order emitted, and a later poll with nothing received runs
    // neither.
    let pool = Mempool::with_heap(64, 0).unwrap();
    let mut nic = LoopbackNic::new(MacAddr::default(), 64);
    for byte in 0..32 {
        nic.inject(packet_with(&pool, Some(byte * 2))).unwrap();
    }
    let out_a = LoopbackNic::new(MacAddr::default(), 64);
    let out_b = LoopbackNic::new(MacAddr::default(), 64);
    let mut builder = ExecutorBuilder::new();
    let port = builder.add_port(Box::new(nic));
    let port_a = builder.add_port(Box::new(out_a));
    let port_b = builder.add_port(Box::new(out_b));
    let alternate = builder.add_node(Box::new(Alternate));
    let first = builder.add_node(Box::new(Increment));
    let second = builder.add_node(Box::new(Increment));
    builder.route_rx(port, alternate).unwrap();
    builder
        .connect(alternate, "first", Target::Node(first))
        .unwrap();
    builder
        .connect(alternate, "second", Target::Node(second))
        .unwrap();
    builder.connect(first, "out", Target::Port(port_a)).unwrap();
    builder
        .connect(second, "out", Target::Port(port_b))
        .unwrap();
    let mut executor = builder.build().unwrap();
    assert_eq!(executor.poll_once(), 32);
    let mut sent = |port| -> Vec<u8> {
        let nic = executor.nic_as::<LoopbackNic>(port).unwrap();
        std::iter::from_fn(|| nic.take_transmitted())
            .map(|packet| packet.payload()[0])
            .collect()
    };
    let (a, b) = (sent(port_a), sent(port_b));
    assert_eq!(a, (0..16).map(|index| index * 4 + 1).collect::<Vec<u8>>());
    assert_eq!(b, (0..16).map(|index| index * 4 + 3).collect::<Vec<u8>>());
    let counters = executor.counters();
    assert_eq!(counters.nodes[0].emitted.get(), 32);
    for node in [1, 2] {
        assert_eq!(counters.nodes[node].received.get(), 16);
        assert_eq!(counters.nodes[node].emitted.get(), 16);
    }
    assert_eq!(counters.queue_full_drops.get(), 0);
    assert_eq!(counters.pass_limit_drops.get(), 0);
    assert_eq!(executor.poll_once(), 0);
    for node in 0..3 {
        let received = executor.counters().nodes[node].received.get();
        assert_eq!(received, if node == 0 { 32 } else { 16 });
    }
    drop(executor);
    assert_eq!(pool.available(), 64);
}
