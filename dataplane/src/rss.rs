//! Receive-side scaling as a NIC computes it: the Toeplitz hash over a
//! flow's addresses and ports, warpcore's key, and the redirection table
//! that maps the hash to a queue. Drivers that program RSS (igb) use it to
//! program the device, and services use it to predict which queue, and so
//! which core, a flow lands on (TCP active opens pick a source port whose
//! answer comes back to the opening core).

use core::net::SocketAddrV4;

/// Entries of a redirection table (indexed by the hash's low 7 bits).
pub const RETA_ENTRIES: usize = 128;

/// Our Toeplitz key: `6d 5a` repeated. A key whose 16-bit halves repeat
/// hashes a flow and its reverse alike (source and destination swapped),
/// so both directions of a connection land on one core.
pub const WARPCORE_RSS_KEY: [u8; 40] = {
    let mut key = [0; 40];
    let mut index = 0;
    while index < 40 {
        key[index] = if index % 2 == 0 { 0x6d } else { 0x5a };
        index += 1;
    }
    key
};

/// The Toeplitz hash of `input` under `key` (as the device computes it;
/// `input` at most 36 bytes, the IPv6 4-tuple).
pub fn toeplitz_hash(key: &[u8; 40], input: &[u8]) -> u32 {
    let mut hash = 0u32;
    // The 32-bit window of the key at the current input bit.
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    // Byte `next_key_byte` of the key shifts in while input byte
    // `next_key_byte - 4` is hashed.
    for (next_key_byte, &byte) in (4..).zip(input.iter().take(36)) {
        for bit in (0..8).rev() {
            if byte & (1 << bit) != 0 {
                hash ^= window;
            }
            let incoming = key.get(next_key_byte).copied().unwrap_or(0) >> bit & 1;
            window = (window << 1) | u32::from(incoming);
        }
    }
    hash
}

/// The hash input of an IPv4 TCP or UDP flow: source address, destination
/// address, source port, destination port, in network order.
pub fn ipv4_flow_input(
    source: [u8; 4],
    destination: [u8; 4],
    source_port: u16,
    destination_port: u16,
) -> [u8; 12] {
    let mut input = [0; 12];
    input[..4].copy_from_slice(&source);
    input[4..8].copy_from_slice(&destination);
    input[8..10].copy_from_slice(&source_port.to_be_bytes());
    input[10..].copy_from_slice(&destination_port.to_be_bytes());
    input
}

/// What a core knows of one interface's RSS: the key and redirection table
/// its NIC hashes with, and which queue the core polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RssSteering {
    /// The interface (its index in the spec).
    pub interface: usize,
    /// The Toeplitz key.
    pub key: [u8; 40],
    /// Queue by the hash's low 7 bits.
    pub table: [u8; RETA_ENTRIES],
    /// The queue this core polls.
    pub queue: u8,
}

impl RssSteering {
    /// The queue an IPv4 TCP or UDP packet from `source` to `destination`
    /// lands on.
    pub fn queue_of(&self, source: SocketAddrV4, destination: SocketAddrV4) -> u8 {
        let input = ipv4_flow_input(
            source.ip().octets(),
            destination.ip().octets(),
            source.port(),
            destination.port(),
        );
        let hash = toeplitz_hash(&self.key, &input);
        self.table[(hash as usize) % RETA_ENTRIES]
    }

    /// Whether packets from `source` to `destination` land on this core's
    /// queue.
    pub fn lands_here(&self, source: SocketAddrV4, destination: SocketAddrV4) -> bool {
        self.queue_of(source, destination) == self.queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    /// The key of Microsoft's RSS verification suite.
    const MICROSOFT_KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    #[test]
    fn the_hash_matches_the_verification_suite() {
        // 66.9.149.187:2794 -> 161.142.100.80:1766.
        let input = ipv4_flow_input([66, 9, 149, 187], [161, 142, 100, 80], 2794, 1766);
        assert_eq!(toeplitz_hash(&MICROSOFT_KEY, &input[..8]), 0x323e_8fc2);
        assert_eq!(toeplitz_hash(&MICROSOFT_KEY, &input), 0x51cc_c178);
        // 199.92.111.2:14230 -> 65.69.140.83:4739.
        let input = ipv4_flow_input([199, 92, 111, 2], [65, 69, 140, 83], 14230, 4739);
        assert_eq!(toeplitz_hash(&MICROSOFT_KEY, &input[..8]), 0xd718_262a);
        assert_eq!(toeplitz_hash(&MICROSOFT_KEY, &input), 0xc626_b0ea);
    }

    #[test]
    fn our_key_hashes_both_directions_of_a_flow_alike() {
        for (a, b, port_a, port_b) in [
            ([10, 0, 0, 1], [10, 0, 0, 2], 40000, 7),
            ([192, 168, 1, 9], [172, 16, 0, 1], 1234, 443),
        ] {
            let forward = toeplitz_hash(&WARPCORE_RSS_KEY, &ipv4_flow_input(a, b, port_a, port_b));
            let reverse = toeplitz_hash(&WARPCORE_RSS_KEY, &ipv4_flow_input(b, a, port_b, port_a));
            assert_eq!(forward, reverse);
        }
        // ... and still tells flows apart.
        let one = toeplitz_hash(
            &WARPCORE_RSS_KEY,
            &ipv4_flow_input([10, 0, 0, 1], [10, 0, 0, 2], 40000, 7),
        );
        let two = toeplitz_hash(
            &WARPCORE_RSS_KEY,
            &ipv4_flow_input([10, 0, 0, 1], [10, 0, 0, 2], 40001, 7),
        );
        assert_ne!(one, two);
    }

    #[test]
    fn steering_predicts_the_queue_by_the_table() {
        let mut table = [0; RETA_ENTRIES];
        for (index, entry) in table.iter_mut().enumerate() {
            *entry = (index % 2) as u8;
        }
        let steering = RssSteering {
            interface: 0,
            key: WARPCORE_RSS_KEY,
            table,
            queue: 1,
        };
        let peer = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 8000);
        let mut here = 0;
        for port in 40000..40064 {
            let ours = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), port);
            let hash = toeplitz_hash(
                &WARPCORE_RSS_KEY,
                &ipv4_flow_input([10, 0, 0, 1], [10, 0, 0, 2], 8000, port),
            );
            assert_eq!(steering.queue_of(peer, ours), (hash % 2) as u8);
            here += usize::from(steering.lands_here(peer, ours));
        }
        // Both queues get some of 64 ports.
        assert!(here > 0 && here < 64);
    }
}
