//! `LoadBalancer`: the `lb` node. A TCP or UDP packet to the VIP goes to
//! its flow's backend (pinned, else the Maglev table's pick) with the
//! destination rewritten; a packet from a backend's address:port gets the
//! VIP as its source (the backends route their replies through us); an
//! ICMP error about a balanced flow (from its backend, or a router on
//! the way) is translated back, quote and all, as the NAT does: the
//! client learns of it about the VIP; everything else passes untouched.

use super::{Endpoint, MaglevTable, PinTable, RewriteError, flow_hash};
use super::{rewrite_destination, rewrite_source};
use crate::conntrack::{FiveTuple, FlowPacket};
use crate::nat::translate::rewrite_error;
use crate::wire::Ipv4Packet;
use crate::wire::ipv4::protocol;
use alloc::vec;
use alloc::vec::Vec;
use dataplane::{Batch, Nanoservice, Outputs, Verdict, drop_reasons, outputs};

drop_reasons! {
    /// Why [`LoadBalancer`] drops a packet.
    LbDrop {
        /// To or from the VIP's backends, but not IPv4 with a whole TCP
        /// or UDP header.
        Malformed = "malformed",
        /// A non-first fragment to the VIP: its ports are elsewhere, so
        /// its backend is unknown (IPVS drops them too).
        Fragment = "fragment",
    }
}

outputs! {
    /// Where [`LoadBalancer`] sends a packet.
    LbOutput {
        /// On to the next service at the hook point (the router).
        Pass = "pass",
    }
}

/// Backends with counters of their own in the node's events
/// (`backend-0-flows` ... `backend-13-packets`): all of them, since a
/// service has at most [`super::MAX_BACKENDS`] (2 × 14 + 3 events fit
/// the node's 32).
pub const BACKEND_COUNTERS: usize = 14;

/// Event indices: flows per backend, packets per backend, then these.
const PACKETS_0: usize = BACKEND_COUNTERS;
const REPLIES: usize = 2 * BACKEND_COUNTERS;
const EVICTED: usize = REPLIES + 1;
const ERRORS_TRANSLATED: usize = EVICTED + 1;

/// The node's event names.
pub(crate) const EVENTS: &[&str] = &[
    "backend-0-flows",
    "backend-1-flows",
    "backend-2-flows",
    "backend-3-flows",
    "backend-4-flows",
    "backend-5-flows",
    "backend-6-flows",
    "backend-7-flows",
    "backend-8-flows",
    "backend-9-flows",
    "backend-10-flows",
    "backend-11-flows",
    "backend-12-flows",
    "backend-13-flows",
    "backend-0-packets",
    "backend-1-packets",
    "backend-2-packets",
    "backend-3-packets",
    "backend-4-packets",
    "backend-5-packets",
    "backend-6-packets",
    "backend-7-packets",
    "backend-8-packets",
    "backend-9-packets",
    "backend-10-packets",
    "backend-11-packets",
    "backend-12-packets",
    "backend-13-packets",
    "replies",
    "flows-evicted",
    "errors-translated",
];

/// The load balancer of one core.
#[derive(Debug)]
pub struct LoadBalancer {
    vip: Endpoint,
    backends: Vec<Endpoint>,
    table: MaglevTable,
    pins: PinTable,
    flows: Vec<u64>,
    packets: Vec<u64>,
}

/// What [`LoadBalancer::steer`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steered {
    /// Nothing: not to the VIP, not from a backend.
    Passed,
    /// A backend's reply: its source is now the VIP.
    Reply,
    /// An ICMP error about a balanced flow: it now quotes the packet as
    /// the client sent it (to the VIP), and comes from the VIP when its
    /// backend sent it.
    Error,
    /// To the VIP: its destination is now backend `index`'s.
    Backend {
        /// The backend's place in the spec's list.
        index: usize,
        /// The flow's first packet (since its pin lapsed).
        new: bool,
        /// Pinning it pushed another live flow out.
        evicted: bool,
    },
}

/// What one packet is to the load balancer.
enum Role {
    /// To the VIP: the client's address and port, and the protocol.
    ToVip(core::net::Ipv4Addr, u16, u8),
    /// From a backend's address and port.
    FromBackend,
    /// An ICMP error quoting a packet from a client to backend `index`:
    /// the client's address and port, and the protocol.
    ErrorAbout(usize, core::net::Ipv4Addr, u16, u8),
    /// Neither.
    Other,
}

