//! Services spliced in at hook points, end to end on loopback NICs: the
//! example `port-filter` from outside the core, kinds defined right here,
//! chains of services at one hook point, and graphs the builder refuses.

mod support;

use control::{CoreLinks, PipelineError, Spec, build_core};
use dataplane::{Batch, LoopbackNic, Mempool, Nanoservice, Nic, Outputs, Verdict, drop_reasons};
use port_filter::PortFilterKind;
use serde::Deserialize;
use services::registry::{BuildContext, ServiceKind};
use services::wire::ethernet::EthernetFrame;
use services::wire::{Ipv4Packet, UdpPacket};
use services::{HookPoint, Registry};
use support::*;

const INTERFACE: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"loopback\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n";

fn registry() -> Registry {
    let mut registry = Registry::with_builtin();
    registry
        .register::<PortFilterKind>()
        .unwrap()
        .register::<EtherEchoKind>()
        .unwrap()
        .register::<SinkKind>()
        .unwrap()
        .register::<SidewaysKind>()
        .unwrap();
    registry
}

/// A UDP request from the peer to `port`.
fn request(port: u16) -> Vec<u8> {
    udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (40000, port), 64, b"ping")
}

/// Sends a request to `port` and says whether it came back echoed (not
/// dropped, not answered with an ICMP error).
fn echoed(harness: &mut Harness, port: u16) -> bool {
    let Some(reply) = harness.exchange(0, &request(port)) else {
        return false;
    };
    let frame = EthernetFrame::new_checked(&reply[..]).unwrap();
    let ip = Ipv4Packet::new_checked(frame.payload()).unwrap();
    if ip.protocol() != 17 {
        return false;
    }
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(udp.source_port(), port);
    assert_eq!(udp.payload(), b"ping");
    true
}

#[test]
fn the_example_port_filter_drops_blocked_ports_in_front_of_udp() {
    let spec = format!(
        "{INTERFACE}[[service]]\nkind = \"udp-echo\"\nport = 7\n\
         [[service]]\nkind = \"udp-echo\"\nport = 9\n\
         [[service]]\nkind = \"port-filter\"\nblock = [9]\n"
    );
    let mut harness = Harness::with_registry(&spec, &registry());
    harness.learn((PEER, PEER_IP));
    assert!(echoed(&mut harness, 7));
    assert!(!echoed(&mut harness, 9));
    assert!(echoed(&mut harness, 7));
    let counters = harness.counters();
    assert_eq!(counters.node_drops("port-filter", "blocked"), 1);
    assert_eq!(counters.node_drops("udp", "port-closed"), 0);
    let udp = counters
        .nodes
        .iter()
        .find(|node| node.name == "udp")
        .unwrap();
    assert_eq!(udp.received.get(), 2, "only the passed datagrams reach udp");
}

#[test]
fn services_at_one_hook_point_chain_in_spec_order() {
    let spec = format!(
        "{INTERFACE}[[service]]\nkind = \"udp-echo\"\nport = 7\n\
         [[service]]\nkind = \"udp-echo\"\nport = 9\n\
         [[service]]\nkind = \"udp-echo\"\nport = 19\n\
         [[service]]\nkind = \"port-filter\"\nblock = [9]\n\
         [[service]]\nkind = \"port-filter\"\nblock = [19]\n"
    );
    let mut harness = Harness::with_registry(&spec, &registry());
    harness.learn((PEER, PEER_IP));
    assert!(!echoed(&mut harness, 9));
    assert!(!echoed(&mut harness, 19));
    assert!(echoed(&mut harness, 7));
    let counters = harness.counters();
    let filters: Vec<(u64, u64)> = counters
        .nodes
        .iter()
        .filter(|node| node.name == "port-filter")
        .map(|node| (node.received.get(), node.drops_named("blocked").unwrap()))
        .collect();
    // The first sees all three and blocks 9; the second sees 19 and 7.
    assert_eq!(filters, vec![(3, 1), (2, 1)]);
}

