//! A TCP request/response client for the benchmarks: HTTP/1.1 keep-alive
//! `GET /` or memcached text-protocol `get`/`set`, over N connections, each
//! one request at a time. Closed loop by default; with `--rate` each
//! connection sends on a fixed schedule and latency counts from the
//! scheduled send time, so a slow reply also charges the requests it
//! delayed (no coordinated omission). Prints loadgen's JSON (`RunResult`)
//! so the harness reads it like a loadgen run.
//!
//! With `--warmup-secs W` the same load runs W seconds before the
//! measured ones and nothing of it is counted. The client's threads sleep
//! with a timer slack of 1 ns (Linux's default of 50 µs would add up to
//! 50 µs of the client's own oversleep to every scheduled request).
//!
//! With `--trace FILE` every counted request is written to FILE as a CSV
//! line: the connection's local port, its scheduled slot, when the client
//! began writing it and when the whole reply was read, in nanoseconds of
//! the wall clock (the clock packet captures stamp frames with), so that a
//! capture on the server's side of the path can be joined to it request by
//! request (`perf/experiments/request-path.py`). Its stderr then also
//! says how late the client's own threads were for their slots.
//!
//! usage: tcp-load --target ADDR:PORT --protocol http|memcache-get|memcache-set
//!        [--connections N] [--duration-secs S] [--rate REQUESTS_PER_SECOND]
//!        [--warmup-secs W] [--trace FILE]
#![deny(unsafe_code)]

use anyhow::{Context, Result, bail};
use clap::Parser;
use loadgen::run::RunResult;
use loadgen::tcp::client::slots_between;
use loadgen::tcp::protocol::{self, Protocol};
use loadgen::tracker::Summary;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one reply may take before the connection counts an error.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// A TCP request/response client for the benchmarks.
#[derive(Debug, Parser)]
#[command(name = "tcp-load")]
struct Arguments {
    /// The server.
    #[arg(long, value_name = "ADDR:PORT")]
    target: SocketAddr,
    /// What to ask.
    #[arg(long, value_enum)]
    protocol: Protocol,
    /// Connections, each with one request outstanding.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    connections: u32,
    /// Seconds of load.
    #[arg(long, value_name = "S", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    duration_secs: u64,
    /// Requests per second over all connections; 0: as fast as replies come.
    #[arg(long, value_name = "N", default_value_t = 0)]
    rate: u64,
    /// Seconds of the same load before the measured ones, not counted.
    #[arg(long, value_name = "W", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=60))]
    warmup_secs: u64,
    /// Writes every counted request's times to this CSV file.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
}

/// What one connection's thread measured.
#[derive(Default)]
struct Tally {
    sent: u64,
    errors: u64,
    latencies_ns: Vec<u64>,
    /// With `--trace`: one record per counted request.
    trace: Vec<TraceRecord>,
}

/// One request's times, for `--trace`.
#[derive(Clone, Copy)]
struct TraceRecord {
    /// The connection's local port (how a capture names it).
    port: u16,
    /// Its slot on the schedule (closed loop: when it was sent).
    slot: Instant,
    /// When the client began writing it.
    written: Instant,
    /// When the whole reply had been read.
    replied: Instant,
}

fn main() {
    let arguments = Arguments::parse();
    match run(&arguments) {
        Ok(result) => println!(
            "{}",
            serde_json::to_string(&result).expect("RunResult serialises")
        ),
        Err(error) => {
            eprintln!("tcp-load: error: {error:#}");
            std::process::exit(2);
        }
    }
}

/// The main thread's timer slack (the file names the thread-group leader,
/// which `run` is on); threads inherit it from the thread that creates
/// them, so it is set once before they are spawned. Best effort: without
/// it (an old kernel) the default 50 µs stays.
const TIMER_SLACK: &str = "/proc/self/timerslack_ns";

