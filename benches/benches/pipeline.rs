//! The macswap forwarder: an executor polls a looped loopback NIC, swaps MAC
//! addresses and transmits, one burst of 32 per poll.
// `criterion_group!` generates public functions without docs.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dataplane::{BURST_SIZE, ExecutorBuilder, LoopbackNic, MacAddr, Mempool, Target};
use services::MacSwap;
use warpcore_benches::ethernet_frame;

/// Packets circulating on the folded wire: a few bursts, so every poll finds
/// a full burst.
const IN_FLIGHT: usize = 4 * BURST_SIZE;

fn macswap(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline_macswap");
    group.throughput(Throughput::Elements(BURST_SIZE as u64));

    let pool = Mempool::with_heap(IN_FLIGHT, 128).unwrap();
    let mut nic = LoopbackNic::looped(MacAddr([2, 0, 0, 0, 0, 1]), IN_FLIGHT);
    let frame = ethernet_frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    for _ in 0..IN_FLIGHT {
        let mut packet = pool.alloc().unwrap();
        packet.append(frame.len()).unwrap().copy_from_slice(&frame);
        nic.inject(packet).unwrap();
    }
    let mut builder = ExecutorBuilder::new();
    let port = builder.add_port(Box::new(nic));
    let node = builder.add_node(Box::new(MacSwap));
    builder.route_rx(port, node).unwrap();
    builder.connect(node, "out", Target::Port(port)).unwrap();
    let mut executor = builder.build().unwrap();

    group.bench_function(BenchmarkId::new("warpcore", BURST_SIZE), |b| {
        b.iter(|| assert_eq!(executor.poll_once(), BURST_SIZE))
    });
    group.finish();
    let counters = executor.counters();
    assert_eq!(counters.executor_drops(), 0, "the forwarder lost packets");
}

criterion_group!(benches, macswap);
criterion_main!(benches);
