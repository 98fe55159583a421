//! Building the frames loadgen sends and recognising the replies to them.

use crate::probe::{PROBE_LEN, Probe};
use std::net::Ipv4Addr;

use wire::ethernet::{self, EtherType};
use wire::ipv4::{self, protocol};
use wire::{IcmpPacket, Ipv4Packet, UdpPacket, checksum, icmp, udp};

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = EtherType::IPV4.0;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = EtherType::ARP.0;
const ETHERNET_LEN: usize = ethernet::HEADER_LEN;
const IPV4_LEN: usize = ipv4::HEADER_LEN;
const UDP_LEN: usize = udp::HEADER_LEN;
const ICMP_LEN: usize = icmp::HEADER_LEN;
const PROTOCOL_ICMP: u8 = protocol::ICMP;
const PROTOCOL_UDP: u8 = protocol::UDP;

/// Who talks to whom on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    /// Our MAC (the interface's).
    pub source_mac: [u8; 6],
    /// The system under test's MAC.
    pub destination_mac: [u8; 6],
    /// The address we send from (and answer ARP for).
    pub source_ip: Ipv4Addr,
    /// The system under test.
    pub destination_ip: Ipv4Addr,
}

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// UDP datagrams to `port`; flow `f` uses source port `source_port + f`.
    Udp {
        /// Destination port (the echo service).
        port: u16,
        /// Source port of flow 0.
        source_port: u16,
    },
    /// ICMP echo requests; flow `f` uses identifier `identifier + f`.
    IcmpEcho {
        /// Identifier of flow 0.
        identifier: u16,
    },
}

/// A reply that answers one of our probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// The probe the payload carried back.
    pub probe: Probe,
    /// Which flow it belongs to.
    pub flow: u16,
}

/// Smallest payload that carries a probe.
pub const MIN_PAYLOAD: usize = PROBE_LEN;

fn write_ethernet(out: &mut Vec<u8>, destination: [u8; 6], source: [u8; 6], ethertype: u16) {
    out.extend_from_slice(&destination);
    out.extend_from_slice(&source);
    out.extend_from_slice(&ethertype.to_be_bytes());
}

/// Appends an IPv4 header with a valid checksum.
fn write_ipv4(out: &mut Vec<u8>, endpoints: &Endpoints, protocol: u8, payload_len: usize, id: u16) {
    let start = out.len();
    let total = (IPV4_LEN + payload_len) as u16;
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x40, 0, 64, protocol, 0, 0]);
    out.extend_from_slice(&endpoints.source_ip.octets());
    out.extend_from_slice(&endpoints.destination_ip.octets());
    Ipv4Packet::new_unchecked(&mut out[start..]).fill_checksum();
}

/// Builds the frame for `probe` on `flow` into `out` (cleared first), with
/// `payload_len` bytes of payload (at least [`MIN_PAYLOAD`]).
pub fn build(
    endpoints: &Endpoints,
    workload: Workload,
    flow: u16,
    payload_len: usize,
    probe: Probe,
    out: &mut Vec<u8>,
) {
    let payload_len = payload_len.max(MIN_PAYLOAD);
    out.clear();
    write_ethernet(
        out,
        endpoints.destination_mac,
        endpoints.source_mac,
        ETHERTYPE_IPV4,
    );
    let mut payload = vec![0u8; payload_len];
    probe.write(&mut payload);
    for (index, byte) in payload.iter_mut().enumerate().skip(PROBE_LEN) {
        *byte = index as u8;
    }
    let id = probe.sequence as u16;
    match workload {
        Workload::Udp { port, source_port } => {
            let udp_len = UDP_LEN + payload_len;
            write_ipv4(out, endpoints, PROTOCOL_UDP, udp_len, id);
            let start = out.len();
            out.extend_from_slice(&source_port.wrapping_add(flow).to_be_bytes());
            out.extend_from_slice(&port.to_be_bytes());
            out.extend_from_slice(&(udp_len as u16).to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&payload);
            UdpPacket::new_unchecked(&mut out[start..])
                .fill_checksum(endpoints.source_ip, endpoints.destination_ip);
        }
        Workload::IcmpEcho { identifier } => {
            write_ipv4(out, endpoints, PROTOCOL_ICMP, ICMP_LEN + payload_len, id);
            let start = out.len();
            out.extend_from_slice(&[8, 0, 0, 0]);
            out.extend_from_slice(&identifier.wrapping_add(flow).to_be_bytes());
            out.extend_from_slice(&(probe.sequence as u16).to_be_bytes());
            out.extend_from_slice(&payload);
            IcmpPacket::new_unchecked(&mut out[start..]).fill_checksum();
        }
    }
}

