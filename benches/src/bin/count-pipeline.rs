//! `count-pipeline macswap|udp-echo|macswap-tapped|udp-echo-tapped|udp-echo-supervised|smoltcp-echo PACKETS`:
//! sets up one warpcore pipeline (or, for `smoltcp-echo`, smoltcp's
//! `Interface` on the same frames, the peer of the `stack` bench)
//! exactly as the criterion benches do, warms it up, then runs PACKETS
//! packets through it (a multiple of the burst size) and exits. Made to run
//! under `valgrind --tool=callgrind`: `cargo xtask bench` runs it at two
//! packet counts, and the difference of the instruction totals over the
//! difference of the packet counts is the cost of one packet, setup and
//! warm-up cancelled out.
#![forbid(unsafe_code)]

use dataplane::BURST_SIZE;
use std::process::ExitCode;
use warpcore_benches::pipelines::{ECHO_IN_FLIGHT, Workload, run_bursts};
use warpcore_benches::smoltcp_echo::SmoltcpEcho;

/// Bursts run before the counted ones, so that every queue and cache line the
/// loop touches has been touched once.
const WARM_UP_BURSTS: u64 = 16;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: count-pipeline macswap|udp-echo|macswap-tapped|udp-echo-tapped|udp-echo-supervised|smoltcp-echo PACKETS (PACKETS a multiple of 32)";
    let [name, packets] = args.as_slice() else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let packets: u64 = match packets.parse() {
        Ok(packets) if packets % BURST_SIZE as u64 == 0 => packets,
        _ => {
            eprintln!("PACKETS `{packets}` is not a multiple of {BURST_SIZE}\n{usage}");
            return ExitCode::from(2);
        }
    };
    if name == "smoltcp-echo" {
        return smoltcp_echo(packets);
    }
    let Some(workload) = Workload::from_name(name) else {
        eprintln!("unknown workload `{name}`\n{usage}");
        return ExitCode::from(2);
    };
    let mut executor = workload.executor();
    run_bursts(&mut executor, WARM_UP_BURSTS);
    run_bursts(&mut executor, packets / BURST_SIZE as u64);
    let counters = executor.counters();
    if counters.executor_drops() != 0 {
        eprintln!(
            "{}: the loop dropped {} packets",
            workload.name(),
            counters.executor_drops()
        );
        return ExitCode::FAILURE;
    }
    println!(
        "{}: {} packets after {} warm-up",
        workload.name(),
        packets,
        WARM_UP_BURSTS * BURST_SIZE as u64
    );
    ExitCode::SUCCESS
}

/// smoltcp's echo on the same frames: rounds of [`ECHO_IN_FLIGHT`] requests
/// (a burst), warmed up as the pipelines are.
fn smoltcp_echo(packets: u64) -> ExitCode {
    let mut echo = SmoltcpEcho::new();
    let rounds = WARM_UP_BURSTS + packets / ECHO_IN_FLIGHT as u64;
    for _ in 0..rounds {
        let answered = echo.round();
        if answered != ECHO_IN_FLIGHT {
            eprintln!("smoltcp-echo: a round answered {answered} of {ECHO_IN_FLIGHT} requests");
            return ExitCode::FAILURE;
        }
    }
    println!(
        "smoltcp-echo: {} packets after {} warm-up",
        packets,
        WARM_UP_BURSTS * ECHO_IN_FLIGHT as u64
    );
    ExitCode::SUCCESS
}
