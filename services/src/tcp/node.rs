//! `Tcp`: the node that runs one core's TCP stack. It checks each segment,
//! finds its connection by a hash of the four addresses (no walk over the
//! connections), answers SYNs for the ports its apps serve (a bounded SYN
//! queue, then SYN cookies), keeps TIME-WAIT as a few numbers, and after
//! each burst sends what its connections owe: one ACK per connection per
//! burst at most, data and FINs as the windows allow.

use super::app::{CloseReason, ConnectError, ConnectionId};
use super::config::TcpConfig;
use super::connection::{Connection, FourTuple, Incoming, LOCAL_MSS, Outcome, SegmentSink, State};
use super::cookie::{self, Secrets};
use super::directory::FlowDirectory;
use super::events::{Tally, TcpDrop, TcpEvent};
use super::listener::Listener;
use super::output::PacketSink;
use super::ports::EphemeralPorts;
use super::seq::Seq;
use super::strays::Strays;
use super::supervised::{AppRebuild, AppSupervision, SupervisedApp};
use super::time_wait::{TimeWaitEntry, TimeWaitTable};
use super::timer::{TimerEntry, TimerWheel};
use crate::route::{LocalAddresses, Locality, RoutingTable};
use crate::wire::tcp::{TcpFlags, TcpOptions, parse_options};
use crate::wire::{Ipv4Packet, TcpPacket, WireError};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};
use dataplane::rss::RssSteering;
use dataplane::stats::PartCounters;
use dataplane::{Batch, Nanoservice, Outputs, Packet, outputs};
use foldhash::fast::FixedState;
use hashbrown::HashMap;

outputs! {
    /// Where the `tcp` node sends packets.
    TcpOutput {
        /// Segments we send, as IPv4 packets (to `ipv4-out`).
        Out = "out",
        /// Segments taken in (their bytes delivered or buffered).
        Absorbed = "absorbed",
    }
}

/// One core's TCP stack and the apps on its ports.
pub struct Tcp {
    config: TcpConfig,
    local: LocalAddresses,
    secrets: Secrets,
    /// Apps by port, each under supervision.
    listeners: Vec<(u16, SupervisedApp)>,
    /// How new apps are supervised.
    supervision: AppSupervision,
    /// Each listener's tag: what it stands for in the spec (0: nothing),
    /// so that a new spec keeps the apps it did not change.
    listener_tags: Vec<u64>,
    /// Connections by slot; `None` is a free slot.
    connections: Vec<Option<Connection>>,
    /// Each slot's generation (bumped when a connection leaves it).
    generations: Vec<u32>,
    free: Vec<u32>,
    /// Four addresses to slot.
    index: HashMap<FourTuple, u32, FixedState>,
    /// Connections in SYN-RECEIVED.
    half_open: usize,
    time_wait: TimeWaitTable<FixedState>,
    wheel: TimerWheel,
    /// Connections touched in this burst, to visit at its end.
    dirty: Vec<u32>,
    /// Connections apps asked to resume.
    ready: Vec<ConnectionId>,
    tally: Tally,
    /// The last time the wheel moved.
    last_tick_ms: u64,
    /// This core, and the directory of every core's connections.
    core: usize,
    directory: Option<Arc<FlowDirectory>>,
    /// The rings to the other cores' stacks, for segments that arrive
    /// here for their connections.
    strays: Option<Strays>,
    /// Segments other cores passed here, taken from the rings.
    handed_in: Vec<Packet>,
    /// This core's ephemeral ports, for the connections it opens.
    ports: EphemeralPorts,
    /// The RSS of interfaces whose NIC hashes flows with a key we know:
    /// a connection opened there takes a port whose answers land here.
    rss: Vec<RssSteering>,
    /// Routes: which of our addresses a connection we open leaves from.
    routes: RoutingTable,
    /// Connections apps asked for (listener, peer, token), opened after
    /// the burst.
    opening: Vec<(usize, SocketAddrV4, u64)>,
    seed: u64,
}

/// Where an arriving segment went.
enum Arrival {
    /// Taken in (or answered) here.
    Taken,
    /// For a connection of this core: pass it there.
    HandOff(usize),
}

impl core::fmt::Debug for Tcp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tcp")
            .field("ports", &self.ports().collect::<Vec<_>>())
            .field("connections", &self.index.len())
            .field("time_wait", &self.time_wait.len())
            .finish()
    }
}

impl Tcp {
    /// A stack for these addresses with no app yet; `seed` keys sequence
    /// numbers, cookies and the connection hash (make it random).
    pub fn new(local: LocalAddresses, config: TcpConfig, seed: u64) -> Self {
        let hasher = FixedState::with_seed(seed.rotate_left(17) ^ 0x5851_f42d_4c95_7f2d);
        Self {
            local,
            secrets: Secrets::new(seed),
            listeners: Vec::new(),
            supervision: AppSupervision::default(),
            listener_tags: Vec::new(),
            connections: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            index: HashMap::with_capacity_and_hasher(config.max_connections, hasher.clone()),
            half_open: 0,
            time_wait: TimeWaitTable::new(config.max_time_wait, hasher),
            wheel: TimerWheel::new(0),
            dirty: Vec::new(),
            ready: Vec::new(),
            tally: Tally::default(),
            last_tick_ms: 0,
            core: 0,
            directory: None,
            strays: None,
            handed_in: Vec::new(),
            ports: EphemeralPorts::new(0, 1, seed.rotate_left(29)),
            rss: Vec::new(),
            routes: RoutingTable::default(),
            opening: Vec::new(),
            seed,
            config,
        }
    }

    /// Routes for the connections apps open: the route to the peer names
    /// the interface, whose address is the connection's.
    pub fn with_routes(mut self, routes: RoutingTable) -> Self {
        self.routes = routes;
        self
    }

