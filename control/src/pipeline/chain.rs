//! Chains: the services of one hook point on a core, built in spec order
//! and wired output by output (`pass` to the next, the rest by name).

use super::PipelineError;
use super::carry::{Carry, node_tag};
use super::restart::{OwnedContext, rebuild};
use crate::spec::{Service, Spec};
use alloc::boxed::Box;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use dataplane::{ExecutorBuilder, Nanoservice, NodeId, Tag, Target};
use services::registry::{BuildContext, Built};
use services::{HookPoint, MAX_INTERFACES};

/// The services of one hook point on a core, in spec order.
pub(super) struct Chain<'a> {
    /// Where they attach.
    pub(super) hook: HookPoint,
    /// The services, as the spec says them.
    pub(super) services: Vec<&'a Service>,
}

/// The spec's services on `core`, grouped by hook point, in spec order.
pub(super) fn chains(spec: &Spec, core: usize) -> Vec<Chain<'_>> {
    let mut chains: Vec<Chain<'_>> = Vec::new();
    for service in spec.services_on(core) {
        for hook in &service.attach {
            match chains.iter_mut().find(|chain| chain.hook == *hook) {
                Some(chain) => chain.services.push(service),
                None => chains.push(Chain {
                    hook: *hook,
                    services: alloc::vec![service],
                }),
            }
        }
    }
    chains
}

/// A built chain node.
pub(super) struct ChainNode {
    /// Its id in the graph.
    pub(super) id: NodeId,
    /// Its name (for errors).
    pub(super) name: &'static str,
    /// Its output names.
    pub(super) outputs: &'static [&'static str],
}

/// Where a build takes over nodes of the previous graph: the nodes, and
/// the tag of what the build context holds of the spec.
pub(super) struct Reuse<'c> {
    /// The previous graph's nodes.
    pub(super) carry: &'c core::cell::RefCell<Carry>,
    /// [`context_tag`](super::carry::context_tag) of the spec being built.
    pub(super) context: Tag,
    /// How the TCP stack supervises its apps (guard, clock, policy).
    pub(super) apps: services::tcp::AppSupervision,
}

/// Builds the nodes of `chain` (none for no chain), taking over those of
/// the previous graph whose tag matches; a node without `pass` must be
/// the last. Each node gets its factory for supervision's restarts.
pub(super) fn build_chain(
    builder: &mut ExecutorBuilder,
    chain: Option<&Chain<'_>>,
    context: &BuildContext<'_>,
    reuse: &Reuse<'_>,
) -> Result<Vec<ChainNode>, PipelineError> {
    let Some(chain) = chain else {
        return Ok(Vec::new());
    };
    let mut nodes: Vec<ChainNode> = Vec::with_capacity(chain.services.len());
    let owned = OwnedContext::of(context);
    for service in &chain.services {
        if let Some(last) = nodes.last()
            && !last.outputs.contains(&"pass")
        {
            return Err(PipelineError::Unreachable { service: last.name });
        }
        let tag = node_tag(service, context.interface, reuse.context);
        let carried = reuse.carry.borrow_mut().take(tag);
        // A changed service may adopt its predecessor's state.
        let carried = carried.or_else(|| {
            reuse
                .carry
                .borrow_mut()
                .adopt(|previous| service.config.adopt(context, previous))
        });
        let node: Box<dyn Nanoservice> = match carried {
            Some(node) => node,
            None => match service.config.build(context) {
                Built::Node(node) => node,
                Built::Tcp(listener) => {
                    return Err(PipelineError::WrongShape {
                        service: listener.name(),
                        hook: chain.hook,
                    });
                }
            },
        };
        let (name, outputs) = (node.name(), node.outputs());
        let id = builder.add_node(node);
        builder.tag_node(id, tag)?;
        builder.rebuild(id, rebuild(Arc::clone(&service.config), owned.clone()))?;
        nodes.push(ChainNode { id, name, outputs });
    }
    Ok(nodes)
}

/// True when traffic gets past a built chain: it is empty, or its last
/// node has a `pass` output.
pub(super) fn passes_on(nodes: &[ChainNode]) -> bool {
    nodes
        .last()
        .is_none_or(|node| node.outputs.contains(&"pass"))
}

/// Where chain outputs other than `pass` lead: the stack's stages, when
/// the core has the IP stack.
#[derive(Clone, Copy)]
pub(super) struct Stack {
    /// `ipv4-out`, for `errors` and routed `out`.
    pub(super) ipv4_out: Option<NodeId>,
    /// Each interface's ARP stage, for `if<n>`.
    pub(super) arp: [Option<NodeId>; MAX_INTERFACES],
}

impl Stack {
    /// Where output `output` of `service` leads; `out` is the hook point's
    /// transmit target and `pass` what follows the service.
    fn target(
        &self,
        service: &'static str,
        output: &'static str,
        pass: Target,
        out: Target,
    ) -> Result<Target, PipelineError> {
        let unbound = || PipelineError::UnboundOutput { service, output };
        match output {
            "pass" => Ok(pass),
            "out" => Ok(out),
            "errors" => self.ipv4_out.map(Target::Node).ok_or_else(unbound),
            _ => {
                let index: usize = output
                    .strip_prefix("if")
                    .and_then(|digits| digits.parse().ok())
                    .filter(|index| *index < MAX_INTERFACES)
                    .ok_or_else(unbound)?;
                self.ipv4_out.ok_or_else(unbound)?;
                Ok(self.arp[index].map_or(Target::Discard, Target::Node))
            }
        }
    }

    /// Connects every output of a chain's nodes: `pass` to the next node
    /// (the last one's to `tail`), the rest as [`Stack::target`] says.
    /// Returns where the chain begins (`tail` for an empty chain).
    pub(super) fn wire(
        &self,
        builder: &mut ExecutorBuilder,
        nodes: &[ChainNode],
        tail: Target,
        out: Target,
    ) -> Result<Target, PipelineError> {
        for (index, node) in nodes.iter().enumerate() {
            let pass = nodes
                .get(index + 1)
                .map_or(tail, |next| Target::Node(next.id));
            for output in node.outputs {
                let target = self.target(node.name, output, pass, out)?;
                builder.connect(node.id, output, target)?;
            }
        }
        Ok(nodes.first().map_or(tail, |head| Target::Node(head.id)))
    }
}

/// Connects the hook slots `<prefix><n>` of demultiplexer `node`: bound
/// slots to the head of their chain, the rest to a discard (the node never
/// uses them).
pub(super) fn connect_slots(
    builder: &mut ExecutorBuilder,
    node: NodeId,
    prefix: &str,
    capacity: usize,
    heads: &[(usize, Target)],
) -> Result<(), PipelineError> {
    for slot in 0..capacity {
        let target = heads
            .iter()
            .find(|(bound, _)| *bound == slot)
            .map_or(Target::Discard, |(_, head)| *head);
        builder.connect(node, &format!("{prefix}{slot}"), target)?;
    }
    Ok(())
}
