//! `cargo xtask`: build, run, test and benchmark warpcore with one command each.
#![forbid(unsafe_code)]

mod bench;
mod cli;
mod commands;
mod counters;
mod net;
mod qemu;
mod shell;
mod spec_file;
mod suites;

use clap::Parser;
use cli::{Cli, Command};
use suites::runner::Filter;

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Build => commands::run::build(),
        Command::Run(arguments) => commands::run::run(arguments),
        Command::Test(arguments) => commands::test::run(arguments),
        Command::Bench(arguments) => commands::bench::run(arguments),
        Command::WasmExamples => commands::wasm_examples::run_command(),
        Command::UdpClient { mode } => net::udp_client::run(mode),
        Command::TcpClient { mode } => net::tcp_client::run(mode),
        Command::FloodFrames { ifname, file, rate } => net::syn_flood::run(ifname, file, *rate),
        Command::SendFrames { ifname, file } => net::raw_frames::run(ifname, file),
        Command::ReorderRelay {
            client_side,
            appliance_side,
            hold_one_in,
            seconds,
        } => net::reorder_relay::run(client_side, appliance_side, *hold_one_in, *seconds),
        Command::ApplianceTests => {
            suites::appliance::tests::run(&Filter::new(vec!["appliance/".into()]))
        }
        Command::HostedTests => {
            suites::hosted::scenarios::run(&Filter::new(vec!["hosted/".into()]))
        }
    };
    if let Err(error) = result {
        eprintln!("xtask: error: {error:#}");
        std::process::exit(1);
    }
}
