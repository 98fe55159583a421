//! The macswap forwarder: an executor polls a looped loopback NIC, swaps MAC
//! addresses and transmits, one burst of 32 per poll.
#![forbid(unsafe_code)]
// `criterion_group!` generates public functions without docs.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dataplane::BURST_SIZE;
use warpcore_benches::pipelines::macswap_executor;

fn macswap(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline_macswap");
    group.throughput(Throughput::Elements(BURST_SIZE as u64));

    let mut executor = macswap_executor();
    group.bench_function(BenchmarkId::new("warpcore", BURST_SIZE), |b| {
        b.iter(|| assert_eq!(executor.poll_once(), BURST_SIZE))
    });
    group.finish();
    let counters = executor.counters();
    assert_eq!(counters.executor_drops(), 0, "the forwarder lost packets");
}

criterion_group!(benches, macswap);
criterion_main!(benches);
