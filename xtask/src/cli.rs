//! The `cargo xtask` command line, parsed by clap: every command, its
//! options and their help texts.

use crate::qemu::command_line::Image;
use crate::qemu::command_line::{Accel, Machine, NicModel, QemuConfig};
use crate::shell::host::workspace_root;
use clap::{Args, Parser, Subcommand};
use perf::scenario::{Backend, System};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Build, run, test and benchmark warpcore with one command each.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    arg_required_else_help = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the appliance image (PVH ELF) and print its path.
    Build,
    /// Build the appliance and boot it in QEMU, serial on stdout (quit with Ctrl-A X).
    Run(RunArguments),
    /// Everything CI runs: fmt, clippy, host tests, hosted tests, Miri, kernel scenarios and
    /// appliance tests in QEMU (filter with --only, names with --list).
    Test(TestArguments),
    /// Microbenchmarks and the systems-under-test harness, written into one report.
    Bench(BenchArguments),
    /// Build the nine Wasm example modules (examples/wasm/{rust,c,assemblyscript})
    /// into target/wasm-examples, and print their sizes and fuel per packet.
    WasmExamples,
    /// Internal: the UDP client the tests run inside a namespace.
    #[command(name = "__udp-client", hide = true)]
    UdpClient {
        /// What to check.
        #[command(subcommand)]
        mode: UdpClientMode,
    },
    /// Internal: the TCP client the tests run inside a namespace.
    #[command(name = "__tcp-client", hide = true)]
    TcpClient {
        /// What to check.
        #[command(subcommand)]
        mode: TcpClientMode,
    },
    /// Internal: many raw frames out of an interface at a bounded rate
    /// (the SYN flood).
    #[command(name = "__flood-frames", hide = true)]
    FloodFrames {
        /// The interface to send from.
        ifname: String,
        /// A file of `NAME HEX` lines, one frame each.
        file: PathBuf,
        /// Frames per second, at most.
        rate: u32,
    },
    /// Internal: raw frames out of an interface (malformed-traffic tests).
    #[command(name = "__send-frames", hide = true)]
    SendFrames {
        /// The interface to send from.
        ifname: String,
        /// A file of `NAME HEX` lines, one frame each.
        file: PathBuf,
    },
    /// Internal: relays frames between two interfaces, reordering those
    /// toward the appliance (the TCP reordering test).
    #[command(name = "__reorder-relay", hide = true)]
    ReorderRelay {
        /// The interface the client's frames arrive on.
        client_side: String,
        /// The interface toward the appliance.
        appliance_side: String,
        /// Hold back about one TCP data segment in this many (at least 1).
        #[arg(long, default_value_t = 20,
              value_parser = clap::value_parser!(u32).range(1..))]
        hold_one_in: u32,
        /// Stop after this many seconds if stdin has not closed first.
        #[arg(long, default_value_t = 300)]
        seconds: u64,
    },
    /// Internal: only the QEMU appliance tests (`test --only appliance/`).
    #[command(name = "__appliance-tests", hide = true)]
    ApplianceTests,
    /// Internal: only the hosted integration tests (`test --only hosted/`).
    #[command(name = "__hosted-tests", hide = true)]
    HostedTests,
}

/// `cargo xtask run`'s options.
#[derive(Debug, Args)]
pub struct RunArguments {
    /// vCPUs.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub smp: u32,
    /// Guest RAM in MiB, at least 64.
    #[arg(long = "mem", value_name = "MIB", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(64..))]
    pub mem_mib: u32,
    /// Machine type.
    #[arg(long, value_enum, default_value_t = Machine::Q35)]
    pub machine: Machine,
    /// Accelerator (KVM adds `-cpu host,-arch-capabilities`).
    #[arg(long, value_enum, default_value_t = Accel::Tcg)]
    pub accel: Accel,
    /// Spec file handed to the appliance [default: examples/echo.toml]; as
    /// root, each interface gets a tap in namespace wc-run.
    #[arg(long, value_name = "FILE", value_parser = existing_file)]
    pub spec: Option<PathBuf>,
    /// Extra kernel command line.
    #[arg(
        long,
        value_name = "ARGS",
        default_value = "",
        allow_hyphen_values = true
    )]
    pub append: String,
    /// The NIC model for every spec interface [default: the spec's driver]:
    /// `igb` boots virtio interfaces on QEMU's 82576 (`nic=igb` tells the
    /// kernel).
    #[arg(long, value_enum, value_name = "MODEL")]
    pub nic: Option<NicModel>,
}

