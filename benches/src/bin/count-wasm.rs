//! `count-wasm echo|native|wasm[-pass]|wasmtime[-pass]|wasmtime-epoch[-pass]
//! PACKETS [WINDOW]`: the UDP echo core (`examples/echo.toml`) with an 8-rule UDP
//! port ACL in front of the UDP stage (`ipv4:proto:17`): none (`echo`),
//! the native `port-filter` nanoservice (`native`), or the same ACL as a
//! Wasm module (`wasm/host/tests/modules/acl.wat`, `window` bytes copied
//! per packet, 128 unless WINDOW says) on wasmi (`wasm`) or wasmtime
//! (`wasmtime`, with the `wasmtime` feature: fuel metering, or epoch
//! interruption for `wasmtime-epoch`); the `-pass` variants call a module that passes every packet without looking
//! (the host's and the call's cost). Every request goes to port 7, which
//! no rule blocks, so every ACL walks all eight rules and passes
//! (`warpcore_benches::wasm_acl`). Made to run under `valgrind
//! --tool=callgrind` at two packet counts, like count-pipeline: `cargo
//! xtask bench` reports the per-packet difference of each.
#![forbid(unsafe_code)]

use dataplane::BURST_SIZE;
use std::process::ExitCode;
use warpcore_benches::pipelines::run_bursts;
use warpcore_benches::wasm_acl::{WARM_UP_BURSTS, acl_core, dropped, spec};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: count-wasm echo|native|wasm[-pass]|wasmtime[-pass]|wasmtime-epoch[-pass] PACKETS [WINDOW] (PACKETS a multiple of 32)";
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
    let spec = match spec(variant, window) {
        Ok(spec) => spec,
        Err(why) => {
            eprintln!("count-wasm {variant}: {why}\n{usage}");
            return ExitCode::from(2);
        }
    };
    let mut executor = acl_core(&spec);
    run_bursts(&mut executor, packets / BURST_SIZE as u64);
    let lost = dropped(&executor);
    if lost != 0 {
        eprintln!("count-wasm {variant}: {lost} packets dropped by the loop or the ACL");
        return ExitCode::FAILURE;
    }
    println!(
        "count-wasm {variant}: {packets} packets after {} warm-up",
        WARM_UP_BURSTS * BURST_SIZE as u64
    );
    ExitCode::SUCCESS
}
