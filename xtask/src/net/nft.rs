//! nftables rules in a test namespace, deleted by a guard's `Drop`: random
//! loss of TCP segments for the loss-recovery tests, and a filter that keeps
//! the client's kernel from answering a SYN flood's SYN-ACKs with RSTs.
//! Needs `nft` from the Debian package nftables (see `ensure_net_tools`).
//!
//! Loss goes on the *ingress* hook of a device the segments cross after
//! leaving their sender (see `net::bridged`), never on the sender's own
//! `output` hook: Linux TCP takes a drop there as local congestion and
//! sends the segment again at once, so nothing would be lost on the wire.

use crate::net::netns::Netns;
use anyhow::Result;

/// The one table a test adds per family; a namespace holds at most one.
const TABLE: &str = "wctest";

/// An nftables table in a namespace, deleted on drop.
#[derive(Debug)]
pub struct NftTable<'netns> {
    netns: &'netns Netns,
    family: &'static str,
}

impl<'netns> NftTable<'netns> {
    /// A table of `family` in `netns` with one base chain per
    /// `(hook, rule)` pair holding that rule; `hook` is what follows
    /// `type filter hook` (`output`, `ingress device "eth0"`).
    fn create(
        netns: &'netns Netns,
        family: &'static str,
        chains: &[(String, String)],
    ) -> Result<Self> {
        netns.run(&["nft", "add", "table", family, TABLE])?;
        // The guard exists from here on, so a failure below deletes the table.
        let table = Self { netns, family };
        for (index, (hook, rule)) in chains.iter().enumerate() {
            let chain = format!("chain{index}");
            netns.run(&[
                "nft",
                "add",
                "chain",
                family,
                TABLE,
                &chain,
                &format!("{{ type filter hook {hook} priority 0; policy accept; }}"),
            ])?;
            let mut command = vec!["nft", "add", "rule", family, TABLE, &chain];
            command.extend(rule.split_whitespace());
            netns.run(&command)?;
        }
        Ok(table)
    }

    /// Drops `percent` % of the TCP segments arriving on each of `devices`
    /// (all in `netns`), each independently at random.
    pub fn tcp_loss(netns: &'netns Netns, percent: u8, devices: &[&str]) -> Result<Self> {
        let chains: Vec<(String, String)> = devices
            .iter()
            .map(|device| {
                (
                    format!("ingress device \"{device}\""),
                    format!("ip protocol tcp numgen random mod 100 < {percent} counter drop"),
                )
            })
            .collect();
        Self::create(netns, "netdev", &chains)
    }

    /// Drops what the kernel of `netns` sends that matches `rule` (like
    /// `tcp flags rst`), counting it.
    pub fn drop_outgoing(netns: &'netns Netns, rule: &str) -> Result<Self> {
        Self::create(
            netns,
            "inet",
            &[("output".to_owned(), format!("{rule} counter drop"))],
        )
    }

    /// How many packets each rule dropped, in chain order.
    pub fn dropped(&self) -> Vec<u64> {
        let listing = self
            .netns
            .run(&["nft", "list", "table", self.family, TABLE])
            .unwrap_or_default();
        listing
            .lines()
            .filter_map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                let at = words.iter().position(|word| *word == "packets")?;
                words.get(at + 1)?.parse().ok()
            })
            .collect()
    }
}

impl Drop for NftTable<'_> {
    fn drop(&mut self) {
        if let Err(error) = self
            .netns
            .run(&["nft", "delete", "table", self.family, TABLE])
        {
            eprintln!(
                "nft: could not delete table {TABLE} in {}: {error:#}",
                self.netns.name()
            );
        }
    }
}
