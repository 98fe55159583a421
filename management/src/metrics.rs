//! `/metrics`: every core's counters in the Prometheus text exposition
//! format 0.0.4, rendered into a `String` once per scrape (an allocation
//! per scrape, off the packet path: the management plane's cost, paid on
//! core 0 only).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use dataplane::stats::{CoreCounters, MAX_DROP_REASONS, NodeCounters};
use dataplane::{CaptureBoard, CountersBoard};

/// The `Content-Type` of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metric of an executor counter (a name of `CoreCounters::entries`)
/// and its help text: packet counts end in `_packets_total`, drops in
/// `_dropped_packets_total`.
pub fn executor_metric(entry: &str) -> (String, &'static str) {
    let (name, help): (&str, &'static str) = match entry {
        "polls" => ("polls", "Executor polls."),
        "idle_polls" => ("idle_polls", "Executor polls that received nothing."),
        "rx_packets" => ("rx_packets", "Packets received from NICs and input rings."),
        "tx_packets" => ("tx_packets", "Packets NICs accepted for transmission."),
        "tx_dropped" => ("tx_dropped_packets", "Packets a NIC had no room for."),
        "ring_out_packets" => (
            "ring_out_packets",
            "Packets pushed onto rings to other cores.",
        ),
        "ring_full_drops" => (
            "ring_full_dropped_packets",
            "Packets a ring to another core had no room for.",
        ),
        "queue_full_drops" => (
            "queue_full_dropped_packets",
            "Packets emitted to a node whose input queue was full.",
        ),
        "pass_limit_drops" => (
            "pass_limit_dropped_packets",
            "Packets still queued after the pass limit (a cycle in the graph).",
        ),
        "unconsumed_drops" => (
            "unconsumed_dropped_packets",
            "Packets a node left in its batch.",
        ),
        "discarded" => ("discarded_packets", "Packets sent to the discard target."),
        "graph_swaps" => (
            "graph_swaps",
            "Times the core swapped its graph for a new spec's (reconcile).",
        ),
        other => (other, "An executor counter."),
    };
    let mut metric = String::from("warpcore_");
    metric.extend(name.chars().map(|character| match character {
        'a'..='z' | 'A'..='Z' | '0'..='9' | '_' => character,
        _ => '_',
    }));
    metric.push_str("_total");
    (metric, help)
}

/// Appends `value` as a label value: backslash, double quote and newline
/// escaped.
pub fn push_label_value(out: &mut String, value: &str) {
    for character in value.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
}

/// Writes one family's `# HELP` and `# TYPE` lines.
pub(crate) fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Writes one sample: `name{k="v",...} value`.
pub(crate) fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    written_sample(out, name, labels, value);
}

/// [`sample`] for a value written as it displays (a [`Seconds`]).
fn written_sample(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    value: impl core::fmt::Display,
) {
    out.push_str(name);
    if labels.is_empty() {
        let _ = writeln!(out, " {value}");
        return;
    }
    out.push('{');
    for (index, (key, label)) in labels.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(key);
        out.push_str("=\"");
        push_label_value(out, label);
        out.push('"');
    }
    let _ = writeln!(out, "}} {value}");
}

/// A duration counted in nanoseconds, written in seconds (Prometheus's
/// base unit) as an exact decimal: 100 000 ns is `0.000100000`.
struct Seconds(u64);

impl core::fmt::Display for Seconds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}.{:09}",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

/// The distinct node names of a core, in graph order (per-port nodes
/// share a name; their counters are summed into one sample).
pub fn node_names(counters: &CoreCounters) -> impl Iterator<Item = &'static str> + '_ {
    counters
        .nodes
        .iter()
        .enumerate()
        .filter(|(index, node)| {
            !counters.nodes[..*index]
                .iter()
                .any(|earlier| earlier.name == node.name)
        })
        .map(|(_, node)| node.name)
}

/// The nodes of `counters` called `name`.
fn nodes_named<'a>(
    counters: &'a CoreCounters,
    name: &'a str,
) -> impl Iterator<Item = &'a NodeCounters> {
    counters.nodes.iter().filter(move |node| node.name == name)
}