impl RunArguments {
    /// The QEMU configuration these options ask for.
    pub fn qemu_config(&self) -> QemuConfig {
        QemuConfig {
            smp: self.smp,
            mem_mib: self.mem_mib,
            machine: self.machine,
            accel: self.accel,
            spec: Some(
                self.spec
                    .clone()
                    .unwrap_or_else(|| workspace_root().join("examples/echo.toml")),
            ),
            cmdline: match self.nic {
                Some(NicModel::Igb) => format!("{} nic=igb", self.append),
                _ => self.append.clone(),
            },
            extra_args: Vec::new(),
            // `--append test=NAME` runs a scenario: only the test image has them.
            image: if self
                .append
                .split_whitespace()
                .any(|word| word.starts_with("test="))
            {
                Image::Scenarios
            } else {
                Image::Appliance
            },
            qemu: None,
        }
    }
}

/// `cargo xtask test`'s options.
#[derive(Debug, Args)]
pub struct TestArguments {
    /// Run only the steps and cases whose name contains PATTERN, or matches
    /// it as a glob (`*`, `?`) when it has one; repeatable. Names are
    /// `fmt`, `clippy`, `host`, `clippy-kernel`, `miri` and `<suite>/<case>`
    /// for the suites `hosted`, `kernel` and `appliance` (see --list).
    #[arg(long, value_name = "PATTERN")]
    pub only: Vec<String>,
    /// Print the names of every step and case (those --only selects, with
    /// --only) and exit.
    #[arg(long)]
    pub list: bool,
}

/// `cargo xtask bench`'s options.
#[derive(Debug, Args)]
pub struct BenchArguments {
    /// One repetition of short runs (perf/scenarios/quick.toml), short criterion runs.
    #[arg(long)]
    pub quick: bool,
    /// Scenario file [default: perf/scenarios/full.toml, or quick.toml with --quick].
    #[arg(long, value_name = "FILE", value_parser = existing_file)]
    pub scenarios: Option<PathBuf>,
    /// Only these systems: warpcore-qemu, warpcore-qemu-poll, warpcore-qemu-haltpoll,
    /// linux-guest, qemu-ceiling,
    /// warpcore-hosted, linux-host, and on a veth warpcore-af-xdp[-poll],
    /// warpcore-af-packet[-poll], testpmd-af-xdp, testpmd-af-packet, and on
    /// vhost-user testpmd-vhost-ceiling.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = system)]
    pub systems: Option<Vec<System>>,
    /// Only these QEMU backends of the scenarios that name them: tap,
    /// vhost-user.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = backend)]
    pub backends: Option<Vec<Backend>>,
    /// Only the scenarios of these names (like `http-keepalive,kv-get`).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub only: Option<Vec<String>>,
    /// Every scenario's repetitions instead of its file's (1 to 20): a
    /// shorter run of a long file, named in the report's command.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=20))]
    pub repetitions: Option<u32>,
    /// Skip the criterion microbenchmarks and callgrind counts.
    #[arg(long)]
    pub no_micro: bool,
    /// Skip the systems under test and the in-guest synthetic runs (no root needed).
    #[arg(long)]
    pub no_systems: bool,
    /// Skip the in-guest synthetic runs.
    #[arg(long)]
    pub no_synthetic: bool,
    /// Only the in-guest synthetic runs (no criterion, callgrind or systems
    /// under test; no root needed): writes the report, leaves RESULTS.md.
    #[arg(long, conflicts_with_all = ["no_synthetic", "no_systems"])]
    pub synthetic_only: bool,
    /// Rounds of the in-guest synthetic runs (1 to 20) [default: 5]: every
    /// round runs each case once; the report gives each generator's 2-core
    /// scaling as the median and the minimum over the rounds.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=20))]
    pub synthetic_runs: Option<u32>,
    /// Only these synthetic generator modes: core, local [default: both].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = ["core", "local"])]
    pub synthetic_generators: Option<Vec<String>>,
}