#[test]
fn attach_in_the_spec_overrides_the_kinds_own_hook_point() {
    let spec =
        format!("{INTERFACE}[[service]]\nkind = \"udp-echo\"\nport = 7\nattach = \"udp:9\"\n");
    let mut harness = Harness::with_registry(&spec, &registry());
    harness.learn((PEER, PEER_IP));
    assert!(echoed(&mut harness, 9));
    assert!(!echoed(&mut harness, 7), "port 7 is answered with ICMP");
    assert_eq!(harness.counters().node_drops("udp", "port-closed"), 1);
}

drop_reasons! {
    /// Why the test sink drops.
    SinkDrop {
        /// Every packet it gets.
        Seen = "seen",
    }
}

/// A node with one job for the tests below.
struct TestNode {
    name: &'static str,
    outputs: &'static [&'static str],
}

impl Nanoservice for TestNode {
    fn name(&self) -> &'static str {
        self.name
    }

    fn outputs(&self) -> &'static [&'static str] {
        self.outputs
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        SinkDrop::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        let reflect = self.outputs.contains(&"out");
        out.dispatch(batch, |packet, _| {
            if !reflect {
                return Verdict::drop(SinkDrop::Seen);
            }
            // Swap the MAC addresses and send the frame back.
            let bytes = packet.payload_mut();
            let (destination, source) = bytes[..12].split_at_mut(6);
            destination.swap_with_slice(source);
            Verdict::emit(0)
        });
    }
}

/// No settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoConfig {}

/// Reflects frames of EtherType 0x88b5 (IEEE local experimental).
struct EtherEchoKind;

impl ServiceKind for EtherEchoKind {
    const NAME: &'static str = "ether-echo";
    type Config = NoConfig;

    fn attach(_config: &NoConfig) -> Vec<HookPoint> {
        vec![HookPoint::Ethertype(0x88b5)]
    }

    fn build(_config: &NoConfig, context: &BuildContext<'_>) -> Box<dyn Nanoservice> {
        assert_eq!(
            context.interface,
            Some(0),
            "a per-port hook point names its port"
        );
        Box::new(TestNode {
            name: "ether-echo",
            outputs: &["out"],
        })
    }
}

/// Drops and counts everything; attach it where the test needs.
struct SinkKind;

impl ServiceKind for SinkKind {
    const NAME: &'static str = "sink";
    type Config = NoConfig;

    fn attach(_config: &NoConfig) -> Vec<HookPoint> {
        vec![HookPoint::Ipv4Protocol(6)]
    }

    fn build(_config: &NoConfig, _context: &BuildContext<'_>) -> Box<dyn Nanoservice> {
        Box::new(TestNode {
            name: "sink",
            outputs: &[],
        })
    }
}

/// Has an output no hook point binds.
struct SidewaysKind;

impl ServiceKind for SidewaysKind {
    const NAME: &'static str = "sideways";
    type Config = NoConfig;

    fn attach(_config: &NoConfig) -> Vec<HookPoint> {
        vec![HookPoint::Udp(5)]
    }

    fn build(_config: &NoConfig, _context: &BuildContext<'_>) -> Box<dyn Nanoservice> {
        Box::new(TestNode {
            name: "sideways",
            outputs: &["sideways"],
        })
    }
}

