//! The capture tap in the executor: a port's received and sent bursts
//! reach the board while a capture of its interface is armed, and nothing
//! does otherwise.

use dataplane::capture::{Direction, MAX_SNAPLEN};
use dataplane::{
    Batch, CaptureBoard, ExecutorBuilder, LoopbackNic, MacAddr, Mempool, Nanoservice, Outputs,
    Target,
};
use std::sync::Arc;

/// Turns every frame around with its first byte increased.
struct Reflect;

impl Nanoservice for Reflect {
    fn name(&self) -> &'static str {
        "reflect"
    }
    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        for mut packet in batch.drain() {
            packet.payload_mut()[0] += 1;
            out.emit(0, packet);
        }
    }
}

fn frame(pool: &Mempool, first: u8, length: usize) -> dataplane::Packet {
    let mut packet = pool.alloc().unwrap();
    let bytes = packet.append(length).unwrap();
    bytes.fill(0xee);
    bytes[0] = first;
    packet
}

#[test]
fn armed_taps_see_received_and_sent_frames_of_their_interface_only() {
    let pool = Mempool::with_heap(64, 0).unwrap();
    let board = Arc::new(CaptureBoard::new());
    let mut builder = ExecutorBuilder::new();
    builder.clock(|| 1_000);
    let eth0 = builder.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 64)));
    let eth1 = builder.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 64)));
    let reflect0 = builder.add_node(Box::new(Reflect));
    let reflect1 = builder.add_node(Box::new(Reflect));
    builder.route_rx(eth0, reflect0).unwrap();
    builder.route_rx(eth1, reflect1).unwrap();
    builder
        .connect(reflect0, "out", Target::Port(eth0))
        .unwrap();
    builder
        .connect(reflect1, "out", Target::Port(eth1))
        .unwrap();
    builder.tap_port(eth0, board.tap(0, 0)).unwrap();
    builder.tap_port(eth1, board.tap(0, 1)).unwrap();
    let mut executor = builder.build().unwrap();
    let inject = |executor: &mut dataplane::Executor, port, first| {
        let nic = executor.nic_as::<LoopbackNic>(port).unwrap();
        nic.inject(frame(&pool, first, 1000)).unwrap();
    };

    // Not armed: frames flow, nothing is captured.
    inject(&mut executor, eth0, 1);
    assert_eq!(executor.poll_once(), 1);
    let mut captured = 0;
    board.for_each_tap(|_, _, counters| captured += counters.captured.get());
    assert_eq!(captured, 0);

    let capture = board.arm(0, 100, None).unwrap();
    inject(&mut executor, eth0, 10);
    inject(&mut executor, eth1, 20);
    assert_eq!(executor.poll_once(), 2);
    let mut out = vec![0u8; usize::from(MAX_SNAPLEN)];
    let mut seen = Vec::new();
    while let Some((header, copied)) = board.next_record(&capture, |_| true, &mut out) {
        seen.push((header.direction, out[0], copied, header.original_len));
        assert_eq!(header.timestamp_ns, 1_000);
        assert!(out[1..copied].iter().all(|byte| *byte == 0xee));
    }
    assert_eq!(
        seen,
        [
            (Direction::Received, 10, 100, 1000),
            (Direction::Sent, 11, 100, 1000),
        ]
    );
    board.finish(capture);
    inject(&mut executor, eth0, 30);
    assert_eq!(executor.poll_once(), 1);
    let mut captured = 0;
    board.for_each_tap(|_, _, counters| captured += counters.captured.get());
    assert_eq!(captured, 2, "only the armed capture's two frames");
    for port in [eth0, eth1] {
        let nic = executor.nic_as::<LoopbackNic>(port).unwrap();
        while nic.take_transmitted().is_some() {}
    }
    assert_eq!(pool.available(), 64);
}

#[test]
fn an_unknown_port_cannot_be_tapped() {
    let board = Arc::new(CaptureBoard::new());
    let mut other = ExecutorBuilder::new();
    let port = other.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 4)));
    let mut builder = ExecutorBuilder::new();
    assert!(builder.tap_port(port, board.tap(0, 0)).is_err());
}
