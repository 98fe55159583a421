//! Test frames built from their fields with every checksum computed from
//! scratch, and checks of a frame's checksums that share nothing with the
//! modules' incremental updates.

/// The Internet checksum of `bytes` (RFC 1071), computed from scratch.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u64 = bytes
        .chunks(2)
        .map(|pair| u64::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet (TCP, UDP, ICMP echo or any other protocol) to build.
#[derive(Clone, Debug)]
pub struct Ipv4Packet {
    /// Source address.
    pub source: [u8; 4],
    /// Destination address.
    pub destination: [u8; 4],
    /// IP protocol (1 ICMP, 6 TCP, 17 UDP, or another).
    pub protocol: u8,
    /// Type of service: DSCP << 2 | ECN.
    pub tos: u8,
    /// TCP/UDP source port.
    pub source_port: u16,
    /// TCP/UDP destination port.
    pub destination_port: u16,
    /// Fragment offset in 8-byte units (non-zero: a non-first fragment).
    pub fragment_offset: u16,
    /// UDP only: send a checksum (else 0, "no checksum").
    pub udp_checksum: bool,
    /// Transport payload.
    pub payload: Vec<u8>,
}

impl Ipv4Packet {
    /// A UDP datagram with a checksum.
    pub fn udp(
        source: [u8; 4],
        destination: [u8; 4],
        source_port: u16,
        destination_port: u16,
    ) -> Self {
        Self {
            source,
            destination,
            protocol: 17,
            tos: 0,
            source_port,
            destination_port,
            fragment_offset: 0,
            udp_checksum: true,
            payload: b"warpcore wasm example payload".to_vec(),
        }
    }

    /// A TCP segment.
    pub fn tcp(
        source: [u8; 4],
        destination: [u8; 4],
        source_port: u16,
        destination_port: u16,
    ) -> Self {
        Self {
            protocol: 6,
            ..Self::udp(source, destination, source_port, destination_port)
        }
    }

    /// An ICMP echo request.
    pub fn icmp(source: [u8; 4], destination: [u8; 4]) -> Self {
        Self {
            protocol: 1,
            ..Self::udp(source, destination, 0, 0)
        }
    }

    /// The IPv4 packet's bytes, every checksum computed over the whole packet.
    pub fn ip(&self) -> Vec<u8> {
        let transport = self.transport();
        let total = 20 + transport.len();
        let mut ip = vec![0u8; 20];
        ip[0] = 0x45;
        ip[1] = self.tos;
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        ip[6..8].copy_from_slice(&self.fragment_offset.to_be_bytes());
        ip[8] = 64;
        ip[9] = self.protocol;
        ip[12..16].copy_from_slice(&self.source);
        ip[16..20].copy_from_slice(&self.destination);
        let checksum = internet_checksum(&ip);
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());
        ip.extend_from_slice(&transport);
        ip
    }

    /// The Ethernet frame around [`Ipv4Packet::ip`].
    pub fn frame(&self) -> Vec<u8> {
        let mut frame = ethernet_header(0x0800);
        frame.extend_from_slice(&self.ip());
        frame
    }

    fn transport(&self) -> Vec<u8> {
        if self.fragment_offset != 0 {
            // A non-first fragment carries payload only.
            return self.payload.clone();
        }
        let mut transport = match self.protocol {
            17 => {
                let mut udp = vec![0u8; 8];
                udp[4..6].copy_from_slice(&((8 + self.payload.len()) as u16).to_be_bytes());
                udp
            }
            6 => {
                let mut tcp = vec![0u8; 20];
                tcp[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
                tcp[12] = 5 << 4;
                tcp[13] = 0x18; // PSH, ACK
                tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
                tcp
            }
            1 => vec![8, 0, 0, 0, 0x12, 0x34, 0, 1],
            _ => Vec::new(),
        };
        if matches!(self.protocol, 6 | 17) {
            transport[0..2].copy_from_slice(&self.source_port.to_be_bytes());
            transport[2..4].copy_from_slice(&self.destination_port.to_be_bytes());
        }
        transport.extend_from_slice(&self.payload);
        let checksum_at = match self.protocol {
            17 if !self.udp_checksum => return transport,
            17 => 6,
            6 => 16,
            1 => 2,
            _ => return transport,
        };
        let checksum = match self.protocol {
            1 => internet_checksum(&transport),
            _ => match internet_checksum(&pseudo_header_and(
                &self.source,
                &self.destination,
                self.protocol,
                &transport,
            )) {
                0 if self.protocol == 17 => 0xffff,
                checksum => checksum,
            },
        };
        transport[checksum_at..checksum_at + 2].copy_from_slice(&checksum.to_be_bytes());
        transport
    }
}

fn ethernet_header(ethertype: u16) -> Vec<u8> {
    let mut header = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];
    header.extend_from_slice(&ethertype.to_be_bytes());
    header
}

fn pseudo_header_and(
    source: &[u8; 4],
    destination: &[u8; 4],
    protocol: u8,
    transport: &[u8],
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(12 + transport.len());
    bytes.extend_from_slice(source);
    bytes.extend_from_slice(destination);
    bytes.extend_from_slice(&[0, protocol]);
    bytes.extend_from_slice(&(transport.len() as u16).to_be_bytes());
    bytes.extend_from_slice(transport);
    bytes
}

/// An ARP request frame (not IPv4: every example leaves it alone).
pub fn arp_frame() -> Vec<u8> {
    let mut frame = ethernet_header(0x0806);
    frame.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 10, 0, 1, 2]);
    frame.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 0, 1, 1]);
    frame
}

/// Whether the IPv4 header checksum of `ip` (an IPv4 packet) is right.
pub fn ipv4_checksum_ok(ip: &[u8]) -> bool {
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    internet_checksum(&ip[..header_len]) == 0
}

/// Whether the TCP, UDP or ICMP checksum of `ip` (an IPv4 packet, first
/// fragment) is right over the whole packet; a UDP checksum of 0 means none.
pub fn transport_checksum_ok(ip: &[u8]) -> bool {
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let transport = &ip[header_len..total];
    let source: [u8; 4] = ip[12..16].try_into().expect("4 bytes");
    let destination: [u8; 4] = ip[16..20].try_into().expect("4 bytes");
    match ip[9] {
        17 if transport[6..8] == [0, 0] => true,
        6 | 17 => {
            internet_checksum(&pseudo_header_and(&source, &destination, ip[9], transport)) == 0
        }
        1 => internet_checksum(transport) == 0,
        _ => true,
    }
}