/// The distinct entries of `names` (drop reasons or events of a node).
fn distinct<'a>(names: &'a [&'static str]) -> impl Iterator<Item = &'static str> + 'a {
    names
        .iter()
        .enumerate()
        .filter(|(index, name)| !names[..*index].contains(name))
        .map(|(_, name)| *name)
}

/// Renders the whole exposition into `out`.
pub fn render(out: &mut String, board: &CountersBoard, build_info: (&str, &str)) {
    family(
        out,
        "warpcore_build_info",
        "Version and platform of the running build.",
        "gauge",
    );
    sample(
        out,
        "warpcore_build_info",
        &[("version", build_info.0), ("platform", build_info.1)],
        1,
    );

    let mut core_label = String::new();
    let entries = CoreCounters::default().entries();
    for (position, (entry, _)) in entries.iter().enumerate() {
        let (metric, help) = executor_metric(entry);
        family(out, &metric, help, "counter");
        for (core, counters) in board.cores() {
            let counters: &CoreCounters = &counters;
            core_text(&mut core_label, core);
            let value = counters.entries()[position].1;
            sample(out, &metric, &[("core", &core_label)], value);
        }
    }

    idle_families(out, board, &mut core_label);
    handoff_family(out, board, &mut core_label);
    nic_families(out, board, &mut core_label);

    let name = "warpcore_node_packets_total";
    family(out, name, "Packets a node received or emitted.", "counter");
    for (core, counters) in board.cores() {
        let counters: &CoreCounters = &counters;
        core_text(&mut core_label, core);
        for node in node_names(counters) {
            let received = nodes_named(counters, node).map(|n| n.received.get()).sum();
            let emitted = nodes_named(counters, node).map(|n| n.emitted.get()).sum();
            for (direction, value) in [("received", received), ("emitted", emitted)] {
                let labels = [
                    ("core", &*core_label),
                    ("node", node),
                    ("direction", direction),
                ];
                sample(out, name, &labels, value);
            }
        }
    }

    let name = "warpcore_node_invalid_output_packets_total";
    family(
        out,
        name,
        "Packets a node emitted on an output it does not have.",
        "counter",
    );
    for (core, counters) in board.cores() {
        let counters: &CoreCounters = &counters;
        core_text(&mut core_label, core);
        for node in node_names(counters) {
            let value = nodes_named(counters, node)
                .map(|n| n.invalid_output.get())
                .sum();
            sample(out, name, &[("core", &core_label), ("node", node)], value);
        }
    }

    let name = "warpcore_drops_total";
    family(out, name, "Packets a node dropped, by reason.", "counter");
    for (core, counters) in board.cores() {
        let counters: &CoreCounters = &counters;
        core_text(&mut core_label, core);
        for node in node_names(counters) {
            let Some(first) = nodes_named(counters, node).next() else {
                continue;
            };
            for reason in distinct(first.drop_reasons) {
                let value = nodes_named(counters, node)
                    .filter_map(|n| {
                        let index = n.drop_reasons.iter().position(|r| *r == reason)?;
                        Some(n.drops[index.min(MAX_DROP_REASONS - 1)].get())
                    })
                    .sum();
                let labels = [("core", &*core_label), ("node", node), ("reason", reason)];
                sample(out, name, &labels, value);
            }
        }
    }

    let name = "warpcore_node_events_total";
    family(
        out,
        name,
        "Things a node counts that are not drops (TCP connections accepted, retransmissions), by event.",
        "counter",
    );
    for (core, counters) in board.cores() {
        let counters: &CoreCounters = &counters;
        core_text(&mut core_label, core);
        for node in node_names(counters) {
            let Some(first) = nodes_named(counters, node).next() else {
                continue;
            };
            let events = &first.event_names[..first.event_names.len().min(first.events.len())];
            for event in distinct(events) {
                let value = counters.node_events(node, event);
                let labels = [("core", &*core_label), ("node", node), ("event", event)];
                sample(out, name, &labels, value);
            }
        }
    }

    crate::supervision::render_families(out, board);
}

