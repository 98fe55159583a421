//! Sleeping when idle: the [`Doorbell`] through which other cores wake a
//! core that sleeps, what the executor tells its platform a core with no
//! work may do ([`Idle`]), and what woke it ([`WakeCause`]).
//!
//! The handshake between a core going to sleep and a core handing it work
//! over a ring is Dekker's: the sleeper stores "sleeping", then looks at
//! its rings; the producer stores into the ring, then looks at "sleeping".
//! A sequentially consistent fence between the store and the load on each
//! side means at least one of them sees the other's store: either the
//! sleeper finds the item and stays up, or the producer finds the flag and
//! rings. No wake-up is lost; a spare one only costs an extra poll.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, Ordering, fence};
use crossbeam_utils::CachePadded;

/// One core's doorbell: whether it sleeps (or is about to), and how to
/// wake it (an inter-processor interrupt on bare metal, an eventfd write
/// hosted). Shared, behind an `Arc`, by the core and every producer of
/// the rings it consumes (see [`Consumer::set_doorbell`]).
///
/// [`Consumer::set_doorbell`]: crate::Consumer::set_doorbell
pub struct Doorbell {
    /// True from just before the core's last look for work until it wakes
    /// or a producer rings. Written by the core and by producers.
    sleeping: CachePadded<AtomicBool>,
    /// The platform's way to wake the core.
    ring: Box<dyn Fn() + Send + Sync>,
}

impl core::fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Doorbell")
            // Ordering: a snapshot for debugging.
            .field("sleeping", &self.sleeping.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Doorbell {
    /// A doorbell that wakes its core with `ring`. `ring` runs on the
    /// producer's core and must not block.
    pub fn new(ring: impl Fn() + Send + Sync + 'static) -> Self {
        Self {
            sleeping: CachePadded::new(AtomicBool::new(false)),
            ring: Box::new(ring),
        }
    }

    /// The owning core, about to sleep: from here on producers wake it.
    /// Call before the last look for work (rings, NIC queues, timers), and
    /// [`Doorbell::awake`] once up again or when that look found work.
    pub fn announce_sleep(&self) {
        // Ordering: Relaxed store, then the SeqCst fence that pairs with
        // the one in `notify`: of this store and the producer's ring
        // store, whichever comes second in the fences' total order sees
        // the other (the sleeper its item, or the producer this flag).
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// The owning core is awake: producers need not ring.
    pub fn awake(&self) {
        // Ordering: Relaxed: a producer that still sees `true` rings once
        // more, which costs a spare wake-up and loses nothing.
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Producer side, after publishing work the owning core will look at
    /// (a ring's Release store of its tail): wakes the core if it sleeps
    /// or is about to. Returns true when it rang. Of several producers
    /// ringing at once, one rings: the first takes the flag down.
    pub fn notify(&self) -> bool {
        // Ordering: pairs with the fence in `announce_sleep` (see there).
        fence(Ordering::SeqCst);
        // Ordering: Relaxed: the fence above orders the load; the swap
        // only elects one ringer among producers.
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::Relaxed) {
            (self.ring)();
            return true;
        }
        false
    }

    /// Wakes the owning core whether it sleeps or not (to tell it to stop:
    /// the stop flag is not one of the things it looks at before sleeping).
    pub fn ring_now(&self) {
        (self.ring)();
    }
}

/// What a core that found no work may do, as
/// [`Executor::prepare_sleep`](crate::Executor::prepare_sleep) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Work is waiting (packets on a port or ring, a timer due): poll
    /// again; the next poll ticks every node.
    Busy,
    /// Nothing to do until a packet arrives, a doorbell rings or, when
    /// `deadline_ns` is some, the clock reaches it (a one-shot timer).
    Sleep {
        /// The earliest time a node wants its `tick`; `None`: no timer.
        deadline_ns: Option<u64>,
    },
}

/// What ended a core's sleep, as the platform tells
/// [`Executor::finish_sleep`](crate::Executor::finish_sleep) (when several
/// did, the first in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeCause {
    /// A NIC signalled a received packet.
    Packet,
    /// Another core rang the doorbell (it handed over work through a ring).
    Doorbell,
    /// The one-shot timer for the next deadline fired.
    Timer,
    /// Anything else: a console interrupt, a signal, a spurious wake-up.
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use core::sync::atomic::AtomicUsize;

    fn counting() -> (Doorbell, Arc<AtomicUsize>) {
        let rings = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&rings);
        let doorbell = Doorbell::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        (doorbell, rings)
    }

    #[test]
    fn rings_only_a_sleeping_core_and_only_once() {
        let (doorbell, rings) = counting();
        assert!(!doorbell.notify(), "an awake core needs no ring");
        doorbell.announce_sleep();
        assert!(doorbell.notify());
        assert!(!doorbell.notify(), "the first producer took the flag down");
        assert_eq!(rings.load(Ordering::Relaxed), 1);
        doorbell.announce_sleep();
        doorbell.awake();
        assert!(!doorbell.notify());
        doorbell.ring_now();
        assert_eq!(rings.load(Ordering::Relaxed), 2);
    }
}
