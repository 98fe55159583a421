//! `MacSwap`: the l2fwd reflector that swaps source and destination MAC
//! addresses and sends the frame back where it came from.

use dataplane::{Batch, DropCode, Nanoservice, Outputs};

/// Ethernet header bytes the swap touches.
const MAC_PAIR_LEN: usize = 12;

/// Swaps the destination MAC (bytes 0..6) with the source MAC (6..12) as
/// one 64-bit and one 32-bit word: a handful of shifts, no byte loop.
#[inline(always)]
fn swap_macs(macs: &mut [u8; MAC_PAIR_LEN]) {
    let (front, back) = macs.split_at_mut(8);
    let front: &mut [u8; 8] = front.try_into().expect("8 bytes");
    let back: &mut [u8; 4] = back.try_into().expect("4 bytes");
    // Little-endian words: byte i of the frame is bits 8i..8i+8.
    let first = u64::from_le_bytes(*front); // d0..d5 s0 s1
    let last = u64::from(u32::from_le_bytes(*back)); // s2..s5
    let swapped = (first >> 48) | (last << 16) | (first << 48); // s0..s5 d0 d1
    *front = swapped.to_le_bytes();
    *back = ((first >> 16) as u32).to_le_bytes(); // d2..d5
}

/// Drop reasons of [`MacSwap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MacSwapDrop {
    /// Frame shorter than two MAC addresses.
    Truncated = 0,
}

impl From<MacSwapDrop> for DropCode {
    fn from(reason: MacSwapDrop) -> Self {
        DropCode(reason as u8)
    }
}

/// Swaps destination and source MAC in place and emits on `out`.
#[derive(Debug, Default, Clone, Copy)]
pub struct MacSwap;

impl MacSwap {
    /// Output index of `out`.
    pub const OUT: usize = 0;
}

impl Nanoservice for MacSwap {
    fn name(&self) -> &'static str {
        "l2fwd"
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        &["truncated"]
    }

    #[inline]
    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        // Swap in place, then hand the whole burst on at once; only a burst
        // with a runt in it goes packet by packet.
        let mut runts = false;
        for packet in batch.iter_mut() {
            match packet.payload_mut().first_chunk_mut::<MAC_PAIR_LEN>() {
                Some(macs) => swap_macs(macs),
                None => runts = true,
            }
        }
        if !runts {
            out.emit_batch(Self::OUT, batch);
            return;
        }
        for packet in batch.drain() {
            if packet.len() < MAC_PAIR_LEN {
                out.drop(packet, MacSwapDrop::Truncated);
            } else {
                out.emit(Self::OUT, packet);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::{ExecutorBuilder, LoopbackNic, MacAddr, Mempool, Target};

    #[test]
    fn swaps_and_forwards_and_drops_runts() {
        let pool = Mempool::with_heap(8, 64).unwrap();
        let mut frame = pool.alloc().unwrap();
        frame
            .append(14)
            .unwrap()
            .copy_from_slice(&[1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 8, 0]);
        let mut runt = pool.alloc().unwrap();
        runt.append(11).unwrap();

        let mut nic = LoopbackNic::new(MacAddr::default(), 8);
        nic.inject(frame).unwrap();
        nic.inject(runt).unwrap();
        let mut builder = ExecutorBuilder::new();
        let port = builder.add_port(Box::new(nic));
        let node = builder.add_node(Box::new(MacSwap));
        builder.route_rx(port, node).unwrap();
        builder.connect(node, "out", Target::Port(port)).unwrap();
        let mut executor = builder.build().unwrap();

        assert_eq!(executor.poll_once(), 2);
        let counters = executor.counters().clone();
        assert_eq!(counters.tx_packets.get(), 1);
        assert_eq!(counters.nodes[0].drops_named("truncated"), Some(1));
        let nic = executor.nic_as::<LoopbackNic>(port).unwrap();
        let sent = nic.take_transmitted().unwrap();
        assert_eq!(sent.payload(), &[2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 8, 0]);
        assert!(nic.take_transmitted().is_none());
        drop(sent);
        assert_eq!(pool.available(), 8);
    }
}
