//! `count-kv CONNECTIONS REQUESTS [BURST]`: sets up the `kv` appliance on a
//! NIC playing CONNECTIONS memcached clients, opens every connection, warms
//! up (every connection sets its key, then gets it a few times), then runs
//! REQUESTS `get`s, each a hit on a 32-byte value (a multiple of the burst) and exits; fails if a
//! response was missing or wrong or anything was dropped. Made to run under
//! `valgrind --tool=callgrind` as `count-pipeline` is: the difference of
//! the instruction totals at two request counts over the difference of the
//! counts is the cost of one request, setup, handshakes and warm-up
//! cancelled out.
//!
//! Each poll hands the stack BURST requests (default 32, at most
//! CONNECTIONS: each client has one request outstanding), one from each
//! next client round-robin.
#![forbid(unsafe_code)]

use dataplane::BURST_SIZE;
use std::process::ExitCode;
use warpcore_benches::pipelines::{kv_executor, run_requests};

/// Requests every connection makes before the counted ones.
const WARM_UP_ROUNDS: u64 = 3;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: count-kv CONNECTIONS REQUESTS [BURST] (REQUESTS a multiple of the burst, BURST 1-32, default 32)";
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
    let (mut executor, clients) = kv_executor(connections, burst);
    let warm_up = (WARM_UP_ROUNDS * connections as u64).div_ceil(burst as u64) * burst as u64;
    run_requests(&mut executor, &clients, warm_up);
    run_requests(&mut executor, &clients, requests);
    let counts = clients.borrow().counts();
    let counters = executor.counters();
    let node_drops: u64 = counters.nodes.iter().map(|node| node.total_drops()).sum();
    if counters.executor_drops() != 0 || node_drops != 0 || counts.wrong != 0 {
        eprintln!(
            "count-kv: {} executor drops, {node_drops} node drops, {} wrong frames",
            counters.executor_drops(),
            counts.wrong
        );
        return ExitCode::FAILURE;
    }
    if counts.responses != counts.requests {
        eprintln!(
            "count-kv: {} requests but {} responses",
            counts.requests, counts.responses
        );
        return ExitCode::FAILURE;
    }
    println!(
        "kv: {requests} gets on {connections} connections, {burst} a burst, after {warm_up} warm-up ({} SYN cookies)",
        counters.node_events("tcp", "syn-cookies-sent")
    );
    ExitCode::SUCCESS
}
