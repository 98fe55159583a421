//! Receive-side scaling (82576 datasheet 7.1.2.8): the redirection table
//! that maps the Toeplitz hash's low 7 bits to a queue, and the register
//! packing of it and of the key. The hash and our key are
//! `dataplane::rss`'s (checked there against Microsoft's verification
//! vectors), so the appliance predicts a flow's queue with the same code.

use crate::registers::RETA_ENTRIES;
use dataplane::rss::RssSteering;

pub use dataplane::rss::{WARPCORE_RSS_KEY, ipv4_flow_input, toeplitz_hash};

/// The redirection table: queue by the hash's low 7 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedirectionTable(pub [u8; RETA_ENTRIES]);

impl RedirectionTable {
    /// Entry `i` is queue `i % queues` (at least one queue).
    pub fn spread(queues: u8) -> Self {
        let queues = queues.max(1);
        let mut table = [0; RETA_ENTRIES];
        for (index, entry) in table.iter_mut().enumerate() {
            *entry = (index % usize::from(queues)) as u8;
        }
        Self(table)
    }

    /// The queue a packet with `hash` goes to.
    pub fn queue(&self, hash: u32) -> u8 {
        self.0[(hash as usize) % RETA_ENTRIES]
    }

    /// What the core polling `queue` of interface `interface` knows of
    /// its steering (our key and this table).
    pub fn steering(&self, interface: usize, queue: u8) -> RssSteering {
        RssSteering {
            interface,
            key: WARPCORE_RSS_KEY,
            table: self.0,
            queue,
        }
    }

    /// The 32 `RETA` register values (entry `4n + k` in byte `k` of
    /// register `n`).
    pub fn registers(&self) -> [u32; RETA_ENTRIES / 4] {
        let mut registers = [0; RETA_ENTRIES / 4];
        for (register, entries) in registers.iter_mut().zip(self.0.chunks_exact(4)) {
            *register = u32::from_le_bytes([entries[0], entries[1], entries[2], entries[3]]);
        }
        registers
    }
}

/// The 10 `RSSRK` register values of `key` (byte `4n + k` in byte `k` of
/// register `n`, as the device reads the key).
pub fn key_registers(key: &[u8; 40]) -> [u32; 10] {
    let mut registers = [0; 10];
    for (register, bytes) in registers.iter_mut().zip(key.chunks_exact(4)) {
        *register = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    registers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_spreads_and_packs_into_registers() {
        let table = RedirectionTable::spread(2);
        assert_eq!(table.queue(0), 0);
        assert_eq!(table.queue(0x8000_0001), 1);
        assert_eq!(table.queue(127), 1);
        assert_eq!(table.registers()[0], 0x0100_0100);
        assert_eq!(RedirectionTable::spread(0), RedirectionTable::spread(1));
        assert_eq!(key_registers(&WARPCORE_RSS_KEY), [0x5a6d_5a6d; 10]);
        // Byte 4n + k of the key in byte k of register n.
        let mut key = [0; 40];
        key[..4].copy_from_slice(&[0x6d, 0x5a, 0x56, 0xda]);
        assert_eq!(key_registers(&key)[0], 0xda56_5a6d);
    }

    #[test]
    fn the_steering_a_core_gets_predicts_what_the_table_says() {
        let table = RedirectionTable::spread(2);
        let steering = table.steering(0, 1);
        let input = ipv4_flow_input([10, 0, 0, 1], [10, 0, 0, 2], 41000, 7);
        let expected = table.queue(toeplitz_hash(&WARPCORE_RSS_KEY, &input));
        let source = core::net::SocketAddrV4::new([10, 0, 0, 1].into(), 41000);
        let destination = core::net::SocketAddrV4::new([10, 0, 0, 2].into(), 7);
        assert_eq!(steering.queue_of(source, destination), expected);
    }
}
