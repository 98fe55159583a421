//! Fuzzes the whole pipeline, UDP echo and the TCP apps (tcp-echo, http,
//! kv) among it: any sequence of frames through `build_core`'s graph is
//! emitted or dropped with a counted reason, never a panic or a leak. The
//! input is up to eight frames separated by `WCFZ`; the clock moves 250 ms
//! a poll, so that the stack's timers fire too. The clock starts at 0, so
//! the stack's sequence numbers are the same every run and the fuzzer can
//! find its way past a handshake.
#![forbid(unsafe_code)]
#![no_main]

use control::Spec;
use dataplane::{LoopbackNic, MacAddr, Mempool, SharedNic};
use libfuzzer_sys::fuzz_target;
use std::sync::atomic::{AtomicU64, Ordering};

/// The pieces of `data` between occurrences of `separator`.
fn split<'a>(data: &'a [u8], separator: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.windows(separator.len()).position(|window| window == separator) {
            Some(at) => {
                rest = Some(&current[at + separator.len()..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

const SPEC: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"loopback\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n\
    [[service]]\nkind = \"udp-echo\"\nport = 7\n\
    [[service]]\nkind = \"tcp-echo\"\nport = 7\n\
    [[service]]\nkind = \"http\"\nport = 80\nroutes = [{ path = \"/\", body = \"hi\" }, { path = \"/echo\", echo = true }]\n\
    [[service]]\nkind = \"kv\"\nport = 11211\n";

/// The platform clock of this run, moved by the target.
static NOW_NS: AtomicU64 = AtomicU64::new(0);

fn clock() -> u64 {
    NOW_NS.load(Ordering::Relaxed)
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 8 * 2048 {
        return;
    }
    NOW_NS.store(0, Ordering::Relaxed);
    let spec = Spec::parse(SPEC, &services::Registry::with_builtin()).unwrap();
    let nic = SharedNic::new(LoopbackNic::new(MacAddr([2, 0, 0, 0, 0, 1]), 16));
    let pool = Mempool::with_heap(64, 128).unwrap();
    let mut executor = control::build_core(&spec, 0, vec![(0, Box::new(nic.clone()))], pool, clock, control::CoreLinks::new()).unwrap();
    // Each frame, then a poll or two for what it caused (ARP requests,
    // retransmissions); frames over 2048 bytes are cut.
    for frame in split(data, b"WCFZ").take(8) {
        let frame = &frame[..frame.len().min(2048)];
        let mut packet = executor.pool().unwrap().alloc().unwrap();
        packet.append(frame.len()).unwrap().copy_from_slice(frame);
        nic.borrow_mut().inject(packet).unwrap();
        for _ in 0..2 {
            executor.poll_once();
            NOW_NS.fetch_add(250_000_000, Ordering::Relaxed);
            while nic.borrow_mut().take_transmitted().is_some() {}
        }
    }
    let counters = executor.counters();
    assert_eq!(counters.unconsumed_drops.get(), 0);
    assert_eq!(counters.pass_limit_drops.get(), 0);
    assert_eq!(counters.nodes.iter().map(|node| node.invalid_output.get()).sum::<u64>(), 0);
});
