//! `count-pipeline macswap|udp-echo|macswap-tapped|udp-echo-tapped|udp-echo-supervised PACKETS`:
//! sets up one warpcore pipeline
//! exactly as the criterion benches do, warms it up, then runs PACKETS
//! packets through it (a multiple of the burst size) and exits. Made to run
//! under `valgrind --tool=callgrind`: `cargo xtask bench` runs it at two
//! packet counts, and the difference of the instruction totals over the
//! difference of the packet counts is the cost of one packet, setup and
//! warm-up cancelled out.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use warpcore_benches::pipelines::{Workload, count_packets};

fn main() -> ExitCode {
    count_packets(
        "usage: count-pipeline macswap|udp-echo|macswap-tapped|udp-echo-tapped|udp-echo-supervised PACKETS (PACKETS a multiple of 32)",
        |name| Workload::from_name(name).map(Workload::executor),
    )
}
