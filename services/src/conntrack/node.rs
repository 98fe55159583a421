//! `Conntrack`: the connection tracker as a node of its own. It tracks
//! every packet that passes (at `ipv4:forward` by default, in front of the
//! router), drops what fits no flow unless told not to, and counts flows
//! created, expired, evicted and refused.

use super::{
    CtState, FlowPacket, FlowSteering, FlowTable, ParseError, SteerCounts, SteeredNode, TableStats,
};
use dataplane::{
    Batch, DropCode, Nanoservice, Outputs, Packet, Verdict, drop_reasons, events, outputs,
};

drop_reasons! {
    /// Why [`Conntrack`] drops a packet.
    ConntrackDrop {
        /// Not a readable IPv4 packet with its transport header.
        Malformed = "malformed",
        /// Fits no flow: a TCP segment that neither opens nor continues
        /// one, a reply without a request, an ICMP error quoting nothing
        /// tracked (with `drop_invalid`).
        Invalid = "invalid",
        /// Would open a flow whose bucket is full of established flows.
        TableFull = "table-full",
        /// Belongs to another core's flows, whose ring was full.
        RingFull = "ring-full",
    }
}

outputs! {
    /// Where [`Conntrack`] sends a packet.
    ConntrackOutput {
        /// On to the next service at the hook point.
        Pass = "pass",
    }
}

events! {
    /// What [`Conntrack`] counts besides drops.
    ConntrackEvent {
        /// Flows created.
        Created = "flows-created",
        /// Flows that timed out.
        Expired = "flows-expired",
        /// Unestablished flows evicted to make room.
        Evicted = "flows-evicted",
        /// Non-first fragments passed untracked.
        Fragments = "fragments",
        /// Packets of another core's flows put on the ring to it.
        HandedOff = "handed-off",
        /// Packets of this core's flows taken from other cores' rings.
        HandedIn = "handed-in",
    }
}

/// Entries the housekeeping tick checks for expiry per call.
pub(crate) const SWEEP_PER_TICK: usize = 1024;

/// Adds the table's counts to the node's events.
pub(crate) fn count_table(stats: TableStats, out: &mut Outputs<'_>) {
    for (event, count) in [
        (ConntrackEvent::Created, stats.created),
        (ConntrackEvent::Expired, stats.expired),
        (ConntrackEvent::Evicted, stats.evicted),
    ] {
        if count > 0 {
            out.count(event.into(), count);
        }
    }
}

/// The connection tracker of one core.
#[derive(Debug)]
pub struct Conntrack {
    table: FlowTable,
    drop_invalid: bool,
    steering: Option<FlowSteering>,
    /// Non-first fragments passed since the last count.
    fragments: u64,
}

impl Conntrack {
    /// A tracker over `table`; `drop_invalid` drops packets that fit no
    /// flow (else they pass, still counted).
    pub fn new(table: FlowTable, drop_invalid: bool) -> Self {
        Self {
            table,
            drop_invalid,
            steering: None,
            fragments: 0,
        }
    }

    /// Brings both directions of every flow to one core over `steering`
    /// (see [`crate::conntrack::steer`]).
    pub fn with_steering(mut self, steering: FlowSteering) -> Self {
        self.steering = Some(steering);
        self
    }

    /// The flow table.
    pub fn table(&self) -> &FlowTable {
        &self.table
    }

    /// `steer`: a packet of another core's flow is kept in the batch for
    /// [`FlowSteering::hand_off`] (false for packets handed in).
    fn verdict(&mut self, ip: &[u8], steer: bool, now_ns: u64) -> Verdict {
        let packet = match FlowPacket::parse(ip) {
            Ok(packet) => packet,
            Err(ParseError::Fragment) => {
                // Later fragments carry no ports; the first one was tracked.
                self.fragments += 1;
                return Verdict::emit(ConntrackOutput::Pass.into());
            }
            Err(_) => return Verdict::drop(ConntrackDrop::Malformed),
        };
        if steer
            && let Some(steering) = &mut self.steering
            && steering
                .elsewhere(packet.quoted.as_ref().unwrap_or(&packet.tuple))
                .is_some()
        {
            return Verdict::Keep;
        }
        match self.table.track(&packet, now_ns).state {
            CtState::Invalid if self.drop_invalid => Verdict::drop(ConntrackDrop::Invalid),
            CtState::Full => Verdict::drop(ConntrackDrop::TableFull),
            _ => Verdict::emit(ConntrackOutput::Pass.into()),
        }
    }

    /// Counts the fragments passed and the table's changes since the
    /// last count.
    fn count(&mut self, out: &mut Outputs<'_>) {
        let fragments = core::mem::take(&mut self.fragments);
        if fragments > 0 {
            out.count(ConntrackEvent::Fragments.into(), fragments);
        }
        count_table(self.table.take_stats(), out);
    }
}

impl SteeredNode for Conntrack {
    fn steering(&mut self) -> &mut Option<FlowSteering> {
        &mut self.steering
    }

    fn judge(&mut self, packet: &mut Packet, steer: bool, out: &mut Outputs<'_>) -> Verdict {
        self.verdict(packet.payload(), steer, out.now_ns())
    }
}

/// Where the tracker counts its steering.
const STEER_COUNTS: SteerCounts = SteerCounts {
    handed_off: ConntrackEvent::HandedOff as usize,
    handed_in: ConntrackEvent::HandedIn as usize,
    ring_full: DropCode(ConntrackDrop::RingFull as u8),
};

impl Nanoservice for Conntrack {
    fn name(&self) -> &'static str {
        "conntrack"
    }

    fn outputs(&self) -> &'static [&'static str] {
        ConntrackOutput::NAMES
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        ConntrackDrop::NAMES
    }

    fn events(&self) -> &'static [&'static str] {
        ConntrackEvent::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        FlowSteering::process(self, batch, out, STEER_COUNTS);
        self.count(out);
    }

    /// Now when another core handed this one packets of its flows.
    fn next_deadline_ns(&self) -> Option<u64> {
        self.steering
            .as_ref()
            .is_some_and(FlowSteering::pending)
            .then_some(0)
    }

    fn tick(&mut self, out: &mut Outputs<'_>) {
        FlowSteering::take_in(self, out, STEER_COUNTS.handed_in);
        self.table.sweep(out.now_ns(), SWEEP_PER_TICK);
        self.count(out);
    }
}
