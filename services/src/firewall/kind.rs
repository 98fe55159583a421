//! The `firewall` service kind: its spec table and factory.

use super::{Action, Classifier, Firewall, RuleConfig};
use crate::conntrack::{
    DEFAULT_CAPACITY, FlowSteering, FlowTable, SteerEnd, Timeouts, check_capacity, flow_seed,
    link_steering,
};
use crate::registry::{BuildContext, HookPoint, ServiceKind, SpecSummary};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::any::Any;
use dataplane::Nanoservice;
use serde::Deserialize;

/// Most rules a spec may give one firewall.
pub const MAX_RULES: usize = 100_000;

fn default_capacity() -> usize {
    DEFAULT_CAPACITY
}

/// `firewall`'s table:
///
/// ```toml
/// [[service]]
/// kind = "firewall"
/// default = "drop"          # what no rule matches: allow | drop | reject
/// capacity = 65536          # flows tracked per core
///
/// [[service.rules]]
/// action = "allow"
/// state = "established"     # replies and related ICMP errors
///
/// [[service.rules]]
/// action = "allow"
/// protocol = "tcp"
/// destination = "10.0.2.0/24"
/// destination_port = 80
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallConfig {
    /// The action for packets no rule matches.
    pub default: Action,
    /// Flows each core tracks at most.
    #[serde(default = "default_capacity")]
    pub capacity: usize,
    /// The rules, first match wins.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// `firewall`: a stateful firewall in front of the router, at
/// `ipv4:forward`.
#[derive(Debug)]
pub struct FirewallKind;

impl ServiceKind for FirewallKind {
    const NAME: &'static str = "firewall";
    type Config = FirewallConfig;

    fn attach(_config: &FirewallConfig) -> Vec<HookPoint> {
        vec![HookPoint::Ipv4Forward]
    }

    fn check(config: &FirewallConfig, _spec: &SpecSummary<'_>) -> Result<(), String> {
        check_capacity(config.capacity)?;
        if config.rules.len() > MAX_RULES {
            return Err(alloc::format!(
                "at most {MAX_RULES} rules, got {}",
                config.rules.len()
            ));
        }
        Ok(())
    }

    fn link_cores(_config: &FirewallConfig, cores: usize) -> Vec<Box<dyn Any + Send>> {
        link_steering(cores)
    }

    fn build(config: &FirewallConfig, context: &BuildContext<'_>) -> Box<dyn Nanoservice> {
        Box::new(firewall(config, context))
    }

    /// A firewall is its predecessor's successor: the new rules judge the
    /// flows the old table tracked (established connections stay
    /// established, as nftables keeps conntrack across a rule reload).
    fn adopt(
        config: &FirewallConfig,
        context: &BuildContext<'_>,
        previous: Box<dyn Nanoservice>,
    ) -> Result<Box<dyn Nanoservice>, Box<dyn Nanoservice>> {
        if !(&*previous as &dyn Any).is::<Firewall>() {
            return Err(previous);
        }
        let previous: Box<dyn Any> = previous;
        let Ok(previous) = previous.downcast::<Firewall>() else {
            unreachable!("checked to be a Firewall above");
        };
        let mut firewall = firewall(config, context);
        firewall.adopt(*previous);
        Ok(Box::new(firewall))
    }
}

/// The firewall of one core as `config` says, with no flows yet.
fn firewall(config: &FirewallConfig, context: &BuildContext<'_>) -> Firewall {
    let seed = flow_seed(context.core);
    let matches: Vec<_> = config.rules.iter().map(RuleConfig::to_match).collect();
    let actions = config.rules.iter().map(|rule| rule.action).collect();
    let firewall = Firewall::new(
        FlowTable::new(config.capacity, Timeouts::LINUX, seed),
        Classifier::new(&matches, seed.rotate_left(17)),
        actions,
        config.default,
        (
            context.local.clone(),
            context.routes.clone(),
            context.errors.clone(),
        ),
    );
    match context.links.take::<SteerEnd>(HookPoint::Ipv4Forward) {
        Some(end) => firewall.with_steering(FlowSteering::new(end, context.doorbell)),
        None => firewall,
    }
}