/// What `__udp-client` checks. Every loop is bounded in count and time.
#[derive(Debug, Subcommand)]
pub enum UdpClientMode {
    /// FLOWS sockets each send COUNT datagrams and expect each back
    /// byte-identical; prints `udp-echo sent=N received=N identical=N seconds=S`.
    Echo {
        /// The echo server, `ADDRESS:PORT`.
        target: SocketAddr,
        /// Sockets with distinct source ports (1 to 64).
        flows: usize,
        /// Datagrams per socket (1 to 100000).
        count: usize,
        /// Every payload this many bytes (1 to 65507; IP fragments past
        /// 1472) instead of varied sizes up to 1400.
        #[arg(long)]
        size: Option<usize>,
        /// Flow `f` sends from this port + `f` instead of a port the
        /// kernel picks (the RSS test predicts each flow's queue).
        #[arg(long)]
        source_port: Option<u16>,
    },
    /// Sends to a closed port and expects ICMP port unreachable; prints
    /// `udp-closed refused=true|false`.
    Closed {
        /// The closed port, `ADDRESS:PORT`.
        target: SocketAddr,
    },
    /// Times one echo, then COUNT more right after it, one at a time;
    /// prints `udp-rtt first_ns=N then_ns=N` (the median of the rest), or
    /// fails when a reply does not come within a second.
    Rtt {
        /// The echo server, `ADDRESS:PORT`.
        target: SocketAddr,
        /// Echoes after the first (1 to 1000).
        count: usize,
    },
    /// Sends COUNT datagrams of PAYLOAD, one at a time, each waiting up
    /// to a second for its echo; prints `udp-send sent=N received=N`
    /// (the supervision test's marked datagrams).
    Send {
        /// The server, `ADDRESS:PORT`.
        target: SocketAddr,
        /// The payload, as text.
        payload: String,
        /// Datagrams (1 to 1000).
        count: usize,
    },
}