#[test]
fn an_ethertype_hook_gets_whole_frames_and_transmits_on_its_port() {
    let spec = format!("{INTERFACE}[[service]]\nkind = \"ether-echo\"\n");
    let mut harness = Harness::with_registry(&spec, &registry());
    let mut frame = vec![0u8; 60];
    frame[..6].copy_from_slice(&OURS.0);
    frame[6..12].copy_from_slice(&PEER.0);
    frame[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    frame[14..18].copy_from_slice(b"warp");
    let reply = harness.exchange(0, &frame).expect("reflected");
    assert_eq!(&reply[..6], &PEER.0);
    assert_eq!(&reply[6..12], &OURS.0);
    assert_eq!(&reply[12..], &frame[12..]);
    // Another unknown EtherType is still dropped and counted.
    frame[12..14].copy_from_slice(&0x88b6u16.to_be_bytes());
    assert!(harness.exchange(0, &frame).is_none());
    assert_eq!(harness.counters().node_drops("eth", "unknown-ethertype"), 1);
}

#[test]
fn a_protocol_hook_takes_what_would_be_an_unknown_protocol() {
    let spec = format!("{INTERFACE}[[service]]\nkind = \"sink\"\n");
    let mut harness = Harness::with_registry(&spec, &registry());
    harness.learn((PEER, PEER_IP));
    let mut tcp = udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (1, 2), 64, b"x");
    tcp[14 + 9] = 6;
    tcp[14 + 10..14 + 12].fill(0);
    let checksum = services::wire::checksum::checksum(&tcp[14..34]);
    tcp[14 + 10..14 + 12].copy_from_slice(&checksum.to_be_bytes());
    assert!(harness.exchange(0, &tcp).is_none());
    let mut gre = tcp.clone();
    gre[14 + 9] = 47;
    gre[14 + 10..14 + 12].fill(0);
    let checksum = services::wire::checksum::checksum(&gre[14..34]);
    gre[14 + 10..14 + 12].copy_from_slice(&checksum.to_be_bytes());
    // Nobody takes GRE: ICMP protocol unreachable, quoting its header.
    let error = harness.exchange(0, &gre).expect("protocol unreachable");
    assert_eq!(&error[..6], &PEER.0);
    assert_eq!((error[14 + 20], error[14 + 21]), (3, 2));
    assert_eq!(&error[14 + 28..], &gre[14..14 + 28]);
    let counters = harness.counters();
    assert_eq!(counters.node_drops("sink", "seen"), 1);
    assert_eq!(counters.node_drops("ipv4", "unknown-protocol"), 1);
}

fn build(spec: &str) -> Result<(), PipelineError> {
    let spec = Spec::parse(spec, &registry()).unwrap();
    let pool = Mempool::with_heap(64, 128).unwrap();
    let nic = Box::new(LoopbackNic::new(OURS, 8)) as Box<dyn Nic>;
    build_core(&spec, 0, vec![(0, nic)], pool, clock, CoreLinks::new()).map(|_| ())
}

#[test]
fn graphs_that_would_lose_packets_are_refused() {
    let blackhole_first = format!(
        "{INTERFACE}[[service]]\nkind = \"sink\"\nattach = \"port:rx\"\n\
         [[service]]\nkind = \"udp-echo\"\nport = 7\n"
    );
    assert_eq!(
        build(&blackhole_first),
        Err(PipelineError::Unreachable { service: "sink" })
    );
    let sink_then_filter = format!(
        "{INTERFACE}[[service]]\nkind = \"sink\"\nattach = \"udp:7\"\n\
         [[service]]\nkind = \"port-filter\"\nblock = [1]\nattach = \"udp:7\"\n"
    );
    assert_eq!(
        build(&sink_then_filter),
        Err(PipelineError::Unreachable { service: "sink" })
    );
    let sideways = format!("{INTERFACE}[[service]]\nkind = \"sideways\"\n");
    assert_eq!(
        build(&sideways),
        Err(PipelineError::UnboundOutput {
            service: "sideways",
            output: "sideways"
        })
    );
    let ninth_port: String = (1..=9)
        .map(|port| format!("[[service]]\nkind = \"udp-echo\"\nport = {port}\n"))
        .collect();
    assert_eq!(
        build(&format!("{INTERFACE}{ninth_port}")),
        Err(PipelineError::TooManyHooks(HookPoint::Udp(9)))
    );
    // A sink alone at port:rx is a graph without the IP stack.
    let alone = format!("{INTERFACE}[[service]]\nkind = \"sink\"\nattach = \"port:rx\"\n");
    assert_eq!(build(&alone), Ok(()));
}
