//! Supervision end to end on a loopback NIC: a node that panics or
//! overruns its budget is stopped while the others keep running, its
//! in-flight packets are dropped and counted, and it is rebuilt after its
//! backoff (100 ms doubling, reset after a healthy spell), on a clock the
//! test moves by hand.

use dataplane::Guard;
use dataplane::{
    Batch, ExecutorBuilder, LoopbackNic, MacAddr, Mempool, Nanoservice, Outputs, PortId,
    ServiceState, SupervisionPolicy, Target,
};
use std::cell::Cell;

thread_local! {
    /// The test's clock, in nanoseconds; each test runs on its own thread.
    static NOW: Cell<u64> = const { Cell::new(0) };
}

/// The hosted platform's guard (`supervise::CATCH_UNWIND`, which needs
/// the feature `std` that a test of this crate alone lacks).
const GUARD: Guard = Guard {
    run: |call| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).map_err(|payload| {
            payload
                .downcast_ref::<&str>()
                .map_or_else(String::new, |text| (*text).to_owned())
        })
    },
    unwinds: true,
};

fn clock() -> u64 {
    NOW.with(Cell::get)
}

fn advance_ms(ms: u64) {
    NOW.with(|now| now.set(now.get() + ms * 1_000_000));
}

/// Byte 1 to `bomb`, byte 2 to `echo`.
struct Router;

impl Nanoservice for Router {
    fn name(&self) -> &'static str {
        "router"
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["bomb", "echo"]
    }
    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        for packet in batch.drain() {
            let output = usize::from(packet.payload()[0] != 1);
            out.emit(output, packet);
        }
    }
}

/// Passes packets on; panics on one whose second byte is 0xee, or burns
/// the clock by `slow_ms` on 0x5e.
struct Bomb {
    slow_ms: u64,
}

impl Nanoservice for Bomb {
    fn name(&self) -> &'static str {
        "bomb"
    }
    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        for packet in batch.drain() {
            match packet.payload().get(1) {
                Some(0xee) => panic!("marked packet"),
                Some(0x5e) => advance_ms(self.slow_ms),
                _ => {}
            }
            out.emit(0, packet);
        }
    }
}

/// Passes packets on.
struct Echo;

impl Nanoservice for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }
    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        out.emit_batch(0, batch);
    }
}

struct Setup {
    executor: dataplane::Executor,
    port: PortId,
    pool: Mempool,
    bomb: usize,
    echo: usize,
}

fn setup(policy: SupervisionPolicy) -> Setup {
    let pool = Mempool::with_heap(64, 0).unwrap();
    let mut builder = ExecutorBuilder::new();
    builder.clock(clock).supervision(0, policy).guard(GUARD);
    let port = builder.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 64)));
    let router = builder.add_node(Box::new(Router));
    let bomb = builder.add_node(Box::new(Bomb { slow_ms: 5 }));
    let echo = builder.add_node(Box::new(Echo));
    builder.route_rx(port, router).unwrap();
    builder.connect(router, "bomb", Target::Node(bomb)).unwrap();
    builder.connect(router, "echo", Target::Node(echo)).unwrap();
    builder.connect(bomb, "out", Target::Port(port)).unwrap();
    builder.connect(echo, "out", Target::Port(port)).unwrap();
    builder
        .rebuild(bomb, Box::new(|| Box::new(Bomb { slow_ms: 5 })))
        .unwrap();
    Setup {
        executor: builder.build().unwrap(),
        port,
        pool,
        bomb: bomb.index(),
        echo: echo.index(),
    }
}

impl Setup {
    /// Injects packets `[route, mark]`, polls once, and returns the route
    /// bytes of what went out.
    fn exchange(&mut self, packets: &[[u8; 2]]) -> Vec<u8> {
        let nic = self.executor.nic_as::<LoopbackNic>(self.port).unwrap();
        for bytes in packets {
            let mut packet = self.pool.alloc().unwrap();
            packet.append(2).unwrap().copy_from_slice(bytes);
            nic.inject(packet).unwrap();
        }
        self.executor.poll_once();
        let nic = self.executor.nic_as::<LoopbackNic>(self.port).unwrap();
        std::iter::from_fn(|| nic.take_transmitted())
            .map(|packet| packet.payload()[0])
            .collect()
    }

    fn state(&self) -> ServiceState {
        self.executor.counters().nodes[self.bomb]
            .supervision
            .state()
    }
}

