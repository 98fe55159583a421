//! The `main` of the per-request callgrind counters (`count-http`,
//! `count-kv`): parses `CONNECTIONS REQUESTS [BURST]`, builds the
//! appliance on a NIC playing the clients, opens every connection, warms
//! up (every connection makes a few requests), runs REQUESTS requests (a
//! multiple of the burst) and fails if a response was missing or wrong or
//! anything was dropped.

use crate::http_clients::HttpClients;
use crate::pipelines::run_requests;
use dataplane::{BURST_SIZE, Executor, SharedNic};
use std::process::ExitCode;

/// Requests every connection makes before the counted ones.
const WARM_UP_ROUNDS: u64 = 3;

/// What one counter binary counts.
pub struct RequestCounter {
    /// The binary's name, for usage and error lines.
    pub binary: &'static str,
    /// The app, for the summary line (`http`, `kv`).
    pub app: &'static str,
    /// What one request is called in the summary line (`requests`, `gets`).
    pub requests: &'static str,
    /// Builds the appliance and its clients: `(connections, burst)`.
    pub executor: fn(usize, usize) -> (Executor, SharedNic<HttpClients>),
}

impl RequestCounter {
    /// Runs the counter on the process's arguments.
    pub fn main(&self) -> ExitCode {
        let binary = self.binary;
        let args: Vec<String> = std::env::args().skip(1).collect();
        let usage = format!(
            "usage: {binary} CONNECTIONS REQUESTS [BURST] (REQUESTS a multiple of the burst, BURST 1-32, default 32)"
        );
        let (connections, requests, burst) = match args.as_slice() {
            [connections, requests] => (connections, requests, None),
            [connections, requests, burst] => (connections, requests, Some(burst)),
            _ => {
                eprintln!("{usage}");
                return ExitCode::from(2);
            }
        };
        let Ok(connections) = connections.parse::<usize>() else {
            eprintln!("CONNECTIONS `{connections}` is not a number\n{usage}");
            return ExitCode::from(2);
        };
        let burst = match burst.map(|burst| burst.parse::<usize>()) {
            None => BURST_SIZE,
            Some(Ok(burst)) if (1..=BURST_SIZE).contains(&burst) => burst,
            Some(_) => {
                eprintln!("BURST is not from 1 to {BURST_SIZE}\n{usage}");
                return ExitCode::from(2);
            }
        };
        let burst = burst.min(connections.max(1));
        let requests: u64 = match requests.parse() {
            Ok(requests) if requests % burst as u64 == 0 => requests,
            _ => {
                eprintln!("REQUESTS `{requests}` is not a multiple of {burst}\n{usage}");
                return ExitCode::from(2);
            }
        };
        let (mut executor, clients) = (self.executor)(connections, burst);
        let warm_up = (WARM_UP_ROUNDS * connections as u64).div_ceil(burst as u64) * burst as u64;
        run_requests(&mut executor, &clients, warm_up);
        run_requests(&mut executor, &clients, requests);
        let counts = clients.borrow().counts();
        let counters = executor.counters();
        let node_drops: u64 = counters.nodes.iter().map(|node| node.total_drops()).sum();
        if counters.executor_drops() != 0 || node_drops != 0 || counts.wrong != 0 {
            eprintln!(
                "{binary}: {} executor drops, {node_drops} node drops, {} wrong frames",
                counters.executor_drops(),
                counts.wrong
            );
            return ExitCode::FAILURE;
        }
        if counts.responses != counts.requests {
            eprintln!(
                "{binary}: {} requests but {} responses",
                counts.requests, counts.responses
            );
            return ExitCode::FAILURE;
        }
        println!(
            "{}: {requests} {} on {connections} connections, {burst} a burst, after {warm_up} warm-up ({} SYN cookies)",
            self.app,
            self.requests,
            counters.node_events("tcp", "syn-cookies-sent")
        );
        ExitCode::SUCCESS
    }
}