/// Where a probe's varying bytes lie in an Ethernet/IPv4 frame built by
/// [`build`] (a 20-byte IPv4 header, no options).
const IP_ID_AT: usize = ETHERNET_LEN + 4;
const IP_CHECKSUM_AT: usize = ETHERNET_LEN + 10;
const TRANSPORT_AT: usize = ETHERNET_LEN + IPV4_LEN;
const UDP_CHECKSUM_AT: usize = TRANSPORT_AT + 6;
const ICMP_CHECKSUM_AT: usize = TRANSPORT_AT + 2;
const ICMP_SEQUENCE_AT: usize = TRANSPORT_AT + 6;
/// The probe's sequence and send time (its run id is the template's).
const UDP_PROBE_AT: usize = TRANSPORT_AT + UDP_LEN;
const ICMP_PROBE_AT: usize = TRANSPORT_AT + ICMP_LEN;

/// The frame of every probe of one flow, built once: a probe copies it and
/// patches only what differs (the probe's sequence and send time, the IPv4
/// identification, the ICMP sequence) and the two checksums, from the
/// template's one's-complement sums plus the patched words. The bytes are
/// exactly [`build`]'s (tested).
#[derive(Debug, Clone)]
pub struct ProbeTemplate {
    bytes: Vec<u8>,
    /// The IPv4 header's sum with identification and checksum zero.
    ip_sum: u64,
    /// The transport checksum's sum (UDP: with its pseudo header) with the
    /// varying words and the checksum zero.
    transport_sum: u64,
    icmp: bool,
}

/// Adds a 64-bit big-endian field as four 16-bit words.
fn add_words(accumulator: u64, value: u64) -> u64 {
    accumulator
        + (value >> 48)
        + ((value >> 32) & 0xffff)
        + ((value >> 16) & 0xffff)
        + (value & 0xffff)
}

impl ProbeTemplate {
    /// The template of `flow`'s probes of run `run_id` (payload as
    /// [`build`] makes it).
    pub fn new(
        endpoints: &Endpoints,
        workload: Workload,
        flow: u16,
        payload_len: usize,
        run_id: u32,
    ) -> Self {
        let mut bytes = Vec::new();
        let probe = Probe {
            run_id,
            sequence: 0,
            sent_ns: 0,
        };
        build(endpoints, workload, flow, payload_len, probe, &mut bytes);
        let icmp = matches!(workload, Workload::IcmpEcho { .. });
        bytes[IP_CHECKSUM_AT..IP_CHECKSUM_AT + 2].fill(0);
        let ip_sum = u64::from(checksum::fold(checksum::sum(
            &bytes[ETHERNET_LEN..TRANSPORT_AT],
            0,
        )));
        let transport_sum = if icmp {
            bytes[ICMP_CHECKSUM_AT..ICMP_CHECKSUM_AT + 2].fill(0);
            checksum::sum(&bytes[TRANSPORT_AT..], 0)
        } else {
            bytes[UDP_CHECKSUM_AT..UDP_CHECKSUM_AT + 2].fill(0);
            let length = (bytes.len() - TRANSPORT_AT) as u16;
            checksum::sum(
                &bytes[TRANSPORT_AT..],
                checksum::pseudo_header(
                    endpoints.source_ip,
                    endpoints.destination_ip,
                    PROTOCOL_UDP,
                    length,
                ),
            )
        };
        Self {
            bytes,
            ip_sum,
            transport_sum: u64::from(checksum::fold(transport_sum)),
            icmp,
        }
    }