#[test]
fn a_panicking_node_is_contained_and_restarted_after_backoff() {
    let mut setup = setup(SupervisionPolicy::default());
    assert_eq!(setup.exchange(&[[1, 0], [2, 0]]), [1, 2]);

    // The marked packet and the one behind it are lost; echo answers.
    let sent = setup.exchange(&[[1, 0xee], [1, 0], [2, 0]]);
    assert_eq!(sent, [2]);
    let supervision = &setup.executor.counters().nodes[setup.bomb].supervision;
    assert_eq!(supervision.panics.get(), 1);
    assert_eq!(supervision.dropped.get(), 2);
    assert_eq!(setup.state(), ServiceState::Backoff);
    assert_eq!(supervision.backoff_ms(), 100);
    assert_eq!(setup.pool.available(), 64, "no buffer leaks");

    // While it waits, its input is dropped and counted; echo answers.
    advance_ms(99);
    assert_eq!(setup.exchange(&[[1, 0], [2, 0]]), [2]);
    let supervision = &setup.executor.counters().nodes[setup.bomb].supervision;
    assert_eq!(supervision.dropped.get(), 3);
    assert_eq!(supervision.restarts.get(), 0);
    // A sleeping core wakes for the restart.
    assert_eq!(setup.executor.next_deadline_ns(), Some(clock() + 1_000_000));

    advance_ms(1);
    assert_eq!(setup.exchange(&[[1, 0], [2, 0]]), [1, 2]);
    let supervision = &setup.executor.counters().nodes[setup.bomb].supervision;
    assert_eq!(supervision.restarts.get(), 1);
    assert_eq!(setup.state(), ServiceState::Running);
    assert_eq!(setup.executor.next_deadline_ns(), None);
    let echo = &setup.executor.counters().nodes[setup.echo];
    assert_eq!(echo.received.get(), 4);
    assert_eq!(setup.pool.available(), 64);
}

#[test]
fn failures_in_a_row_double_the_backoff_up_to_the_cap_and_a_healthy_spell_resets_it() {
    let policy = SupervisionPolicy {
        initial_backoff_ms: 100,
        max_backoff_ms: 500,
        reset_after_ms: 60_000,
        batch_budget_us: None,
    };
    let mut setup = setup(policy);
    let mut waits = Vec::new();
    for _ in 0..5 {
        setup.exchange(&[[1, 0xee]]);
        let wait = setup.executor.counters().nodes[setup.bomb]
            .supervision
            .backoff_ms();
        waits.push(wait);
        advance_ms(wait - 1);
        setup.exchange(&[]);
        assert_eq!(setup.state(), ServiceState::Backoff);
        advance_ms(1);
        setup.exchange(&[]);
        assert_eq!(setup.state(), ServiceState::Running);
    }
    assert_eq!(waits, [100, 200, 400, 500, 500]);

    // Sixty healthy seconds later the next failure waits 100 ms again.
    advance_ms(60_000);
    setup.exchange(&[[1, 0xee]]);
    let supervision = &setup.executor.counters().nodes[setup.bomb].supervision;
    assert_eq!(supervision.backoff_ms(), 100);
    assert_eq!(supervision.restarts.get(), 5);
    assert_eq!(supervision.panics.get(), 6);
}

#[test]
fn a_call_over_the_budget_is_a_failure() {
    let policy = SupervisionPolicy {
        batch_budget_us: Some(2_000),
        ..SupervisionPolicy::default()
    };
    let mut setup = setup(policy);
    // 5 ms for a batch against a 2 ms budget: counted when it returns;
    // what it emitted in that call is discarded.
    assert_eq!(setup.exchange(&[[1, 0x5e], [2, 0]]), [2]);
    let supervision = &setup.executor.counters().nodes[setup.bomb].supervision;
    assert_eq!(supervision.overruns.get(), 1);
    assert_eq!(supervision.panics.get(), 0);
    assert_eq!(supervision.dropped.get(), 1);
    assert_eq!(setup.state(), ServiceState::Backoff);
    advance_ms(100);
    assert_eq!(setup.exchange(&[[1, 0]]), [1]);
    assert_eq!(setup.state(), ServiceState::Running);
    assert_eq!(setup.pool.available(), 64);
}

#[test]
fn a_node_without_a_factory_stays_failed_and_the_core_runs_on() {
    let pool = Mempool::with_heap(64, 0).unwrap();
    let mut builder = ExecutorBuilder::new();
    builder.clock(clock).guard(GUARD);
    let port = builder.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 64)));
    let router = builder.add_node(Box::new(Router));
    let bomb = builder.add_node(Box::new(Bomb { slow_ms: 0 }));
    let echo = builder.add_node(Box::new(Echo));
    builder.route_rx(port, router).unwrap();
    builder.connect(router, "bomb", Target::Node(bomb)).unwrap();
    builder.connect(router, "echo", Target::Node(echo)).unwrap();
    builder.connect(bomb, "out", Target::Port(port)).unwrap();
    builder.connect(echo, "out", Target::Port(port)).unwrap();
    let executor = builder.build().unwrap();
    let mut setup = Setup {
        executor,
        port,
        pool,
        bomb: bomb.index(),
        echo: echo.index(),
    };
    assert_eq!(setup.exchange(&[[1, 0xee], [2, 0]]), [2]);
    assert_eq!(setup.state(), ServiceState::Failed);
    assert_eq!(setup.executor.next_deadline_ns(), None);
    advance_ms(3_600_000);
    assert_eq!(setup.exchange(&[[1, 0], [2, 0]]), [2]);
    assert_eq!(setup.state(), ServiceState::Failed);
    let supervision = &setup.executor.counters().nodes[setup.bomb].supervision;
    assert_eq!(
        (supervision.dropped.get(), supervision.restarts.get()),
        (2, 0)
    );
    assert_eq!(setup.pool.available(), 64);
}