impl LoadBalancer {
    /// A balancer of `vip` over `backends` (at most 15) through `table`,
    /// pinning flows in `pins`.
    pub fn new(vip: Endpoint, backends: Vec<Endpoint>, table: MaglevTable, pins: PinTable) -> Self {
        let count = backends.len();
        Self {
            vip,
            backends,
            table,
            pins,
            flows: vec![0; count],
            packets: vec![0; count],
        }
    }

    /// Takes over the flows `previous` pinned (the node of the same VIP
    /// the previous spec ran here): a flow pinned to a backend this node
    /// still has keeps it (its established connection survives the
    /// change of backends), a flow of a removed backend is unpinned and
    /// goes where the new Maglev table says. The per-backend counts of
    /// kept backends carry over too. Returns the pins kept.
    pub fn adopt(&mut self, previous: &LoadBalancer) -> usize {
        let renumber = |old: usize| {
            let endpoint = previous.backends.get(old)?;
            self.backends.iter().position(|backend| backend == endpoint)
        };
        for (old, endpoint) in previous.backends.iter().enumerate() {
            if let Some(new) = self.backends.iter().position(|backend| backend == endpoint) {
                self.flows[new] = previous.flows[old];
                self.packets[new] = previous.packets[old];
            }
        }
        let renumbered: Vec<Option<usize>> = (0..previous.backends.len()).map(renumber).collect();
        self.pins.adopt(
            &previous.pins,
            |old| renumbered.get(old).copied().flatten(),
            flow_hash,
        )
    }

    /// The VIP.
    pub fn vip(&self) -> Endpoint {
        self.vip
    }

    /// The backends, in the spec's order.
    pub fn backends(&self) -> &[Endpoint] {
        &self.backends
    }

