//! `count-kv-shards local|remote CONNECTIONS REQUESTS [BURST]`: two cores
//! of the `kv` appliance in one process (the shards' real SPSC rings
//! between them, polled in turn), CONNECTIONS memcached clients on each
//! core, every client getting a key of its own core's shard (`local`) or
//! of the other core's (`remote`); opens every connection, warms up
//! (every client sets its key, then gets it a few times), runs REQUESTS
//! gets over both cores (a multiple of twice the burst) and exits; fails
//! if a response was missing or wrong or anything was dropped. Made to
//! run under `valgrind --tool=callgrind` as `count-kv` is: the difference
//! of the instruction totals at two request counts over the difference of
//! the counts is the cost of one get, on both cores together; `remote`
//! minus `local` is what crossing cores adds.
//!
//! Each poll of a core hands its stack BURST requests (default 16, at most
//! CONNECTIONS / 2: a remote answer reaches its client one round later).
#![forbid(unsafe_code)]

use std::process::ExitCode;
use warpcore_benches::kv_shards::{CORES, Placement, TwoShards};

/// Gets every client makes before the counted ones (after its set).
const WARM_UP_ROUNDS: u64 = 3;
/// Requests per poll of one core unless told.
const DEFAULT_BURST: usize = 16;

fn main() -> ExitCode {
    let usage = "usage: count-kv-shards local|remote CONNECTIONS REQUESTS [BURST] \
        (CONNECTIONS per core, REQUESTS over both cores a multiple of 2 x BURST, \
        BURST 1 to CONNECTIONS / 2, default 16)";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (placement, connections, requests, burst) = match args.as_slice() {
        [placement, connections, requests] => (placement, connections, requests, None),
        [placement, connections, requests, burst] => {
            (placement, connections, requests, Some(burst))
        }
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let Some(placement) = Placement::from_name(placement) else {
        eprintln!("placement `{placement}` is neither local nor remote\n{usage}");
        return ExitCode::from(2);
    };
    let Ok(connections) = connections.parse::<usize>() else {
        eprintln!("CONNECTIONS `{connections}` is not a number\n{usage}");
        return ExitCode::from(2);
    };
    if !(2..=warpcore_benches::http_clients::MAX_CLIENTS / CORES).contains(&connections) {
        eprintln!("CONNECTIONS `{connections}` is out of range\n{usage}");
        return ExitCode::from(2);
    }
    let burst = match burst.map(|burst| burst.parse::<usize>()) {
        None => DEFAULT_BURST.min(connections / 2),
        Some(Ok(burst)) if (1..=connections / 2).contains(&burst) => burst,
        Some(_) => {
            eprintln!("BURST is not from 1 to {}\n{usage}", connections / 2);
            return ExitCode::from(2);
        }
    };
    let per_round = (CORES * burst) as u64;
    let requests: u64 = match requests.parse() {
        Ok(requests) if requests % per_round == 0 => requests,
        _ => {
            eprintln!("REQUESTS `{requests}` is not a multiple of {per_round}\n{usage}");
            return ExitCode::from(2);
        }
    };
    let mut shards = TwoShards::new(connections, burst, placement);
    let warm_up =
        ((1 + WARM_UP_ROUNDS) * (CORES * connections) as u64).div_ceil(per_round) * per_round;
    shards.run(warm_up);
    shards.run(requests);
    let (sent, answered) = shards.exchanged();
    if shards.drops() != 0 {
        eprintln!("count-kv-shards: {} packets dropped", shards.drops());
        return ExitCode::FAILURE;
    }
    if answered + shards.expected_outstanding() != sent {
        eprintln!(
            "count-kv-shards: {sent} requests but {answered} responses ({} may wait)",
            shards.expected_outstanding()
        );
        return ExitCode::FAILURE;
    }
    println!(
        "kv {placement:?}: {requests} gets on {CORES} cores x {connections} connections, {burst} a burst per core, after {warm_up} warm-up; {} bare ACKs, {} doorbell rings",
        shards.bare_acks(),
        shards.doorbell_rings()
    );
    ExitCode::SUCCESS
}
