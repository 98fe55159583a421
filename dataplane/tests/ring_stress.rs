//! Two threads move 10^7 items through an `SpscRing` in bursts; every item
//! must arrive once, in order.

use arrayvec::ArrayVec;
use dataplane::SpscRing;

const ITEMS: u64 = 10_000_000;

#[test]
fn ten_million_items_cross_threads_in_order() {
    let (mut producer, mut consumer) = SpscRing::<u64>::with_capacity(1024).unwrap();
    let sender = std::thread::spawn(move || {
        let mut next = 0u64;
        let mut burst: ArrayVec<u64, 32> = ArrayVec::new();
        while next < ITEMS || !burst.is_empty() {
            while !burst.is_full() && next < ITEMS {
                burst.push(next);
                next += 1;
            }
            if producer.push_burst(&mut burst) == 0 {
                std::hint::spin_loop();
                std::thread::yield_now();
            }
        }
    });
    let mut expected = 0u64;
    let mut burst: ArrayVec<u64, 32> = ArrayVec::new();
    while expected < ITEMS {
        if consumer.pop_burst(&mut burst) == 0 {
            std::thread::yield_now();
            continue;
        }
        for item in burst.drain(..) {
            assert_eq!(item, expected, "out of order or lost");
            expected += 1;
        }
    }
    sender.join().unwrap();
    assert!(consumer.pop().is_none(), "more items than were sent");
}

#[test]
fn packets_cross_threads_and_go_home() {
    let pool = dataplane::Mempool::with_heap(256, 0).unwrap();
    let (mut producer, mut consumer) = SpscRing::with_capacity(64).unwrap();
    let receiver = std::thread::spawn(move || {
        let mut seen = 0u32;
        while seen < 10_000 {
            match consumer.pop() {
                Some(packet) => {
                    let packet: dataplane::Packet = packet;
                    assert_eq!(packet.payload(), &seen.to_le_bytes());
                    seen += 1;
                }
                None => std::thread::yield_now(),
            }
        }
    });
    for i in 0..10_000u32 {
        let mut packet = loop {
            match pool.alloc() {
                Some(packet) => break packet,
                None => std::thread::yield_now(),
            }
        };
        packet.append(4).unwrap().copy_from_slice(&i.to_le_bytes());
        let mut item = packet;
        while let Err(back) = producer.push(item) {
            item = back;
            std::thread::yield_now();
        }
    }
    receiver.join().unwrap();
    assert_eq!(pool.available(), 256);
    assert!(pool.stats().remote_returns >= 10_000 - 256);
}