    /// The pinned flows' backends (by place in [`LoadBalancer::backends`])
    /// still live at `now_ns`: one per flow.
    pub fn pinned(&self, now_ns: u64) -> impl Iterator<Item = usize> + '_ {
        self.pins.backends(now_ns)
    }

    /// Flows sent to each backend (by its place in the spec's list).
    pub fn backend_flows(&self) -> &[u64] {
        &self.flows
    }

    /// Packets sent to each backend.
    pub fn backend_packets(&self) -> &[u64] {
        &self.packets
    }

    /// The Maglev table.
    pub fn table(&self) -> &MaglevTable {
        &self.table
    }

    /// Reads the addresses and ports of `ip`, or `None` when it cannot
    /// concern the VIP (not IPv4, not TCP or UDP).
    fn role(&self, ip: &[u8]) -> Result<Role, RewriteError> {
        let Ok(view) = Ipv4Packet::new_checked(ip) else {
            return Ok(Role::Other);
        };
        let proto = view.protocol();
        if proto == protocol::ICMP {
            return Ok(self.error_role(ip));
        }
        if proto != protocol::TCP && proto != protocol::UDP {
            return Ok(Role::Other);
        }
        let to_vip = view.destination() == self.vip.address;
        let from_backend = self
            .backends
            .iter()
            .any(|backend| backend.address == view.source());
        if !to_vip && !from_backend {
            return Ok(Role::Other);
        }
        if view.fragment_offset() != 0 {
            return Err(RewriteError::Fragment);
        }
        // Both ports are the first 4 bytes of TCP and UDP headers.
        let ports = view.payload().get(..4).ok_or(RewriteError::Malformed)?;
        let source_port = u16::from_be_bytes([ports[0], ports[1]]);
        let destination_port = u16::from_be_bytes([ports[2], ports[3]]);
        if to_vip && destination_port == self.vip.port {
            return Ok(Role::ToVip(view.source(), source_port, proto));
        }
        let source = Endpoint {
            address: view.source(),
            port: source_port,
        };
        if self.backends.contains(&source) {
            return Ok(Role::FromBackend);
        }
        Ok(Role::Other)
    }

    /// What an ICMP packet is: an error quoting a TCP or UDP packet sent
    /// to one of our backends' address:port, or nothing of ours.
    fn error_role(&self, ip: &[u8]) -> Role {
        let Ok(FlowPacket {
            quoted: Some(quoted),
            ..
        }) = FlowPacket::parse(ip)
        else {
            return Role::Other;
        };
        if quoted.protocol != protocol::TCP && quoted.protocol != protocol::UDP {
            return Role::Other;
        }
        let to = Endpoint {
            address: quoted.destination,
            port: quoted.destination_port,
        };
        match self.backends.iter().position(|backend| *backend == to) {
            Some(index) => {
                Role::ErrorAbout(index, quoted.source, quoted.source_port, quoted.protocol)
            }
            None => Role::Other,
        }
    }

    /// Translates an ICMP error about the flow of `client` to backend
    /// `index`, when that flow is pinned there (so it came through the
    /// VIP: a client may reach a backend directly too, and an error about
    /// that is not ours).
    fn translate_error(
        &self,
        ip: &mut [u8],
        index: usize,
        client: (core::net::Ipv4Addr, u16, u8),
        now_ns: u64,
    ) -> Result<Steered, RewriteError> {
        let hash = flow_hash(client.0, client.1, client.2);
        if self.pins.peek(hash, client, now_ns) != Some(index) {
            return Ok(Steered::Passed);
        }
        let view = Ipv4Packet::new_checked(&*ip).map_err(|_| RewriteError::Malformed)?;
        let (outer_source, outer_destination) = (view.source(), view.destination());
        // From the backend itself: from the VIP now (the client never
        // heard of the backend); from a router on the way: as it came.
        let source = if outer_source == self.backends[index].address {
            self.vip.address
        } else {
            outer_source
        };
        let quoted = FiveTuple {
            source: client.0,
            destination: self.vip.address,
            source_port: client.1,
            destination_port: self.vip.port,
            protocol: client.2,
        };
        rewrite_error(ip, source, outer_destination, &quoted)
            .map_err(|_| RewriteError::Malformed)?;
        Ok(Steered::Error)
    }

    /// Rewrites one packet (an IPv4 packet from its header on) and says
    /// what it was; counts it in the per-backend counters.
    pub fn steer(&mut self, ip: &mut [u8], now_ns: u64) -> Result<Steered, RewriteError> {
        match self.role(ip)? {
            Role::Other => Ok(Steered::Passed),
            Role::FromBackend => rewrite_source(ip, self.vip).map(|()| Steered::Reply),
            Role::ErrorAbout(index, client, client_port, proto) => {
                self.translate_error(ip, index, (client, client_port, proto), now_ns)
            }
            Role::ToVip(client, client_port, proto) => {
                let hash = flow_hash(client, client_port, proto);
                let table = &self.table;
                let count = self.backends.len();
                let Some(pinned) = self.pins.pin(
                    hash,
                    (client, client_port, proto),
                    now_ns,
                    |index| index < count,
                    || table.lookup(hash),
                ) else {
                    // No backends: a checked spec has at least one.
                    return Ok(Steered::Passed);
                };
                let backend = pinned.backend;
                rewrite_destination(ip, self.backends[backend])?;
                if pinned.new {
                    self.flows[backend] += 1;
                }
                self.packets[backend] += 1;
                Ok(Steered::Backend {
                    index: backend,
                    new: pinned.new,
                    evicted: pinned.evicted,
                })
            }
        }
    }

    /// One packet's verdict, counted.
    fn verdict(&mut self, ip: &mut [u8], now_ns: u64, out: &mut Outputs<'_>) -> Verdict {
        match self.steer(ip, now_ns) {
            Ok(Steered::Passed) => {}
            Ok(Steered::Reply) => out.count(REPLIES, 1),
            Ok(Steered::Error) => out.count(ERRORS_TRANSLATED, 1),
            Ok(Steered::Backend {
                index,
                new,
                evicted,
            }) => {
                let counter = index.min(BACKEND_COUNTERS - 1);
                if new {
                    out.count(counter, 1);
                }
                if evicted {
                    out.count(EVICTED, 1);
                }
                out.count(PACKETS_0 + counter, 1);
            }
            Err(RewriteError::Fragment) => return Verdict::drop(LbDrop::Fragment),
            Err(RewriteError::Malformed) => return Verdict::drop(LbDrop::Malformed),
        }
        Verdict::emit(LbOutput::Pass.into())
    }
}

impl Nanoservice for LoadBalancer {
    fn name(&self) -> &'static str {
        "lb"
    }

    fn outputs(&self) -> &'static [&'static str] {
        LbOutput::NAMES
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        LbDrop::NAMES
    }

    fn events(&self) -> &'static [&'static str] {
        EVENTS
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        let now_ns = out.now_ns();
        out.dispatch(batch, |packet, out| {
            self.verdict(packet.payload_mut(), now_ns, out)
        });
    }
}
