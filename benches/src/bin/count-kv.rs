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

use std::process::ExitCode;
use warpcore_benches::pipelines::kv_executor;
use warpcore_benches::request_counter::RequestCounter;

fn main() -> ExitCode {
    RequestCounter {
        binary: "count-kv",
        app: "kv",
        requests: "gets",
        executor: kv_executor,
    }
    .main()
}
