//! A client namespace reaching an appliance's tap through a bridge, so that
//! loss can be injected on the way: the tap and one end of a veth pair are
//! ports of a bridge in the namespace holding the tap, and the client's
//! kernel stack sits on the veth's other end in a namespace of its own.
//!
//! Segments toward the appliance cross the veth and arrive on its bridge
//! end; segments toward the client come out of the appliance into the tap.
//! Both arrivals are ingress hooks where an nftables drop is a loss on the
//! wire (see `net::nft`). The client's veth sends one segment per packet
//! (`gso_max_segs 1`), so a drop loses one segment, not a 64 KB burst.
//!
//! [`BridgedClient::create_relayed`] puts a userspace relay between the
//! bridge and the tap, for reordering (see `net::reorder_relay`): the
//! bridge's second port is then one end of another veth pair, and the
//! relay moves frames between that pair's other end and the tap. Loss
//! toward the client then goes on the relay veth's bridge end, which the
//! relay's frames arrive on, since an AF_PACKET socket on the tap reads
//! frames before the tap's ingress hook could drop them.

use crate::net::devices::Veth;
use crate::net::netns::{Netns, unique_name};
use crate::net::nft::NftTable;
use crate::net::reorder_relay::ReorderRelay;
use anyhow::{Context, Result};

/// Which way segments travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the appliance.
    ToAppliance,
    /// From the appliance to the client.
    ToClient,
}

/// The client side of a bridged tap. Guards drop in field order: the veth
/// pairs, then the client namespace; the bridge goes with the tap's
/// namespace, which the caller owns.
pub struct BridgedClient<'tap> {
    veth: Veth,
    /// With a relay: the pair whose first end is the bridge's second port
    /// and whose second end the relay reads.
    relay_veth: Option<Veth>,
    tap_netns: &'tap Netns,
    tap: String,
    /// Where the client's tools run.
    pub client: Netns,
}

impl<'tap> BridgedClient<'tap> {
    /// Bridges `tap` (in `tap_netns`, up, without address) to a new client
    /// namespace whose veth end holds `client_address` (CIDR).
    pub fn create(tap_netns: &'tap Netns, tap: &str, client_address: &str) -> Result<Self> {
        Self::build(tap_netns, tap, client_address, false)
    }

    /// Like [`Self::create`], but the bridge reaches the tap only through
    /// a relay started by [`Self::reorder`].
    pub fn create_relayed(tap_netns: &'tap Netns, tap: &str, client_address: &str) -> Result<Self> {
        Self::build(tap_netns, tap, client_address, true)
    }

    fn build(
        tap_netns: &'tap Netns,
        tap: &str,
        client_address: &str,
        relayed: bool,
    ) -> Result<Self> {
        let client = Netns::create("wcbc")?;
        let veth = Veth::create("wcbv", Some(tap_netns), Some(&client))?;
        let relay_veth = if relayed {
            // The pair keeps the Ethernet MTU: a frame of ours over 1500
            // bytes is refused by the relay's AF_PACKET socket, counted,
            // and the transfer stalls, so the test catches it.
            Some(Veth::create("wcbr", Some(tap_netns), Some(tap_netns))?)
        } else {
            None
        };
        let bridge = unique_name("wcbb");
        tap_netns.ip(&["link", "add", &bridge, "type", "bridge"])?;
        tap_netns.ip(&["link", "set", &bridge, "up"])?;
        let second_port = relay_veth.as_ref().map_or(tap, Veth::first);
        for port in [second_port, veth.first()] {
            tap_netns.ip(&["link", "set", port, "master", &bridge])?;
        }
        client.ip(&["link", "set", veth.second(), "gso_max_segs", "1"])?;
        client.configure(veth.second(), Some(client_address))?;
        Ok(Self {
            veth,
            relay_veth,
            tap_netns,
            tap: tap.to_owned(),
            client,
        })
    }

    /// The client's interface (raw frames go out of it).
    pub fn client_ifname(&self) -> &str {
        self.veth.second()
    }

    /// Drops `percent` % of the TCP segments each way of `directions`
    /// until the returned table is dropped.
    pub fn tcp_loss(&self, percent: u8, directions: &[Direction]) -> Result<NftTable<'tap>> {
        let devices: Vec<&str> = directions
            .iter()
            .map(|direction| match direction {
                Direction::ToAppliance => self.veth.first(),
                Direction::ToClient => self
                    .relay_veth
                    .as_ref()
                    .map_or(self.tap.as_str(), Veth::first),
            })
            .collect();
        NftTable::tcp_loss(self.tap_netns, percent, &devices)
    }

    /// Starts the relay of a link made by [`Self::create_relayed`],
    /// holding back about one data segment in `hold_one_in` toward the
    /// appliance, for at most `seconds`; it stops when
    /// [`ReorderRelay::finish`] is called or the guard drops.
    pub fn reorder(&self, hold_one_in: u32, seconds: u64) -> Result<ReorderRelay> {
        let relay_veth = self
            .relay_veth
            .as_ref()
            .context("this bridged link was made without a relay")?;
        ReorderRelay::start(
            self.tap_netns,
            relay_veth.second(),
            &self.tap,
            hold_one_in,
            seconds,
        )
    }
}