/// What `__tcp-client` checks. Every loop is bounded in count and time:
/// each mode gives up after its `--timeout` seconds (default 30).
#[derive(Debug, Subcommand)]
pub enum TcpClientMode {
    /// CONNECTIONS sockets, all open at once, each send LINES lines one at
    /// a time and expect each back, then half-close and expect EOF; prints
    /// `tcp-echo connections=N connected=N lines=N identical=N eof=N`.
    Echo {
        /// The echo server, `ADDRESS:PORT`.
        target: SocketAddr,
        /// Connections held open at once (1 to 10000).
        connections: usize,
        /// Lines per connection (1 to 100000).
        lines: usize,
        /// Seconds the whole run may take.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Streams BYTES of a deterministic pattern to an echo server while
    /// reading the echo, half-closes after the last byte and expects the
    /// whole pattern back then EOF; prints `tcp-bulk sent=N received=N
    /// identical=BOOL eof=BOOL seconds=S`.
    Bulk {
        /// The echo server, `ADDRESS:PORT`.
        target: SocketAddr,
        /// Bytes to send (at most 1 GiB).
        bytes: u64,
        /// Send everything and half-close before reading anything (BYTES
        /// must fit in the buffers on the way).
        #[arg(long)]
        read_after_close: bool,
        /// Seconds the whole run may take.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Streams to an echo server without reading most of the echo, then
    /// closes with SO_LINGER 0 so the kernel sends RST with data in flight
    /// both ways; prints `tcp-reset sent=N read=N`.
    Reset {
        /// The echo server, `ADDRESS:PORT`.
        target: SocketAddr,
        /// Seconds the whole run may take.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Speaks the memcached text protocol to a key-value store: set, get,
    /// gets, cas (matching and stale), incr, decr, append, delete, each
    /// reply checked; prints `tcp-kv checks=N passed=N`.
    Kv {
        /// The store, `ADDRESS:PORT`.
        target: SocketAddr,
        /// Seconds the whole run may take.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Connects to a closed port and expects RST (ECONNREFUSED); prints
    /// `tcp-refused refused=true|false`.
    Refused {
        /// The closed port, `ADDRESS:PORT`.
        target: SocketAddr,
    },
    /// Connects, sends TEXT and a newline, and reads the reply line (or
    /// what ends the connection first); prints `tcp-say connect=ok|refused
    /// reply=<the line, spaces as _>|none end=line|eof|reset|timeout`.
    Say {
        /// The server, `ADDRESS:PORT`.
        target: SocketAddr,
        /// What to send (a newline follows).
        text: String,
        /// Seconds the whole exchange may take.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    /// Sends REQUEST's bytes on one connection, reads the response until
    /// the server closes; prints `http status=NNN|none closed=BOOL`.
    Http {
        /// The HTTP server, `ADDRESS:PORT`.
        target: SocketAddr,
        /// The bytes to send, with `\r`, `\n`, `\\` and `\xNN` escapes.
        request: String,
        /// Seconds the whole run may take.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// CONNECTIONS sockets, all open at once, each send `GET PATH` with
    /// `Connection: close` and read the response to EOF; prints
    /// `http-many connections=N connected=N ok=N open_seconds=S seconds=S`
    /// (ok: 200; open_seconds: until the last connection was open, the
    /// first one's idle wait).
    HttpMany {
        /// The HTTP server, `ADDRESS:PORT`.
        target: SocketAddr,
        /// Connections held open at once (1 to 10000).
        connections: usize,
        /// The path to get.
        path: String,
        /// Seconds the whole run may take.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// CONNECTIONS sockets each send half a request head and then nothing;
    /// a whole `GET PATH` on a fresh connection while they hang and
    /// another once all are closed by the server; prints `slowloris
    /// connections=N connected=N closed=N open_ms=N min_close_ms=N
    /// max_close_ms=N during=NNN after=NNN` (open: until every half head
    /// was sent; the close times count from then, each seen when read).
    Slowloris {
        /// The HTTP server, `ADDRESS:PORT`.
        target: SocketAddr,
        /// Connections that hang (1 to 10000).
        connections: usize,
        /// The path of the whole requests.
        path: String,
        /// Seconds the whole run may take.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
}

/// A path that names an existing file.
fn existing_file(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("file `{text}` not found"))
    }
}

/// A system under test by its name in reports and scenario files.
fn system(text: &str) -> Result<System, String> {
    serde_json::from_value(serde_json::Value::String(text.trim().into())).map_err(|_| {
        format!(
            "unknown system `{text}` (expected warpcore-qemu, warpcore-qemu-poll, \
             warpcore-qemu-haltpoll, linux-guest, \
             qemu-ceiling, warpcore-hosted, linux-host, warpcore-af-xdp, warpcore-af-xdp-poll, \
             warpcore-af-packet, warpcore-af-packet-poll, warpcore-af-packet-ring, testpmd-af-xdp, \
             testpmd-af-packet or \
             testpmd-vhost-ceiling)"
        )
    })
}

fn backend(text: &str) -> Result<Backend, String> {
    serde_json::from_value(serde_json::Value::String(text.trim().into()))
        .map_err(|_| format!("unknown backend `{text}` (expected tap or vhost-user)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &str) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("cargo xtask").chain(args.split_whitespace()))
            .map(|cli| cli.command)
    }

    fn run_options(args: &str) -> Result<QemuConfig, clap::Error> {
        match parse(&format!("run {args}"))? {
            Command::Run(arguments) => Ok(arguments.qemu_config()),
            other => panic!("`run {args}` parsed as {other:?}"),
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_options_parse_and_reject_nonsense() {
        let config = run_options("--smp 4 --machine microvm --accel kvm").unwrap();
        assert_eq!(
            (config.smp, config.machine, config.accel),
            (4, Machine::Microvm, Accel::Kvm)
        );
        let defaults = run_options("").unwrap();
        assert_eq!((defaults.smp, defaults.mem_mib), (2, 512));
        assert!(defaults.spec.unwrap().ends_with("examples/echo.toml"));
        let appended = run_options("--mem 1024 --append -v").unwrap();
        assert_eq!((appended.mem_mib, appended.cmdline.as_str()), (1024, "-v"));
        let igb = run_options("--nic igb --append -v").unwrap();
        assert_eq!(igb.cmdline, "-v nic=igb");
        assert_eq!(run_options("--nic virtio").unwrap().cmdline, "");
        for bad in [
            "--smp",
            "--smp 0",
            "--smp 65",
            "--smp many",
            "--mem 1",
            "--machine vax",
            "--accel hax",
            "--nic e1000",
            "--spec /nonexistent.toml",
            "--frobnicate",
        ] {
            assert!(run_options(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn bench_options_parse_and_refuse_unknown_systems() {
        let Command::Bench(options) =
            parse("bench --quick --systems linux-guest,warpcore-qemu --no-micro").unwrap()
        else {
            panic!("not bench");
        };
        assert!(options.quick && options.no_micro && !options.no_systems);
        assert_eq!(
            options.systems.unwrap(),
            [System::LinuxGuest, System::WarpcoreQemu]
        );
        assert!(parse("bench --systems bsd").is_err());
        assert!(parse("bench --scenarios /nonexistent.toml").is_err());
        assert!(parse("bench --fast").is_err());
        let Command::Bench(options) =
            parse("bench --synthetic-only --synthetic-runs 7 --synthetic-generators local")
                .unwrap()
        else {
            panic!("expected bench");
        };
        assert!(options.synthetic_only);
        assert_eq!(options.synthetic_runs, Some(7));
        assert_eq!(
            options.synthetic_generators.as_deref(),
            Some(&["local".to_owned()][..])
        );
        assert!(parse("bench --synthetic-runs 0").is_err());
        assert!(parse("bench --synthetic-generators remote").is_err());
        assert!(parse("bench --synthetic-only --no-synthetic").is_err());
    }

    #[test]
    fn commands_and_internal_helpers_parse() {
        assert!(matches!(parse("build").unwrap(), Command::Build));
        assert!(parse("build extra").is_err());
        assert!(parse("").is_err(), "no command");
        assert!(parse("frobnicate").is_err());
        let Command::Test(test) = parse("test --only appliance/router --only fmt --list").unwrap()
        else {
            panic!("not test");
        };
        assert_eq!(test.only, ["appliance/router", "fmt"]);
        assert!(test.list);
        assert!(parse("test extra").is_err());
        assert!(matches!(
            parse("__udp-client echo 10.0.0.2:7 16 4").unwrap(),
            Command::UdpClient {
                mode: UdpClientMode::Echo {
                    flows: 16,
                    count: 4,
                    ..
                }
            }
        ));
        assert!(parse("__udp-client closed 10.0.0.2").is_err(), "no port");
        assert!(parse("__udp-client echo 10.0.0.2:7 many 4").is_err());
        assert!(matches!(
            parse("__send-frames eth0 /tmp/frames").unwrap(),
            Command::SendFrames { .. }
        ));
        assert!(parse("__send-frames eth0").is_err());
        assert!(matches!(
            parse("__reorder-relay veth0 tap0 --hold-one-in 20").unwrap(),
            Command::ReorderRelay {
                hold_one_in: 20,
                seconds: 300,
                ..
            }
        ));
        assert!(parse("__reorder-relay veth0 tap0 --hold-one-in 0").is_err());
    }
}
