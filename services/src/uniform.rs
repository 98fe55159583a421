//! `dispatch_uniform`: a node's per-packet decisions over a burst whose
//! packets all go the same way, in one tight loop and one hand-off.

use dataplane::{Batch, DropCode, Outputs, Packet, Verdict};

/// A node's decision for one packet it looks at in place, as
/// [`dispatch_uniform`] asks for it: what a closure handed to
/// [`Outputs::dispatch`] does, as a method that is always inlined (a
/// closure called from more than one place is not, and a call a packet
/// costs more than the loop).
pub(crate) trait Decide {
    /// Where `packet` goes.
    fn decide(&mut self, packet: &mut Packet) -> Verdict;
}

/// Decides every packet of `batch` with `node`, exactly once each and in
/// order, and sends each where its [`Verdict`] says, as
/// [`Outputs::dispatch`] does: `Keep` packets stay in `batch`, in order.
///
/// Made for the busy path, where a burst goes one way: while every packet
/// gets the first one's verdict, the loop walks the packets by pointer and
/// writes nothing per packet (no verdict code, no index), and the burst
/// then moves on whole. At the first packet that goes another way the rest
/// of the burst is decided and sent by `Outputs::dispatch`, the packets
/// already decided with the verdicts they got.
#[inline(always)]
pub(crate) fn dispatch_uniform<D: Decide>(node: &mut D, batch: &mut Batch, out: &mut Outputs<'_>) {
    let count = batch.len();
    let mut packets = batch.iter_mut();
    // The codes (see [`Verdict::code`]) of the first packet's verdict and of the
    // first one unlike it; no verdict has code `Verdict::NO_CODE`, so the first
    // packet takes the branch that sets `uniform`. Only codes are kept in
    // the loop: a `Verdict` kept there holds registers in every turn.
    let mut uniform = Verdict::NO_CODE;
    let mut other = Verdict::NO_CODE;
    let all_alike = packets.all(|packet| {
        let code = node.decide(packet).code();
        if code == uniform {
            return true;
        }
        if uniform == Verdict::NO_CODE {
            uniform = code;
            return true;
        }
        other = code;
        false
    });
    let verdict = Verdict::from_code(uniform);
    if all_alike {
        // An empty batch ends here too (`NO_CODE` reads as keep).
        send_whole(batch, out, verdict);
        return;
    }
    // Packets `0..differing` got `verdict`, packet `differing` got `other`.
    let differing = count - packets.len() - 1;
    dispatch_rest(
        node,
        batch,
        out,
        (verdict, differing, Verdict::from_code(other)),
    );
}

/// [`dispatch_uniform`] for a node that knows the verdict its busy path
/// gives (`expected`, e.g. eth's `Emit(IPV4)`): the loop compares each
/// verdict with that constant, which the inlined `decide` folds into its
/// own branches, so the busy path neither makes a verdict code nor keeps
/// one. Sends every packet exactly where [`dispatch_uniform`] would: a
/// burst that goes all the expected way moves on whole; from the first
/// packet that does not (even a burst uniformly another way) the rest is
/// decided and sent by `Outputs::dispatch`, the packets before it with
/// `expected`.
#[inline(always)]
pub(crate) fn dispatch_expecting<D: Decide>(
    node: &mut D,
    batch: &mut Batch,
    out: &mut Outputs<'_>,
    expected: Verdict,
) {
    let count = batch.len();
    let mut packets = batch.iter_mut();
    let mut other = expected;
    let all_expected = packets.all(|packet| {
        other = node.decide(packet);
        other == expected
    });
    if all_expected {
        send_whole(batch, out, expected);
        return;
    }
    // Packets `0..differing` got `expected`, packet `differing` got `other`.
    let differing = count - packets.len() - 1;
    dispatch_rest(node, batch, out, (expected, differing, other));
}

/// Sends the whole of `batch` where `verdict` says, which every packet
/// of it got.
#[inline(always)]
fn send_whole(batch: &mut Batch, out: &mut Outputs<'_>, verdict: Verdict) {
    match verdict {
        Verdict::Emit(output) => out.emit_batch(usize::from(output), batch),
        Verdict::Drop(reason) => drop_all(batch, out, reason),
        Verdict::Keep => {}
    }
}

/// Drops every packet of `batch`, counted under `reason`.
#[cold]
#[inline(never)]
fn drop_all(batch: &mut Batch, out: &mut Outputs<'_>, reason: DropCode) {
    for packet in batch.drain() {
        out.drop(packet, reason);
    }
}

