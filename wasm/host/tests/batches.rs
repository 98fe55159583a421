//! The `wasm` kind end to end on a loopback core: modules written in WAT
//! (tests/modules) judge real frames through the whole pipeline; every
//! verdict, dirty write-back with the IPv4 checksum, the imports' bounds,
//! fuel, traps, quarantine and its rebuild, and refused modules.

#[path = "../../../control/tests/support/mod.rs"]
mod support;

use control::Spec;
use dataplane::supervise::ServiceState;
use services::Registry;
use services::wire::checksum::checksum;
use services::wire::ethernet::EthernetFrame;
use services::wire::{Ipv4Packet, UdpPacket};
use std::sync::Arc;
use support::*;
use warpcore_wasm::WasmKind;

/// Test modules by name: `<name>.wat` from tests/modules, `wat:<text>`
/// compiled as given, `bytes:<text>` as raw bytes.
fn test_source(name: &str) -> Result<Arc<Vec<u8>>, String> {
    if let Some(text) = name.strip_prefix("wat:") {
        return wat::parse_str(text)
            .map(Arc::new)
            .map_err(|e| e.to_string());
    }
    if let Some(bytes) = name.strip_prefix("bytes:") {
        return Ok(Arc::new(bytes.as_bytes().to_vec()));
    }
    let path = format!("{}/tests/modules/{name}", env!("CARGO_MANIFEST_DIR"));
    wat::parse_file(&path)
        .map(Arc::new)
        .map_err(|e| format!("{path}: {e}"))
}

fn registry() -> Registry {
    warpcore_wasm::set_module_source(test_source);
    let mut registry = Registry::with_builtin();
    registry.register::<WasmKind>().unwrap();
    registry
}

const INTERFACE: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"loopback\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n\
    [[service]]\nkind = \"udp-echo\"\nport = 7\n";

/// A spec with the verdicts module at `port:rx` on `engine` and these
/// extra keys.
fn spec(engine: &str, extra: &str) -> String {
    format!(
        "{INTERFACE}[[service]]\nkind = \"wasm\"\nname = \"judge\"\nmodule = \"verdicts.wat\"\n\
         attach = \"port:rx\"\noutputs = [\"out\"]\nmap_entries = 2\n{extra}engine = \"{engine}\"\n"
    )
}

fn request(port: u16) -> Vec<u8> {
    udp_frame((OURS, PEER), (PEER_IP, OUR_IP), (40000, port), 64, b"ping")
}

/// The UDP source port of a reply from the echo service, or `None` for
/// anything else (no reply, an ICMP error, the frame sent back as is).
fn echoed_from(reply: &[u8]) -> Option<u16> {
    let frame = EthernetFrame::new_checked(reply).ok()?;
    let ip = Ipv4Packet::new_checked(frame.payload()).ok()?;
    if ip.protocol() != 17 || ip.source() != OUR_IP {
        return None;
    }
    Some(UdpPacket::new_checked(ip.payload()).ok()?.source_port())
}

fn every_verdict_does_what_the_module_says(engine: &str) {
    let mut harness = Harness::with_registry(&spec(engine, ""), &registry());
    harness.learn((PEER, PEER_IP));
    // pass: on to the stack, which echoes.
    let reply = harness.exchange(0, &request(7)).expect("echo");
    assert_eq!(echoed_from(&reply), Some(7));
    // drop.
    assert_eq!(harness.exchange(0, &request(9)), None);
    // tx at port:rx: the frame as it is, back out of its port.
    assert_eq!(harness.exchange(0, &request(10)), Some(request(10)));
    // redirect to outputs[0] = "out": the same.
    assert_eq!(harness.exchange(0, &request(11)), Some(request(11)));
    // a bad verdict is a fault: on_fault = drop.
    assert_eq!(harness.exchange(0, &request(12)), None);
    let counters = harness.counters();
    assert_eq!(counters.node_drops("judge", "dropped-by-module"), 1);
    assert_eq!(counters.node_drops("judge", "fault-dropped"), 1);
    assert_eq!(counters.node_events("judge", "bad-descriptor"), 1);
    assert_eq!(
        counters.node_events("judge", "judged"),
        6,
        "the ARP request too"
    );
}