fn run(arguments: &Arguments) -> Result<RunResult> {
    let _ = std::fs::write(TIMER_SLACK, "1");
    let duration = Duration::from_secs(arguments.duration_secs);
    let warmup = Duration::from_secs(arguments.warmup_secs);
    let interval = (arguments.rate > 0)
        .then(|| Duration::from_secs_f64(f64::from(arguments.connections) / arguments.rate as f64));
    let start = Instant::now() + Duration::from_millis(200);
    let threads: Vec<_> = (0..arguments.connections)
        .map(|index| {
            let (target, protocol) = (arguments.target, arguments.protocol);
            // Stagger the schedules so the connections do not send in step.
            let offset = interval.map_or(Duration::ZERO, |interval| {
                interval.mul_f64(f64::from(index) / f64::from(arguments.connections))
            });
            let schedule = Schedule {
                start: start + offset,
                measured_from: start + offset + warmup,
                end: start + offset + warmup + duration,
                interval,
            };
            let trace = arguments.trace.is_some();
            std::thread::spawn(move || connection(target, protocol, index, schedule, trace))
        })
        .collect();
    let mut total = Tally::default();
    for thread in threads {
        let tally = thread.join().expect("connection thread panicked")?;
        total.sent += tally.sent;
        total.errors += tally.errors;
        total.latencies_ns.extend(tally.latencies_ns);
        total.trace.extend(tally.trace);
    }
    if total.latencies_ns.is_empty() {
        bail!("no replies ({} sent, {} errors)", total.sent, total.errors);
    }
    if let Some(path) = &arguments.trace {
        write_trace(path, &mut total.trace)?;
    }
    Ok(result(total, duration.as_secs_f64(), arguments.rate))
}

/// When one connection sends, and which of its requests count.
#[derive(Clone, Copy)]
struct Schedule {
    /// The first request's slot.
    start: Instant,
    /// Requests sent (or scheduled) from here on are counted.
    measured_from: Instant,
    /// No request is sent from here on.
    end: Instant,
    /// The fixed interval between requests; `None`: closed loop.
    interval: Option<Duration>,
}