    /// Writes probe `sequence`, sent at `sent_ns`, into `out` (cleared
    /// first).
    pub fn write(&self, sequence: u64, sent_ns: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.bytes);
        let id = sequence as u16;
        out[IP_ID_AT..IP_ID_AT + 2].copy_from_slice(&id.to_be_bytes());
        let ip_checksum = !checksum::fold(self.ip_sum + u64::from(id));
        out[IP_CHECKSUM_AT..IP_CHECKSUM_AT + 2].copy_from_slice(&ip_checksum.to_be_bytes());
        let probe_at = if self.icmp {
            ICMP_PROBE_AT
        } else {
            UDP_PROBE_AT
        };
        out[probe_at + 8..probe_at + 16].copy_from_slice(&sequence.to_be_bytes());
        out[probe_at + 16..probe_at + 24].copy_from_slice(&sent_ns.to_be_bytes());
        let mut sum = add_words(add_words(self.transport_sum, sequence), sent_ns);
        if self.icmp {
            out[ICMP_SEQUENCE_AT..ICMP_SEQUENCE_AT + 2].copy_from_slice(&id.to_be_bytes());
            sum += u64::from(id);
            let value = !checksum::fold(sum);
            out[ICMP_CHECKSUM_AT..ICMP_CHECKSUM_AT + 2].copy_from_slice(&value.to_be_bytes());
        } else {
            // UDP sends a computed 0 as all ones (0 means "no checksum").
            let value = match !checksum::fold(sum) {
                0 => 0xffff,
                value => value,
            };
            out[UDP_CHECKSUM_AT..UDP_CHECKSUM_AT + 2].copy_from_slice(&value.to_be_bytes());
        }
    }
}

/// The IPv4 protocol and transport bytes of `frame`, if it is a well-formed
/// Ethernet/IPv4 frame to `mac` from `source` to `destination`.
fn ipv4_envelope(
    frame: &[u8],
    mac: [u8; 6],
    source: Ipv4Addr,
    destination: Ipv4Addr,
) -> Option<(u8, &[u8])> {
    if frame.len() < ETHERNET_LEN
        || frame[..6] != mac
        || u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4
    {
        return None;
    }
    let ip_bytes = &frame[ETHERNET_LEN..];
    let ip = Ipv4Packet::new_checked(ip_bytes).ok()?;
    if ip.source() != source || ip.destination() != destination {
        return None;
    }
    Some((
        ip.protocol(),
        &ip_bytes[ip.header_len()..usize::from(ip.total_len())],
    ))
}

/// Recognises a reply to one of our probes: from the system under test, to
/// us, of the workload's protocol, carrying a probe. Anything else is `None`.
pub fn parse_reply(
    frame: &[u8],
    endpoints: &Endpoints,
    workload: Workload,
    flows: u16,
) -> Option<Reply> {
    let (protocol, transport) = ipv4_envelope(
        frame,
        endpoints.source_mac,
        endpoints.destination_ip,
        endpoints.source_ip,
    )?;
    let (flow, payload) = match workload {
        Workload::Udp { port, source_port } => {
            if protocol != PROTOCOL_UDP || transport.len() < UDP_LEN {
                return None;
            }
            let from = u16::from_be_bytes([transport[0], transport[1]]);
            let to = u16::from_be_bytes([transport[2], transport[3]]);
            (from == port).then_some(())?;
            (to.wrapping_sub(source_port), &transport[UDP_LEN..])
        }
        Workload::IcmpEcho { identifier } => {
            if protocol != PROTOCOL_ICMP || transport.len() < ICMP_LEN || transport[0] != 0 {
                return None;
            }
            let id = u16::from_be_bytes([transport[4], transport[5]]);
            (id.wrapping_sub(identifier), &transport[ICMP_LEN..])
        }
    };
    if flow >= flows {
        return None;
    }
    Some(Reply {
        probe: Probe::read(payload)?,
        flow,
    })
}

