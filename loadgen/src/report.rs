//! Printing a run: a human table or JSON.

use crate::run::RunResult;
use std::fmt::Write as _;

fn micros(nanoseconds: Option<u64>) -> String {
    nanoseconds.map_or_else(|| "-".into(), |ns| format!("{:.1}", ns as f64 / 1e3))
}

/// A two-column table of the run's figures.
pub fn table(result: &RunResult) -> String {
    let summary = &result.summary;
    let mut text = String::new();
    let mut row = |name: &str, value: String| {
        let _ = writeln!(text, "{name:<16} {value}");
    };
    row(
        "sent",
        format!("{} ({:.0} pps)", summary.sent, result.sent_pps),
    );
    row(
        "offered",
        result
            .offered_pps
            .map_or_else(|| "max".into(), |pps| format!("{pps} pps")),
    );
    row(
        "received",
        format!("{} ({:.0} pps)", summary.received, result.received_pps),
    );
    row(
        "lost",
        format!("{} ({:.3} %)", summary.lost, summary.loss_percent),
    );
    row("duplicates", summary.duplicates.to_string());
    row("reordered", summary.reordered.to_string());
    row("foreign", summary.foreign.to_string());
    row(
        "latency p50",
        format!("{} us", micros(summary.latency_p50_ns)),
    );
    row(
        "latency p90",
        format!("{} us", micros(summary.latency_p90_ns)),
    );
    row(
        "latency p99",
        format!("{} us", micros(summary.latency_p99_ns)),
    );
    row(
        "latency p99.9",
        format!("{} us", micros(summary.latency_p999_ns)),
    );
    row(
        "latency max",
        format!("{} us", micros(summary.latency_max_ns)),
    );
    text
}

/// The run as one JSON object.
pub fn json(result: &RunResult) -> String {
    serde_json::to_string_pretty(result).expect("a run result always serialises")
}
