//! nftables rules in a test namespace, deleted by a guard's `Drop`: random
//! loss of TCP segments for the loss-recovery tests, and a filter that keeps
//! the client's kernel from answering a SYN flood's SYN-ACKs with RSTs.
//!
//! The rules sit in the namespace where the client's kernel stack runs, on
//! its `output` and `input` hooks, so they act on what the client sends to
//! the appliance and on what it receives from it, whatever carries the
//! frames (a tap read by QEMU or by `warpcore-hosted`). Needs `nft` from
//! the Debian package nftables (see `ensure_net_tools`).

use crate::net::netns::Netns;
use anyhow::Result;

/// The one table a test adds; a namespace holds at most one at a time.
const TABLE: &str = "wctest";

/// Which way a rule acts, as seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// What the client sends (the `output` hook).
    Outgoing,
    /// What the client receives (the `input` hook).
    Incoming,
}

impl Direction {
    fn hook(self) -> &'static str {
        match self {
            Self::Outgoing => "output",
            Self::Incoming => "input",
        }
    }
}

/// An nftables table in a namespace, deleted on drop.
#[derive(Debug)]
pub struct NftTable<'netns> {
    netns: &'netns Netns,
}

impl<'netns> NftTable<'netns> {
    /// A table in `netns` with one base chain per `(direction, rule)` pair
    /// holding that rule, such as `meta l4proto tcp drop`.
    pub fn create(netns: &'netns Netns, rules: &[(Direction, &str)]) -> Result<Self> {
        netns.run(&["nft", "add", "table", "inet", TABLE])?;
        // The guard exists from here on, so a failure below deletes the table.
        let table = Self { netns };
        for (direction, rule) in rules {
            let hook = direction.hook();
            netns.run(&[
                "nft",
                "add",
                "chain",
                "inet",
                TABLE,
                hook,
                &format!("{{ type filter hook {hook} priority 0; policy accept; }}"),
            ])?;
            let mut command = vec!["nft", "add", "rule", "inet", TABLE, hook];
            command.extend(rule.split_whitespace());
            netns.run(&command)?;
        }
        Ok(table)
    }

    /// Drops `percent` % of the TCP segments each way of `directions`, each
    /// independently at random (`numgen random mod 100 < percent`).
    pub fn tcp_loss(netns: &'netns Netns, percent: u8, directions: &[Direction]) -> Result<Self> {
        let rule = format!("meta l4proto tcp numgen random mod 100 < {percent} counter drop");
        let rules: Vec<(Direction, &str)> = directions
            .iter()
            .map(|direction| (*direction, rule.as_str()))
            .collect();
        Self::create(netns, &rules)
    }

    /// The rules' counters as `nft list table` prints them, for a report.
    pub fn listing(&self) -> String {
        self.netns
            .run(&["nft", "list", "table", "inet", TABLE])
            .unwrap_or_else(|error| format!("(nft list failed: {error:#})"))
    }
}

impl Drop for NftTable<'_> {
    fn drop(&mut self) {
        if let Err(error) = self.netns.run(&["nft", "delete", "table", "inet", TABLE]) {
            eprintln!(
                "nft: could not delete table {TABLE} in {}: {error:#}",
                self.netns.name()
            );
        }
    }
}
