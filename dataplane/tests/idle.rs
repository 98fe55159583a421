//! The executor with nothing to do: it sleeps until the earliest deadline of
//! its nodes, refuses to sleep while work waits, ticks its nodes after a
//! sleep, and a ring's producer wakes it through its doorbell.

use dataplane::{
    Batch, Doorbell, ExecutorBuilder, Idle, LoopbackNic, MacAddr, Mempool, Nanoservice, Outputs,
    SpscRing, Target, WakeCause,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A fake clock for one test (each test that needs one has its own).
macro_rules! fake_clock {
    ($name:ident, $now:ident) => {
        static $now: AtomicU64 = AtomicU64::new(0);
        fn $name() -> u64 {
            // Ordering: Relaxed: the fake clock of one test's thread.
            $now.load(Ordering::Relaxed)
        }
    };
}

/// A node with one timer at `deadline_ns` that counts its ticks.
struct Timed {
    deadline_ns: Option<u64>,
    ticks: Arc<AtomicUsize>,
}

impl Nanoservice for Timed {
    fn name(&self) -> &'static str {
        "timed"
    }
    fn outputs(&self) -> &'static [&'static str] {
        &[]
    }
    fn process(&mut self, batch: &mut Batch, _out: &mut Outputs<'_>) {
        batch.clear();
    }
    fn tick(&mut self, out: &mut Outputs<'_>) {
        // Ordering: Relaxed: read by the same thread after the poll.
        self.ticks.fetch_add(1, Ordering::Relaxed);
        if self
            .deadline_ns
            .is_some_and(|deadline| deadline <= out.now_ns())
        {
            self.deadline_ns = None;
        }
    }
    fn next_deadline_ns(&self) -> Option<u64> {
        self.deadline_ns
    }
}

/// Passes packets on unchanged.
struct Pass;

impl Nanoservice for Pass {
    fn name(&self) -> &'static str {
        "pass"
    }
    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        out.emit_batch(0, batch);
    }
}

/// A doorbell that counts its rings.
fn counting_doorbell() -> (Arc<Doorbell>, Arc<AtomicUsize>) {
    let rings = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&rings);
    let doorbell = Doorbell::new(move || {
        // Ordering: Relaxed: a count read after the ringing call returned.
        counter.fetch_add(1, Ordering::Relaxed);
    });
    (Arc::new(doorbell), rings)
}

#[test]
fn a_core_sleeps_until_the_earliest_deadline_and_ticks_when_it_comes() {
    fake_clock!(clock, NOW);
    let ticks = Arc::new(AtomicUsize::new(0));
    let mut builder = ExecutorBuilder::new();
    builder.clock(clock);
    for deadline_ns in [Some(9_000_000), None, Some(5_000_000)] {
        builder.add_node(Box::new(Timed {
            deadline_ns,
            ticks: Arc::clone(&ticks),
        }));
    }
    let mut executor = builder.build().unwrap();
    executor.poll_once();
    assert_eq!(ticks.load(Ordering::Relaxed), 3, "the first poll ticks");
    assert_eq!(executor.next_deadline_ns(), Some(5_000_000));
    assert_eq!(
        executor.prepare_sleep(),
        Idle::Sleep {
            deadline_ns: Some(5_000_000)
        }
    );
    // The one-shot timer fired: the next poll ticks every node, even
    // though less than a tick interval passed since the last.
    NOW.store(5_000_000, Ordering::Relaxed);
    executor.finish_sleep(WakeCause::Timer);
    executor.poll_once();
    assert_eq!(ticks.load(Ordering::Relaxed), 6);
    assert_eq!(executor.next_deadline_ns(), Some(9_000_000));
    // A deadline that passed while the core polled: no sleep, a tick next.
    NOW.store(9_500_000, Ordering::Relaxed);
    executor.poll_once();
    assert_eq!(ticks.load(Ordering::Relaxed), 9, "a tick interval passed");
    assert_eq!(executor.prepare_sleep(), Idle::Sleep { deadline_ns: None });
    executor.finish_sleep(WakeCause::Other);
    let idle = &executor.counters().idle;
    assert_eq!(idle.sleeps.get(), 2);
    assert_eq!(idle.wakeups_by_timer.get(), 1);
    assert_eq!(idle.wakeups_by_other.get(), 1);
    assert_eq!(idle.sleeps_refused.get(), 0);
}

#[test]
fn a_deadline_already_due_keeps_the_core_awake_and_ticks_it() {
    fake_clock!(clock, NOW);
    let ticks = Arc::new(AtomicUsize::new(0));
    let mut builder = ExecutorBuilder::new();
    builder.clock(clock);
    builder.add_node(Box::new(Timed {
        deadline_ns: Some(200_000),
        ticks: Arc::clone(&ticks),
    }));
    let mut executor = builder.build().unwrap();
    executor.poll_once();
    NOW.store(300_000, Ordering::Relaxed);
    assert_eq!(executor.prepare_sleep(), Idle::Busy);
    assert_eq!(executor.counters().idle.sleeps_refused.get(), 1);
    // Within the tick interval, yet the due node ticks.
    executor.poll_once();
    assert_eq!(ticks.load(Ordering::Relaxed), 2);
    assert_eq!(executor.prepare_sleep(), Idle::Sleep { deadline_ns: None });
}

#[test]
fn a_producer_rings_the_sleeping_consumer_and_a_waiting_ring_keeps_it_awake() {
    let pool = Mempool::with_heap(8, 0).unwrap();
    let (producer, consumer) = SpscRing::with_capacity(8).unwrap();

    let mut nic = LoopbackNic::new(MacAddr::default(), 8);
    nic.inject(pool.alloc().unwrap()).unwrap();
    let mut first = ExecutorBuilder::new();
    let port = first.add_port(Box::new(nic));
    let node = first.add_node(Box::new(Pass));
    let ring = first.add_ring_out(producer);
    first.route_rx(port, node).unwrap();
    first.connect(node, "out", Target::Ring(ring)).unwrap();
    let mut first = first.build().unwrap();

    let (doorbell, rings) = counting_doorbell();
    let mut second = ExecutorBuilder::new();
    let out_port = second.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 8)));
    let node = second.add_node(Box::new(Pass));
    second.add_ring_in(consumer, node).unwrap();
    second.connect(node, "out", Target::Port(out_port)).unwrap();
    second.doorbell(doorbell);
    let mut second = second.build().unwrap();

    assert_eq!(second.poll_once(), 0);
    assert_eq!(second.prepare_sleep(), Idle::Sleep { deadline_ns: None });
    assert_eq!(first.poll_once(), 1);
    assert_eq!(rings.load(Ordering::Relaxed), 1, "the sleeper was rung");
    second.finish_sleep(WakeCause::Doorbell);
    assert_eq!(second.poll_once(), 1);
    assert_eq!(second.counters().idle.wakeups_by_doorbell.get(), 1);

    // Awake, the consumer is not rung; a packet in its ring keeps it up.
    first
        .nic_as::<LoopbackNic>(port)
        .unwrap()
        .inject(pool.alloc().unwrap())
        .unwrap();
    assert_eq!(first.poll_once(), 1);
    assert_eq!(rings.load(Ordering::Relaxed), 1);
    assert_eq!(second.prepare_sleep(), Idle::Busy);
    assert_eq!(second.poll_once(), 1);
    assert_eq!(second.counters().idle.sleeps_refused.get(), 1);
}
