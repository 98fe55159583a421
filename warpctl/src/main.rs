//! `warpctl`: parses the command line, runs the command, and on failure
//! prints the cause and exits non-zero.

use clap::Parser;
use std::process::ExitCode;
use warpctl::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match warpctl::commands::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("warpctl: {error}");
            ExitCode::FAILURE
        }
    }
}