/// `dispatch_uniform` once packet `differing` went another way (`other`)
/// than those before it (`verdict`): the packets behind it are decided
/// now, and the whole burst is sent packet by packet.
#[inline(never)]
fn dispatch_rest<D: Decide>(
    node: &mut D,
    batch: &mut Batch,
    out: &mut Outputs<'_>,
    (verdict, differing, other): (Verdict, usize, Verdict),
) {
    let mut index = 0;
    out.dispatch(batch, |packet, _| {
        let decided = match index.cmp(&differing) {
            core::cmp::Ordering::Less => verdict,
            core::cmp::Ordering::Equal => other,
            core::cmp::Ordering::Greater => node.decide(packet),
        };
        index += 1;
        decided
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::sync::Arc;
    use alloc::vec::Vec;
    use core::sync::atomic::{AtomicUsize, Ordering};
    use dataplane::{ExecutorBuilder, LoopbackNic, MacAddr, Mempool, Nanoservice, Target};

    /// Decides by a packet's two bytes: `e<n>` emits on output `n`, `d<n>`
    /// drops with reason `n`, anything else is kept (then emitted on
    /// output 0 behind the rest); counts its decisions. Dispatches with
    /// `dispatch_expecting` when `expecting` is set, else with
    /// `dispatch_uniform`.
    struct ByBytes {
        decisions: Arc<AtomicUsize>,
        expecting: Option<Verdict>,
    }

    impl Nanoservice for ByBytes {
        fn name(&self) -> &'static str {
            "by-bytes"
        }
        fn outputs(&self) -> &'static [&'static str] {
            &["out0", "out1"]
        }
        fn drop_reasons(&self) -> &'static [&'static str] {
            &["zero", "one"]
        }
        fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
            match self.expecting {
                Some(expected) => dispatch_expecting(self, batch, out, expected),
                None => dispatch_uniform(self, batch, out),
            }
            for packet in batch.drain() {
                out.emit(0, packet);
            }
        }
    }

    impl Decide for ByBytes {
        fn decide(&mut self, packet: &mut Packet) -> Verdict {
            self.decisions.fetch_add(1, Ordering::Relaxed);
            match *packet.payload() {
                [b'e', n, ..] => Verdict::emit(usize::from(n - b'0')),
                [b'd', n, ..] => Verdict::Drop(DropCode(n - b'0')),
                _ => Verdict::Keep,
            }
        }
    }

    /// What [`run_once`] reports.
    type Outcome = ([Vec<u8>; 2], [u64; 2], usize);

    /// [`run_once`] with `dispatch_uniform`, checked to give what
    /// `dispatch_expecting` gives whatever verdict it expects (the one the
    /// burst has, another, or none of them).
    fn run(frames: &[&[u8; 2]]) -> Outcome {
        let uniform = run_once(frames, None);
        let expectations = [
            Verdict::emit(0),
            Verdict::emit(1),
            Verdict::Drop(DropCode(0)),
            Verdict::Drop(DropCode(1)),
            Verdict::Keep,
        ];
        for expected in expectations {
            assert_eq!(
                run_once(frames, Some(expected)),
                uniform,
                "expecting {expected:?}"
            );
        }
        uniform
    }

    /// Runs `frames` (each numbered by a third byte) through one burst:
    /// what each output sent (by number), the drops by reason, and the
    /// decisions made.
    fn run_once(frames: &[&[u8; 2]], expecting: Option<Verdict>) -> Outcome {
        let pool = Mempool::with_heap(64, 0).unwrap();
        let mut nic = LoopbackNic::new(MacAddr::default(), 64);
        for (number, frame) in frames.iter().enumerate() {
            let mut packet = pool.alloc().unwrap();
            let bytes = packet.append(3).unwrap();
            bytes[..2].copy_from_slice(&frame[..]);
            bytes[2] = number as u8;
            nic.inject(packet).unwrap();
        }
        let decisions = Arc::new(AtomicUsize::new(0));
        let mut builder = ExecutorBuilder::new();
        let input = builder.add_port(Box::new(nic));
        let outputs =
            [(); 2].map(|_| builder.add_port(Box::new(LoopbackNic::new(MacAddr::default(), 64))));
        let node = builder.add_node(Box::new(ByBytes {
            decisions: decisions.clone(),
            expecting,
        }));
        builder.route_rx(input, node).unwrap();
        builder
            .connect(node, "out0", Target::Port(outputs[0]))
            .unwrap();
        builder
            .connect(node, "out1", Target::Port(outputs[1]))
            .unwrap();
        let mut executor = builder.build().unwrap();
        assert_eq!(executor.poll_once(), frames.len());
        let sent = outputs.map(|port| {
            let nic = executor.nic_as::<LoopbackNic>(port).unwrap();
            core::iter::from_fn(|| nic.take_transmitted())
                .map(|packet| packet.payload()[2])
                .collect()
        });
        let counters = executor.counters().clone();
        let drops = ["zero", "one"].map(|reason| counters.nodes[0].drops_named(reason).unwrap());
        (sent, drops, decisions.load(Ordering::Relaxed))
    }

    #[test]
    fn a_uniform_burst_and_a_mixed_one_go_where_each_packet_was_decided() {
        let all_one = [b"e1"; 5];
        assert_eq!(
            run(&all_one),
            ([alloc::vec![], alloc::vec![0, 1, 2, 3, 4]], [0, 0], 5)
        );
        let dropped = [b"d1"; 3];
        assert_eq!(run(&dropped), ([alloc::vec![], alloc::vec![]], [0, 3], 3));
        let kept = [b"k?"; 2];
        assert_eq!(run(&kept), ([alloc::vec![0, 1], alloc::vec![]], [0, 0], 2));
        // Another way at the start, in the middle and at the end; each
        // packet decided once.
        let mixed = [b"e1", b"e1", b"e0", b"e1", b"d0", b"k?", b"e1", b"d1"];
        assert_eq!(
            run(&mixed),
            ([alloc::vec![2, 5], alloc::vec![0, 1, 3, 6]], [1, 1], 8)
        );
        let first_differs = [b"e0", b"e1", b"e1"];
        assert_eq!(
            run(&first_differs),
            ([alloc::vec![0], alloc::vec![1, 2]], [0, 0], 3)
        );
        let last_differs = [b"e1", b"e1", b"k?"];
        assert_eq!(
            run(&last_differs),
            ([alloc::vec![2], alloc::vec![0, 1]], [0, 0], 3)
        );
        assert_eq!(run(&[]), ([alloc::vec![], alloc::vec![]], [0, 0], 0));
    }

    #[test]
    fn a_drop_or_keep_prefix_then_another_verdict_sends_each_packet_its_way() {
        // Dropped ones first (the uniform verdict is a drop), then an
        // emitted one, then drops under both reasons behind it.
        let drops_first = [b"d0", b"d0", b"e1", b"d1", b"d0"];
        assert_eq!(
            run(&drops_first),
            ([alloc::vec![], alloc::vec![2]], [3, 1], 5)
        );
        // Kept ones first, then a drop, then kept and emitted ones: the
        // kept stay in the batch in order (then out0 behind the rest).
        let kept_first = [b"k?", b"k?", b"d1", b"k?", b"e1"];
        assert_eq!(
            run(&kept_first),
            ([alloc::vec![0, 1, 3], alloc::vec![4]], [0, 1], 5)
        );
        // A drop prefix then a keep: not dropped with the prefix.
        let then_kept = [b"d1", b"d1", b"k?"];
        assert_eq!(
            run(&then_kept),
            ([alloc::vec![2], alloc::vec![]], [0, 2], 3)
        );
    }

    #[test]
    fn a_full_burst_differing_only_at_its_last_packet_sends_that_one_its_way() {
        let first_31: Vec<u8> = (0..31).collect();
        let mut frames = [b"e1"; 32];
        frames[31] = b"d0";
        assert_eq!(
            run(&frames),
            ([alloc::vec![], first_31.clone()], [1, 0], 32)
        );
        frames[31] = b"k?";
        assert_eq!(
            run(&frames),
            ([alloc::vec![31], first_31.clone()], [0, 0], 32)
        );
        let mut frames = [b"d1"; 32];
        frames[31] = b"e1";
        assert_eq!(
            run(&frames),
            ([alloc::vec![], alloc::vec![31]], [0, 31], 32)
        );
        // And the same burst whole: one way, 32 decisions.
        let all: Vec<u8> = (0..32).collect();
        assert_eq!(run(&[b"e1"; 32]), ([alloc::vec![], all], [0, 0], 32));
    }
}
