//! `port-filter`: a service author's example nanoservice. It drops UDP
//! datagrams to blocked destination ports (counted as `blocked`) and passes
//! the rest on. It lives outside `services/` and `dataplane/`: a platform
//! registers it with `registry.register::<PortFilterKind>()` and a spec
//! names it with `kind = "port-filter"`.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::{boxed::Box, vec, vec::Vec};
use dataplane::{Batch, Nanoservice, Outputs, Verdict, drop_reasons, outputs};
use serde::Deserialize;
use services::registry::{BuildContext, HookPoint, ServiceKind};
use services::wire::{Ipv4Packet, UdpPacket};

drop_reasons! {
    /// Why the filter drops a datagram.
    FilterDrop {
        /// Sent to a blocked port.
        Blocked = "blocked",
        /// Not a UDP datagram in IPv4 (attached at the wrong hook point).
        NotUdp = "not-udp",
    }
}

outputs! {
    /// Where the filter sends a datagram.
    FilterOutput {
        /// On to the next stage at the hook point (the UDP stage).
        Pass = "pass",
    }
}

/// The spec table: `block = [9, 19]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortFilterConfig {
    /// Destination ports to drop.
    pub block: Vec<u16>,
}

/// The filter node of one core.
#[derive(Debug)]
pub struct PortFilter {
    block: Vec<u16>,
}

impl Nanoservice for PortFilter {
    fn name(&self) -> &'static str {
        "port-filter"
    }

    fn outputs(&self) -> &'static [&'static str] {
        FilterOutput::NAMES
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        FilterDrop::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        out.dispatch(batch, |packet, _| {
            let port = Ipv4Packet::new_checked(packet.payload()).and_then(|ip| {
                UdpPacket::new_checked(ip.payload()).map(|udp| udp.destination_port())
            });
            match port {
                Ok(port) if self.block.contains(&port) => Verdict::drop(FilterDrop::Blocked),
                Ok(_) => Verdict::emit(FilterOutput::Pass.into()),
                Err(_) => Verdict::drop(FilterDrop::NotUdp),
            }
        });
    }
}

/// The `port-filter` kind: in front of the UDP stage unless the spec says
/// otherwise with `attach`.
#[derive(Debug)]
pub struct PortFilterKind;

impl ServiceKind for PortFilterKind {
    const NAME: &'static str = "port-filter";
    type Config = PortFilterConfig;

    fn attach(_config: &PortFilterConfig) -> Vec<HookPoint> {
        vec![HookPoint::Ipv4Protocol(17)]
    }

    fn build(config: &PortFilterConfig, _context: &BuildContext<'_>) -> Box<dyn Nanoservice> {
        Box::new(PortFilter {
            block: config.block.clone(),
        })
    }
}
