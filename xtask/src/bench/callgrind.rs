//! Instructions per packet from callgrind: `count-pipeline` (benches/) runs
//! each pipeline under `valgrind --tool=callgrind` at two packet counts, and
//! the difference of the totals over the difference of the counts is the
//! cost of one packet, with setup and warm-up cancelled out. `count-http`
//! does the same per HTTP request through the TCP stack, at 10 and 10 000
//! open keep-alive connections (bursts of 10 requests for both, so that
//! only the number of connections differs); `count-kv` likewise per
//! memcached `get` (a hit on a 32-byte value). `count-firewall` counts a
//! firewall verdict (conntrack and classifier) at 10, 1000 and 10 000 rules.
//! `count-wasm` counts the echo core with an 8-rule UDP port ACL in front
//! of its UDP stage, native (`port-filter`) and as a Wasm module on wasmi
//! and on wasmtime (built with the `wasmtime` feature; valgrind told that
//! code is written at run time, `--smc-check=all`) metered by fuel and by
//! epoch interruption, and with a Wasm module that passes everything
//! unread (the host's cost) on each.
//! `count-driver` counts macswap and udp-echo through the real virtio-net
//! driver on its simulated device, with and without the device's own
//! instructions. Deterministic, so the figures can be tracked commit to commit.

use crate::shell::host::{ensure_programs, target_dir};
use crate::shell::process::{cargo, run as run_step};
use anyhow::{Context, Result, bail};
use perf::report::InstructionRow;
use std::path::Path;
use std::process::Command;

/// The pipelines counted, as `count-pipeline` names them.
const WORKLOADS: [&str; 5] = [
    "macswap",
    "udp-echo",
    "macswap-tapped",
    "udp-echo-tapped",
    "udp-echo-supervised",
];
/// The pipelines counted NIC to NIC through the virtio-net driver, as
/// `count-driver` names them.
const DRIVER_WORKLOADS: [&str; 2] = ["macswap-driver", "udp-echo-driver"];
/// The device model's function: its instructions are counted apart and
/// left out of the driver-inclusive figure.
const DEVICE_MODEL: &str = "*SimulatedWire*reflect*";
/// The two packet counts (multiples of the 32-packet burst), also the
/// two request counts (multiples of [`HTTP_BURST`]).
const PACKETS: [u64; 2] = [3_200, 35_200];
/// The open connections `count-http` is counted at.
const HTTP_CONNECTIONS: [u64; 2] = [10, 10_000];
/// The rule counts `count-firewall` is counted at: the lookup cost should
/// stay flat (within 20 %) from the first to the last.
const FIREWALL_RULES: [u64; 3] = [10, 1_000, 10_000];
/// The `count-wasm` variants and their rows.
const WASM_VARIANTS: [(&str, &str); 8] = [
    ("echo", "udp-echo, no ACL (count-wasm baseline)"),
    ("native", "udp-echo + 8-rule port ACL, native port-filter"),
    (
        "wasm-pass",
        "udp-echo + Wasm module passing all unread (host + call cost)",
    ),
    (
        "wasm",
        "udp-echo + 8-rule port ACL as a Wasm module (wasmi)",
    ),
    (
        "wasmtime-pass",
        "udp-echo + Wasm module passing all unread, wasmtime (host + call cost)",
    ),
    (
        "wasmtime",
        "udp-echo + 8-rule port ACL as a Wasm module (wasmtime)",
    ),
    (
        "wasmtime-epoch-pass",
        "udp-echo + Wasm module passing all unread, wasmtime, epoch deadline (host + call cost)",
    ),
    (
        "wasmtime-epoch",
        "udp-echo + 8-rule port ACL as a Wasm module (wasmtime, epoch deadline instead of fuel)",
    ),
];
/// Requests per poll in `count-http`: 10, the most 10 clients with one
/// request outstanding each can send.
const HTTP_BURST: u64 = 10;

