//! Buffer allocation: a burst of 32 `Mempool` packets allocated and freed,
//! against 32 heap-allocated `Box<[u8; 2048]>`.
#![forbid(unsafe_code)]
// `criterion_group!` generates public functions without docs.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use dataplane::{Mempool, Packet};

const BURST: usize = 32;

fn alloc_free(c: &mut Criterion) {
    let mut group = c.benchmark_group("mempool_alloc_free");
    group.throughput(Throughput::Elements(BURST as u64));

    let pool = Mempool::with_heap(4096, 128).unwrap();
    group.bench_function(BenchmarkId::new("warpcore", BURST), |b| {
        let mut held: Vec<Packet> = Vec::with_capacity(BURST);
        b.iter(|| {
            held.extend((0..BURST).filter_map(|_| pool.alloc()));
            black_box(&mut held);
            held.clear();
        })
    });

    group.bench_function(BenchmarkId::new("box_2048", BURST), |b| {
        let mut held: Vec<Box<[u8; 2048]>> = Vec::with_capacity(BURST);
        b.iter(|| {
            held.extend((0..BURST).map(|_| Box::new([0u8; 2048])));
            black_box(&mut held);
            held.clear();
        })
    });
    group.finish();
}

criterion_group!(benches, alloc_free);
criterion_main!(benches);