/// One connection: sends from `schedule.start` until `schedule.end`,
/// counting what was sent from `schedule.measured_from`, reconnecting after
/// an error.
fn connection(
    target: SocketAddr,
    protocol: Protocol,
    index: u32,
    schedule: Schedule,
    trace: bool,
) -> Result<Tally> {
    let Schedule {
        start,
        measured_from,
        end,
        interval,
    } = schedule;
    let mut tally = Tally::default();
    let request = protocol::request(protocol, &target.ip().to_string(), index);
    let mut stream = connect(target)?;
    let mut port = stream.local_addr()?.port();
    if let Some(preamble) = protocol::preamble(protocol, index) {
        stream.write_all(&preamble)?;
        read_reply(&mut stream, Protocol::MemcacheSet, &mut Vec::new())
            .context("setting the key before the run")?;
    }
    let mut buffer = Vec::with_capacity(4096);
    let mut next = start;
    while Instant::now() < start {
        std::thread::sleep(start - Instant::now());
    }
    // With a rate, a connection behind its schedule at the end still sends
    // the slots before the end (late, charged from the slot) for up to one
    // reply timeout more; slots left then count as sent and failed, never
    // vanish (coordinated omission at the end).
    let hard_end = end + REPLY_TIMEOUT;
    loop {
        let now = Instant::now();
        let finished = match interval {
            Some(_) => next >= end,
            None => now >= end,
        };
        if finished {
            break;
        }
        if now >= hard_end {
            if let Some(interval) = interval {
                let unsent = slots_between(next, interval, measured_from, end);
                tally.sent += unsent;
                tally.errors += unsent;
            }
            break;
        }
        // Open loop: wait for this request's slot and count from it.
        let sent_at = match interval {
            Some(interval) => {
                if next > now {
                    std::thread::sleep(next - now);
                }
                let slot = next;
                next += interval;
                slot
            }
            None => now,
        };
        let counted = sent_at >= measured_from;
        tally.sent += u64::from(counted);
        let written = Instant::now();
        let outcome = stream
            .write_all(&request)
            .map_err(anyhow::Error::from)
            .and_then(|()| read_reply(&mut stream, protocol, &mut buffer));
        match outcome {
            Ok(()) if counted => {
                let replied = Instant::now();
                tally
                    .latencies_ns
                    .push((replied - sent_at).as_nanos() as u64);
                if trace {
                    tally.trace.push(TraceRecord {
                        port,
                        slot: sent_at,
                        written,
                        replied,
                    });
                }
            }
            Ok(()) => {}
            Err(_) => {
                tally.errors += u64::from(counted);
                match connect(target) {
                    Ok(fresh) => {
                        port = fresh.local_addr().map_or(0, |address| address.port());
                        stream = fresh;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }
    Ok(tally)
}

/// Writes `records` (sorted by slot) to `path` as CSV, times in wall-clock
/// nanoseconds, and prints to stderr how late the client was for its
/// slots (the part of every latency that is the client's own).
fn write_trace(path: &Path, records: &mut [TraceRecord]) -> Result<()> {
    // One reading of both clocks maps the monotonic instants to the wall
    // clock; over a run of seconds they do not drift apart measurably.
    let (wall, monotonic) = (SystemTime::now(), Instant::now());
    let wall_ns = wall.duration_since(UNIX_EPOCH)?.as_nanos() as i128;
    let at = |instant: Instant| -> i128 {
        if instant <= monotonic {
            wall_ns - (monotonic - instant).as_nanos() as i128
        } else {
            wall_ns + (instant - monotonic).as_nanos() as i128
        }
    };
    records.sort_unstable_by_key(|record| record.slot);
    let mut text = String::from("port,slot_ns,written_ns,replied_ns\n");
    for record in records.iter() {
        use std::fmt::Write as _;
        let _ = writeln!(
            text,
            "{},{},{},{}",
            record.port,
            at(record.slot),
            at(record.written),
            at(record.replied)
        );
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    let mut late: Vec<u64> = records
        .iter()
        .map(|record| (record.written - record.slot).as_nanos() as u64)
        .collect();
    late.sort_unstable();
    if let Some(&max) = late.last() {
        let quantile_us =
            |quantile: f64| late[((late.len() - 1) as f64 * quantile).round() as usize] / 1000;
        eprintln!(
            "tcp-load: the client's lateness for its slots: p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
            quantile_us(0.5),
            quantile_us(0.99),
            quantile_us(0.999),
            max / 1000
        );
    }
    Ok(())
}

fn connect(target: SocketAddr) -> Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&target, REPLY_TIMEOUT)
        .with_context(|| format!("connecting to {target}"))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
    Ok(stream)
}

/// Reads one whole reply into `buffer` (cleared first).
fn read_reply(stream: &mut TcpStream, protocol: Protocol, buffer: &mut Vec<u8>) -> Result<()> {
    buffer.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if protocol::exactly_one_reply(protocol, buffer)? {
            return Ok(());
        }
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            bail!("the server closed the connection");
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// loadgen's figures for the run: requests as probes, errors as lost.
fn result(mut tally: Tally, seconds: f64, rate: u64) -> RunResult {
    tally.latencies_ns.sort_unstable();
    let latencies = &tally.latencies_ns;
    let at = |quantile: f64| {
        let index = ((latencies.len() - 1) as f64 * quantile).round() as usize;
        latencies[index]
    };
    let received = latencies.len() as u64;
    RunResult {
        summary: Summary {
            sent: tally.sent,
            received,
            lost: tally.errors,
            loss_percent: tally.errors as f64 * 100.0 / tally.sent.max(1) as f64,
            duplicates: 0,
            reordered: 0,
            foreign: 0,
            latency_p50_ns: Some(at(0.5)),
            latency_p90_ns: Some(at(0.9)),
            latency_p99_ns: Some(at(0.99)),
            latency_p999_ns: Some(at(0.999)),
            latency_max_ns: Some(at(1.0)),
        },
        send_seconds: seconds,
        sent_pps: tally.sent as f64 / seconds,
        offered_pps: (rate > 0).then_some(rate),
        received_pps: received as f64 / seconds,
        latency_cdf: (0..=100)
            .map(|percent| (f64::from(percent), at(f64::from(percent) / 100.0)))
            .collect(),
        vhost_user: None,
        vhost_user_receive: None,
        tcp_client: None,
    }
}
