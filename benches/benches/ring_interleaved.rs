//! The cross-thread rings measured in alternation: this VM switches between
//! speed modes every few seconds to minutes, which a criterion run (one ring
//! for several seconds, then the next) can catch on either side. Short
//! trials in turn share the mode; the median of each ring's trials and the
//! median of the per-round ratios are what to compare.
//!
//! `cargo bench -p warpcore-benches --bench ring_interleaved`
#![forbid(unsafe_code)]

use std::time::Duration;
use warpcore_benches::ring_workloads;

/// Rounds; each runs every ring once, in turn.
const ROUNDS: usize = 15;
/// Items per trial: tens of milliseconds, well inside one mode.
const ITEMS: u64 = 2_000_000;

/// A ring workload: moves that many items across threads, returns the time.
type Workload = fn(u64) -> Duration;

fn nanoseconds_per_item(elapsed: Duration) -> f64 {
    elapsed.as_nanos() as f64 / ITEMS as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; a filter or `--list` would mean nothing here.
    let rings: [(&str, Workload); 3] = [
        ("warpcore", ring_workloads::warpcore),
        ("rtrb", ring_workloads::rtrb_bursts),
        ("rtrb_in_place", ring_workloads::rtrb_in_place),
    ];
    let mut trials = vec![Vec::with_capacity(ROUNDS); rings.len()];
    for round in 0..ROUNDS {
        let mut line = format!("round {round:2}:");
        for (index, (name, run)) in rings.iter().enumerate() {
            let value = nanoseconds_per_item(run(ITEMS));
            trials[index].push(value);
            line.push_str(&format!(" {name} {value:.2}"));
        }
        println!("{line} ns/item");
    }
    let mut ratios: Vec<f64> = trials[0]
        .iter()
        .zip(&trials[1])
        .map(|(warpcore, rtrb)| rtrb / warpcore)
        .collect();
    let mut summary = String::from("median:");
    for ((name, _), values) in rings.iter().zip(&mut trials) {
        summary.push_str(&format!(" {name} {:.2}", median(values)));
    }
    println!(
        "{summary} ns/item; rtrb / warpcore per round: median {:.2}x",
        median(&mut ratios)
    );
}