/// The request counters, by binary, and what their rows are called.
const REQUEST_COUNTERS: [(&str, &str); 2] =
    [("count-http", "http request"), ("count-kv", "kv get")];

/// Builds `count-pipeline`, `count-http`, `count-kv` and `count-firewall`
/// in release and counts every workload, then HTTP requests and kv gets at
/// each number of connections, then firewall packets at each number of rules.
pub fn instructions() -> Result<Vec<InstructionRow>> {
    ensure_valgrind()?;
    run_step(
        "build count-pipeline, count-driver, count-http, count-kv and count-firewall",
        cargo().args([
            "build",
            "--release",
            "-p",
            "warpcore-benches",
            "--bin",
            "count-pipeline",
            "--bin",
            "count-driver",
            "--bin",
            "count-http",
            "--bin",
            "count-kv",
            "--bin",
            "count-firewall",
        ]),
    )?;
    // Alone, so that only count-wasm links wasmtime.
    run_step(
        "build count-wasm with wasmtime",
        cargo().args([
            "build",
            "--release",
            "-p",
            "warpcore-benches",
            "--features",
            "wasmtime",
            "--bin",
            "count-wasm",
        ]),
    )?;
    let binary = target_dir().join("release/count-pipeline");
    let mut rows = Vec::new();
    for workload in WORKLOADS {
        let [small, large] = PACKETS.map(|packets| {
            total_instructions(&binary, &[workload.to_owned(), packets.to_string()])
        });
        let per_packet = per_packet(small?, large?)?;
        eprintln!("xtask: [callgrind] {workload}: {per_packet:.1} instructions/packet");
        rows.push(InstructionRow {
            benchmark: workload.to_owned(),
            instructions_per_packet: per_packet,
        });
    }
    let binary = target_dir().join("release/count-driver");
    for workload in DRIVER_WORKLOADS {
        let arguments = |packets: u64| [workload.to_owned(), packets.to_string()];
        let [small, large] =
            PACKETS.map(|packets| total_instructions(&binary, &arguments(packets)));
        let all = per_packet(small?, large?)?;
        // Collected only inside the device model: `--toggle-collect`
        // starts with collection off and turns it on while the function
        // runs.
        let device_model = format!("--toggle-collect={DEVICE_MODEL}");
        let [small, large] = PACKETS
            .map(|packets| callgrind_total(&binary, &arguments(packets), &[device_model.as_str()]));
        let device = per_packet(small?, large?)?;
        for (what, figure) in [
            ("driver + pipeline, NIC to NIC", all - device),
            ("with the simulated device's copy", all),
        ] {
            let benchmark = format!("{workload} ({what})");
            eprintln!("xtask: [callgrind] {benchmark}: {figure:.1} instructions/packet");
            rows.push(InstructionRow {
                benchmark,
                instructions_per_packet: figure,
            });
        }
    }
    for (counter, name) in REQUEST_COUNTERS {
        let binary = target_dir().join("release").join(counter);
        for connections in HTTP_CONNECTIONS {
            let [small, large] = PACKETS.map(|requests| {
                let arguments =
                    [connections, requests, HTTP_BURST].map(|figure| figure.to_string());
                total_instructions(&binary, &arguments)
            });
            let per_request = per_packet(small?, large?)?;
            let benchmark = format!("{name}, {connections} connections (per request)");
            eprintln!("xtask: [callgrind] {benchmark}: {per_request:.1} instructions/request");
            rows.push(InstructionRow {
                benchmark,
                instructions_per_packet: per_request,
            });
        }
    }
    let binary = target_dir().join("release/count-firewall");
    for rules in FIREWALL_RULES {
        let [small, large] = PACKETS
            .map(|packets| total_instructions(&binary, &[rules.to_string(), packets.to_string()]));
        let per_packet = per_packet(small?, large?)?;
        let benchmark = format!("firewall, {rules} rules (conntrack + classifier, per packet)");
        eprintln!("xtask: [callgrind] {benchmark}: {per_packet:.1} instructions/packet");
        rows.push(InstructionRow {
            benchmark,
            instructions_per_packet: per_packet,
        });
    }
    let binary = target_dir().join("release/count-wasm");
    for (variant, benchmark) in WASM_VARIANTS {
        let [small, large] = PACKETS.map(|packets| {
            total_instructions_jit(&binary, &[variant.to_owned(), packets.to_string()])
        });
        let per_packet = per_packet(small?, large?)?;
        eprintln!("xtask: [callgrind] {benchmark}: {per_packet:.1} instructions/packet");
        rows.push(InstructionRow {
            benchmark: benchmark.to_owned(),
            instructions_per_packet: per_packet,
        });
    }
    Ok(rows)
}

