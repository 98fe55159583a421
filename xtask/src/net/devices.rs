//! Veth pairs and tap devices for tests, each deleted by a guard's `Drop`.
//!
//! Drop order matters only for tidiness: a veth or tap inside a namespace
//! vanishes with the namespace, and guards ignore devices already gone.

use crate::net::netns::{Netns, ip, unique_name};
use anyhow::Result;

/// A veth pair, its ends optionally moved into namespaces; deleted on drop.
#[derive(Debug)]
pub struct Veth {
    first: String,
    second: String,
    first_netns: Option<String>,
}

impl Veth {
    /// Creates a pair named [`unique_name`]`(prefix)` with ends `…a` and
    /// `…b` (the counter makes them distinct), puts each end in the given
    /// namespace (`None`: the current one) and brings both up, without
    /// addresses.
    pub fn create(prefix: &str, first: Option<&Netns>, second: Option<&Netns>) -> Result<Self> {
        Self::with_queues(prefix, first, second, 1)
    }

    /// [`create`](Self::create) with `queues` receive and transmit queues
    /// on each end (a flow's transmit queue on one end is its receive
    /// queue on the other).
    pub fn with_queues(
        prefix: &str,
        first: Option<&Netns>,
        second: Option<&Netns>,
        queues: u32,
    ) -> Result<Self> {
        let first_name = unique_name(prefix);
        let second_name = unique_name(prefix);
        let queues = queues.to_string();
        ip(&[
            "link",
            "add",
            &first_name,
            "numtxqueues",
            &queues,
            "numrxqueues",
            &queues,
            "type",
            "veth",
            "peer",
            "name",
            &second_name,
            "numtxqueues",
            &queues,
            "numrxqueues",
            &queues,
        ])?;
        let mut veth = Self {
            first: first_name,
            second: second_name,
            first_netns: None,
        };
        if let Some(netns) = second {
            ip(&["link", "set", &veth.second, "netns", netns.name()])?;
        }
        if let Some(netns) = first {
            ip(&["link", "set", &veth.first, "netns", netns.name()])?;
            veth.first_netns = Some(netns.name().to_owned());
        }
        for (end, netns) in [(&veth.first, first), (&veth.second, second)] {
            ip_in(netns.map(Netns::name), &["link", "set", end, "up"])?;
        }
        Ok(veth)
    }

    /// The first end's interface name.
    pub fn first(&self) -> &str {
        &self.first
    }

    /// The second end's interface name.
    pub fn second(&self) -> &str {
        &self.second
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting one end deletes the pair; it is already gone when its
        // namespace was dropped first.
        let _ = ip_in(self.first_netns.as_deref(), &["link", "del", &self.first]);
    }
}

/// Runs `ip args` in namespace `netns` (`None`: the current one).
fn ip_in(netns: Option<&str>, args: &[&str]) -> Result<String> {
    match netns {
        Some(netns) => ip(&[&["-n", netns], args].concat()),
        None => ip(args),
    }
}

/// A persistent tap device, optionally inside a namespace; deleted on drop.
#[derive(Debug)]
pub struct Tap {
    name: String,
    netns: Option<String>,
}

impl Tap {
    /// Creates tap [`unique_name`]`(prefix)` in `netns` (`None`: the current
    /// namespace), with `multi_queue` for one queue per core (then every
    /// opener must ask for `IFF_MULTI_QUEUE` too). It stays down and
    /// unaddressed: see [`Netns::configure`].
    pub fn create(prefix: &str, netns: Option<&Netns>, multi_queue: bool) -> Result<Self> {
        let name = unique_name(prefix);
        let mut args = vec!["tuntap", "add", "dev", name.as_str(), "mode", "tap"];
        if multi_queue {
            args.push("multi_queue");
        }
        ip_in(netns.map(Netns::name), &args)?;
        Ok(Self {
            name,
            netns: netns.map(|netns| netns.name().to_owned()),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = ip_in(self.netns.as_deref(), &["link", "del", &self.name]);
    }
}

/// A namespace holding the taps of an appliance's interfaces, the
/// appliance (QEMU or hosted) attached to them and the test's tools on the
/// namespace's side. Taps go before the namespace on drop.
pub struct Lan {
    taps: Vec<Tap>,
    /// Where the taps live.
    pub netns: Netns,
}

impl Lan {
    /// A namespace with `count` taps, up, the first with `address` (CIDR)
    /// when given; `multi_queue` for one queue per core.
    pub fn create(count: usize, multi_queue: bool, address: Option<&str>) -> Result<Self> {
        let netns = Netns::create("wcl")?;
        let mut taps = Vec::with_capacity(count);
        for index in 0..count {
            let tap = Tap::create("wclt", Some(&netns), multi_queue)?;
            netns.configure(tap.name(), address.filter(|_| index == 0))?;
            taps.push(tap);
        }
        Ok(Self { taps, netns })
    }

    /// The first tap's name.
    pub fn tap(&self) -> &str {
        self.taps[0].name()
    }

    /// Every tap's name, in order.
    pub fn tap_names(&self) -> Vec<&str> {
        self.taps.iter().map(Tap::name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::host::{have, is_root, skip_outside_ci};

    /// Creates and tears down a namespace, a veth pair across it and a tap,
    /// when running as root with `ip` available. Unit tests also run
    /// unprivileged, so elsewhere it skips, saying so; under CI it fails.
    #[test]
    fn namespace_veth_and_tap_come_and_go() {
        if !is_root() || !have("ip") {
            skip_outside_ci(
                "namespace_veth_and_tap_come_and_go",
                "needs root and iproute2",
            );
            return;
        }
        let netns = Netns::create("wcut").unwrap();
        let name = netns.name().to_owned();
        let veth = Veth::create("wcut", None, Some(&netns)).unwrap();
        netns
            .configure(veth.second(), Some("10.251.0.1/24"))
            .unwrap();
        assert!(
            netns
                .ip(&["addr", "show", veth.second()])
                .unwrap()
                .contains("10.251.0.1/24")
        );
        assert_eq!(netns.mac_address(veth.second()).unwrap().len(), 6);
        let tap = Tap::create("wcut", Some(&netns), true).unwrap();
        assert!(netns.ip(&["link", "show", tap.name()]).is_ok());
        let host_end = veth.first().to_owned();
        drop(tap);
        drop(veth);
        assert!(ip(&["link", "show", &host_end]).is_err());
        drop(netns);
        assert!(!ip(&["netns", "list"]).unwrap().contains(&name));
    }
}
