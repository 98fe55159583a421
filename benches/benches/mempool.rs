//! Buffer allocation: a burst of 32 `Mempool` packets allocated and freed,
//! against 32 heap-allocated `Box<[u8; 2048]>`; and packets freed on another
//! thread, which come home through the pool's return queue.
#![forbid(unsafe_code)]
// `criterion_group!` generates public functions without docs.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use dataplane::{Mempool, Packet};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use warpcore_benches::pin_to_cpu;

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

/// Packets handed to the other thread at a time: enough that the two
/// channel messages per batch cost little per packet.
const FOREIGN_BATCH: usize = 1024;

/// The owner allocates `FOREIGN_BATCH` packets, a thread on the other CPU
/// drops them (each goes into the pool's return queue), and the owner's
/// next allocations drain the queue: the cost per packet of one remote free
/// plus its share of the drain.
fn foreign_free(c: &mut Criterion) {
    let mut group = c.benchmark_group("mempool_foreign_free");
    group.throughput(Throughput::Elements(FOREIGN_BATCH as u64));
    group.bench_function(BenchmarkId::new("warpcore", FOREIGN_BATCH), |b| {
        b.iter_custom(|iterations| {
            let (to_dropper, batches) = mpsc::channel::<Vec<Packet>>();
            let (done, emptied) = mpsc::channel::<Vec<Packet>>();
            let dropper = std::thread::spawn(move || {
                pin_to_cpu(1);
                for mut batch in batches {
                    batch.clear();
                    if done.send(batch).is_err() {
                        break;
                    }
                }
            });
            pin_to_cpu(0);
            let pool = Mempool::with_heap(2 * FOREIGN_BATCH, 128).unwrap();
            let mut batch: Vec<Packet> = Vec::with_capacity(FOREIGN_BATCH);
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                let start = Instant::now();
                batch.extend((0..FOREIGN_BATCH).map(|_| pool.alloc().expect("buffers came home")));
                to_dropper.send(batch).unwrap();
                batch = emptied.recv().unwrap();
                elapsed += start.elapsed();
            }
            drop(to_dropper);
            dropper.join().unwrap();
            elapsed
        })
    });
    group.finish();
}

criterion_group!(benches, alloc_free, foreign_free);
criterion_main!(benches);
