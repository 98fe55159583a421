//! Supervision in the management plane: every service's restarts,
//! failures, dropped in-flight packets and state in `/metrics`, its state
//! in `/api/v1/status`, and the `Degraded` condition while a service waits
//! out its backoff or stays failed.

use crate::json::push_string;
use crate::metrics::{family, node_names, sample};
use alloc::string::String;
use core::fmt::Write;
use dataplane::CountersBoard;
use dataplane::stats::CoreCounters;
use dataplane::supervise::{ServiceState, SupervisionCounters};

/// The supervision counters of everything of `counters` called `name`:
/// nodes, and the parts nodes supervise themselves (the TCP apps of
/// `tcp`).
fn nodes_named<'a>(
    counters: &'a CoreCounters,
    name: &'a str,
) -> impl Iterator<Item = &'a SupervisionCounters> {
    let nodes = counters
        .nodes
        .iter()
        .filter(move |node| node.name == name)
        .map(|node| &node.supervision);
    let parts = counters
        .parts
        .iter()
        .filter(move |part| part.name == name)
        .map(|part| &*part.supervision);
    nodes.chain(parts)
}

/// Every supervised service of `counters` once: the nodes' names, then
/// the names of the parts nodes supervise (TCP apps) that no node has.
fn service_names(counters: &CoreCounters) -> impl Iterator<Item = &'static str> + '_ {
    let parts = counters
        .parts
        .iter()
        .enumerate()
        .filter(|(index, part)| {
            !counters.nodes.iter().any(|node| node.name == part.name)
                && !counters.parts[..*index]
                    .iter()
                    .any(|earlier| earlier.name == part.name)
        })
        .map(|(_, part)| part.name);
    node_names(counters).chain(parts)
}

/// The worst state of the nodes called `name` (per-port nodes share a
/// name): failed over backoff over running.
fn state_of(counters: &CoreCounters, name: &str) -> ServiceState {
    nodes_named(counters, name)
        .map(SupervisionCounters::state)
        .max_by_key(|state| *state as u8)
        .unwrap_or(ServiceState::Running)
}

/// The sum of `value` over the nodes called `name`.
fn sum(counters: &CoreCounters, name: &str, value: impl Fn(&SupervisionCounters) -> u64) -> u64 {
    nodes_named(counters, name).map(value).sum()
}

/// A counter family: its name, its help text and the node counter it sums.
type CounterFamily = (&'static str, &'static str, fn(&SupervisionCounters) -> u64);

/// `warpcore_service_restarts_total{core,service}`,
/// `warpcore_service_failures_total{core,service,cause}`,
/// `warpcore_service_dropped_packets_total{core,service}` and
/// `warpcore_service_up{core,service}`, for every node of every core.
pub fn render_families(out: &mut String, board: &CountersBoard) {
    let mut core_label = String::new();
    let counters_families: [CounterFamily; 2] = [
        (
            "warpcore_service_restarts_total",
            "Times a failed service was rebuilt from its spec after its backoff.",
            |node| node.restarts.get(),
        ),
        (
            "warpcore_service_dropped_packets_total",
            "Packets a failed service had in flight, or received while it was down.",
            |node| node.dropped.get(),
        ),
    ];
    for (name, help, value) in counters_families {
        family(out, name, help, "counter");
        for (core, counters) in board.cores() {
            let counters: &CoreCounters = &counters;
            core_text(&mut core_label, core);
            for service in service_names(counters) {
                let total = sum(counters, service, value);
                sample(
                    out,
                    name,
                    &[("core", &core_label), ("service", service)],
                    total,
                );
            }
        }
    }
    let name = "warpcore_service_failures_total";
    family(
        out,
        name,
        "Failures of a service, by cause: panic, or overrun of its per-batch budget.",
        "counter",
    );
    for (core, counters) in board.cores() {
        let counters: &CoreCounters = &counters;
        core_text(&mut core_label, core);
        for service in service_names(counters) {
            for (cause, total) in [
                ("panic", sum(counters, service, |n| n.panics.get())),
                ("overrun", sum(counters, service, |n| n.overruns.get())),
            ] {
                let labels = [
                    ("core", &*core_label),
                    ("service", service),
                    ("cause", cause),
                ];
                sample(out, name, &labels, total);
            }
        }
    }
    let name = "warpcore_service_up";
    family(
        out,
        name,
        "1 while a service runs, 0 while it waits out its backoff or stays failed.",
        "gauge",
    );
    for (core, counters) in board.cores() {
        let counters: &CoreCounters = &counters;
        core_text(&mut core_label, core);
        for service in service_names(counters) {
            let up = u64::from(state_of(counters, service) == ServiceState::Running);
            sample(
                out,
                name,
                &[("core", &core_label), ("service", service)],
                up,
            );
        }
    }
}

