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

use std::process::ExitCode;
use warpcore_benches::pipelines::{
    ECHO_IN_FLIGHT, WARM_UP_BURSTS, Workload, count_args, count_executor,
};
use warpcore_benches::smoltcp_echo::SmoltcpEcho;

const USAGE: &str = "usage: count-pipeline macswap|udp-echo|macswap-tapped|udp-echo-tapped|udp-echo-supervised|smoltcp-echo PACKETS (PACKETS a multiple of 32)";

fn main() -> ExitCode {
    let (name, packets) = match count_args(USAGE) {
        Ok(args) => args,
        Err(code) => return code,
    };
    if name == "smoltcp-echo" {
        return smoltcp_echo(packets);
    }
    let executor = Workload::from_name(&name).map(Workload::executor);
    count_executor(USAGE, &name, packets, executor)
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