/// Renders the controller's generations and counters into `out`.
pub fn render_reconcile(out: &mut String, controller: &control::reconcile::Controller) {
    for (name, help, value) in [
        (
            "warpcore_spec_generation",
            "The newest accepted spec generation.",
            controller.generation(),
        ),
        (
            "warpcore_spec_observed_generation",
            "The newest generation the controller finished with (applied or rolled back).",
            controller.observed_generation(),
        ),
    ] {
        family(out, name, help, "gauge");
        sample(out, name, &[], value);
    }
    let counters = controller.counters();
    let name = "warpcore_reconciles_total";
    family(
        out,
        name,
        "Spec changes by outcome: started, applied, rolled back, refused (a restart needed, or another change on its way).",
        "counter",
    );
    for (result, value) in [
        ("started", counters.started),
        ("applied", counters.applied),
        ("rolled_back", counters.rolled_back),
        ("refused", counters.refused),
    ] {
        sample(out, name, &[("result", result)], value);
    }
    let name = "warpcore_reconcile_failures_total";
    family(
        out,
        name,
        "Why changes were rolled back: a core that could not build its graph, or one that did not acknowledge in time.",
        "counter",
    );
    for (reason, value) in [
        ("build", counters.core_failures),
        ("timeout", counters.timeouts),
    ] {
        sample(out, name, &[("reason", reason)], value);
    }
}

/// Renders the capture taps' counters into `out`: frames copied and
/// frames a full ring dropped, by core and interface (named as in
/// `interfaces`, the spec's names by index), and which interface a
/// capture runs on.
pub fn render_capture(out: &mut String, capture: &CaptureBoard, interfaces: &[&str]) {
    let name = "warpcore_capture_active";
    family(
        out,
        name,
        "1 while a capture (GET /api/v1/capture) of the interface runs, else 0.",
        "gauge",
    );
    let armed = capture.armed_interface();
    for (index, interface) in interfaces.iter().enumerate() {
        let value = u64::from(armed == Some(index));
        sample(out, name, &[("interface", interface)], value);
    }
    let mut core_label = String::new();
    let families = [
        (
            "warpcore_capture_frames_total",
            "Frames a capture tap copied for /api/v1/capture.",
        ),
        (
            "warpcore_capture_dropped_frames_total",
            "Frames a capture tap's full ring had no room for (not in the capture).",
        ),
    ];
    for (index, (name, help)) in families.into_iter().enumerate() {
        family(out, name, help, "counter");
        capture.for_each_tap(|core, interface, counters| {
            core_text(&mut core_label, core);
            let interface = interfaces.get(interface).copied().unwrap_or("unknown");
            let value = if index == 0 {
                counters.captured.get()
            } else {
                counters.dropped.get()
            };
            sample(
                out,
                name,
                &[("core", &core_label), ("interface", interface)],
                value,
            );
        });
    }
}

