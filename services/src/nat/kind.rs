//! The `nat` service kind: its spec table and factory.

use super::{Forward, Nat, NatSettings};
use crate::claim::LocalClaim;
use crate::conntrack::{
    DEFAULT_CAPACITY, FlowSteering, FlowTable, SteerEnd, Timeouts, check_capacity, flow_seed,
    link_steering,
};
use crate::firewall::{
    Filter, FilterConfig, MAX_RULES, PortRange, Prefix, ProtocolMatch, Refusals,
};
use crate::registry::{BuildContext, HookPoint, InterfaceInfo, ServiceKind, SpecSummary};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::any::Any;
use core::net::SocketAddrV4;
use dataplane::Nanoservice;
use serde::Deserialize;

/// The ports the TCP stack opens connections from (Linux's ephemeral
/// range, `tcp/ports.rs`): a NAT's ports must stay out of it.
pub const EPHEMERAL_PORTS: (u16, u16) = (32768, 60999);

/// Masquerade ports when the spec does not say.
pub const DEFAULT_PORTS: PortRange = PortRange(1024, 32767);

fn default_capacity() -> usize {
    DEFAULT_CAPACITY
}

fn default_ports() -> PortRange {
    DEFAULT_PORTS
}

/// One forwarded port: `[[service.forward]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// `tcp` or `udp`.
    pub protocol: ProtocolMatch,
    /// The port on the outside address.
    pub port: u16,
    /// The inside server, `address:port`.
    pub to: SocketAddrV4,
}

/// `nat`'s table:
///
/// ```toml
/// [[service]]
/// kind = "nat"
/// outside = "eth1"           # masquerade onto this interface's address
/// inside = ["10.0.1.0/24"]   # sources to masquerade (default: any)
/// ports = "1024-32767"       # source ports and echo identifiers used
/// capacity = 65536           # flows per core
/// hairpin = false            # inside hosts reaching forwarded ports
///
/// [[service.forward]]        # outside address:8080 -> 10.0.1.2:80
/// protocol = "tcp"
/// port = 8080
/// to = "10.0.1.2:80"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatConfig {
    /// The interface whose address the inside hides behind.
    pub outside: String,
    /// Sources to masquerade; empty means any source not on the outside.
    #[serde(default)]
    pub inside: Vec<Prefix>,
    /// Source ports (and ICMP echo identifiers) masqueraded flows get.
    #[serde(default = "default_ports")]
    pub ports: PortRange,
    /// Flows each core translates at most.
    #[serde(default = "default_capacity")]
    pub capacity: usize,
    /// Let inside hosts reach forwarded ports on the outside address
    /// (translated both ways, so the server answers through us).
    #[serde(default)]
    pub hairpin: bool,
    /// Forwarded ports.
    #[serde(default)]
    pub forward: Vec<ForwardConfig>,
    /// Firewall rules in the same chain (`[service.filter]`), judged on
    /// what nftables' forward hook sees: the source before source NAT,
    /// the destination after destination NAT (the inside addresses both
    /// ways); none by default.
    #[serde(default)]
    pub filter: Option<FilterConfig>,
}

impl NatConfig {
    /// The outside interface's index and address among `interfaces`.
    fn outside_of(&self, interfaces: &[InterfaceInfo]) -> Option<(usize, core::net::Ipv4Addr)> {
        interfaces
            .iter()
            .position(|interface| interface.name == self.outside)
            .map(|index| (index, interfaces[index].address.address))
    }
}

/// `nat`: source NAT (masquerade) and port forwarding, at `ipv4:forward`
/// in front of `l3fwd`.
#[derive(Debug)]
pub struct NatKind;

impl ServiceKind for NatKind {
    const NAME: &'static str = "nat";
    type Config = NatConfig;

    fn attach(_config: &NatConfig) -> Vec<HookPoint> {
        vec![HookPoint::Ipv4Forward]
    }