    /// Links this stack to the other cores' through `strays` (this core
    /// is `strays.core()`): it takes this core's share of the ephemeral
    /// ports, and passes a segment for another core's connection there
    /// instead of dropping it.
    pub fn with_strays(mut self, strays: Strays) -> Self {
        self.core = strays.core();
        self.ports = EphemeralPorts::new(strays.core(), strays.cores(), self.seed.rotate_left(29));
        self.strays = Some(strays);
        self
    }

    /// Tells the stack how an interface's NIC spreads flows over the
    /// cores (its RSS key and table, and this core's queue): connections
    /// opened over that interface take a local port, within this core's
    /// share, whose segments from the peer the NIC hashes to this core, so
    /// none of them strays to another core.
    pub fn with_rss(mut self, steering: RssSteering) -> Self {
        self.rss
            .retain(|known| known.interface != steering.interface);
        self.rss.push(steering);
        self
    }

    /// Wakes this core when another core passes it a segment while it
    /// sleeps.
    pub fn set_doorbell(&self, doorbell: &Arc<dataplane::Doorbell>) {
        if let Some(strays) = &self.strays {
            strays.set_doorbell(doorbell);
        }
    }

    /// Opens a connection to `remote` for the app on `port`, after this
    /// burst (the app hears `connected` or `connect_failed` with
    /// `token`); false when no app serves `port`.
    pub fn connect(&mut self, port: u16, remote: SocketAddrV4, token: u64) -> bool {
        let Some(listener) = self.listeners.iter().position(|(bound, _)| *bound == port) else {
            return false;
        };
        self.opening.push((listener, remote, token));
        true
    }

    /// Shares `directory` with the other cores' stacks, as core `core`:
    /// segments of their connections that arrive here are counted
    /// (`wrong-core`) and dropped instead of reset.
    pub fn with_directory(mut self, core: usize, directory: Arc<FlowDirectory>) -> Self {
        self.core = core;
        self.directory = Some(directory);
        self
    }

    /// The other core that owns `tuple`, for a segment with `flags` that
    /// matched no connection here: by the ephemeral port for connections
    /// a core opened, by the shared directory for the ones it accepted. A
    /// SYN without ACK opens a connection where it lands.
    fn owned_elsewhere(&self, tuple: &FourTuple, flags: TcpFlags) -> Option<usize> {
        if flags.contains(TcpFlags::SYN) && !flags.contains(TcpFlags::ACK) {
            return None;
        }
        let port = tuple.local.port();
        let by_port = if self.ports().any(|served| served == port) {
            None
        } else {
            self.ports.owner(port)
        };
        let owner = match by_port {
            Some(owner) => owner,
            None => self.directory.as_ref()?.owner(tuple)?,
        };
        (owner != self.core).then_some(owner)
    }

    /// Serves `port` with `listener`; false if the port has an app already.
    pub fn listen(&mut self, port: u16, listener: Box<dyn Listener>) -> bool {
        self.listen_tagged(port, listener, 0)
    }

    /// [`listen`](Self::listen), tagging the app with what it stands for
    /// (see [`listener_tags`](Self::listener_tags)). The app is contained
    /// when it fails, but not rebuilt.
    pub fn listen_tagged(&mut self, port: u16, listener: Box<dyn Listener>, tag: u64) -> bool {
        self.listen_supervised(port, listener, tag, None)
    }

    /// [`listen_tagged`](Self::listen_tagged), with the factory that
    /// rebuilds the app from its spec after a failure.
    pub fn listen_supervised(
        &mut self,
        port: u16,
        listener: Box<dyn Listener>,
        tag: u64,
        rebuild: Option<AppRebuild>,
    ) -> bool {
        if self.listeners.iter().any(|(bound, _)| *bound == port) {
            return false;
        }
        let app = SupervisedApp::new(port, listener, rebuild, self.supervision);
        self.listeners.push((port, app));
        self.listener_tags.push(tag);
        true
    }

    /// [`listen_supervised`](Self::listen_supervised), counting into
    /// `counters` (the app's before the stack was rebuilt).
    pub fn listen_counted(
        &mut self,
        port: u16,
        listener: Box<dyn Listener>,
        tag: u64,
        rebuild: Option<AppRebuild>,
        counters: Arc<dataplane::supervise::SupervisionCounters>,
    ) -> bool {
        if !self.listen_supervised(port, listener, tag, rebuild) {
            return false;
        }
        if let Some((_, app)) = self.listeners.pop() {
            self.listeners.push((port, app.with_counters(counters)));
        }
        true
    }

    /// Supervises the apps with `supervision` (the platform's guard and
    /// clock, the spec's policy), those already served and those to come.
    pub fn set_supervision(&mut self, supervision: AppSupervision) {
        self.supervision = supervision;
        for (_, app) in &mut self.listeners {
            app.set_supervision(supervision);
        }
    }

    /// True when the stack is linked to other cores' (the flow directory,
    /// the rings for stray segments): such links are made once per boot,
    /// and a rebuilt stack takes the failed one's (`Nanoservice::take_links`).
    pub fn has_links_elsewhere(&self) -> bool {
        self.directory.is_some() || self.strays.is_some()
    }

    /// True when every app can be rebuilt from its spec.
    pub fn apps_rebuildable(&self) -> bool {
        self.listeners.iter().all(|(_, app)| app.rebuildable())
    }

    /// The app serving `port`, with its supervision state.
    pub fn app(&self, port: u16) -> Option<&SupervisedApp> {
        self.listeners
            .iter()
            .find(|(bound, _)| *bound == port)
            .map(|(_, app)| app)
    }