/// `warpcore_sleeps_total{core}`, `warpcore_sleeps_refused_total{core}`,
/// `warpcore_wakeups_total{core,cause}`,
/// `warpcore_halt_poll_windows_total{core,outcome}` and the gauge
/// `warpcore_halt_poll_window_seconds{core}` from each core's
/// `IdleCounters`.
fn idle_families(out: &mut String, board: &CountersBoard, core_label: &mut String) {
    for (metric, help, entry) in [
        (
            "warpcore_sleeps_total",
            "Times a core with no work slept.",
            "sleeps",
        ),
        (
            "warpcore_sleeps_refused_total",
            "Times a core meant to sleep but found work in its last look.",
            "sleeps_refused",
        ),
    ] {
        family(out, metric, help, "counter");
        for (core, counters) in board.cores() {
            let counters: &CoreCounters = &counters;
            core_text(core_label, core);
            let value = counters
                .idle
                .entries()
                .iter()
                .find(|(name, _)| *name == entry)
                .map_or(0, |(_, value)| *value);
            sample(out, metric, &[("core", core_label)], value);
        }
    }
    let name = "warpcore_wakeups_total";
    family(
        out,
        name,
        "Sleeps of a core, by what ended them: packet, doorbell (work from another core), timer (the next deadline), other.",
        "counter",
    );
    for (core, counters) in board.cores() {
        let counters: &CoreCounters = &counters;
        core_text(core_label, core);
        for (entry, value) in counters.idle.entries() {
            let Some(cause) = entry.strip_prefix("wakeups_by_") else {
                continue;
            };
            sample(out, name, &[("core", core_label), ("cause", cause)], value);
        }
    }
    let name = "warpcore_halt_poll_windows_total";
    family(
        out,
        name,
        "idle = \"haltpoll\": idle stretches by how their polling window ended: caught (work came back while polling), timed_out (the core went to sleep).",
        "counter",
    );
    for (core, counters) in board.cores() {
        let counters: &CoreCounters = &counters;
        core_text(core_label, core);
        let idle = &counters.idle;
        for (outcome, value) in [
            ("caught", idle.poll_windows_caught.get()),
            ("timed_out", idle.poll_windows_timed_out.get()),
        ] {
            sample(
                out,
                name,
                &[("core", core_label), ("outcome", outcome)],
                value,
            );
        }
    }
    let name = "warpcore_halt_poll_window_seconds";
    family(
        out,
        name,
        "idle = \"haltpoll\": how long a core now polls before it sleeps (0 under the other modes).",
        "gauge",
    );
    for (core, counters) in board.cores() {
        let counters: &CoreCounters = &counters;
        core_text(core_label, core);
        written_sample(
            out,
            name,
            &[("core", core_label)],
            Seconds(counters.idle.poll_window_ns.get()),
        );
    }
}

/// `warpcore_tcp_handoff_segments_total{core}`: the segments each core's
/// `tcp-handoff` node put on its ring to the core that serves the
/// management plane (0 on that core and on one core alone).
fn handoff_family(out: &mut String, board: &CountersBoard, core_label: &mut String) {
    let name = "warpcore_tcp_handoff_segments_total";
    family(
        out,
        name,
        "TCP segments for the management plane that the NIC steered to another core, handed over to the management core.",
        "counter",
    );
    for (core, counters) in board.cores() {
        let counters: &CoreCounters = &counters;
        core_text(core_label, core);
        let value = counters.node_events("tcp-handoff", "handed-over");
        sample(out, name, &[("core", core_label)], value);
    }
}

/// One NIC queue's counters as read for a scrape: core, queue name,
/// `(counter, value)` pairs.
type NicReading = (usize, String, Vec<(&'static str, u64)>);

/// The NIC queues' driver counters (`Nic::counters`, such as igb's
/// per-queue and device statistics registers): `warpcore_nic_<name>_total
/// {core,queue}` for each counter name, and `warpcore_nic_link_up
/// {core,queue}` as a gauge.
fn nic_families(out: &mut String, board: &CountersBoard, core_label: &mut String) {
    let nics: Vec<NicReading> = board
        .nics()
        .into_iter()
        .map(|(core, name, counters)| (core, name, counters.counter_entries()))
        .collect();
    let mut names: Vec<&'static str> = Vec::new();
    for (_, _, entries) in &nics {
        for (name, _) in entries {
            if !names.contains(name) {
                names.push(name);
            }
        }
    }
    let mut metric = String::new();
    for name in names {
        metric.clear();
        metric.push_str("warpcore_nic_");
        metric.extend(name.chars().map(|character| match character {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' => character,
            _ => '_',
        }));
        if name.ends_with("link_up") {
            family(out, &metric, "1 while the NIC's link is up.", "gauge");
        } else {
            metric.push_str("_total");
            family(out, &metric, "A NIC queue's driver counter.", "counter");
        }
        for (core, queue, entries) in &nics {
            let Some((_, value)) = entries.iter().find(|(entry, _)| *entry == name) else {
                continue;
            };
            core_text(core_label, *core);
            sample(
                out,
                &metric,
                &[("core", core_label), ("queue", queue)],
                *value,
            );
        }
    }
}

/// Puts `core` in decimal into `text`.
fn core_text(text: &mut String, core: usize) {
    text.clear();
    let _ = write!(text, "{core}");
}
