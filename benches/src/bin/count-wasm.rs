//! `count-wasm echo|native|wasm|wasm-pass PACKETS [WINDOW]`: the UDP echo core
//! (`examples/echo.toml`) with an 8-rule UDP port ACL in front of the UDP
//! stage (`ipv4:proto:17`): none (`echo`), the native `port-filter`
//! nanoservice (`native`), or the same ACL as a Wasm module
//! (`wasm/host/tests/modules/acl.wat`, `window` bytes copied per packet,
//! 128 unless WINDOW says) on wasmi; `wasm-pass` calls a module that
//! passes every packet without looking (the host's and the call's cost). Every request goes to port 7, which no
//! rule blocks, so both walk all eight rules and pass. Made to run under
//! `valgrind --tool=callgrind` at two packet counts, like count-pipeline:
//! `cargo xtask bench` reports the per-packet difference of each.
#![forbid(unsafe_code)]

use control::Spec;
use dataplane::BURST_SIZE;
use std::process::ExitCode;
use std::sync::Arc;
use warpcore_benches::frames::OUR_MAC;
use warpcore_benches::pipelines::{echo_pool, prime_echo, run_bursts, udp_echo_core_with};
use warpcore_benches::reflector::ReflectorNic;

const WARM_UP_BURSTS: u64 = 16;
/// The blocked ports: eight rules, none of them 7.
const PORTS: &str = "9 19 29 39 49 59 69 79";

/// The ACL module, or the module that passes everything without looking
/// (`pass.wasm`), compiled from their WAT sources.
fn test_module(name: &str) -> Result<Arc<Vec<u8>>, String> {
    let text = match name {
        "pass.wasm" => include_str!("../../../wasm/host/tests/modules/pass.wat"),
        _ => include_str!("../../../wasm/host/tests/modules/acl.wat"),
    };
    wat::parse_str(text)
        .map(Arc::new)
        .map_err(|error| error.to_string())
}

fn spec(variant: &str, window: u32) -> Option<Spec> {
    let acl = match variant {
        "echo" => String::new(),
        "native" => format!(
            "[[service]]\nkind = \"port-filter\"\nblock = [{}]\n",
            PORTS.replace(' ', ", ")
        ),
        "wasm" | "wasm-pass" => format!(
            "[[service]]\nkind = \"wasm\"\nname = \"acl\"\nmodule = \"{}\"\n\
             attach = \"ipv4:proto:17\"\nconfig = \"{PORTS}\"\nwindow = {window}\n",
            if variant == "wasm" {
                "acl.wasm"
            } else {
                "pass.wasm"
            }
        ),
        _ => return None,
    };
    let text = format!("{}\n{acl}", include_str!("../../../examples/echo.toml"));
    let mut registry = services::Registry::with_builtin();
    registry
        .register::<port_filter::PortFilterKind>()
        .expect("port-filter is not built in")
        .register::<warpcore_wasm::WasmKind>()
        .expect("wasm is not built in");
    warpcore_wasm::set_module_source(test_module);
    Some(Spec::parse(&text, &registry).expect("the benchmark spec parses"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: count-wasm echo|native|wasm|wasm-pass PACKETS [WINDOW] (PACKETS a multiple of 32)";
    let (Some(variant), Some(packets)) = (args.first(), args.get(1)) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let window = match args.get(2).map(|text| text.parse::<u32>()) {
        None => 128,
        Some(Ok(window)) => window,
        Some(Err(_)) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let packets: u64 = match packets.parse() {
        Ok(packets) if packets % BURST_SIZE as u64 == 0 => packets,
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let Some(spec) = spec(variant, window) else {
        eprintln!("unknown variant `{variant}`\n{usage}");
        return ExitCode::from(2);
    };
    let pool = echo_pool();
    let mut nic = ReflectorNic::new(OUR_MAC, BURST_SIZE + 1);
    prime_echo(&mut nic, &pool);
    let mut executor = udp_echo_core_with(&spec, Box::new(nic), pool, control::CoreLinks::new());
    run_bursts(&mut executor, WARM_UP_BURSTS);
    run_bursts(&mut executor, packets / BURST_SIZE as u64);
    let counters = executor.counters();
    let acl_drops = counters.node_drops("acl", "dropped-by-module")
        + counters.node_drops("port-filter", "blocked");
    if counters.executor_drops() != 0 || acl_drops != 0 {
        eprintln!(
            "count-wasm {variant}: {} packets dropped by the loop, {acl_drops} by the ACL",
            counters.executor_drops()
        );
        return ExitCode::FAILURE;
    }
    println!(
        "count-wasm {variant}: {packets} packets after {} warm-up",
        WARM_UP_BURSTS * BURST_SIZE as u64
    );
    ExitCode::SUCCESS
}
