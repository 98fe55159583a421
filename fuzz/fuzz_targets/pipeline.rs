//! Fuzzes the whole echo pipeline: any frame through `build_core`'s graph
//! is emitted or dropped with a counted reason, never a panic or a leak.
#![no_main]

use dataplane::spec::Spec;
use dataplane::{Batch, LinkInfo, LoopbackNic, MacAddr, Mempool, Nic};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::rc::Rc;

const SPEC: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"loopback\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n\
    [[service]]\nkind = \"udp-echo\"\nport = 7\n";

fn clock() -> u64 {
    0
}

/// A loopback NIC the target keeps a handle to.
#[derive(Clone)]
struct SharedNic(Rc<RefCell<LoopbackNic>>);

impl Nic for SharedNic {
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
        "fuzz"
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 2048 {
        return;
    }
    let spec = Spec::parse(SPEC).unwrap();
    let nic = SharedNic(Rc::new(RefCell::new(LoopbackNic::new(MacAddr([2, 0, 0, 0, 0, 1]), 16))));
    let pool = Mempool::with_heap(64, 128).unwrap();
    let mut executor = services::build_core(&spec, 0, vec![(0, Box::new(nic.clone()))], pool, clock).unwrap();
    // Several polls: the frame, then whatever it caused (ARP requests).
    for _ in 0..3 {
        let mut packet = executor.pool().unwrap().alloc().unwrap();
        packet.append(data.len()).unwrap().copy_from_slice(data);
        nic.0.borrow_mut().inject(packet).unwrap();
        executor.poll_once();
        while nic.0.borrow_mut().take_transmitted().is_some() {}
    }
    let counters = executor.counters();
    assert_eq!(counters.unconsumed_drops.get(), 0);
    assert_eq!(counters.pass_limit_drops.get(), 0);
    assert_eq!(counters.nodes.iter().map(|node| node.invalid_output.get()).sum::<u64>(), 0);
});