/// Recognises one of our probes forwarded by a router: on the receiving
/// interface (`receiver_mac`), still from `source_ip` to `destination_ip`,
/// with the workload's protocol and ports. Anything else is `None`.
pub fn parse_forwarded(
    frame: &[u8],
    receiver_mac: [u8; 6],
    endpoints: &Endpoints,
    workload: Workload,
    flows: u16,
) -> Option<Reply> {
    let Workload::Udp { port, source_port } = workload else {
        return None;
    };
    let (protocol, udp) = ipv4_envelope(
        frame,
        receiver_mac,
        endpoints.source_ip,
        endpoints.destination_ip,
    )?;
    if protocol != PROTOCOL_UDP || udp.len() < UDP_LEN {
        return None;
    }
    if u16::from_be_bytes([udp[2], udp[3]]) != port {
        return None;
    }
    let flow = u16::from_be_bytes([udp[0], udp[1]]).wrapping_sub(source_port);
    if flow >= flows {
        return None;
    }
    Some(Reply {
        probe: Probe::read(&udp[UDP_LEN..])?,
        flow,
    })
}

/// How the probes of a run spread over UDP 5-tuples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowSpread {
    /// Probe `s` travels on flow `f = s % flows`: the same few 5-tuples
    /// over and over (established flows in a firewall, NAT or load
    /// balancer), flow `f` to destination port `port + f %
    /// destination_ports` (so that 10 000 flows through a masquerade do
    /// not need 10 000 outside ports towards one destination).
    RoundRobin {
        /// Destination ports the flows spread over, from `port` up.
        destination_ports: u16,
    },
    /// Every probe opens a 5-tuple of its own (new flows per second):
    /// probe `s` leaves from source port `1024 + s % 64000` of source
    /// address `source_ip + (s / 64000) % 64` (4 096 000 tuples before one
    /// repeats) to destination port `port + s % destination_ports`
    /// (spreading the flows over destination ports lets a NAT reuse its
    /// outside ports, as Linux's masquerade and warpcore's `nat` both do
    /// per destination).
    NewPerProbe {
        /// Destination ports the flows spread over, from `port` up.
        destination_ports: u16,
    },
}

impl Default for FlowSpread {
    /// Round robin over the flows, all to one destination port.
    fn default() -> Self {
        FlowSpread::RoundRobin {
            destination_ports: 1,
        }
    }
}

/// Source ports one source address takes in [`FlowSpread::NewPerProbe`].
const NEW_FLOW_PORTS: u64 = 64_000;
/// The first of them.
const NEW_FLOW_FIRST_PORT: u16 = 1024;
/// Source addresses [`FlowSpread::NewPerProbe`] cycles through.
const NEW_FLOW_ADDRESSES: u64 = 64;

/// The addresses, workload and flow number probe `sequence` is built with.
pub fn tuple_for(
    endpoints: &Endpoints,
    workload: Workload,
    flows: u16,
    spread: FlowSpread,
    sequence: u64,
) -> (Endpoints, Workload, u16) {
    match (spread, workload) {
        (FlowSpread::NewPerProbe { destination_ports }, Workload::Udp { port, .. }) => {
            let address = (sequence / NEW_FLOW_PORTS) % NEW_FLOW_ADDRESSES;
            let source_ip =
                Ipv4Addr::from(u32::from(endpoints.source_ip).wrapping_add(address as u32));
            let port = port.wrapping_add((sequence % u64::from(destination_ports.max(1))) as u16);
            (
                Endpoints {
                    source_ip,
                    ..*endpoints
                },
                Workload::Udp {
                    port,
                    source_port: NEW_FLOW_FIRST_PORT,
                },
                (sequence % NEW_FLOW_PORTS) as u16,
            )
        }
        (FlowSpread::RoundRobin { destination_ports }, Workload::Udp { port, source_port })
            if destination_ports > 1 =>
        {
            let flow = (sequence % u64::from(flows.max(1))) as u16;
            let port = port.wrapping_add(flow % destination_ports);
            (*endpoints, Workload::Udp { port, source_port }, flow)
        }
        _ => (
            *endpoints,
            workload,
            (sequence % u64::from(flows.max(1))) as u16,
        ),
    }
}

/// What a probe looks like when it comes out of a system that translates
/// addresses (a NAT, a load balancer): recognised by the probe in its UDP
/// payload rather than by its ports, which the system rewrote.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TranslatedMatch {
    /// The source address the probes leave with (a masquerade's outside
    /// address); `None`: any.
    pub source: Option<Ipv4Addr>,
    /// The destination addresses they leave with (a load balancer's
    /// backends); empty: the run's destination.
    pub destinations: Vec<Ipv4Addr>,
}