/// `(total_b - total_a) / (packets_b - packets_a)` over the two runs.
fn per_packet(small: u64, large: u64) -> Result<f64> {
    if large <= small {
        bail!(
            "callgrind counted {large} instructions for {} packets but {small} for {}: the loop did not run",
            PACKETS[1],
            PACKETS[0]
        );
    }
    Ok((large - small) as f64 / (PACKETS[1] - PACKETS[0]) as f64)
}

/// Runs `binary arguments...` under callgrind and returns its total
/// instruction count.
fn total_instructions(binary: &Path, arguments: &[String]) -> Result<u64> {
    callgrind_total(binary, arguments, &[])
}

/// [`total_instructions`] of a program that writes code at run time (a
/// JIT): valgrind checks every write for code it has translated.
fn total_instructions_jit(binary: &Path, arguments: &[String]) -> Result<u64> {
    callgrind_total(binary, arguments, &["--smc-check=all"])
}

/// Runs `binary arguments...` under callgrind with `options` and returns
/// its total instruction count.
fn callgrind_total(binary: &Path, arguments: &[String], options: &[&str]) -> Result<u64> {
    let command = arguments.join(" ");
    let output = std::env::temp_dir().join(format!(
        "warpcore-callgrind-{}-{}-{}.out",
        std::process::id(),
        arguments.join("-"),
        options.len()
    ));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .args(options)
        .arg(format!("--callgrind-out-file={}", output.display()))
        .arg(binary)
        .args(arguments)
        .output()
        .context("valgrind: could not start")?;
    if !status.status.success() {
        bail!(
            "callgrind on `{} {command}` failed ({}):\n{}",
            binary.display(),
            status.status,
            String::from_utf8_lossy(&status.stderr)
        );
    }
    let text = std::fs::read_to_string(&output)
        .with_context(|| format!("reading {}", output.display()))?;
    let _ = std::fs::remove_file(&output);
    totals(&text).with_context(|| format!("no `totals:` line in {}", output.display()))
}

/// The `totals:` figure of a callgrind output file (or its `summary:` when
/// there is no `totals:` line): the first event, instructions.
fn totals(text: &str) -> Option<u64> {
    let figure = |prefix: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(prefix))
            .and_then(|events| events.split_whitespace().next())
            .and_then(|instructions| instructions.parse().ok())
    };
    figure("totals:").or_else(|| figure("summary:"))
}

/// Installs valgrind when it is missing and we are root; otherwise fails
/// saying how to get it.
fn ensure_valgrind() -> Result<()> {
    ensure_programs("the instruction counts", &[("valgrind", "valgrind")])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_totals_and_subtracts_setup() {
        let text = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nfl=(1) a.rs\nfn=(1) main\nsummary: 4790042\n5 12\n\ntotals: 4790042\n";
        assert_eq!(totals(text), Some(4_790_042));
        assert_eq!(totals("events: Ir\nsummary: 77\n"), Some(77));
        assert_eq!(totals("events: Ir\n"), None);
        assert_eq!(
            per_packet(1_000_000, 1_000_000 + 32_000 * 40).unwrap(),
            40.0
        );
        assert!(per_packet(5, 5).is_err());
    }
}