fn a_dirty_window_is_written_back_with_a_fresh_ipv4_checksum(engine: &str) {
    let mut harness = Harness::with_registry(&spec(engine, ""), &registry());
    let sent = request(13);
    let back = harness.exchange(0, &sent).expect("sent back");
    assert_eq!(back.len(), sent.len());
    assert_eq!(back[14 + 8], 5, "the module's TTL");
    assert_eq!(checksum(&back[14..34]), 0, "a valid header checksum");
    assert_ne!(
        back[24..26],
        sent[24..26],
        "the checksum changed with the TTL"
    );
    assert_eq!(back[..22], sent[..22]);
    assert_eq!(back[23..24], sent[23..24]);
    assert_eq!(back[26..], sent[26..], "nothing else changed");
}

fn packet_and_map_imports_hold_their_bounds(engine: &str) {
    let mut harness = Harness::with_registry(&spec(engine, ""), &registry());
    assert_eq!(harness.exchange(0, &request(16)), Some(request(16)));
    assert_eq!(harness.exchange(0, &request(17)), Some(request(17)));
    let counters = harness.counters();
    assert_eq!(counters.node_events("judge", "bounds-ok"), 1);
    assert_eq!(counters.node_events("judge", "map-ok"), 1);
    assert_eq!(counters.node_events("judge", "map-too-long"), 2);
    assert_eq!(counters.node_events("judge", "map-full"), 1);
}

fn fuel_and_traps_are_faults_and_too_many_quarantine_until_the_backoff_ends(engine: &str) {
    let extra =
        "on_fault = \"pass\"\nquarantine_after = 3\nquarantine_window_ms = 10000\nfuel = 100000\n";
    let mut harness = Harness::with_registry(&spec(engine, extra), &registry());
    harness.learn((PEER, PEER_IP));
    // A module that loops is stopped by fuel; its packet passes on
    // (on_fault) and the core goes on serving.
    let reply = harness
        .exchange(0, &request(15))
        .expect("an ICMP port unreachable");
    assert_eq!(echoed_from(&reply), None);
    assert_eq!(
        echoed_from(&harness.exchange(0, &request(7)).unwrap()),
        Some(7)
    );
    assert!(
        harness.exchange(0, &request(14)).is_some(),
        "trap: passed, ICMP error"
    );
    let counters = harness.counters();
    assert_eq!(counters.node_events("judge", "fuel-exhausted"), 1);
    assert_eq!(counters.node_events("judge", "trap"), 1);
    assert_eq!(counters.node_events("judge", "fault-passed"), 2);
    assert_eq!(counters.node_events("judge", "quarantined"), 0);
    // The third fault in the window quarantines.
    assert!(harness.exchange(0, &request(14)).is_some());
    assert_eq!(counters.node_events("judge", "quarantined"), 1);
    let node = counters
        .nodes
        .iter()
        .find(|node| node.name == "judge")
        .unwrap();
    assert_eq!(node.supervision.state(), ServiceState::Backoff);
    assert_eq!(node.supervision.backoff_ms(), 100);
    // Quarantined: the module is not called; its packets get on_fault.
    let judged = counters.node_events("judge", "judged");
    assert!(
        harness.exchange(0, &request(9)).is_some(),
        "passed, not dropped"
    );
    assert_eq!(counters.node_drops("judge", "dropped-by-module"), 0);
    assert_eq!(counters.node_events("judge", "judged"), judged);
    // After the backoff, a fresh instance.
    advance_clock(150_000_000);
    harness.executor.poll_once();
    assert_eq!(counters.node_events("judge", "restarts"), 1);
    assert_eq!(node.supervision.state(), ServiceState::Running);
    assert_eq!(harness.exchange(0, &request(9)), None);
    assert_eq!(counters.node_drops("judge", "dropped-by-module"), 1);
}

/// The error of a spec whose wasm service has `module`, `extra` and
/// `engine` (last, so that the lines of `extra` keep their numbers).
fn refusal(engine: &str, module: &str, extra: &str) -> String {
    let module = module.replace('\n', " ");
    let text = format!(
        "{INTERFACE}[[service]]\nkind = \"wasm\"\nname = \"bad\"\nmodule = '{module}'\n{extra}engine = \"{engine}\"\n"
    );
    Spec::parse(&text, &registry()).unwrap_err().to_string()
}

const GOOD_EXPORTS: &str = r#"(func (export "warpcore_abi_version") (result i32) (i32.const 1))
    (func (export "warpcore_buffer") (param i32) (result i32) (i32.const 1024))
    (func (export "warpcore_init") (param i32) (result i32) (i32.const 0))
    (func (export "warpcore_process_batch") (param i32))"#;

