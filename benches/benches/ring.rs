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
use std::time::{Duration, Instant};
use warpcore_benches::pin_to_cpu;

const BURST: usize = 32;
const CAPACITY: usize = 1024;

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

/// Moves `items` from a producer thread on CPU 0 to a consumer on CPU 1 and
/// returns the elapsed time. `send` and `receive` return how many items they
/// moved in one burst.
fn across_threads<P, C>(items: u64, mut send: P, mut receive: C) -> Duration
where
    P: FnMut(u64) -> u64 + Send + 'static,
    C: FnMut() -> u64 + Send + 'static,
{
    let consumer = std::thread::spawn(move || {
        pin_to_cpu(1);
        let mut received = 0;
        while received < items {
            let got = receive();
            if got == 0 {
                std::hint::spin_loop();
            }
            received += got;
        }
    });
    pin_to_cpu(0);
    let start = Instant::now();
    let mut sent = 0;
    while sent < items {
        let moved = send(sent);
        if moved == 0 {
            std::hint::spin_loop();
        }
        sent += moved;
    }
    consumer.join().unwrap();
    start.elapsed()
}

fn cross_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_cross_thread");
    group.throughput(Throughput::Elements(BURST as u64));

    group.bench_function(BenchmarkId::new("warpcore", BURST), |b| {
        b.iter_custom(|iterations| {
            let (mut producer, mut consumer) = SpscRing::<u64>::with_capacity(CAPACITY).unwrap();
            let mut outgoing: ArrayVec<u64, BURST> = ArrayVec::new();
            let mut incoming: ArrayVec<u64, BURST> = ArrayVec::new();
            across_threads(
                iterations * BURST as u64,
                move |sent| {
                    if outgoing.is_empty() {
                        outgoing.extend(sent..sent + BURST as u64);
                    }
                    producer.push_burst(&mut outgoing) as u64
                },
                move || {
                    let got = consumer.pop_burst(&mut incoming) as u64;
                    black_box(incoming.drain(..).sum::<u64>());
                    got
                },
            )
        })
    });

    group.bench_function(BenchmarkId::new("crossbeam_arrayqueue", BURST), |b| {
        b.iter_custom(|iterations| {
            let queue = Arc::new(ArrayQueue::<u64>::new(CAPACITY));
            let reader = Arc::clone(&queue);
            across_threads(
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

    // The same shape as warpcore's: bursts move from one `ArrayVec` through
    // the ring into another, then the consumer sums them.
    group.bench_function(BenchmarkId::new("rtrb", BURST), |b| {
        b.iter_custom(|iterations| {
            let (mut producer, mut consumer) = rtrb::RingBuffer::<u64>::new(CAPACITY);
            let mut outgoing: ArrayVec<u64, BURST> = ArrayVec::new();
            let mut incoming: ArrayVec<u64, BURST> = ArrayVec::new();
            across_threads(
                iterations * BURST as u64,
                move |sent| {
                    if outgoing.is_empty() {
                        outgoing.extend(sent..sent + BURST as u64);
                    }
                    let room = outgoing.len().min(producer.slots());
                    match producer.write_chunk_uninit(room) {
                        Ok(chunk) if room > 0 => {
                            chunk.fill_from_iter(outgoing.drain(..room)) as u64
                        }
                        _ => 0,
                    }
                },
                move || {
                    let ready = consumer.slots().min(BURST);
                    match consumer.read_chunk(ready) {
                        Ok(chunk) if ready > 0 => {
                            let (first, second) = chunk.as_slices();
                            incoming.try_extend_from_slice(first).unwrap();
                            incoming.try_extend_from_slice(second).unwrap();
                            chunk.commit_all();
                            black_box(incoming.drain(..).sum::<u64>());
                            ready as u64
                        }
                        _ => 0,
                    }
                },
            )
        })
    });

    // rtrb's own shape: the producer writes straight into the ring and the
    // consumer sums in place before it releases the slots. A different
    // workload from the two above (no burst buffers); kept because it is
    // what this row measured before (perf/RESULTS.md).
    group.bench_function(BenchmarkId::new("rtrb_in_place", BURST), |b| {
        b.iter_custom(|iterations| {
            let (mut producer, mut consumer) = rtrb::RingBuffer::<u64>::new(CAPACITY);
            across_threads(
                iterations * BURST as u64,
                move |sent| {
                    let room = producer.slots().min(BURST);
                    match producer.write_chunk_uninit(room) {
                        Ok(chunk) if room > 0 => chunk.fill_from_iter(sent..) as u64,
                        _ => 0,
                    }
                },
                move || {
                    let ready = consumer.slots().min(BURST);
                    match consumer.read_chunk(ready) {
                        Ok(chunk) if ready > 0 => {
                            black_box(chunk.into_iter().sum::<u64>());
                            ready as u64
                        }
                        _ => 0,
                    }
                },
            )
        })
    });
    group.finish();
}

criterion_group!(benches, single_thread, cross_thread);
criterion_main!(benches);