/// Recognises one of our UDP probes forwarded and translated: on the
/// receiving interface (`receiver_mac`), from `expected.source` (when
/// given) to one of `expected.destinations` (or `endpoints.destination_ip`),
/// any ports, carrying a probe. Its flow is the one the probe was sent on
/// (`sequence % flows`). Anything else is `None`.
pub fn parse_translated(
    frame: &[u8],
    receiver_mac: [u8; 6],
    endpoints: &Endpoints,
    expected: &TranslatedMatch,
    flows: u16,
) -> Option<Reply> {
    if frame.len() < ETHERNET_LEN
        || frame[..6] != receiver_mac
        || u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4
    {
        return None;
    }
    let ip_bytes = &frame[ETHERNET_LEN..];
    let ip = Ipv4Packet::new_checked(ip_bytes).ok()?;
    if ip.protocol() != PROTOCOL_UDP || expected.source.is_some_and(|source| ip.source() != source)
    {
        return None;
    }
    let destination = ip.destination();
    let known = if expected.destinations.is_empty() {
        destination == endpoints.destination_ip
    } else {
        expected.destinations.contains(&destination)
    };
    if !known {
        return None;
    }
    let udp = &ip_bytes[ip.header_len()..usize::from(ip.total_len())];
    let probe = Probe::read(udp.get(UDP_LEN..)?)?;
    Some(Reply {
        probe,
        flow: (probe.sequence % u64::from(flows.max(1))) as u16,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints() -> Endpoints {
        Endpoints {
            source_mac: [2, 0, 0, 0, 0, 0x10],
            destination_mac: [2, 0, 0, 0, 0, 1],
            source_ip: Ipv4Addr::new(10, 0, 0, 100),
            destination_ip: Ipv4Addr::new(10, 0, 0, 2),
        }
    }

    /// Turns a request into the reply an echo server would send.
    fn reflect(frame: &[u8]) -> Vec<u8> {
        let mut reply = frame.to_vec();
        reply[..6].copy_from_slice(&frame[6..12]);
        reply[6..12].copy_from_slice(&frame[..6]);
        reply[26..30].copy_from_slice(&frame[30..34]);
        reply[30..34].copy_from_slice(&frame[26..30]);
        if frame[23] == PROTOCOL_UDP {
            reply[34..36].copy_from_slice(&frame[36..38]);
            reply[36..38].copy_from_slice(&frame[34..36]);
        } else {
            reply[34] = 0;
        }
        reply
    }

    /// A template-patched probe is byte for byte the frame `build` makes,
    /// for UDP and ICMP, odd and even payloads, every flow, and sequences
    /// and times whose words carry (all ones, wrap-arounds), so both
    /// checksums, the all-ones UDP zero included, are right.
    #[test]
    fn templates_patch_exactly_what_build_writes() {
        let workloads = [
            Workload::Udp {
                port: 7,
                source_port: 40000,
            },
            Workload::IcmpEcho { identifier: 0x1234 },
        ];
        let mut values = vec![0, 1, 0xffff, 0x1_0000, u64::MAX, 1 << 40, 0xffff_0000_ffff];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            values.push(state);
        }
        let (mut built, mut patched) = (Vec::new(), Vec::new());
        let mut udp_zero_seen = false;
        for workload in workloads {
            for payload_len in [MIN_PAYLOAD, 64, 101] {
                for flow in 0..3 {
                    let template =
                        ProbeTemplate::new(&endpoints(), workload, flow, payload_len, 77);
                    for (index, &sequence) in values.iter().enumerate() {
                        let sent_ns = values[(index * 7 + 3) % values.len()];
                        let probe = Probe {
                            run_id: 77,
                            sequence,
                            sent_ns,
                        };
                        build(&endpoints(), workload, flow, payload_len, probe, &mut built);
                        template.write(sequence, sent_ns, &mut patched);
                        assert_eq!(
                            patched, built,
                            "{workload:?} flow {flow} sequence {sequence}"
                        );
                        udp_zero_seen |= built[23] == PROTOCOL_UDP && built[40..42] == [0xff, 0xff];
                    }
                }
            }
        }
        // Whether or not these values hit a computed zero, the ones that
        // reach one must match too: look for one on purpose.
        let template = ProbeTemplate::new(&endpoints(), workloads[0], 0, 64, 77);
        for sequence in 0..=0xffffu64 {
            template.write(sequence, 0, &mut patched);
            if patched[40..42] == [0xff, 0xff] {
                let probe = Probe {
                    run_id: 77,
                    sequence,
                    sent_ns: 0,
                };
                build(&endpoints(), workloads[0], 0, 64, probe, &mut built);
                assert_eq!(patched, built, "the UDP checksum that computes to 0");
                udp_zero_seen = true;
                break;
            }
        }
        assert!(udp_zero_seen, "no sequence made the UDP checksum 0");
    }

    #[test]
    fn udp_frames_are_valid_and_replies_match() {
        let probe = Probe {
            run_id: 1,
            sequence: 5,
            sent_ns: 99,
        };
        let workload = Workload::Udp {
            port: 7,
            source_port: 40000,
        };
        let mut frame = Vec::new();
        build(&endpoints(), workload, 3, 64, probe, &mut frame);
        assert_eq!(frame.len(), 14 + 20 + 8 + 64);
        // IPv4 header checksum verifies to zero.
        assert_eq!(wire::checksum::checksum(&frame[14..34]), 0);
        // UDP checksum verifies over the pseudo-header.
        let mut pseudo = frame[26..34].to_vec();
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&frame[38..40]);
        pseudo.extend_from_slice(&frame[34..]);
        assert_eq!(wire::checksum::checksum(&pseudo), 0);
        assert_eq!(u16::from_be_bytes([frame[34], frame[35]]), 40003);

        let reply = reflect(&frame);
        assert_eq!(
            parse_reply(&reply, &endpoints(), workload, 4),
            Some(Reply { probe, flow: 3 })
        );
        // Our own request, a flow out of range, and a short frame are not replies.
        assert_eq!(parse_reply(&frame, &endpoints(), workload, 4), None);
        assert_eq!(parse_reply(&reply, &endpoints(), workload, 3), None);
        assert_eq!(parse_reply(&reply[..30], &endpoints(), workload, 4), None);
    }

    #[test]
    fn forwarded_frames_match_on_the_receiving_side() {
        let probe = Probe {
            run_id: 3,
            sequence: 9,
            sent_ns: 5,
        };
        let workload = Workload::Udp {
            port: 9,
            source_port: 40000,
        };
        let mut frame = Vec::new();
        build(&endpoints(), workload, 2, 64, probe, &mut frame);
        // The router rewrites the MACs and decrements the TTL.
        let receiver = [2, 0, 0, 0, 0, 0x20];
        frame[..6].copy_from_slice(&receiver);
        frame[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        frame[22] -= 1;
        assert_eq!(
            parse_forwarded(&frame, receiver, &endpoints(), workload, 4),
            Some(Reply { probe, flow: 2 })
        );
        assert_eq!(
            parse_forwarded(&frame, [9; 6], &endpoints(), workload, 4),
            None
        );
        assert_eq!(
            parse_forwarded(&reflect(&frame), receiver, &endpoints(), workload, 4),
            None
        );
        let icmp = Workload::IcmpEcho { identifier: 1 };
        assert_eq!(
            parse_forwarded(&frame, receiver, &endpoints(), icmp, 4),
            None
        );
    }

    #[test]
    fn icmp_echo_frames_are_valid_and_replies_match() {
        let probe = Probe {
            run_id: 2,
            sequence: 70_000,
            sent_ns: 1,
        };
        let workload = Workload::IcmpEcho { identifier: 0x100 };
        let mut frame = Vec::new();
        build(&endpoints(), workload, 1, 10, probe, &mut frame);
        assert_eq!(frame.len(), 14 + 20 + 8 + MIN_PAYLOAD);
        assert_eq!(wire::checksum::checksum(&frame[34..]), 0);
        let reply = reflect(&frame);
        assert_eq!(
            parse_reply(&reply, &endpoints(), workload, 2),
            Some(Reply { probe, flow: 1 })
        );
        assert_eq!(
            parse_reply(
                &reply,
                &endpoints(),
                Workload::Udp {
                    port: 7,
                    source_port: 1
                },
                2
            ),
            None
        );
    }
    #[test]
    fn new_flow_per_probe_never_repeats_a_tuple_within_a_cycle() {
        let workload = Workload::Udp {
            port: 7,
            source_port: 40000,
        };
        let spread = FlowSpread::NewPerProbe {
            destination_ports: 40,
        };
        let mut seen = std::collections::HashSet::new();
        for sequence in (0..200_000).chain([4_095_999]) {
            let (ends, work, flow) = tuple_for(&endpoints(), workload, 4, spread, sequence);
            let Workload::Udp { port, source_port } = work else {
                panic!("UDP stays UDP");
            };
            assert!((7..47).contains(&port));
            assert!(seen.insert((ends.source_ip, source_port.wrapping_add(flow), port)));
        }
        let (ends, _, _) = tuple_for(&endpoints(), workload, 4, spread, 4_095_999);
        assert_eq!(ends.source_ip, Ipv4Addr::new(10, 0, 0, 163));
        // The round robin keeps the run's flows.
        assert_eq!(
            tuple_for(&endpoints(), workload, 4, FlowSpread::default(), 6),
            (endpoints(), workload, 2)
        );
        // Spread over destination ports, flow f goes to port 7 + f % 3.
        let spread = FlowSpread::RoundRobin {
            destination_ports: 3,
        };
        let (_, work, flow) = tuple_for(&endpoints(), workload, 4, spread, 6);
        assert_eq!(flow, 2);
        assert_eq!(
            work,
            Workload::Udp {
                port: 9,
                source_port: 40000
            }
        );
    }

    #[test]
    fn translated_probes_match_by_payload() {
        let probe = Probe {
            run_id: 4,
            sequence: 10,
            sent_ns: 1,
        };
        let workload = Workload::Udp {
            port: 80,
            source_port: 40000,
        };
        let mut frame = Vec::new();
        build(&endpoints(), workload, 2, 64, probe, &mut frame);
        let receiver = [2, 0, 0, 0, 0, 0x20];
        frame[..6].copy_from_slice(&receiver);
        // A masquerade: the source becomes 10.0.2.1:20001.
        frame[26..30].copy_from_slice(&[10, 0, 2, 1]);
        frame[34..36].copy_from_slice(&20001u16.to_be_bytes());
        Ipv4Packet::new_unchecked(&mut frame[14..]).fill_checksum();
        let masquerade = TranslatedMatch {
            source: Some(Ipv4Addr::new(10, 0, 2, 1)),
            destinations: Vec::new(),
        };
        assert_eq!(
            parse_translated(&frame, receiver, &endpoints(), &masquerade, 4),
            Some(Reply { probe, flow: 2 })
        );
        // The untranslated parser no longer knows it.
        assert_eq!(
            parse_forwarded(&frame, receiver, &endpoints(), workload, 4),
            None
        );
        // A load balancer: the destination becomes a backend.
        frame[30..34].copy_from_slice(&[10, 0, 2, 3]);
        Ipv4Packet::new_unchecked(&mut frame[14..]).fill_checksum();
        let backends = TranslatedMatch {
            source: None,
            destinations: vec![Ipv4Addr::new(10, 0, 2, 2), Ipv4Addr::new(10, 0, 2, 3)],
        };
        assert!(parse_translated(&frame, receiver, &endpoints(), &backends, 4).is_some());
        assert_eq!(
            parse_translated(&frame, receiver, &endpoints(), &masquerade, 4),
            None
        );
        // Not to us, not a probe, truncated: refused without a panic.
        assert_eq!(
            parse_translated(&frame, [9; 6], &endpoints(), &backends, 4),
            None
        );
        let mut foreign = frame.clone();
        foreign[42] = b'X';
        assert_eq!(
            parse_translated(&foreign, receiver, &endpoints(), &backends, 4),
            None
        );
        for length in 0..frame.len() {
            let _ = parse_translated(&frame[..length], receiver, &endpoints(), &backends, 4);
        }
    }
}