fn malformed_modules_are_refused_with_the_engines_reason_naming_the_service(engine: &str) {
    let error = refusal(engine, "bytes:not a module", "");
    assert!(
        error.contains("service `bad`: module") && error.contains("invalid module"),
        "{error}"
    );
    assert!(
        error.starts_with("line 10: service[1].kind: service `bad`"),
        "{error}"
    );
    let error = refusal(engine, "missing.wasm", "");
    assert!(error.contains("missing.wasm"), "{error}");
    let error = refusal(
        engine,
        r#"wat:(module (memory (export "memory") 1) (func (export "warpcore_abi_version") (result i32) (i32.const 1)))"#,
        "",
    );
    assert!(
        error.contains("does not export `warpcore_buffer`"),
        "{error}"
    );
    let error = refusal(
        engine,
        &format!(r#"wat:(module (memory (export "memory") 20) {GOOD_EXPORTS})"#),
        "",
    );
    assert!(
        error.contains("20 pages, over memory_pages = 16"),
        "{error}"
    );
    let error = refusal(
        engine,
        &format!(
            r#"wat:(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))) (memory (export "memory") 1) {GOOD_EXPORTS})"#
        ),
        "",
    );
    assert!(error.contains("no WASI"), "{error}");
    let error = refusal(
        engine,
        &format!(
            r#"wat:(module (memory (export "memory") 1) {})"#,
            GOOD_EXPORTS.replace("(i32.const 1))", "(i32.const 2))")
        ),
        "",
    );
    assert!(error.contains("ABI version 2"), "{error}");
    let error = refusal(
        engine,
        &format!(
            r#"wat:(module (memory (export "memory") 1) {})"#,
            GOOD_EXPORTS.replace("(i32.const 1024)", "(i32.const 65528)")
        ),
        "",
    );
    assert!(error.contains("past the end of memory"), "{error}");
    let error = refusal(engine, "verdicts.wat", "config = \"refuse\"\n");
    assert!(error.contains("code 7: hello from init"), "{error}");
    let error = refusal(
        engine,
        &format!(
            r#"wat:(module (memory (export "memory") 1) {})"#,
            GOOD_EXPORTS
                .replace("(param i32))", "(param i32) unreachable)")
                .replace(
                    "(func (export \"warpcore_init\") (param i32) (result i32) (i32.const 0))",
                    "(func (export \"warpcore_init\") (param i32) (result i32) unreachable)"
                )
        ),
        "",
    );
    assert!(error.contains("warpcore_init trapped"), "{error}");
}

fn spec_keys_out_of_range_name_their_line_and_field(engine: &str) {
    let error = refusal(engine, "verdicts.wat", "window = 32\n");
    assert!(
        error.contains("line 13: service[1].window") && error.contains("64-9216"),
        "{error}"
    );
    let error = refusal(engine, "verdicts.wat", "on_fault = \"explode\"\n");
    assert!(error.contains("service[1].on_fault"), "{error}");
    let error = refusal(engine, "verdicts.wat", "slots = 0\n");
    assert!(error.contains("service[1].slots"), "{error}");
    let error = refusal(engine, "verdicts.wat", "outputs = [\"if0\", \"if0\"]\n");
    assert!(error.contains("named twice"), "{error}");
}

fn the_acl_module_drops_its_ports_counted_per_rule(engine: &str) {
    let text = format!(
        "{INTERFACE}[[service]]\nkind = \"udp-echo\"\nport = 9\n\
         [[service]]\nkind = \"wasm\"\nname = \"acl\"\nmodule = \"acl.wat\"\n\
         attach = \"ipv4:proto:17\"\nconfig = \"19 9\"\nengine = \"{engine}\"\n"
    );
    let mut harness = Harness::with_registry(&text, &registry());
    harness.learn((PEER, PEER_IP));
    assert_eq!(
        echoed_from(&harness.exchange(0, &request(7)).unwrap()),
        Some(7)
    );
    assert_eq!(harness.exchange(0, &request(9)), None);
    assert_eq!(harness.exchange(0, &request(9)), None);
    assert_eq!(
        echoed_from(&harness.exchange(0, &request(7)).unwrap()),
        Some(7)
    );
    let counters = harness.counters();
    assert_eq!(counters.node_drops("acl", "dropped-by-module"), 2);
    assert_eq!(counters.node_events("acl", "rule-1"), 2);
    assert_eq!(counters.node_events("acl", "rule-0"), 0);
    let text = text.replace("config = \"19 9\"", "config = \"1 2 3 4 5 6 7 8 9 10 11\"");
    let error = Spec::parse(&text, &registry()).unwrap_err().to_string();
    assert!(error.contains("refused its config with code 2"), "{error}");
}

fn memory_grows_to_its_cap_and_no_further(engine: &str) {
    let mut harness = Harness::with_registry(&spec(engine, ""), &registry());
    assert_eq!(harness.exchange(0, &request(18)), Some(request(18)));
    let counters = harness.counters();
    assert_eq!(counters.node_events("judge", "memory-capped"), 1);
    assert_eq!(counters.node_events("judge", "trap"), 0);
}

/// Without the `wasmtime` feature (the appliance never has it), a spec
/// asking for wasmtime is refused, saying why.
#[cfg(not(feature = "wasmtime"))]
#[test]
fn wasmtime_is_refused_where_it_is_not_built() {
    let error = refusal("wasmtime", "verdicts.wat", "");
    assert!(
        error.contains("service `bad`") && error.contains("engine `wasmtime` is not in this build"),
        "{error}"
    );
}

/// `meter = "epoch"` is wasmtime's alone: wasmi refuses it, saying why;
/// `deadline_ms` is checked against its range.
#[test]
fn epoch_metering_is_refused_on_wasmi() {
    let error = refusal("wasmi", "verdicts.wat", "meter = \"epoch\"\n");
    assert!(
        error.contains("service `bad`")
            && error.contains("meter `epoch` needs engine = \"wasmtime\""),
        "{error}"
    );
    let error = refusal("wasmi", "verdicts.wat", "deadline_ms = 0\n");
    assert!(
        error.contains("service[1].deadline_ms") && error.contains("1-1000"),
        "{error}"
    );
}

/// wasmtime with epoch interruption instead of fuel: a module that loops
/// is stopped at its deadline (counted `deadline-exceeded`, its packet
/// handled by `on_fault`), and the core goes on serving.
#[cfg(feature = "wasmtime")]
#[test]
fn under_epoch_a_module_that_loops_is_stopped_by_its_deadline() {
    let extra = "meter = \"epoch\"\ndeadline_ms = 2\non_fault = \"pass\"\n";
    let mut harness = Harness::with_registry(&spec("wasmtime", extra), &registry());
    harness.learn((PEER, PEER_IP));
    assert_eq!(
        echoed_from(&harness.exchange(0, &request(7)).unwrap()),
        Some(7)
    );
    let reply = harness
        .exchange(0, &request(15))
        .expect("passed on fault: an ICMP port unreachable");
    assert_eq!(echoed_from(&reply), None);
    assert_eq!(
        echoed_from(&harness.exchange(0, &request(7)).unwrap()),
        Some(7)
    );
    assert_eq!(harness.exchange(0, &request(9)), None);
    let counters = harness.counters();
    assert_eq!(counters.node_events("judge", "deadline-exceeded"), 1);
    assert_eq!(counters.node_events("judge", "fuel-exhausted"), 0);
    assert_eq!(counters.node_events("judge", "fault-passed"), 1);
    assert_eq!(counters.node_drops("judge", "dropped-by-module"), 1);
}

/// Runs each test on every engine this build has: wasmi always, wasmtime
/// with the `wasmtime` feature (`cargo test -p warpcore-wasm --features
/// wasmtime`).
macro_rules! on_every_engine {
    ($($test:ident),* $(,)?) => {
        mod wasmi {
            $(#[test]
            fn $test() {
                super::$test("wasmi");
            })*
        }
        #[cfg(feature = "wasmtime")]
        mod wasmtime {
            $(#[test]
            fn $test() {
                super::$test("wasmtime");
            })*
        }
    };
}

on_every_engine!(
    every_verdict_does_what_the_module_says,
    a_dirty_window_is_written_back_with_a_fresh_ipv4_checksum,
    packet_and_map_imports_hold_their_bounds,
    fuel_and_traps_are_faults_and_too_many_quarantine_until_the_backoff_ends,
    malformed_modules_are_refused_with_the_engines_reason_naming_the_service,
    spec_keys_out_of_range_name_their_line_and_field,
    the_acl_module_drops_its_ports_counted_per_rule,
    memory_grows_to_its_cap_and_no_further,
);