/// Hands its whole burst on (the executor's hand-off); panics on a burst
/// holding a packet whose second byte is 0xee.
struct BatchBomb;

impl Nanoservice for BatchBomb {
    fn name(&self) -> &'static str {
        "batch-bomb"
    }
    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        if batch
            .iter()
            .any(|packet| packet.payload().get(1) == Some(&0xee))
        {
            panic!("marked burst");
        }
        out.emit_batch(0, batch);
    }
}

#[test]
fn a_node_that_panics_inside_a_chain_of_hand_offs_is_contained_on_its_own() {
    // rx -> echo -> batch-bomb -> echo -> port: every burst is handed
    // straight from node to node (no queue between them), under the guard.
    let pool = Mempool::with_heap(64, 0).unwrap();
    let mut builder = ExecutorBuilder::new();
    builder
        .clock(clock)
        .supervision(0, SupervisionPolicy::default())
        .guard(GUARD);
    let port = builder.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 64)));
    let first = builder.add_node(Box::new(Echo));
    let bomb = builder.add_node(Box::new(BatchBomb));
    let last = builder.add_node(Box::new(Echo));
    builder.route_rx(port, first).unwrap();
    builder.connect(first, "out", Target::Node(bomb)).unwrap();
    builder.connect(bomb, "out", Target::Node(last)).unwrap();
    builder.connect(last, "out", Target::Port(port)).unwrap();
    builder
        .rebuild(bomb, Box::new(|| Box::new(BatchBomb)))
        .unwrap();
    let mut executor = builder.build().unwrap();
    let exchange = |executor: &mut dataplane::Executor, packets: &[[u8; 2]]| {
        let nic = executor.nic_as::<LoopbackNic>(port).unwrap();
        for bytes in packets {
            let mut packet = pool.alloc().unwrap();
            packet.append(2).unwrap().copy_from_slice(bytes);
            nic.inject(packet).unwrap();
        }
        executor.poll_once();
        let nic = executor.nic_as::<LoopbackNic>(port).unwrap();
        std::iter::from_fn(|| nic.take_transmitted())
            .map(|packet| packet.payload()[0])
            .collect::<Vec<u8>>()
    };
    assert_eq!(exchange(&mut executor, &[[1, 0], [2, 0]]), [1, 2]);

    // The marked burst is lost at the bomb, counted there; the node
    // before it handed it on and counts it as emitted, the one after
    // never sees it.
    assert!(exchange(&mut executor, &[[3, 0], [4, 0xee], [5, 0]]).is_empty());
    let counters = executor.counters();
    let (first, bomb, last) = (first.index(), bomb.index(), last.index());
    assert_eq!(counters.nodes[first].received.get(), 5);
    assert_eq!(counters.nodes[first].emitted.get(), 5);
    assert_eq!(counters.nodes[bomb].received.get(), 5);
    assert_eq!(counters.nodes[bomb].emitted.get(), 2);
    assert_eq!(counters.nodes[bomb].supervision.panics.get(), 1);
    assert_eq!(counters.nodes[bomb].supervision.dropped.get(), 3);
    assert_eq!(
        counters.nodes[bomb].supervision.state(),
        ServiceState::Backoff
    );
    assert_eq!(counters.nodes[last].received.get(), 2);
    assert_eq!(pool.available(), 64, "no buffer leaks");

    // While the bomb waits, the chain's bursts stop there, counted; the
    // first node runs on.
    assert!(exchange(&mut executor, &[[6, 0]]).is_empty());
    let counters = executor.counters();
    assert_eq!(counters.nodes[first].emitted.get(), 6);
    assert_eq!(counters.nodes[bomb].supervision.dropped.get(), 4);

    // Rebuilt after its backoff, the chain runs whole again.
    advance_ms(100);
    assert_eq!(exchange(&mut executor, &[[7, 0], [8, 0]]), [7, 8]);
    let counters = executor.counters();
    assert_eq!(counters.nodes[bomb].supervision.restarts.get(), 1);
    assert_eq!(counters.nodes[last].received.get(), 4);
    assert_eq!(pool.available(), 64);
}
