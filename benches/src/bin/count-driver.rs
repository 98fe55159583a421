//! `count-driver macswap-driver|udp-echo-driver PACKETS`: as
//! `count-pipeline`, for the pipelines NIC to NIC through the real
//! virtio-net driver on its simulated device (`driver_loop` in the
//! library): warms up, runs PACKETS packets (a multiple of the burst size)
//! and exits. `cargo xtask bench` runs it under callgrind at two packet
//! counts, once counting everything and once only the device model's
//! `SimulatedWire::reflect` (`--toggle-collect`): the difference is the
//! driver and the pipeline, NIC to NIC, without the device's own work.
#![forbid(unsafe_code)]

use dataplane::BURST_SIZE;
use std::process::ExitCode;
use warpcore_benches::driver_loop::DriverWorkload;
use warpcore_benches::pipelines::run_bursts;

/// Bursts run before the counted ones, so that every queue and cache line the
/// loop touches has been touched once.
const WARM_UP_BURSTS: u64 = 16;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: count-driver macswap-driver|udp-echo-driver PACKETS (PACKETS a multiple of 32)";
    let [name, packets] = args.as_slice() else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let Some(workload) = DriverWorkload::from_name(name) else {
        eprintln!("unknown workload `{name}`\n{usage}");
        return ExitCode::from(2);
    };
    let packets: u64 = match packets.parse() {
        Ok(packets) if packets % BURST_SIZE as u64 == 0 => packets,
        _ => {
            eprintln!("PACKETS `{packets}` is not a multiple of {BURST_SIZE}\n{usage}");
            return ExitCode::from(2);
        }
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