    fn check(config: &NatConfig, spec: &SpecSummary<'_>) -> Result<(), String> {
        check_capacity(config.capacity)?;
        if config.outside_of(spec.interfaces).is_none() {
            return Err(alloc::format!(
                "outside names no interface of the spec: \"{}\"",
                config.outside
            ));
        }
        let PortRange(low, high) = config.ports;
        if low == 0 || (low <= EPHEMERAL_PORTS.1 && high >= EPHEMERAL_PORTS.0) {
            return Err(alloc::format!(
                "ports {low}-{high} must be from 1 and stay out of {}-{}, where the appliance's own TCP connections come from",
                EPHEMERAL_PORTS.0,
                EPHEMERAL_PORTS.1
            ));
        }
        if let Some(filter) = &config.filter
            && filter.rules.len() > MAX_RULES
        {
            return Err(alloc::format!(
                "filter: at most {MAX_RULES} rules, got {}",
                filter.rules.len()
            ));
        }
        for forward in &config.forward {
            if !matches!(forward.protocol.0, 6 | 17) {
                return Err(String::from("a forwarded port's protocol is tcp or udp"));
            }
            if forward.port == 0 || forward.to.port() == 0 {
                return Err(String::from("a forwarded port is from 1 to 65535"));
            }
            if low <= forward.port && forward.port <= high {
                return Err(alloc::format!(
                    "forwarded port {} lies in the masquerade ports {low}-{high}",
                    forward.port
                ));
            }
        }
        Ok(())
    }

    fn link_cores(_config: &NatConfig, cores: usize) -> Vec<Box<dyn Any + Send>> {
        link_steering(cores)
    }

    fn claims(config: &NatConfig, interfaces: &[InterfaceInfo]) -> Vec<LocalClaim> {
        let Some((_, address)) = config.outside_of(interfaces) else {
            return Vec::new();
        };
        vec![LocalClaim {
            address,
            ports: (config.ports.0, config.ports.1),
            extra: config
                .forward
                .iter()
                .map(|forward| (forward.protocol.0, forward.port))
                .collect(),
        }]
    }

    fn build(config: &NatConfig, context: &BuildContext<'_>) -> Box<dyn Nanoservice> {
        Box::new(nat(config, context))
    }

    /// A NAT is its predecessor's successor: its flows and bindings carry
    /// over (a change of forwarded ports or port range leaves the
    /// translations made under the old ones until their flows end).
    fn adopt(
        config: &NatConfig,
        context: &BuildContext<'_>,
        previous: Box<dyn Nanoservice>,
    ) -> Result<Box<dyn Nanoservice>, Box<dyn Nanoservice>> {
        if !(&*previous as &dyn Any).is::<Nat>() {
            return Err(previous);
        }
        let previous: Box<dyn Any> = previous;
        let Ok(previous) = previous.downcast::<Nat>() else {
            unreachable!("checked to be a Nat above");
        };
        let mut nat = nat(config, context);
        nat.adopt(*previous);
        Ok(Box::new(nat))
    }
}

/// The NAT of one core as `config` says, with no flows yet.
fn nat(config: &NatConfig, context: &BuildContext<'_>) -> Nat {
    let seed = flow_seed(context.core);
    // `check` made sure the interface exists.
    let (outside, address) = config
        .outside_of(context.interfaces)
        .unwrap_or((0, core::net::Ipv4Addr::UNSPECIFIED));
    let settings = NatSettings {
        outside,
        address,
        inside: config.inside.iter().map(|prefix| prefix.0).collect(),
        ports: (config.ports.0, config.ports.1),
        hairpin: config.hairpin,
        forwards: config
            .forward
            .iter()
            .map(|forward| Forward {
                protocol: forward.protocol.0,
                port: forward.port,
                to: (*forward.to.ip(), forward.to.port()),
            })
            .collect(),
    };
    let nat = Nat::new(
        FlowTable::new(config.capacity, Timeouts::LINUX, seed),
        config.capacity,
        settings,
        context.routes.clone(),
        seed.rotate_left(23),
    );
    let nat = match &config.filter {
        Some(filter) => nat.with_filter(
            Filter::from_rules(&filter.rules, filter.default, seed.rotate_left(17)),
            Refusals {
                local: context.local.clone(),
                routes: context.routes.clone(),
                errors: context.errors.clone(),
            },
        ),
        None => nat,
    };
    match context.links.take::<SteerEnd>(HookPoint::Ipv4Forward) {
        Some(end) => nat.with_steering(FlowSteering::new(end, context.doorbell)),
        None => nat,
    }
}
