//! `Carry`: the nodes of a core's running graph that its next graph may
//! take over, found by tag, and the tags that say what a node stands for.
//!
//! A tag is a hash of everything the node was built from: for a service,
//! its kind, cores, hook points and settings (and, for a service on the
//! packet path, the interfaces and routes its build context saw; for a
//! per-port node, the port's interface); for ARP, its interface, MAC and
//! address; for the TCP stack, the `[tcp]` settings. A node whose tag the
//! next spec yields again is the same node: it is taken over with its
//! state (ARP cache, connections, a KV store) instead of being built anew.
//!
//! A service whose settings changed has a new tag; its kind may still
//! *adopt* its predecessor's node (`ServiceKind::adopt`: the `lb` keeps
//! its flow pins over a change of backends, `firewall` and `nat` their
//! flows and bindings over a change of rules). Only nodes that no
//! service of the next spec takes over by tag are offered
//! ([`Carry::protect`]).

use crate::spec::{Service, Spec};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt::Write;
use dataplane::{Ipv4Cidr, MacAddr, Nanoservice, Tag};
use services::tcp::{Tcp, TcpConfig};

/// The tag of the management plane's (and any platform's) TCP listener:
/// it is not in the spec's services, and lives as long as its stack.
pub const PLATFORM_LISTENER: Tag = u64::MAX;

/// FNV-1a over formatted text: tags without an allocation.
struct TagWriter(u64);

impl TagWriter {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    /// The tag; never 0 (which means "untagged") nor
    /// [`PLATFORM_LISTENER`].
    fn finish(self) -> Tag {
        match self.0 {
            0 | PLATFORM_LISTENER => 1,
            tag => tag,
        }
    }
}

impl Write for TagWriter {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        for byte in text.bytes() {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Ok(())
    }
}

/// The tag of a TCP app: its service as the spec says it.
pub(super) fn listener_tag(service: &Service) -> Tag {
    let mut tag = TagWriter::new();
    let _ = write!(
        tag,
        "tcp-app|{}|{:?}|{:?}|{:?}",
        service.kind, service.cores, service.attach, service.config
    );
    tag.finish()
}

/// The tag of a packet-path service's node: its service, the port's
/// interface (for per-port nodes) and what its build context saw of the
/// spec (`context`, from [`context_tag`]).
pub(super) fn node_tag(service: &Service, interface: Option<usize>, context: Tag) -> Tag {
    let mut tag = TagWriter::new();
    let _ = write!(
        tag,
        "node|{}|{:?}|{:?}|{:?}|{interface:?}|{context}",
        service.kind, service.cores, service.attach, service.config
    );
    tag.finish()
}

/// What a packet-path service's build context holds of the spec: its
/// interfaces and routes.
pub(super) fn context_tag(spec: &Spec) -> Tag {
    let mut tag = TagWriter::new();
    let _ = write!(tag, "context|{:?}|{:?}", spec.interfaces, spec.routes);
    tag.finish()
}

/// The tags of every node of `spec`'s services that a graph of `core`
/// could take over (each service at every per-port interface and at
/// none), given the spec's [`context_tag`].
pub(super) fn spec_tags(spec: &Spec, core: usize, context: Tag) -> Vec<Tag> {
    let mut tags = Vec::new();
    for service in spec.services_on(core) {
        tags.push(node_tag(service, None, context));
        for interface in 0..spec.interfaces.len() {
            tags.push(node_tag(service, Some(interface), context));
        }
    }
    tags
}

/// The tag of an interface's ARP stage.
pub(super) fn arp_tag(interface: usize, mac: MacAddr, address: Ipv4Cidr) -> Tag {
    let mut tag = TagWriter::new();
    let _ = write!(tag, "arp|{interface}|{mac}|{address:?}");
    tag.finish()
}

/// The tag of the TCP stack.
pub(super) fn tcp_tag(config: &TcpConfig) -> Tag {
    let mut tag = TagWriter::new();
    let _ = write!(tag, "tcp|{config:?}");
    tag.finish()
}

/// Nodes of the previous graph, waiting to be taken over by tag.
#[derive(Default)]
pub struct Carry {
    nodes: Vec<(Tag, Option<Box<dyn Nanoservice>>)>,
    /// Tags the graph being built takes over by tag: never adopted.
    protected: Vec<Tag>,
}

impl Carry {
    /// Nothing to take over: a first build.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The nodes of a graph taken apart (`ExecutorParts::nodes`); the
    /// untagged ones are dropped now.
    pub fn new(nodes: Vec<(Tag, Box<dyn Nanoservice>)>) -> Self {
        Self {
            nodes: nodes
                .into_iter()
                .filter(|(tag, _)| *tag != 0)
                .map(|(tag, node)| (tag, Some(node)))
                .collect(),
            protected: Vec::new(),
        }
    }

    /// Keeps the nodes tagged with any of `tags` (those the next graph
    /// takes over unchanged) from [`Carry::adopt`].
    pub fn protect(&mut self, tags: Vec<Tag>) {
        self.protected = tags;
    }

    /// Offers the nodes left (but the protected ones) to `adopt` in turn,
    /// until one is adopted: what it built. `adopt` gives back the nodes
    /// it does not take.
    pub fn adopt(
        &mut self,
        mut adopt: impl FnMut(
            Box<dyn Nanoservice>,
        ) -> Result<Box<dyn Nanoservice>, Box<dyn Nanoservice>>,
    ) -> Option<Box<dyn Nanoservice>> {
        for (tag, slot) in &mut self.nodes {
            if self.protected.contains(tag) {
                continue;
            }
            let Some(previous) = slot.take() else {
                continue;
            };
            match adopt(previous) {
                Ok(built) => return Some(built),
                Err(previous) => *slot = Some(previous),
            }
        }
        None
    }

    /// Adds nodes back (those a failed build had taken).
    pub fn extend(&mut self, nodes: Vec<(Tag, Box<dyn Nanoservice>)>) {
        self.nodes.extend(
            nodes
                .into_iter()
                .filter(|(tag, _)| *tag != 0)
                .map(|(tag, node)| (tag, Some(node))),
        );
    }

    /// Takes the first node tagged `tag`, if any is left.
    pub fn take(&mut self, tag: Tag) -> Option<Box<dyn Nanoservice>> {
        self.nodes
            .iter_mut()
            .find(|(found, node)| *found == tag && node.is_some())
            .and_then(|(_, node)| node.take())
    }

    /// Takes the TCP stack tagged `tag`, if any is left.
    pub(super) fn take_tcp(&mut self, tag: Tag) -> Option<Tcp> {
        let node: Box<dyn core::any::Any> = self.take(tag)?;
        node.downcast::<Tcp>().ok().map(|tcp| *tcp)
    }

    /// The nodes not taken, for another build.
    pub fn into_nodes(self) -> Vec<(Tag, Box<dyn Nanoservice>)> {
        self.nodes
            .into_iter()
            .filter_map(|(tag, node)| Some((tag, node?)))
            .collect()
    }

    /// Nodes not taken (yet).
    pub fn left(&self) -> usize {
        self.nodes.iter().filter(|(_, node)| node.is_some()).count()
    }
}
