//! The built-in service kinds: `udp-echo`, `l2fwd` and `l3fwd`, registered
//! exactly as a service author's kinds are.

use super::{BuildContext, HookPoint, ServiceKind, SpecSummary};
use crate::{L3fwd, MacSwap, UdpEcho};
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use dataplane::Nanoservice;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A UDP port number from 1 to 65535, as a spec writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpPort(pub u16);

impl<'de> Deserialize<'de> for UdpPort {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortVisitor;

        impl Visitor<'_> for PortVisitor {
            type Value = UdpPort;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a UDP port from 1 to 65535")
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<UdpPort, E> {
                match u16::try_from(value) {
                    Ok(port) if port != 0 => Ok(UdpPort(port)),
                    _ => Err(E::custom(format_args!(
                        "expected a UDP port from 1 to 65535, got \"{value}\""
                    ))),
                }
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<UdpPort, E> {
                self.visit_i64(i64::try_from(value).unwrap_or(i64::MAX))
            }
        }

        deserializer.deserialize_i64(PortVisitor)
    }
}

/// `udp-echo`'s table: `port = 7`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpEchoConfig {
    /// The UDP port to echo on.
    pub port: UdpPort,
}

/// `udp-echo`: answers datagrams to its port with themselves (RFC 862), at
/// `udp:<port>`.
#[derive(Debug)]
pub struct UdpEchoKind;

impl ServiceKind for UdpEchoKind {
    const NAME: &'static str = "udp-echo";
    type Config = UdpEchoConfig;

    fn attach(config: &UdpEchoConfig) -> Vec<HookPoint> {
        vec![HookPoint::Udp(config.port.0)]
    }

    /// An echo answers everything on its port, so a second one there
    /// would never see a datagram.
    fn check(_config: &UdpEchoConfig, spec: &SpecSummary<'_>) -> Result<(), String> {
        let ours = spec.services[spec.index].attach;
        let earlier = spec.others().find(|(index, other)| {
            *index < spec.index
                && other.kind == Self::NAME
                && other.attach.iter().any(|hook| ours.contains(hook))
        });
        match earlier {
            Some((index, other)) => {
                let hook = other.attach.iter().find(|hook| ours.contains(hook));
                Err(alloc::format!(
                    "service[{index}] already echoes at {}",
                    hook.map_or(String::new(), ToString::to_string)
                ))
            }
            None => Ok(()),
        }
    }

    fn build(_config: &UdpEchoConfig, context: &BuildContext<'_>) -> Box<dyn Nanoservice> {
        Box::new(UdpEcho::new(context.local.clone()))
    }
}

/// `l2fwd`'s table: no settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L2fwdConfig {}

/// `l2fwd`: sends every frame back out of its port with the MAC addresses
/// swapped, at `port:rx`, before any protocol stage.
#[derive(Debug)]
pub struct L2fwdKind;

impl ServiceKind for L2fwdKind {
    const NAME: &'static str = "l2fwd";
    type Config = L2fwdConfig;

    fn attach(_config: &L2fwdConfig) -> Vec<HookPoint> {
        vec![HookPoint::PortRx]
    }

    fn check(_config: &L2fwdConfig, spec: &SpecSummary<'_>) -> Result<(), String> {
        match spec.others().next() {
            Some(_) => Err(
                "l2fwd reflects every frame and cannot share the spec with IP services".to_string(),
            ),
            None => Ok(()),
        }
    }

    fn build(_config: &L2fwdConfig, _context: &BuildContext<'_>) -> Box<dyn Nanoservice> {
        Box::new(MacSwap)
    }
}

/// `l3fwd`'s table: no settings (routes come from the spec's `[[route]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L3fwdConfig {}

/// `l3fwd`: forwards IPv4 between interfaces, at `ipv4:forward`.
#[derive(Debug)]
pub struct L3fwdKind;

impl ServiceKind for L3fwdKind {
    const NAME: &'static str = "l3fwd";
    type Config = L3fwdConfig;

    fn attach(_config: &L3fwdConfig) -> Vec<HookPoint> {
        vec![HookPoint::Ipv4Forward]
    }

    fn check(_config: &L3fwdConfig, spec: &SpecSummary<'_>) -> Result<(), String> {
        if spec.interfaces.len() < 2 {
            return Err("l3fwd needs at least two interfaces".to_string());
        }
        Ok(())
    }

    fn build(_config: &L3fwdConfig, context: &BuildContext<'_>) -> Box<dyn Nanoservice> {
        Box::new(L3fwd::new(
            context.local.clone(),
            context.routes.clone(),
            context.errors.clone(),
        ))
    }
}