/// Appends core `counters`' `"supervision"` array to a status document:
/// each service's state, restarts, failures and current backoff.
pub fn push_core_services(out: &mut String, counters: &CoreCounters) {
    out.push_str("\"supervision\":[");
    for (index, service) in service_names(counters).enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str("{\"service\":");
        push_string(out, service);
        out.push_str(",\"state\":");
        push_string(out, state_of(counters, service).name());
        let restarts = sum(counters, service, |n| n.restarts.get());
        let failures = sum(counters, service, |n| n.failures());
        let backoff_ms = nodes_named(counters, service)
            .map(|n| n.backoff_ms())
            .max()
            .unwrap_or(0);
        let _ = write!(
            out,
            ",\"restarts\":{restarts},\"failures\":{failures},\"backoffMs\":{backoff_ms}}}"
        );
    }
    out.push(']');
}

/// Why the instance is degraded by supervision, if it is: the reason
/// (`ServiceBackoff`, `ServiceFailed`) and a message naming the first
/// service of any core that waits out its backoff or stays failed.
pub fn degraded(board: &CountersBoard) -> Option<(&'static str, String)> {
    let (core, service, state) = board.cores().find_map(|(core, counters)| {
        service_names(&counters).find_map(|service| match state_of(&counters, service) {
            ServiceState::Running => None,
            state => Some((core, service, state)),
        })
    })?;
    let mut message = String::new();
    let reason = match state {
        ServiceState::Failed => {
            let _ = write!(
                message,
                "service {service} on core {core} failed and cannot be rebuilt"
            );
            "ServiceFailed"
        }
        _ => {
            let _ = write!(
                message,
                "service {service} on core {core} failed and waits out its backoff"
            );
            "ServiceBackoff"
        }
    };
    Some((reason, message))
}

/// Appends the `Degraded` condition (with its leading comma): `True`
/// while any service of any core waits out its backoff or stays failed
/// (see [`degraded`]); else `False`.
pub fn push_degraded_condition(out: &mut String, board: &CountersBoard) {
    out.push_str(",{\"type\":\"Degraded\",");
    match degraded(board) {
        None => {
            out.push_str("\"status\":\"False\",\"reason\":\"ServicesRunning\",\"message\":");
            push_string(out, "every service runs");
        }
        Some((reason, message)) => {
            let _ = write!(
                out,
                "\"status\":\"True\",\"reason\":\"{reason}\",\"message\":"
            );
            push_string(out, &message);
        }
    }
    out.push('}');
}

