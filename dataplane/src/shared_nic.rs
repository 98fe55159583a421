//! `SharedNic`: a NIC that its creator can still reach after an executor took
//! ownership of it (tests, fuzzers and benchmarks inject and collect through
//! it).

use crate::{Batch, LinkInfo, MacAddr, Nic};
use alloc::rc::Rc;
use core::cell::{Ref, RefCell, RefMut};

/// A NIC behind a reference-counted cell; clones share the one NIC. Not
/// `Send`: the executor and the handle live on one core.
pub struct SharedNic<N>(Rc<RefCell<N>>);

impl<N> SharedNic<N> {
    /// Wraps `nic`.
    pub fn new(nic: N) -> Self {
        Self(Rc::new(RefCell::new(nic)))
    }

    /// The NIC, for reading. Panics if the executor is using it right now,
    /// which cannot happen between polls.
    pub fn borrow(&self) -> Ref<'_, N> {
        self.0.borrow()
    }

    /// The NIC, for injecting and collecting packets between polls.
    pub fn borrow_mut(&self) -> RefMut<'_, N> {
        self.0.borrow_mut()
    }
}

impl<N> Clone for SharedNic<N> {
    fn clone(&self) -> Self {
        Self(Rc::clone(&self.0))
    }
}

impl<N: Nic> Nic for SharedNic<N> {
    fn rx_burst(&mut self, batch: &mut Batch) -> usize {
        self.0.borrow_mut().rx_burst(batch)
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> usize {
        self.0.borrow_mut().tx_burst(batch)
    }

    fn mac(&self) -> MacAddr {
        self.0.borrow().mac()
    }

    fn link(&self) -> LinkInfo {
        self.0.borrow().link()
    }

    fn name(&self) -> &str {
        "shared"
    }

    fn enable_wakeup(&mut self) -> bool {
        self.0.borrow_mut().enable_wakeup()
    }

    fn disable_wakeup(&mut self) {
        self.0.borrow_mut().disable_wakeup()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExecutorBuilder, LoopbackNic, Mempool, Nanoservice, Outputs, Target};

    struct Forward;

    impl Nanoservice for Forward {
        fn name(&self) -> &'static str {
            "forward"
        }
        fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
            for packet in batch.drain() {
                out.emit(0, packet);
            }
        }
    }

    #[test]
    fn the_handle_reaches_the_nic_the_executor_owns() {
        let pool = Mempool::with_heap(4, 0).unwrap();
        let nic = SharedNic::new(LoopbackNic::new(MacAddr([2, 0, 0, 0, 0, 9]), 4));
        let mut builder = ExecutorBuilder::new();
        let port = builder.add_port(Box::new(nic.clone()));
        let node = builder.add_node(Box::new(Forward));
        builder.route_rx(port, node).unwrap();
        builder.connect(node, "out", Target::Port(port)).unwrap();
        let mut executor = builder.build().unwrap();
        nic.borrow_mut().inject(pool.alloc().unwrap()).unwrap();
        assert_eq!(executor.poll_once(), 1);
        assert!(nic.borrow_mut().take_transmitted().is_some());
        assert_eq!(nic.borrow().mac(), MacAddr([2, 0, 0, 0, 0, 9]));
    }
}
