//! Fuzzes the whole echo pipeline: any frame through `build_core`'s graph
//! is emitted or dropped with a counted reason, never a panic or a leak.
#![forbid(unsafe_code)]
#![no_main]

use control::Spec;
use dataplane::{LoopbackNic, MacAddr, Mempool, SharedNic};
use libfuzzer_sys::fuzz_target;

const SPEC: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"loopback\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n\
    [[service]]\nkind = \"udp-echo\"\nport = 7\n";

fn clock() -> u64 {
    0
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 2048 {
        return;
    }
    let spec = Spec::parse(SPEC, &services::Registry::with_builtin()).unwrap();
    let nic = SharedNic::new(LoopbackNic::new(MacAddr([2, 0, 0, 0, 0, 1]), 16));
    let pool = Mempool::with_heap(64, 128).unwrap();
    let mut executor = control::build_core(&spec, 0, vec![(0, Box::new(nic.clone()))], pool, clock, control::CoreLinks::new()).unwrap();
    // Several polls: the frame, then whatever it caused (ARP requests).
    for _ in 0..3 {
        let mut packet = executor.pool().unwrap().alloc().unwrap();
        packet.append(data.len()).unwrap().copy_from_slice(data);
        nic.borrow_mut().inject(packet).unwrap();
        executor.poll_once();
        while nic.borrow_mut().take_transmitted().is_some() {}
    }
    let counters = executor.counters();
    assert_eq!(counters.unconsumed_drops.get(), 0);
    assert_eq!(counters.pass_limit_drops.get(), 0);
    assert_eq!(counters.nodes.iter().map(|node| node.invalid_output.get()).sum::<u64>(), 0);
});
