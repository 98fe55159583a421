//! The inside and outside hosts of the appliance cases (firewall, NAT,
//! load balancer): the appliance's own namespace with two af-packet
//! veth links, eth0 to an inside namespace at 10.0.1.2/24 and eth1 to an
//! outside namespace at 10.0.2.2/24 (the addresses of
//! examples/firewall.toml, nat.toml and lb.toml), and `curl` between them.

use crate::net::netns::Netns;
use crate::suites::hosted::process::{Attachment, Link, attach};
use anyhow::Result;

/// The appliance's namespace and its two sides. Fields drop in order:
/// the sides' devices and namespaces, then the appliance's namespace.
pub struct Sides {
    /// eth0's side: 10.0.1.2/24, no route yet.
    pub inside: Attachment,
    /// eth1's side: 10.0.2.2/24, no route yet.
    pub outside: Attachment,
    /// Where the appliance runs (`prefix` names it).
    pub appliance: Netns,
}

impl Sides {
    /// Creates the namespaces and links; `prefix` names the appliance's
    /// namespace (a few letters, unique per case).
    pub fn create(prefix: &str) -> Result<Self> {
        let appliance = Netns::create(prefix)?;
        let inside = attach(Link::AfPacket, "eth0", "10.0.1.2/24", Some(&appliance))?;
        let outside = attach(Link::AfPacket, "eth1", "10.0.2.2/24", Some(&appliance))?;
        Ok(Self {
            inside,
            outside,
            appliance,
        })
    }

    /// The `--nic` arguments of both interfaces.
    pub fn nics(&self) -> [&str; 2] {
        [&self.inside.nic_argument, &self.outside.nic_argument]
    }
}

/// `curl` from `client` to `url`, bounded: its exit status and what it
/// said (the HTTP status, or curl's error).
pub fn curl(client: &Netns, url: &str, max_time: &str) -> Result<(Option<i32>, String)> {
    let output = client.output(&[
        "timeout",
        "-k",
        "5",
        "30",
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        max_time,
        url,
    ])?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.code(), text))
}
