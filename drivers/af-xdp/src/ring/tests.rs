//! The ring against a fake kernel: memory laid out as the kernel maps it
//! (producer, consumer, flags, then descriptors), the kernel's side played
//! by atomic loads and stores on the same words and raw accesses to the
//! descriptors, all through one raw pointer (as the kernel's mapping is),
//! so Miri checks the ring's accesses (`cargo xtask miri`).

use super::*;

/// Producer, consumer and flags words, then 8 descriptors.
#[repr(C, align(64))]
struct Memory {
    producer: AtomicU32,
    consumer: AtomicU32,
    flags: AtomicU32,
    _pad: u32,
    descriptors: [u64; SIZE as usize],
}

const SIZE: u32 = 8;

/// The kernel's side of one ring's memory.
struct FakeKernel {
    memory: *mut Memory,
}

impl FakeKernel {
    fn new(index: u32, flags: u32) -> Self {
        let memory = Box::new(Memory {
            producer: AtomicU32::new(index),
            consumer: AtomicU32::new(index),
            flags: AtomicU32::new(flags),
            _pad: 0,
            descriptors: [0; SIZE as usize],
        });
        Self {
            memory: Box::into_raw(memory),
        }
    }

    fn ring(&self) -> Ring<u64> {
        let offsets = libc::xdp_ring_offset {
            producer: 0,
            consumer: 4,
            flags: 8,
            desc: 16,
        };
        let base = NonNull::new(self.memory.cast::<u8>()).expect("boxed memory");
        // SAFETY: the offsets match `Memory`'s layout with 8 descriptors, a
        // power of two; the memory lives until `self` drops, after the
        // ring in every test; this side touches the index words only
        // atomically and a descriptor only while the indices give it here.
        unsafe { Ring::new(base, &offsets, SIZE) }
    }

    fn words(&self) -> &Memory {
        // SAFETY: the memory is live; the shared reference is only used
        // for the atomic words (the descriptors go through raw pointers).
        unsafe { &*self.memory }
    }

    fn descriptor(&self, index: usize) -> u64 {
        // SAFETY: in bounds of the live allocation; a plain read of a slot
        // the ring published.
        unsafe { (&raw const (*self.memory).descriptors[index]).read() }
    }

    fn set_descriptor(&self, index: usize, value: u64) {
        // SAFETY: in bounds of the live allocation; a slot this side owns
        // until it moves the producer index.
        unsafe { (&raw mut (*self.memory).descriptors[index]).write(value) }
    }
}

impl Drop for FakeKernel {
    fn drop(&mut self) {
        // SAFETY: from `Box::into_raw` in `new`, freed once, after the ring.
        drop(unsafe { Box::from_raw(self.memory) });
    }
}

#[test]
fn producer_batches_and_waits_for_the_consumer() {
    let kernel = FakeKernel::new(0, 0);
    let mut fill = kernel.ring();
    assert_eq!(fill.free(64), SIZE);
    for address in 0..5 {
        fill.write(address * 4096);
    }
    // Nothing is visible before the one publish.
    assert_eq!(kernel.words().producer.load(Ordering::Acquire), 0);
    fill.publish();
    assert_eq!(kernel.words().producer.load(Ordering::Acquire), 5);
    let published: Vec<u64> = (0..5).map(|slot| kernel.descriptor(slot)).collect();
    assert_eq!(published, [0, 4096, 8192, 12288, 16384]);
    assert_eq!(fill.free(64), 3);
    assert_eq!(fill.unconsumed(), 5);
    // The kernel consumes three: their slots free up, and the indices
    // wrap around the 8 slots.
    kernel.words().consumer.store(3, Ordering::Release);
    assert_eq!(fill.free(64), 6);
    assert_eq!(fill.unconsumed(), 2);
    for address in 0..6 {
        fill.write(address);
    }
    fill.publish();
    assert_eq!(kernel.words().producer.load(Ordering::Acquire), 11);
    let slots: Vec<u64> = [5, 6, 7, 0, 1, 2]
        .iter()
        .map(|slot| kernel.descriptor(*slot))
        .collect();
    assert_eq!(slots, [0, 1, 2, 3, 4, 5]);
    assert_eq!(fill.free(64), 0);
}

#[test]
fn consumer_reads_what_was_published_and_releases_once() {
    let kernel = FakeKernel::new(u32::MAX - 1, libc::XDP_RING_NEED_WAKEUP);
    let mut completion = kernel.ring();
    assert!(completion.needs_wakeup());
    assert_eq!(completion.ready(32), 0);
    // The kernel publishes three entries across the u32 wrap.
    kernel.set_descriptor(6, 60);
    kernel.set_descriptor(7, 70);
    kernel.set_descriptor(0, 80);
    kernel.words().producer.store(1, Ordering::Release);
    assert_eq!(completion.ready(2), 2);
    assert_eq!((completion.read(), completion.read()), (60, 70));
    assert_eq!(completion.ready(32), 1);
    assert_eq!(completion.read(), 80);
    assert_eq!(
        kernel.words().consumer.load(Ordering::Acquire),
        u32::MAX - 1
    );
    completion.release();
    assert_eq!(kernel.words().consumer.load(Ordering::Acquire), 1);
    assert_eq!(completion.ready(32), 0);
}
