//! `Registry`: the service kinds a platform knows, by name.

use super::ServiceKind;
use super::TcpServiceKind;
use super::builtin::{L2fwdKind, L3fwdKind, UdpEchoKind};
use super::kind::{Configured, ConfiguredTcp, ServiceConfig};
use crate::http::HttpKind;
use crate::tcp::TcpEchoKind;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use serde::Deserialize;
use toml::de::ValueDeserializer;

/// Turns a service's spec table into its kind's configuration.
type Configure = fn(ValueDeserializer<'_>) -> Result<Arc<dyn ServiceConfig>, toml::de::Error>;

/// Why a kind could not be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// A kind of that name is registered already.
    Duplicate(&'static str),
}

impl core::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Duplicate(name) => {
                write!(f, "a service kind named `{name}` is registered already")
            }
        }
    }
}

/// The service kinds a spec may name. Built-in kinds register exactly as
/// a service author's do:
///
/// ```ignore
/// let mut registry = Registry::with_builtin();
/// registry.register::<PortFilterKind>()?;
/// let spec = Spec::parse(text, &registry)?;
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    kinds: Vec<(&'static str, Configure)>,
}

impl core::fmt::Debug for Registry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Registry {
    /// A registry with no kinds.
    pub const fn empty() -> Self {
        Self { kinds: Vec::new() }
    }

    /// A registry with the built-in kinds: `l2fwd`, `l3fwd`, `udp-echo`,
    /// `conntrack`, `firewall`, `lb`, `nat`, `tcp-echo`, `http`, `kv`, `tcp-proxy`.
    pub fn with_builtin() -> Self {
        let mut registry = Self::empty();
        for result in [
            registry.register::<L2fwdKind>().map(|_| ()),
            registry.register::<L3fwdKind>().map(|_| ()),
            registry.register::<UdpEchoKind>().map(|_| ()),
            registry
                .register::<crate::conntrack::ConntrackKind>()
                .map(|_| ()),
            registry
                .register::<crate::firewall::FirewallKind>()
                .map(|_| ()),
            registry.register::<crate::nat::NatKind>().map(|_| ()),
            registry.register::<crate::lb::LbKind>().map(|_| ()),
            registry.register_tcp::<TcpEchoKind>().map(|_| ()),
            registry.register_tcp::<HttpKind>().map(|_| ()),
            registry.register_tcp::<crate::kv::KvKind>().map(|_| ()),
            registry
                .register_tcp::<crate::tcp::TcpProxyKind>()
                .map(|_| ()),
        ] {
            // Cannot fail: the built-in names differ.
            debug_assert!(result.is_ok());
        }
        registry
    }

    /// Makes kind `K` nameable in specs.
    pub fn register<K: ServiceKind>(&mut self) -> Result<&mut Self, RegistryError> {
        if self.kinds.iter().any(|(name, _)| *name == K::NAME) {
            return Err(RegistryError::Duplicate(K::NAME));
        }
        self.kinds.push((K::NAME, configure::<K>));
        Ok(self)
    }

    /// Makes TCP app kind `K` nameable in specs.
    pub fn register_tcp<K: TcpServiceKind>(&mut self) -> Result<&mut Self, RegistryError> {
        if self.kinds.iter().any(|(name, _)| *name == K::NAME) {
            return Err(RegistryError::Duplicate(K::NAME));
        }
        self.kinds.push((K::NAME, configure_tcp::<K>));
        Ok(self)
    }

    /// The registered kinds' names, in registration order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.iter().map(|(name, _)| *name)
    }

    /// The names joined for an error message: `l2fwd, l3fwd, udp-echo`.
    pub fn names_list(&self) -> String {
        let mut names: Vec<&str> = self.names().collect();
        names.sort_unstable();
        names.join(", ")
    }

    /// Deserializes `table` into kind `kind`'s configuration; `None` when
    /// no kind has that name.
    pub fn configure(
        &self,
        kind: &str,
        table: ValueDeserializer<'_>,
    ) -> Option<Result<Arc<dyn ServiceConfig>, toml::de::Error>> {
        let (_, configure) = self.kinds.iter().find(|(name, _)| *name == kind)?;
        Some(configure(table))
    }
}

/// [`Configure`] for kind `K`.
fn configure<K: ServiceKind>(
    table: ValueDeserializer<'_>,
) -> Result<Arc<dyn ServiceConfig>, toml::de::Error> {
    let config = K::Config::deserialize(table)?;
    Ok(Arc::new(Configured::<K>(config)))
}

/// [`Configure`] for TCP app kind `K`.
fn configure_tcp<K: TcpServiceKind>(
    table: ValueDeserializer<'_>,
) -> Result<Arc<dyn ServiceConfig>, toml::de::Error> {
    let config = K::Config::deserialize(table)?;
    Ok(Arc::new(ConfiguredTcp::<K>(config)))
}
