//! The cross-thread ring workloads, shared by the criterion bench
//! (`benches/ring.rs`) and the interleaved one (`benches/ring_interleaved.rs`):
//! a producer pinned to CPU 0 moves items in bursts of 32 to a consumer
//! pinned to CPU 1, which sums them.

use crate::pin_to_cpu;
use arrayvec::ArrayVec;
use dataplane::SpscRing;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Items per burst.
pub const BURST: usize = 32;
/// Slots in every ring.
pub const CAPACITY: usize = 1024;

/// Moves `items` from a producer thread on CPU 0 to a consumer on CPU 1 and
/// returns the elapsed time. `send` and `receive` return how many items they
/// moved in one burst.
pub fn across_threads<P, C>(items: u64, mut send: P, mut receive: C) -> Duration
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

/// warpcore's `SpscRing`: bursts move from an `ArrayVec` through the ring
/// into another `ArrayVec` (`push_burst` / `pop_burst`, as the dataplane
/// uses it), then the consumer sums them.
pub fn warpcore(items: u64) -> Duration {
    let (mut producer, mut consumer) = SpscRing::<u64>::with_capacity(CAPACITY).unwrap();
    let mut outgoing: ArrayVec<u64, BURST> = ArrayVec::new();
    let mut incoming: ArrayVec<u64, BURST> = ArrayVec::new();
    across_threads(
        items,
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
}

/// `rtrb` in warpcore's shape: the same bursts, `ArrayVec` in and
/// `ArrayVec` out, through rtrb's chunk API.
pub fn rtrb_bursts(items: u64) -> Duration {
    let (mut producer, mut consumer) = rtrb::RingBuffer::<u64>::new(CAPACITY);
    let mut outgoing: ArrayVec<u64, BURST> = ArrayVec::new();
    let mut incoming: ArrayVec<u64, BURST> = ArrayVec::new();
    across_threads(
        items,
        move |sent| {
            if outgoing.is_empty() {
                outgoing.extend(sent..sent + BURST as u64);
            }
            let room = outgoing.len().min(producer.slots());
            match producer.write_chunk_uninit(room) {
                Ok(chunk) if room > 0 => chunk.fill_from_iter(outgoing.drain(..room)) as u64,
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
}

/// `rtrb` in its own shape: the producer writes straight into the ring and
/// the consumer sums in place before it releases the slots. No burst
/// buffers: a different (lighter) workload from the two above.
pub fn rtrb_in_place(items: u64) -> Duration {
    let (mut producer, mut consumer) = rtrb::RingBuffer::<u64>::new(CAPACITY);
    across_threads(
        items,
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
}
