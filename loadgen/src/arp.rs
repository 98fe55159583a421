//! ARP for loadgen: finding the system under test's MAC, and answering ARP
//! for the address loadgen sends from (which the host kernel does not own).

use crate::frame::ETHERTYPE_ARP;
use crate::port::FramePort;
use crate::socket::FRAME_BUFFER;
use anyhow::{Result, bail};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const OPERATION_REQUEST: u16 = 1;
const OPERATION_REPLY: u16 = 2;
const ARP_FRAME_LEN: usize = 42;

/// An ARP packet's fields that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub operation: u16,
    /// Sender hardware address.
    pub sender_mac: [u8; 6],
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

/// Builds an Ethernet/ARP frame.
pub fn build(
    operation: u16,
    source_mac: [u8; 6],
    source_ip: Ipv4Addr,
    destination_mac: [u8; 6],
    target_ip: Ipv4Addr,
) -> Vec<u8> {
    let mut frame = Vec::with_capacity(ARP_FRAME_LEN);
    let ethernet_destination = if operation == OPERATION_REQUEST {
        [0xff; 6]
    } else {
        destination_mac
    };
    frame.extend_from_slice(&ethernet_destination);
    frame.extend_from_slice(&source_mac);
    frame.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    frame.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    frame.extend_from_slice(&operation.to_be_bytes());
    frame.extend_from_slice(&source_mac);
    frame.extend_from_slice(&source_ip.octets());
    let target_mac = if operation == OPERATION_REQUEST {
        [0; 6]
    } else {
        destination_mac
    };
    frame.extend_from_slice(&target_mac);
    frame.extend_from_slice(&target_ip.octets());
    frame
}

/// Parses an Ethernet/ARP frame for IPv4 over Ethernet.
pub fn parse(frame: &[u8]) -> Option<Arp> {
    if frame.len() < ARP_FRAME_LEN
        || u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_ARP
        || frame[14..20] != [0, 1, 8, 0, 6, 4]
    {
        return None;
    }
    let octets = |at: usize| Ipv4Addr::new(frame[at], frame[at + 1], frame[at + 2], frame[at + 3]);
    Some(Arp {
        operation: u16::from_be_bytes([frame[20], frame[21]]),
        sender_mac: frame[22..28].try_into().ok()?,
        sender_ip: octets(28),
        target_ip: octets(38),
    })
}

/// The reply to `frame` if it is an ARP request for `our_ip`.
pub fn answer(frame: &[u8], our_mac: [u8; 6], our_ip: Ipv4Addr) -> Option<Vec<u8>> {
    let request = parse(frame)?;
    (request.operation == OPERATION_REQUEST && request.target_ip == our_ip).then(|| {
        build(
            OPERATION_REPLY,
            our_mac,
            our_ip,
            request.sender_mac,
            request.sender_ip,
        )
    })
}

/// Asks for `target`'s MAC from `source_mac`/`source_ip`, retrying every
/// 200 ms until `timeout`; answers ARP for `source_ip` meanwhile.
pub fn resolve<P: FramePort>(
    socket: &P,
    source_mac: [u8; 6],
    source_ip: Ipv4Addr,
    target: Ipv4Addr,
    timeout: Duration,
) -> Result<[u8; 6]> {
    let request = build(OPERATION_REQUEST, source_mac, source_ip, [0; 6], target);
    let deadline = Instant::now() + timeout;
    let mut buffers = vec![[0u8; FRAME_BUFFER]; 16];
    let mut lengths = vec![0usize; 16];
    let mut next_request = Instant::now();
    while Instant::now() < deadline {
        if Instant::now() >= next_request {
            socket.send_batch(std::slice::from_ref(&request))?;
            next_request = Instant::now() + Duration::from_millis(200);
        }
        let count = socket.recv_batch(&mut buffers, &mut lengths)?;
        for (buffer, &length) in buffers.iter().zip(&lengths).take(count) {
            let frame = &buffer[..length];
            if let Some(reply) = answer(frame, source_mac, source_ip) {
                socket.send_batch(&[reply])?;
            }
            match parse(frame) {
                Some(arp) if arp.operation == OPERATION_REPLY && arp.sender_ip == target => {
                    return Ok(arp.sender_mac);
                }
                _ => {}
            }
        }
        if count == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    bail!(
        "no ARP reply from {target} on {} within {timeout:?}",
        socket.describe()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_get_answered_only_for_us() {
        let ours = Ipv4Addr::new(10, 0, 0, 100);
        let request = build(
            OPERATION_REQUEST,
            [2, 0, 0, 0, 0, 1],
            Ipv4Addr::new(10, 0, 0, 2),
            [0; 6],
            ours,
        );
        assert_eq!(request.len(), ARP_FRAME_LEN);
        assert_eq!(request[..6], [0xff; 6]);
        let reply = answer(&request, [2, 0, 0, 0, 0, 0x10], ours).unwrap();
        let parsed = parse(&reply).unwrap();
        assert_eq!(parsed.operation, OPERATION_REPLY);
        assert_eq!(parsed.sender_mac, [2, 0, 0, 0, 0, 0x10]);
        assert_eq!(parsed.target_ip, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(reply[..6], [2, 0, 0, 0, 0, 1]);
        assert!(answer(&request, [2; 6], Ipv4Addr::new(10, 0, 0, 101)).is_none());
        assert!(answer(&reply, [2; 6], ours).is_none());
        assert!(parse(&request[..41]).is_none());
    }
}