    /// Every app's port and tag.
    pub fn listener_tags(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.listeners
            .iter()
            .zip(&self.listener_tags)
            .map(|((port, _), tag)| (*port, *tag))
    }

    /// Stops serving `port`: its app goes, and with it every connection
    /// it had (ended without a segment: the peer's next one is answered
    /// with RST, as for any connection we do not know). Returns how many
    /// connections ended; `None` when no app served the port.
    pub fn unlisten(&mut self, port: u16) -> Option<usize> {
        let index = self
            .listeners
            .iter()
            .position(|(bound, _)| *bound == port)?;
        let slots = self.slots_of(index);
        for slot in &slots {
            self.tally.bump(TcpEvent::Aborted);
            self.free_connection(*slot, CloseReason::Aborted);
        }
        self.listeners.remove(index);
        self.listener_tags.remove(index);
        for connection in self.connections.iter_mut().flatten() {
            if connection.listener > index {
                connection.listener -= 1;
            }
        }
        Some(slots.len())
    }

    /// The slots of the connections of the listener at `index`.
    fn slots_of(&self, index: usize) -> Vec<u32> {
        self.connections
            .iter()
            .enumerate()
            .filter(|(_, connection)| {
                connection
                    .as_ref()
                    .is_some_and(|connection| connection.listener == index)
            })
            .map(|(slot, _)| slot as u32)
            .collect()
    }

    /// Our addresses changed (a new spec): segments for an address we no
    /// longer have are not ours from now on.
    pub fn set_local(&mut self, local: LocalAddresses) {
        self.local = local;
    }

