//! `count-driver macswap-driver|udp-echo-driver PACKETS`: as
//! `count-pipeline`, for the pipelines NIC to NIC through the real
//! virtio-net driver on its simulated device (`driver_loop` in the
//! library): warms up, runs PACKETS packets (a multiple of the burst size)
//! and exits. `cargo xtask bench` runs it under callgrind at two packet
//! counts, once counting everything and once only the device model's
//! `SimulatedWire::reflect` (`--toggle-collect`): the difference is the
//! driver and the pipeline, NIC to NIC, without the device's own work.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use warpcore_benches::driver_loop::DriverWorkload;
use warpcore_benches::pipelines::count_packets;

fn main() -> ExitCode {
    count_packets(
        "usage: count-driver macswap-driver|udp-echo-driver PACKETS (PACKETS a multiple of 32)",
        |name| DriverWorkload::from_name(name).map(DriverWorkload::executor),
    )
}