/// Puts `core` in decimal into `text`.
fn core_text(text: &mut String, core: usize) {
    text.clear();
    let _ = write!(text, "{core}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use alloc::vec;
    use dataplane::stats::{NodeCounters, PartCounters};

    /// A board of one core with nodes `eth` and `faulty-echo`, the latter
    /// in `state` after 3 panics, 1 overrun and 3 restarts.
    fn board(state: ServiceState) -> CountersBoard {
        let faulty = NodeCounters {
            name: "faulty-echo",
            ..NodeCounters::default()
        };
        faulty.supervision.panics.add(3);
        faulty.supervision.overruns.add(1);
        faulty.supervision.restarts.add(3);
        faulty.supervision.dropped.add(9);
        faulty.supervision.set_state(state);
        faulty.supervision.set_backoff_ms(800);
        let counters = CoreCounters {
            nodes: vec![
                NodeCounters {
                    name: "eth",
                    ..NodeCounters::default()
                },
                faulty,
            ],
            ..CoreCounters::default()
        };
        let board = CountersBoard::new(1);
        board.register(0, Arc::new(counters));
        board
    }

    #[test]
    fn metrics_count_restarts_failures_and_drops_per_service() {
        let mut out = String::new();
        render_families(&mut out, &board(ServiceState::Backoff));
        for line in [
            "# TYPE warpcore_service_restarts_total counter",
            "warpcore_service_restarts_total{core=\"0\",service=\"faulty-echo\"} 3",
            "warpcore_service_restarts_total{core=\"0\",service=\"eth\"} 0",
            "warpcore_service_dropped_packets_total{core=\"0\",service=\"faulty-echo\"} 9",
            "warpcore_service_failures_total{core=\"0\",service=\"faulty-echo\",cause=\"panic\"} 3",
            "warpcore_service_failures_total{core=\"0\",service=\"faulty-echo\",cause=\"overrun\"} 1",
            "warpcore_service_up{core=\"0\",service=\"faulty-echo\"} 0",
            "warpcore_service_up{core=\"0\",service=\"eth\"} 1",
        ] {
            assert!(
                out.lines().any(|have| have == line),
                "{line} missing:\n{out}"
            );
        }
    }

    #[test]
    fn degraded_while_a_service_waits_or_stays_failed() {
        for (state, expected) in [
            (
                ServiceState::Backoff,
                ",{\"type\":\"Degraded\",\"status\":\"True\",\"reason\":\"ServiceBackoff\",\"message\":\"service faulty-echo on core 0 failed and waits out its backoff\"}",
            ),
            (
                ServiceState::Failed,
                ",{\"type\":\"Degraded\",\"status\":\"True\",\"reason\":\"ServiceFailed\",\"message\":\"service faulty-echo on core 0 failed and cannot be rebuilt\"}",
            ),
            (
                ServiceState::Running,
                ",{\"type\":\"Degraded\",\"status\":\"False\",\"reason\":\"ServicesRunning\",\"message\":\"every service runs\"}",
            ),
        ] {
            let mut out = String::new();
            push_degraded_condition(&mut out, &board(state));
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn status_names_each_service_state() {
        let board = board(ServiceState::Backoff);
        let (_, counters) = board.cores().next().unwrap();
        let mut out = String::new();
        push_core_services(&mut out, &counters);
        assert_eq!(
            out,
            "\"supervision\":[{\"service\":\"eth\",\"state\":\"running\",\"restarts\":0,\"failures\":0,\"backoffMs\":0},{\"service\":\"faulty-echo\",\"state\":\"backoff\",\"restarts\":3,\"failures\":4,\"backoffMs\":800}]"
        );
    }

    #[test]
    fn a_tcp_app_is_a_service_beside_the_nodes() {
        let app = Arc::new(SupervisionCounters::default());
        app.panics.add(2);
        app.restarts.add(1);
        app.dropped.add(5);
        app.set_state(ServiceState::Backoff);
        app.set_backoff_ms(200);
        let counters = CoreCounters {
            nodes: vec![NodeCounters {
                name: "tcp",
                ..NodeCounters::default()
            }],
            parts: vec![PartCounters {
                name: "faulty-tcp",
                node: "tcp",
                supervision: app,
            }],
            ..CoreCounters::default()
        };
        let board = CountersBoard::new(1);
        board.register(0, Arc::new(counters));
        let mut out = String::new();
        render_families(&mut out, &board);
        for line in [
            "warpcore_service_restarts_total{core=\"0\",service=\"faulty-tcp\"} 1",
            "warpcore_service_dropped_packets_total{core=\"0\",service=\"faulty-tcp\"} 5",
            "warpcore_service_failures_total{core=\"0\",service=\"faulty-tcp\",cause=\"panic\"} 2",
            "warpcore_service_up{core=\"0\",service=\"faulty-tcp\"} 0",
            "warpcore_service_up{core=\"0\",service=\"tcp\"} 1",
        ] {
            assert!(
                out.lines().any(|have| have == line),
                "{line} missing:\n{out}"
            );
        }
        let (_, counters) = board.cores().next().unwrap();
        let mut status = String::new();
        push_core_services(&mut status, &counters);
        assert_eq!(
            status,
            "\"supervision\":[{\"service\":\"tcp\",\"state\":\"running\",\"restarts\":0,\"failures\":0,\"backoffMs\":0},{\"service\":\"faulty-tcp\",\"state\":\"backoff\",\"restarts\":1,\"failures\":2,\"backoffMs\":200}]"
        );
        let mut condition = String::new();
        push_degraded_condition(&mut condition, &board);
        assert!(
            condition.contains("service faulty-tcp on core 0 failed and waits out its backoff"),
            "{condition}"
        );
    }
}