    /// The ports served.
    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.listeners.iter().map(|(port, _)| *port)
    }

    /// Connections open now (half-open ones included).
    pub fn connection_count(&self) -> usize {
        self.index.len()
    }

    /// Connections in TIME-WAIT now.
    pub fn time_wait_count(&self) -> usize {
        self.time_wait.len()
    }

    /// The connection on `tuple`, for tests.
    pub fn connection(&self, tuple: &FourTuple) -> Option<&Connection> {
        let slot = *self.index.get(tuple)?;
        self.connections.get(slot as usize)?.as_ref()
    }

    /// Checks a segment and takes it in, or names the core to pass it to;
    /// `Err` names the drop reason. A segment another core passed here
    /// (`handed_in`) is never passed on again.
    fn receive(
        &mut self,
        packet: &Packet,
        handed_in: bool,
        now_ns: u64,
        out: &mut Outputs<'_>,
    ) -> Result<Arrival, TcpDrop> {
        let ip = Ipv4Packet::new_checked(packet.payload()).map_err(|_| TcpDrop::Truncated)?;
        let (source, destination) = (ip.source(), ip.destination());
        if self.local.locality(destination) != Locality::Unicast
            || source.is_broadcast()
            || source.is_multicast()
            || source.is_unspecified()
        {
            return Err(TcpDrop::NotUnicast);
        }
        let tcp = TcpPacket::new_checked(ip.payload()).map_err(|error| match error {
            WireError::BadDataOffset => TcpDrop::BadDataOffset,
            _ => TcpDrop::Truncated,
        })?;
        if !tcp.verify_checksum(source, destination) {
            return Err(TcpDrop::BadChecksum);
        }
        let flags = tcp.flags();
        if flags.contains(TcpFlags::SYN) && flags.intersects(TcpFlags::FIN | TcpFlags::RST)
            || !flags.intersects(TcpFlags::SYN | TcpFlags::ACK | TcpFlags::RST)
        {
            return Err(TcpDrop::BadFlags);
        }
        let options = parse_options(tcp.options()).map_err(|_| TcpDrop::BadOptions)?;
        let segment = Incoming {
            seq: Seq(tcp.sequence_number()),
            ack: Seq(tcp.acknowledgment_number()),
            flags,
            window: tcp.window(),
            options,
            payload: tcp.payload(),
        };
        let tuple = FourTuple {
            local: SocketAddrV4::new(destination, tcp.destination_port()),
            remote: SocketAddrV4::new(source, tcp.source_port()),
        };
        let now_ms = now_ns / 1_000_000;
        let mut sink = PacketSink::new(out);
        if let Some(&slot) = self.index.get(&tuple) {
            return self
                .for_connection(slot, &segment, now_ms, now_ns, &mut sink)
                .map(|()| Arrival::Taken);
        }
        if !handed_in && let Some(owner) = self.owned_elsewhere(&tuple, flags) {
            return Ok(Arrival::HandOff(owner));
        }
        self.without_connection(tuple, &segment, now_ms, now_ns, &mut sink)
            .map(|()| Arrival::Taken)
    }

    /// A segment that matched no connection: TIME-WAIT, a closed port, a
    /// SYN for a listener, or the ACK of a cookie.
    fn without_connection(
        &mut self,
        tuple: FourTuple,
        segment: &Incoming<'_>,
        now_ms: u64,
        now_ns: u64,
        sink: &mut PacketSink<'_, '_>,
    ) -> Result<(), TcpDrop> {
        let flags = segment.flags;
        if let Some(entry) = self.time_wait.get(&tuple).copied() {
            match self.in_time_wait(&tuple, entry, segment, sink) {
                Some(result) => return result,
                None => self.time_wait.remove(&tuple),
            }
        }
        let Some(listener) = self
            .listeners
            .iter()
            .position(|(port, _)| *port == tuple.local.port())
        else {
            if !flags.contains(TcpFlags::RST) {
                self.reset_for(&tuple, segment, sink);
            }
            return Err(TcpDrop::PortClosed);
        };
        if self.listeners[listener].1.is_down() {
            // The app failed and waits for its restart: refused as a
            // closed port is, and counted as the app's dropped packet.
            self.listeners[listener].1.count_dropped(1);
            if !flags.contains(TcpFlags::RST) {
                self.reset_for(&tuple, segment, sink);
            }
            return Err(TcpDrop::AppDown);
        }
        if flags.contains(TcpFlags::RST) {
            return Err(TcpDrop::NoConnection);
        }
        if flags.contains(TcpFlags::SYN) {
            if flags.contains(TcpFlags::ACK) {
                self.reset_for(&tuple, segment, sink);
                return Err(TcpDrop::BadAck);
            }
            return self.on_syn(tuple, listener, segment, now_ms, now_ns, sink);
        }
        self.on_cookie_ack(tuple, listener, segment, now_ms, now_ns, sink)
    }

    /// A segment for a connection in the table.
    fn for_connection(
        &mut self,
        slot: u32,
        segment: &Incoming<'_>,
        now_ms: u64,
        now_ns: u64,
        sink: &mut PacketSink<'_, '_>,
    ) -> Result<(), TcpDrop> {
        let Some(connection) = self.connections[slot as usize].as_mut() else {
            return Err(TcpDrop::NoConnection);
        };
        let was_half_open = connection.state == State::SynReceived;
        let was_opening = connection.state == State::SynSent;
        let listener = &mut self.listeners[connection.listener].1;
        let outcome = connection.on_segment(
            segment,
            now_ms,
            now_ns,
            &self.config,
            listener,
            sink,
            &mut self.tally,
        );
        if was_half_open && connection.state != State::SynReceived {
            self.half_open -= 1;
        }
        let result = match outcome {
            Outcome::Dropped(TcpDrop::BadAck)
                if was_half_open || was_opening && !segment.flags.contains(TcpFlags::RST) =>
            {
                let tuple = connection.tuple;
                self.reset_for(&tuple, segment, sink);
                Err(TcpDrop::BadAck)
            }
            Outcome::Dropped(reason) => Err(reason),
            _ => Ok(()),
        };
        self.settle(slot, outcome, now_ms, sink);
        result
    }

    /// Ends the connection in `slot` for `reason`, with a RST to the peer
    /// first when it was aborted.
    fn end(&mut self, slot: u32, reason: CloseReason, sink: &mut PacketSink<'_, '_>) {
        if reason == CloseReason::Aborted
            && let Some(connection) = self.connections[slot as usize].as_mut()
        {
            connection.send_reset(sink, &mut self.tally);
        }
        self.free_connection(slot, reason);
    }

    /// After a connection handled something: end it, move it to
    /// TIME-WAIT, or put it on the burst's list.
    fn settle(&mut self, slot: u32, outcome: Outcome, now_ms: u64, sink: &mut PacketSink<'_, '_>) {
        let Some(connection) = self.connections[slot as usize].as_mut() else {
            return;
        };
        if let Some((remote, token)) = connection.connect_request.take() {
            self.opening.push((connection.listener, remote, token));
        }
        match outcome {
            Outcome::Ended(reason) => self.end(slot, reason, sink),
            Outcome::TimeWait => self.enter_time_wait(slot, now_ms),
            Outcome::Open | Outcome::Dropped(_) => {
                if connection.aborted() {
                    self.tally.bump(TcpEvent::Aborted);
                    self.end(slot, CloseReason::Aborted, sink);
                    return;
                }
                if !connection.dirty {
                    connection.dirty = true;
                    self.dirty.push(slot);
                }
            }
        }
    }

    /// A SYN for a port we serve: a half-open connection, or a cookie when
    /// the SYN queue is full.
    fn on_syn(
        &mut self,
        tuple: FourTuple,
        listener: usize,
        segment: &Incoming<'_>,
        now_ms: u64,
        now_ns: u64,
        sink: &mut PacketSink<'_, '_>,
    ) -> Result<(), TcpDrop> {
        if self.half_open >= self.config.syn_backlog
            || self.index.len() >= self.config.max_connections
        {
            self.send_cookie(&tuple, segment, now_ms, sink);
            return Ok(());
        }
        let iss = self
            .secrets
            .initial_sequence(tuple.local, tuple.remote, now_ns);
        let slot = self.allocate_slot();
        let id = ConnectionId {
            slot,
            generation: self.generations[slot as usize],
        };
        let mut connection =
            Connection::passive(tuple, id, listener, segment, iss, LOCAL_MSS, &self.config);
        connection.send_syn_ack(now_ms, &self.config, sink, &mut self.tally);
        self.connections[slot as usize] = Some(connection);
        self.index.insert(tuple, slot);
        self.claim(&tuple);
        self.half_open += 1;
        self.schedule(slot);
        Ok(())
    }

    /// A stateless SYN-ACK whose sequence number is a cookie.
    fn send_cookie(
        &mut self,
        tuple: &FourTuple,
        segment: &Incoming<'_>,
        now_ms: u64,
        sink: &mut PacketSink<'_, '_>,
    ) {
        let cookie = self.secrets.make_cookie(
            tuple.local,
            tuple.remote,
            segment.seq,
            segment.options.mss.unwrap_or(536),
            now_ms,
        );
        let timestamps = segment.options.timestamps.map(|(value, _)| {
            let ours = cookie::cookie_timestamp(
                now_ms as u32,
                segment.options.window_scale,
                segment.options.sack_permitted,
            );
            (ours, value)
        });
        // Without timestamps the cookie cannot carry a window scale.
        let window_scale = timestamps
            .and(segment.options.window_scale)
            .map(|_| self.config.window_scale());
        let options = TcpOptions {
            mss: Some(LOCAL_MSS),
            window_scale,
            sack_permitted: timestamps.is_some() && segment.options.sack_permitted,
            timestamps,
            sack_blocks: Default::default(),
        };
        sink.send_raw(
            tuple,
            cookie,
            segment.seq + 1u32,
            TcpFlags::SYN | TcpFlags::ACK,
            u16::MAX,
            options,
        );
        self.tally.bump(TcpEvent::CookiesSent);
        self.tally.bump(TcpEvent::SegmentsOut);
    }

    /// An ACK with no connection: the end of a cookie handshake, or stray.
    fn on_cookie_ack(
        &mut self,
        tuple: FourTuple,
        listener: usize,
        segment: &Incoming<'_>,
        now_ms: u64,
        now_ns: u64,
        sink: &mut PacketSink<'_, '_>,
    ) -> Result<(), TcpDrop> {
        let grant = self.secrets.check_cookie(
            tuple.local,
            tuple.remote,
            segment.seq + u32::MAX,
            segment.ack + u32::MAX,
            now_ms,
        );
        let Some(grant) = grant else {
            self.reset_for(&tuple, segment, sink);
            return Err(TcpDrop::NoConnection);
        };
        if self.index.len() >= self.config.max_connections {
            return Err(TcpDrop::ListenOverflow);
        }
        let scale = segment
            .options
            .timestamps
            .and_then(|(_, echo)| cookie::cookie_window_scale(echo));
        let sack = segment
            .options
            .timestamps
            .is_some_and(|(_, echo)| cookie::cookie_sack_permitted(echo));
        let slot = self.allocate_slot();
        let id = ConnectionId {
            slot,
            generation: self.generations[slot as usize],
        };
        let mut connection = Connection::from_cookie(
            tuple,
            id,
            listener,
            segment,
            grant.mss.min(LOCAL_MSS),
            (scale, sack),
            &self.config,
        );
        self.tally.bump(TcpEvent::CookiesAccepted);
        let app = &mut self.listeners[listener].1;
        if !connection.accept(app, now_ns, &mut self.tally) {
            connection.send_reset(sink, &mut self.tally);
            self.free.push(slot);
            return Ok(());
        }
        self.connections[slot as usize] = Some(connection);
        self.index.insert(tuple, slot);
        self.claim(&tuple);
        // The ACK may carry data: handle it as the connection would.
        self.for_connection(slot, segment, now_ms, now_ns, sink)
    }

    /// A segment for a connection in TIME-WAIT (RFC 9293 3.10.7.4 and
    /// RFC 6191): `None` lets a new SYN reopen it.
    fn in_time_wait(
        &mut self,
        tuple: &FourTuple,
        entry: TimeWaitEntry,
        segment: &Incoming<'_>,
        sink: &mut PacketSink<'_, '_>,
    ) -> Option<Result<(), TcpDrop>> {
        let flags = segment.flags;
        if flags.contains(TcpFlags::SYN) && !flags.contains(TcpFlags::ACK) {
            let newer_timestamp = match (entry.ts_recent, segment.options.timestamps) {
                (Some(recent), Some((value, _))) => (value.wrapping_sub(recent) as i32) > 0,
                _ => false,
            };
            if segment.seq > entry.rcv_nxt || newer_timestamp {
                return None;
            }
        }
        // RFC 1337: a RST does not end TIME-WAIT early.
        if !flags.contains(TcpFlags::RST) {
            let timestamps = entry.ts_recent.map(|recent| (0, recent));
            sink.send_raw(
                tuple,
                entry.snd_nxt,
                entry.rcv_nxt,
                TcpFlags::ACK,
                0,
                TcpOptions {
                    timestamps,
                    ..TcpOptions::default()
                },
            );
            self.tally.bump(TcpEvent::SegmentsOut);
        }
        Some(Err(TcpDrop::TimeWait))
    }

    /// Answers a segment with no connection with RST (RFC 9293 3.10.7.1).
    fn reset_for(
        &mut self,
        tuple: &FourTuple,
        segment: &Incoming<'_>,
        sink: &mut PacketSink<'_, '_>,
    ) {
        if segment.flags.contains(TcpFlags::ACK) {
            sink.send_raw(
                tuple,
                segment.ack,
                Seq(0),
                TcpFlags::RST,
                0,
                TcpOptions::default(),
            );
        } else {
            sink.send_raw(
                tuple,
                Seq(0),
                segment.seq + segment.len(),
                TcpFlags::RST | TcpFlags::ACK,
                0,
                TcpOptions::default(),
            );
        }
        self.tally.bump(TcpEvent::ResetsSent);
        self.tally.bump(TcpEvent::SegmentsOut);
    }

    /// Records in the shared directory that this core owns `tuple`.
    fn claim(&self, tuple: &FourTuple) {
        if let Some(directory) = &self.directory {
            directory.claim(tuple, self.core);
        }
    }

    /// A free slot, the slab grown if none.
    fn allocate_slot(&mut self) -> u32 {
        if let Some(slot) = self.free.pop() {
            return slot;
        }
        self.connections.push(None);
        self.generations.push(0);
        (self.connections.len() - 1) as u32
    }

    /// Ends the connection in `slot`: tells its app, frees its buffers
    /// and its slot.
    fn free_connection(&mut self, slot: u32, reason: CloseReason) {
        let Some(mut connection) = self.connections[slot as usize].take() else {
            return;
        };
        if connection.state == State::SynReceived {
            self.half_open -= 1;
        }
        if connection.accepted {
            self.listeners[connection.listener].1.closed(slot, reason);
        } else if let Some(token) = connection.token {
            let error = match reason {
                CloseReason::Reset => ConnectError::Refused,
                _ => ConnectError::TimedOut,
            };
            self.listeners[connection.listener]
                .1
                .connect_failed(token, error);
        }
        connection.release_buffers();
        self.index.remove(&connection.tuple);
        if let Some(directory) = &self.directory {
            directory.release(&connection.tuple, self.core);
        }
        self.generations[slot as usize] = self.generations[slot as usize].wrapping_add(1);
        self.free.push(slot);
    }

    /// Moves the connection in `slot` to the TIME-WAIT table.
    fn enter_time_wait(&mut self, slot: u32, now_ms: u64) {
        let Some(connection) = self.connections[slot as usize].as_ref() else {
            return;
        };
        let (snd_nxt, rcv_nxt, ts_recent) = connection.time_wait_numbers();
        let tuple = connection.tuple;
        self.tally.bump(TcpEvent::TimeWaitEntered);
        self.tally.bump(TcpEvent::Closed);
        self.free_connection(slot, CloseReason::Closed);
        let entry = TimeWaitEntry {
            snd_nxt,
            rcv_nxt,
            ts_recent,
            expires_ms: now_ms + self.config.time_wait_ms,
        };
        if self.time_wait.insert(tuple, entry) {
            self.tally.bump(TcpEvent::TimeWaitRecycled);
        }
    }

    /// Puts the connection in `slot` in the timer wheel for its next
    /// deadline, unless an entry as early is there already.
    fn schedule(&mut self, slot: u32) {
        let Some(connection) = self.connections[slot as usize].as_mut() else {
            return;
        };
        let deadline = connection.next_deadline_ms();
        if deadline == 0 || (connection.scheduled_ms != 0 && connection.scheduled_ms <= deadline) {
            return;
        }
        connection.scheduled_ms = deadline;
        self.wheel.schedule(TimerEntry {
            slot,
            generation: connection.id.generation,
            deadline_ms: deadline,
        });
    }

    /// Visits the connections the burst touched: lends buffered bytes,
    /// sends what is owed, reschedules their timers.
    fn flush_dirty(&mut self, now_ns: u64, out: &mut Outputs<'_>) {
        let now_ms = now_ns / 1_000_000;
        let mut dirty = core::mem::take(&mut self.dirty);
        let mut sink = PacketSink::new(out);
        for slot in dirty.drain(..) {
            self.visit(slot, now_ms, now_ns, &mut sink, |_, _, _, _| Outcome::Open);
        }
        self.dirty = dirty;
    }

    /// Runs `work` on the connection in `slot`, then sends what it owes
    /// and settles it.
    fn visit(
        &mut self,
        slot: u32,
        now_ms: u64,
        now_ns: u64,
        sink: &mut PacketSink<'_, '_>,
        work: impl FnOnce(
            &mut Connection,
            &mut dyn Listener,
            &mut dyn SegmentSink,
            &mut Tally,
        ) -> Outcome,
    ) {
        let Some(connection) = self.connections[slot as usize].as_mut() else {
            return;
        };
        connection.dirty = false;
        let listener = &mut self.listeners[connection.listener].1;
        let mut outcome = work(connection, listener, sink, &mut self.tally);
        if let Some((remote, token)) = connection.connect_request.take() {
            self.opening.push((connection.listener, remote, token));
        }
        if outcome == Outcome::Open && connection.aborted() {
            outcome = Outcome::Ended(CloseReason::Aborted);
            self.tally.bump(TcpEvent::Aborted);
        }
        if matches!(outcome, Outcome::Open | Outcome::Dropped(_)) {
            if connection.accepted && !connection.receive.is_empty() {
                connection.deliver_buffered(listener, now_ns);
            }
            outcome = connection.output(now_ms, &self.config, sink, &mut self.tally);
            if connection.aborted() {
                outcome = Outcome::Ended(CloseReason::Aborted);
                self.tally.bump(TcpEvent::Aborted);
            }
        }
        match outcome {
            Outcome::Ended(reason) => self.end(slot, reason, sink),
            Outcome::TimeWait => self.enter_time_wait(slot, now_ms),
            _ => {
                connection.dirty = false;
                self.schedule(slot);
            }
        }
    }

    /// Fires the timers that are due.
    fn run_timers(&mut self, now_ns: u64, out: &mut Outputs<'_>) {
        let now_ms = now_ns / 1_000_000;
        if now_ms <= self.last_tick_ms && self.last_tick_ms != 0 {
            return;
        }
        self.last_tick_ms = now_ms;
        self.time_wait.expire(now_ms);
        let mut fired = Vec::new();
        self.wheel.advance(now_ms, |entry| fired.push(entry));
        let mut sink = PacketSink::new(out);
        for entry in fired {
            let Some(connection) = self.connections[entry.slot as usize].as_mut() else {
                continue;
            };
            if connection.id.generation != entry.generation
                || connection.scheduled_ms != entry.deadline_ms
            {
                continue;
            }
            connection.scheduled_ms = 0;
            let config = self.config;
            self.visit(
                entry.slot,
                now_ms,
                now_ns,
                &mut sink,
                |connection, listener, sink, tally| {
                    connection.on_timer(now_ms, now_ns, &config, listener, sink, tally)
                },
            );
            // `visit` rescheduled it if it lives on.
        }
    }

    /// Opens the connections apps asked for: an address of ours on the
    /// route to the peer, a port of this core's share, our SYN out on this
    /// core's queue. The app hears at once of one that cannot be tried.
    fn open_requested(&mut self, now_ns: u64, out: &mut Outputs<'_>) {
        if self.opening.is_empty() {
            return;
        }
        let now_ms = now_ns / 1_000_000;
        let mut opening = core::mem::take(&mut self.opening);
        let mut sink = PacketSink::new(out);
        for (listener, remote, token) in opening.drain(..) {
            if let Err(error) = self.open(listener, remote, token, now_ms, now_ns, &mut sink) {
                self.tally.bump(TcpEvent::ConnectsFailed);
                self.listeners[listener].1.connect_failed(token, error);
            }
        }
        self.opening = opening;
    }

    /// Opens one connection (SYN-SENT) and sends its SYN.
    fn open(
        &mut self,
        listener: usize,
        remote: SocketAddrV4,
        token: u64,
        now_ms: u64,
        now_ns: u64,
        sink: &mut PacketSink<'_, '_>,
    ) -> Result<(), ConnectError> {
        if self.index.len() >= self.config.max_connections {
            return Err(ConnectError::TableFull);
        }
        let (interface, address) = self
            .routes
            .lookup(*remote.ip())
            .and_then(|(interface, _)| Some((interface, self.local.on_interface(interface)?)))
            .filter(|_| !remote.ip().is_broadcast() && !remote.ip().is_multicast())
            .ok_or(ConnectError::NoRoute)?;
        let steering = self.rss.iter().find(|known| known.interface == interface);
        let (index, time_wait, listeners) = (&self.index, &self.time_wait, &self.listeners);
        let port = self
            .ports
            .allocate(|port| {
                let tuple = FourTuple {
                    local: SocketAddrV4::new(address, port),
                    remote,
                };
                !listeners.iter().any(|(served, _)| *served == port)
                    && !index.contains_key(&tuple)
                    && time_wait.get(&tuple).is_none()
                    && steering.is_none_or(|steering| steering.lands_here(remote, tuple.local))
            })
            .ok_or(ConnectError::NoPort)?;
        let tuple = FourTuple {
            local: SocketAddrV4::new(address, port),
            remote,
        };
        let iss = self
            .secrets
            .initial_sequence(tuple.local, tuple.remote, now_ns);
        let slot = self.allocate_slot();
        let id = ConnectionId {
            slot,
            generation: self.generations[slot as usize],
        };
        let mut connection = Connection::active(tuple, id, listener, iss, token, &self.config);
        connection.send_syn(now_ms, &self.config, sink, &mut self.tally);
        self.connections[slot as usize] = Some(connection);
        self.index.insert(tuple, slot);
        self.claim(&tuple);
        self.schedule(slot);
        Ok(())
    }

    /// Takes the segments other cores passed here, and takes them in.
    fn take_handed_in(&mut self, now_ns: u64, out: &mut Outputs<'_>) {
        let Some(strays) = &mut self.strays else {
            return;
        };
        let mut handed_in = core::mem::take(&mut self.handed_in);
        strays.receive(|packet| handed_in.push(packet));
        for packet in handed_in.drain(..) {
            self.tally.bump(TcpEvent::HandedIn);
            self.arrive(packet, true, now_ns, out);
        }
        self.handed_in = handed_in;
    }

    /// Takes in one segment, passes it to its core, or drops it.
    fn arrive(&mut self, packet: Packet, handed_in: bool, now_ns: u64, out: &mut Outputs<'_>) {
        match self.receive(&packet, handed_in, now_ns, out) {
            Ok(Arrival::Taken) => out.emit(TcpOutput::Absorbed.into(), packet),
            Ok(Arrival::HandOff(core)) => {
                let pushed = match &mut self.strays {
                    Some(strays) => strays.push(core, packet),
                    None => Err(packet),
                };
                match pushed {
                    Ok(()) => self.tally.bump(TcpEvent::HandedOff),
                    // No ring to it, or the ring is full: counted, and not
                    // reset (the connection lives on where it is).
                    Err(packet) => out.drop(packet, TcpDrop::WrongCore),
                }
            }
            Err(reason) => out.drop(packet, reason),
        }
    }

    /// Lets apps collect work finished elsewhere and resumes the
    /// connections they name.
    fn poll_apps(&mut self, now_ns: u64, out: &mut Outputs<'_>) {
        let now_ms = now_ns / 1_000_000;
        let mut ready = core::mem::take(&mut self.ready);
        for (_, listener) in &mut self.listeners {
            listener.poll(&mut ready);
        }
        let mut sink = PacketSink::new(out);
        for id in ready.drain(..) {
            let alive = self
                .connections
                .get(id.slot as usize)
                .and_then(Option::as_ref)
                .is_some_and(|connection| connection.id == id && connection.accepted);
            if !alive {
                continue;
            }
            self.visit(
                id.slot,
                now_ms,
                now_ns,
                &mut sink,
                |connection, listener, _, _| {
                    connection.call_app(listener, now_ns, |app, slot, stream| {
                        app.resume(slot, stream)
                    });
                    Outcome::Open
                },
            );
        }
        self.ready = ready;
    }

    /// Rebuilds the apps whose backoff is over.
    fn restart_due_apps(&mut self, now_ns: u64) {
        for (_, app) in &mut self.listeners {
            if app.restart_at_ns().is_some_and(|at| at <= now_ns) {
                app.restart_if_due(now_ns);
            }
        }
    }

    /// Resets every connection of an app that failed during this call
    /// (RST sent, counted as `connections-reset-app-failed`): its sessions
    /// went with it, and a rebuilt app starts with none.
    fn reset_failed_apps(&mut self, out: &mut Outputs<'_>) {
        for index in 0..self.listeners.len() {
            if !self.listeners[index].1.take_failure() {
                continue;
            }
            let slots = self.slots_of(index);
            let mut sink = PacketSink::new(out);
            for slot in slots {
                self.tally.bump(TcpEvent::ResetAppFailed);
                self.end(slot, CloseReason::Aborted, &mut sink);
            }
        }
    }

    /// Adds the burst's tally to the node's counters.
    fn count(&mut self, out: &mut Outputs<'_>) {
        for (event, count) in self.tally.drain() {
            out.count(event, count);
        }
    }
}

