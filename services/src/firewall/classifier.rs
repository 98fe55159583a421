//! `Classifier`: tuple-space search (Srinivasan, Suri, Varghese 1999). Rules
//! are grouped by their *shape* (prefix lengths of both addresses and both
//! ports, and whether protocol and state are matched); each shape is one
//! hash table from masked fields to the first rule with them. A lookup
//! masks the packet once per shape, in the order of each shape's first
//! rule, and stops as soon as no later shape can hold an earlier rule, so
//! it costs a few hash probes however many rules share the shapes. Port
//! ranges become aligned power-of-two blocks (at most 30 per range).

use alloc::vec::Vec;
use hashbrown::HashMap;

/// The packet fields rules match, in host order. `state` is 1 for new,
/// 2 for established or related, 3 for invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowFields {
    /// Source address.
    pub source: u32,
    /// Destination address.
    pub destination: u32,
    /// Source port (0 without one).
    pub source_port: u16,
    /// Destination port (0 without one).
    pub destination_port: u16,
    /// IP protocol.
    pub protocol: u8,
    /// Conntrack state code.
    pub state: u8,
}

impl FlowFields {
    fn masked(&self, shape: &FlowFields) -> Self {
        Self {
            source: self.source & shape.source,
            destination: self.destination & shape.destination,
            source_port: self.source_port & shape.source_port,
            destination_port: self.destination_port & shape.destination_port,
            protocol: self.protocol & shape.protocol,
            state: self.state & shape.state,
        }
    }
}

/// One rule's match, as the classifier takes it: `(value, prefix length)`
/// for addresses, inclusive ranges for ports, `None` for any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleMatch {
    /// Source prefix.
    pub source: (u32, u8),
    /// Destination prefix.
    pub destination: (u32, u8),
    /// Source ports, inclusive.
    pub source_ports: (u16, u16),
    /// Destination ports, inclusive.
    pub destination_ports: (u16, u16),
    /// Protocol.
    pub protocol: Option<u8>,
    /// Conntrack state code.
    pub state: Option<u8>,
}

impl RuleMatch {
    /// Matches everything.
    pub const ANY: Self = Self {
        source: (0, 0),
        destination: (0, 0),
        source_ports: (0, u16::MAX),
        destination_ports: (0, u16::MAX),
        protocol: None,
        state: None,
    };
}

/// The prefix mask of length `len` (0 to 32).
const fn address_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - (if len > 32 { 32 } else { len }) as u32)
    }
}

/// Splits the inclusive port range `low..=high` into aligned blocks
/// `(first port, mask)`: at most 30, one `(0, 0)` for every port.
pub fn port_blocks(low: u16, high: u16) -> Vec<(u16, u16)> {
    let mut blocks = Vec::new();
    let (mut start, end) = (u32::from(low), u32::from(high));
    while start <= end {
        // The largest aligned block starting at `start` inside the range.
        let mut size: u32 = if start == 0 {
            1 << 16
        } else {
            start & start.wrapping_neg()
        };
        while start + size - 1 > end {
            size >>= 1;
        }
        blocks.push((start as u16, (0xffff & !(size - 1)) as u16));
        start += size;
    }
    blocks
}

/// Rules of one shape.
#[derive(Debug, Clone)]
struct Shape {
    mask: FlowFields,
    /// The first rule of this shape: no entry holds an earlier one.
    first_rule: u32,
    entries: HashMap<FlowFields, u32, foldhash::fast::FixedState>,
}

/// Ordered rules, compiled for lookup.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    shapes: Vec<Shape>,
    seed: u64,
}

impl Classifier {
    /// Compiles `rules` (first match wins), hashing with `seed`.
    pub fn new(rules: &[RuleMatch], seed: u64) -> Self {
        let mut classifier = Self {
            shapes: Vec::new(),
            seed,
        };
        for (index, rule) in rules.iter().enumerate() {
            classifier.add(index as u32, rule);
        }
        classifier.shapes.sort_by_key(|shape| shape.first_rule);
        classifier
    }

    fn add(&mut self, index: u32, rule: &RuleMatch) {
        let base = FlowFields {
            source: rule.source.0 & address_mask(rule.source.1),
            destination: rule.destination.0 & address_mask(rule.destination.1),
            source_port: 0,
            destination_port: 0,
            protocol: rule.protocol.unwrap_or(0),
            state: rule.state.unwrap_or(0),
        };
        let source_ports = port_blocks(rule.source_ports.0, rule.source_ports.1);
        let destination_ports = port_blocks(rule.destination_ports.0, rule.destination_ports.1);
        for &(source_port, source_mask) in &source_ports {
            for &(destination_port, destination_mask) in &destination_ports {
                let mask = FlowFields {
                    source: address_mask(rule.source.1),
                    destination: address_mask(rule.destination.1),
                    source_port: source_mask,
                    destination_port: destination_mask,
                    protocol: if rule.protocol.is_some() { 0xff } else { 0 },
                    state: if rule.state.is_some() { 0xff } else { 0 },
                };
                let key = FlowFields {
                    source_port,
                    destination_port,
                    ..base
                };
                let shape = match self.shapes.iter().position(|shape| shape.mask == mask) {
                    Some(position) => &mut self.shapes[position],
                    None => {
                        self.shapes.push(Shape {
                            mask,
                            first_rule: index,
                            entries: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(
                                self.seed,
                            )),
                        });
                        let last = self.shapes.len() - 1;
                        &mut self.shapes[last]
                    }
                };
                // An earlier rule with the same masked fields shadows this one.
                shape.entries.entry(key).or_insert(index);
            }
        }
    }

    /// How many shapes the rules have (what a lookup may probe).
    pub fn shapes(&self) -> usize {
        self.shapes.len()
    }

    /// The first rule that matches `fields`.
    #[inline]
    pub fn lookup(&self, fields: &FlowFields) -> Option<u32> {
        let mut best: Option<u32> = None;
        for shape in &self.shapes {
            if best.is_some_and(|best| shape.first_rule >= best) {
                break;
            }
            if let Some(&rule) = shape.entries.get(&fields.masked(&shape.mask)) {
                best = Some(best.map_or(rule, |best| best.min(rule)));
            }
        }
        best
    }
}
