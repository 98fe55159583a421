//! Shared by the pipeline tests: a core built from a spec on loopback
//! NICs, a test clock, and frame builders.
#![allow(dead_code)]

pub mod routed;
pub mod segments;

use control::{CoreLinks, Spec, build_core};
use core::net::Ipv4Addr;
use dataplane::stats::CoreCounters;
use dataplane::{Executor, LoopbackNic, MacAddr, Mempool, Nic, SharedNic};
use services::Registry;

use services::wire::ethernet::{EtherType, EthernetFrame};
use services::wire::{ArpPacket, Ipv4Packet, UdpPacket};
use std::cell::Cell;

pub const OURS: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
pub const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const PEER: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

pub const ECHO_SPEC: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"loopback\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n\
    [[service]]\nkind = \"udp-echo\"\nport = 7\n";

thread_local! {
    /// The platform clock of the executor on this test's thread.
    static NOW_NS: Cell<u64> = const { Cell::new(0) };
}

pub fn clock() -> u64 {
    NOW_NS.with(Cell::get)
}

pub fn advance_clock(ns: u64) {
    NOW_NS.with(|now| now.set(now.get() + ns));
}

pub struct Harness {
    pub executor: Executor,
    pub nics: Vec<SharedNic<LoopbackNic>>,
}

impl Harness {
    /// Builds core 0 for `spec` with one loopback port per interface, polls
    /// once (the first tick sends gratuitous ARPs) and checks those.
    pub fn new(spec: &str) -> Self {
        Self::with_registry(spec, &Registry::with_builtin())
    }

    /// [`Harness::new`] with the kinds of `registry`.
    pub fn with_registry(spec: &str, registry: &Registry) -> Self {
        let spec = Spec::parse(spec, registry).unwrap();
        Self::on_core(&spec, 0, CoreLinks::new())
    }

    /// Core `core` of `spec` with its cross-core `links` (from
    /// `control::core_links`), built as [`Harness::new`] builds core 0.
    pub fn on_core(spec: &Spec, core: usize, links: CoreLinks) -> Self {
        let pool = Mempool::with_heap(512, 128).unwrap();
        let nics: Vec<SharedNic<LoopbackNic>> = spec
            .interfaces
            .iter()
            .map(|interface| SharedNic::new(LoopbackNic::new(interface.mac, 64)))
            .collect();
        let ports = nics
            .iter()
            .enumerate()
            .map(|(index, nic)| (index, Box::new(nic.clone()) as Box<dyn Nic>))
            .collect();
        let executor = build_core(spec, core, ports, pool, clock, links).unwrap();
        let mut harness = Self { executor, nics };
        harness.executor.poll_once();
        for (index, interface) in spec.interfaces.iter().enumerate() {
            let announcement = harness.take(index).expect("gratuitous ARP");
            let frame = EthernetFrame::new_checked(&announcement[..]).unwrap();
            assert_eq!(frame.destination(), MacAddr::BROADCAST);
            assert_eq!(frame.ethertype(), EtherType::ARP);
            let arp = ArpPacket::new_checked(frame.payload()).unwrap();
            assert_eq!(arp.sender_ip(), interface.address.address);
            assert_eq!(arp.target_ip(), interface.address.address);
            assert_eq!(arp.sender_mac(), interface.mac);
            assert!(harness.take(index).is_none());
        }
        harness
    }

    pub fn counters(&self) -> std::sync::Arc<CoreCounters> {
        self.executor.counters().clone()
    }

    pub fn inject(&mut self, interface: usize, bytes: &[u8]) {
        let mut packet = self.executor.pool().unwrap().alloc().unwrap();
        packet.append(bytes.len()).unwrap().copy_from_slice(bytes);
        self.nics[interface].borrow_mut().inject(packet).unwrap();
    }

    pub fn take(&mut self, interface: usize) -> Option<Vec<u8>> {
        let packet = self.nics[interface].borrow_mut().take_transmitted()?;
        Some(packet.payload().to_vec())
    }

    /// Teaches interface 0's ARP cache `peer` (MAC, address) with a request
    /// from it for our address; returns the reply, which must come back.
    pub fn learn(&mut self, peer: (MacAddr, Ipv4Addr)) -> Vec<u8> {
        let request = arp_frame(1, peer, (MacAddr([0; 6]), OUR_IP), MacAddr::BROADCAST);
        self.exchange(0, &request).expect("ARP reply")
    }

    /// Injects `bytes` on `interface`, polls once, returns what left there.
    pub fn exchange(&mut self, interface: usize, bytes: &[u8]) -> Option<Vec<u8>> {
        self.inject(interface, bytes);
        self.executor.poll_once();
        self.take(interface)
    }
}

pub fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

pub fn arp_frame(
    op: u16,
    sender: (MacAddr, Ipv4Addr),
    target: (MacAddr, Ipv4Addr),
    to: MacAddr,
) -> Vec<u8> {
    let mut bytes = vec![0u8; 42];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    frame.set_destination(to);
    frame.set_source(sender.0);
    frame.set_ethertype(EtherType::ARP);
    ArpPacket::new_unchecked(&mut bytes[14..]).emit(
        services::wire::arp::ArpOperation(op),
        sender,
        target,
    );
    bytes
}

/// An Ethernet + IPv4 + UDP frame with valid checksums.
pub fn udp_frame(
    macs: (MacAddr, MacAddr),
    ips: (Ipv4Addr, Ipv4Addr),
    ports: (u16, u16),
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let mut bytes = vec![0u8; 14 + 20 + udp_len];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    frame.set_destination(macs.0);
    frame.set_source(macs.1);
    frame.set_ethertype(EtherType::IPV4);
    let datagram = &mut bytes[34..];
    datagram[..2].copy_from_slice(&ports.0.to_be_bytes());
    datagram[2..4].copy_from_slice(&ports.1.to_be_bytes());
    datagram[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    datagram[8..].copy_from_slice(payload);
    UdpPacket::new_unchecked(&mut datagram[..]).fill_checksum(ips.0, ips.1);
    Ipv4Packet::new_unchecked(&mut bytes[14..]).emit_header(ips.0, ips.1, 17, udp_len as u16, ttl);
    bytes
}

/// Every node's drop counters, flattened, for before/after comparisons.
pub fn all_drops(counters: &CoreCounters) -> Vec<(String, u64)> {
    counters
        .nodes
        .iter()
        .enumerate()
        .flat_map(|(index, node)| {
            node.drop_reasons.iter().map(move |reason| {
                (
                    format!("{index}:{}/{reason}", node.name),
                    node.drops_named(reason).unwrap(),
                )
            })
        })
        .collect()
}