/// What a failed stack hands the one rebuilt from its recipe: its links to
/// the other cores' stacks (the flow directory, the rings for stray
/// segments, the RSS it steers by), its apps' own links by port, and the
/// apps no recipe can build (the platform's, like the management plane),
/// carried over whole.
struct TcpLinks {
    core: usize,
    directory: Option<Arc<FlowDirectory>>,
    strays: Option<Strays>,
    rss: Vec<RssSteering>,
    apps: Vec<(u16, Box<dyn core::any::Any>)>,
    carried: Vec<(u16, SupervisedApp, u64)>,
}

impl Nanoservice for Tcp {
    fn name(&self) -> &'static str {
        "tcp"
    }

    /// Its links, for the stack rebuilt after it failed. Its connections
    /// are not carried: their claims in the shared directory are released
    /// (another core's copy of a segment of theirs is no longer passed
    /// here), and the carried apps hear that their sessions ended.
    fn take_links(&mut self) -> Option<Box<dyn core::any::Any>> {
        if let Some(directory) = &self.directory {
            for tuple in self.index.keys() {
                directory.release(tuple, self.core);
            }
        }
        let mut apps = Vec::new();
        let mut carried = Vec::new();
        let listeners = core::mem::take(&mut self.listeners);
        let tags = core::mem::take(&mut self.listener_tags);
        for (index, ((port, mut app), tag)) in listeners.into_iter().zip(tags).enumerate() {
            if app.rebuildable() {
                if let Some(links) = app.take_links() {
                    apps.push((port, links));
                }
                continue;
            }
            for (slot, connection) in self.connections.iter().enumerate() {
                if connection
                    .as_ref()
                    .is_some_and(|connection| connection.listener == index)
                {
                    app.closed(slot as u32, CloseReason::Aborted);
                }
            }
            carried.push((port, app, tag));
        }
        let links = TcpLinks {
            core: self.core,
            directory: self.directory.take(),
            strays: self.strays.take(),
            rss: core::mem::take(&mut self.rss),
            apps,
            carried,
        };
        let linked = links.directory.is_some()
            || links.strays.is_some()
            || !links.rss.is_empty()
            || !links.apps.is_empty()
            || !links.carried.is_empty();
        linked.then(|| Box::new(links) as Box<dyn core::any::Any>)
    }

    fn adopt_links(&mut self, links: Box<dyn core::any::Any>) {
        let Ok(links) = links.downcast::<TcpLinks>() else {
            return;
        };
        let TcpLinks {
            core,
            directory,
            strays,
            rss,
            apps,
            carried,
        } = *links;
        self.core = core;
        if let Some(strays) = strays {
            self.ports =
                EphemeralPorts::new(strays.core(), strays.cores(), self.seed.rotate_left(29));
            self.strays = Some(strays);
        }
        self.directory = directory;
        self.rss = rss;
        for (port, links) in apps {
            if let Some((_, app)) = self.listeners.iter_mut().find(|(bound, _)| *bound == port) {
                app.adopt_links(links);
            }
        }
        for (port, app, tag) in carried {
            if !self.listeners.iter().any(|(bound, _)| *bound == port) {
                self.listeners.push((port, app));
                self.listener_tags.push(tag);
            }
        }
    }

    fn outputs(&self) -> &'static [&'static str] {
        TcpOutput::NAMES
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        TcpDrop::NAMES
    }

    fn events(&self) -> &'static [&'static str] {
        TcpEvent::NAMES
    }

    fn process(&mut self, batch: &mut Batch, out: &mut Outputs<'_>) {
        let now_ns = out.now_ns();
        self.restart_due_apps(now_ns);
        self.take_handed_in(now_ns, out);
        for packet in batch.drain() {
            self.arrive(packet, false, now_ns, out);
        }
        if let Some(strays) = &mut self.strays {
            strays.notify();
        }
        self.flush_dirty(now_ns, out);
        self.poll_apps(now_ns, out);
        self.open_requested(now_ns, out);
        self.reset_failed_apps(out);
        self.count(out);
    }

    fn tick(&mut self, out: &mut Outputs<'_>) {
        let now_ns = out.now_ns();
        self.restart_due_apps(now_ns);
        self.take_handed_in(now_ns, out);
        self.flush_dirty(now_ns, out);
        self.run_timers(now_ns, out);
        self.poll_apps(now_ns, out);
        self.open_requested(now_ns, out);
        self.reset_failed_apps(out);
        self.count(out);
    }

    fn supervised_parts(&self) -> Vec<PartCounters> {
        self.listeners
            .iter()
            .map(|(_, app)| PartCounters {
                name: app.name(),
                node: "tcp",
                supervision: Arc::clone(app.counters()),
            })
            .collect()
    }

    fn take_contained_ns(&mut self) -> u64 {
        self.listeners
            .iter_mut()
            .map(|(_, app)| app.take_contained_ns())
            .sum()
    }

    /// The next connection timer in the wheel (retransmission, probe,
    /// linger, app timeout), the next TIME-WAIT expiry, and the apps'
    /// wishes to be polled: whichever comes first; now when another core
    /// passed segments here or an app asked for a connection.
    fn next_deadline_ns(&self) -> Option<u64> {
        if !self.opening.is_empty()
            || self.strays.as_ref().is_some_and(Strays::pending)
            || self.listeners.iter().any(|(_, app)| app.has_failure())
        {
            return Some(0);
        }
        let timers = [self.wheel.next_due_ms(), self.time_wait.next_expiry_ms()]
            .into_iter()
            .flatten()
            .min()
            .map(|ms| ms.saturating_mul(1_000_000));
        let apps = self
            .listeners
            .iter()
            .filter_map(|(_, listener)| listener.next_poll_ns());
        let restarts = self
            .listeners
            .iter()
            .filter_map(|(_, app)| app.restart_at_ns());
        timers.into_iter().chain(apps).chain(restarts).min()
    }
}

/// The address a local IPv4 address and port make, for tests and apps.
pub fn socket(address: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(address, port)
}
