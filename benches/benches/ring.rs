//! Ring throughput: warpcore's `SpscRing` against `rtrb` and crossbeam's
//! `ArrayQueue`, in bursts of 32, on one thread and across two pinned
//! threads.
#![forbid(unsafe_code)]
// `criterion_group!` generates public functions without docs.
#![allow(missing_docs)]

use arrayvec::ArrayVec;
use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use crossbeam_queue::ArrayQueue;
use dataplane::SpscRing;
use std::sync::Arc;
use warpcore_benches::ring_workloads::{self, BURST, CAPACITY};

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_single_thread");
    group.throughput(Throughput::Elements(BURST as u64));

    let (mut producer, mut consumer) = SpscRing::<u64>::with_capacity(CAPACITY).unwrap();
    group.bench_function(BenchmarkId::new("warpcore", BURST), |b| {
        let mut burst: ArrayVec<u64, BURST> = ArrayVec::new();
        b.iter(|| {
            burst.extend(0..BURST as u64);
            producer.push_burst(&mut burst);
            consumer.pop_burst(&mut burst);
            black_box(burst.drain(..).sum::<u64>())
        })
    });

    let queue = ArrayQueue::<u64>::new(CAPACITY);
    group.bench_function(BenchmarkId::new("crossbeam_arrayqueue", BURST), |b| {
        b.iter(|| {
            for item in 0..BURST as u64 {
                let _ = queue.push(item);
            }
            black_box((0..BURST).filter_map(|_| queue.pop()).sum::<u64>())
        })
    });

    let (mut producer, mut consumer) = rtrb::RingBuffer::<u64>::new(CAPACITY);
    group.bench_function(BenchmarkId::new("rtrb", BURST), |b| {
        b.iter(|| {
            if let Ok(chunk) = producer.write_chunk_uninit(BURST) {
                chunk.fill_from_iter(0..BURST as u64);
            }
            let chunk = consumer.read_chunk(BURST).unwrap();
            black_box(chunk.into_iter().sum::<u64>())
        })
    });
    group.finish();
}

fn cross_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_cross_thread");
    group.throughput(Throughput::Elements(BURST as u64));

    group.bench_function(BenchmarkId::new("warpcore", BURST), |b| {
        b.iter_custom(|iterations| ring_workloads::warpcore(iterations * BURST as u64))
    });

    group.bench_function(BenchmarkId::new("crossbeam_arrayqueue", BURST), |b| {
        b.iter_custom(|iterations| {
            let queue = Arc::new(ArrayQueue::<u64>::new(CAPACITY));
            let reader = Arc::clone(&queue);
            ring_workloads::across_threads(
                iterations * BURST as u64,
                move |sent| {
                    let mut moved = 0;
                    while moved < BURST as u64 && queue.push(sent + moved).is_ok() {
                        moved += 1;
                    }
                    moved
                },
                move || {
                    let mut got = 0;
                    while got < BURST as u64 {
                        match reader.pop() {
                            Some(item) => {
                                black_box(item);
                                got += 1;
                            }
                            None => break,
                        }
                    }
                    got
                },
            )
        })
    });

    // The same shape as warpcore's: bursts from an `ArrayVec` through the
    // ring into another. `rtrb_in_place` is rtrb's own, lighter shape (no
    // burst buffers), what this row measured before.
    group.bench_function(BenchmarkId::new("rtrb", BURST), |b| {
        b.iter_custom(|iterations| ring_workloads::rtrb_bursts(iterations * BURST as u64))
    });
    group.bench_function(BenchmarkId::new("rtrb_in_place", BURST), |b| {
        b.iter_custom(|iterations| ring_workloads::rtrb_in_place(iterations * BURST as u64))
    });
    group.finish();
}

criterion_group!(benches, single_thread, cross_thread);
criterion_main!(benches);
