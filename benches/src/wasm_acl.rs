//! The 8-rule UDP port ACL in front of the echo core's UDP stage, native
//! and as a Wasm module on each engine: the spec and the warmed-up core
//! that `count-wasm` (callgrind) and the `wasm` criterion bench both run.

use crate::frames::OUR_MAC;
use crate::pipelines::{echo_pool, prime_echo, run_bursts, udp_echo_core_with};
use crate::reflector::ReflectorNic;
use control::Spec;
use dataplane::{BURST_SIZE, Executor};
use std::sync::Arc;

/// The blocked ports: eight rules, none of them 7 (the echo port every
/// request goes to, so every ACL walks all eight rules and passes).
pub const PORTS: &str = "9 19 29 39 49 59 69 79";
/// Bursts run before anything is counted or timed.
pub const WARM_UP_BURSTS: u64 = 16;
/// The variants, by the name `count-wasm` takes: none, native, the ACL
/// module on wasmi and wasmtime (metered by fuel, and by epoch
/// interruption: `-epoch`), and a module that passes everything unread on
/// each.
pub const VARIANTS: [&str; 8] = [
    "echo",
    "native",
    "wasm",
    "wasm-pass",
    "wasmtime",
    "wasmtime-pass",
    "wasmtime-epoch",
    "wasmtime-epoch-pass",
];

/// The ACL module, or the module that passes everything without looking
/// (`pass.wasm`), compiled from their WAT sources.
fn test_module(name: &str) -> Result<Arc<Vec<u8>>, String> {
    let text = match name {
        "pass.wasm" => include_str!("../../wasm/host/tests/modules/pass.wat"),
        _ => include_str!("../../wasm/host/tests/modules/acl.wat"),
    };
    wat::parse_str(text)
        .map(Arc::new)
        .map_err(|error| error.to_string())
}

/// The echo core's spec with `variant`'s ACL (`window` bytes copied per
/// packet for a Wasm one): `Err` for an unknown variant or a spec the
/// build refuses (wasmtime without the `wasmtime` feature).
pub fn spec(variant: &str, window: u32) -> Result<Spec, String> {
    let acl = match variant {
        "echo" => String::new(),
        "native" => format!(
            "[[service]]\nkind = \"port-filter\"\nblock = [{}]\n",
            PORTS.replace(' ', ", ")
        ),
        "wasm"
        | "wasm-pass"
        | "wasmtime"
        | "wasmtime-pass"
        | "wasmtime-epoch"
        | "wasmtime-epoch-pass" => format!(
            "[[service]]\nkind = \"wasm\"\nname = \"acl\"\nmodule = \"{}\"\n\
             engine = \"{}\"\nmeter = \"{}\"\nattach = \"ipv4:proto:17\"\n\
             config = \"{PORTS}\"\nwindow = {window}\n",
            if variant.ends_with("-pass") {
                "pass.wasm"
            } else {
                "acl.wasm"
            },
            if variant.starts_with("wasmtime") {
                "wasmtime"
            } else {
                "wasmi"
            },
            if variant.starts_with("wasmtime-epoch") {
                "epoch"
            } else {
                "fuel"
            }
        ),
        _ => return Err(format!("unknown variant `{variant}`")),
    };
    let text = format!("{}\n{acl}", include_str!("../../examples/echo.toml"));
    let mut registry = services::Registry::with_builtin();
    registry
        .register::<port_filter::PortFilterKind>()
        .expect("port-filter is not built in")
        .register::<warpcore_wasm::WasmKind>()
        .expect("wasm is not built in");
    warpcore_wasm::set_module_source(test_module);
    Spec::parse(&text, &registry).map_err(|error| error.to_string())
}

/// The echo core of `spec` on a reflecting NIC, warmed up.
pub fn acl_core(spec: &Spec) -> Executor {
    let pool = echo_pool();
    let mut nic = ReflectorNic::new(OUR_MAC, BURST_SIZE + 1);
    prime_echo(&mut nic, &pool);
    let mut executor = udp_echo_core_with(spec, Box::new(nic), pool, control::CoreLinks::new());
    run_bursts(&mut executor, WARM_UP_BURSTS);
    executor
}

/// Packets the ACL (native or Wasm) or the loop dropped: 0 when every
/// request passed, as it should.
pub fn dropped(executor: &Executor) -> u64 {
    let counters = executor.counters();
    counters.executor_drops()
        + counters.node_drops("acl", "dropped-by-module")
        + counters.node_drops("acl", "fault-dropped")
        + counters.node_drops("port-filter", "blocked")
}
