//! The `warpctl` command line, parsed by clap: global connection flags
//! and one subcommand per management API call.

use crate::http::Endpoint;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Operate a warpcore appliance through its management API.
#[derive(Debug, Parser)]
#[command(name = "warpctl", version, arg_required_else_help = true)]
pub struct Cli {
    /// How to reach the appliance.
    #[command(flatten)]
    pub connection: Connection,
    /// Output format: `table` for people, `json` for the server's JSON as is.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The flags every command shares to reach the appliance.
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection")]
pub struct Connection {
    /// The management API's address, `http://HOST[:PORT]`.
    #[arg(long, env = "WARPCTL_SERVER", value_name = "URL",
          default_value = "http://10.0.0.2:8080", value_parser = Endpoint::parse, global = true)]
    pub server: Endpoint,
    /// The bearer token (prefer the environment: flags show in `ps`).
    #[arg(
        long,
        env = "WARPCTL_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// Seconds each request may take, connecting included.
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub timeout: u64,
}

/// `-o`'s formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable tables and lines.
    Table,
    /// The server's JSON, unchanged.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generations, conditions and every core's load and services.
    Status,
    /// Print a resource of the appliance.
    Get {
        /// Which one.
        #[command(subcommand)]
        resource: Resource,
    },
    /// Send a spec to the appliance: it plans the change and applies it.
    Apply(ApplyArguments),
    /// Search the appliance's log ring, newest records last; `-f` then
    /// follows it until Ctrl-C.
    Logs(LogsArguments),
    /// Capture an interface's frames as pcap, received and sent, on every
    /// core (`-w - | tshark -r -` reads them as they come); a summary on
    /// stderr.
    Capture(CaptureArguments),
    /// Hot-load, unload and list sandboxed WebAssembly services
    /// (`/api/v1/modules`): each module becomes a `wasm` service of the
    /// running spec, applied on every core without a restart.
    Module {
        /// What to do.
        #[command(subcommand)]
        action: ModuleAction,
    },
    /// The Prometheus scrape of `/metrics` (needs no token).
    Metrics {
        /// Print only the lines that contain TEXT.
        #[arg(long, value_name = "TEXT")]
        grep: Option<String>,
    },
}

/// What `get` prints.
#[derive(Debug, Subcommand)]
pub enum Resource {
    /// The running spec's TOML on stdout; its generation and ETag on
    /// stderr (with `-o json`, one JSON object holding all three).
    Spec,
}

/// `warpctl module`'s actions.
#[derive(Debug, Subcommand)]
pub enum ModuleAction {
    /// Upload a module (a `.wasm` file of the packet ABI, wasm/ABI.md): it
    /// is checked on the appliance (a refused one changes nothing) and
    /// runs as service NAME; pushing NAME again replaces it.
    Push(PushArguments),
    /// Unload module NAME (a new generation without its service).
    Rm {
        /// The module's name.
        name: String,
        /// Wait until every core has let go of it.
        #[arg(long)]
        wait: bool,
        /// With `--wait`: give up after SECS.
        #[arg(
            long = "wait-timeout",
            value_name = "SECS",
            default_value_t = 60,
            requires = "wait"
        )]
        wait_timeout: u64,
    },
    /// List the hot-loaded modules: size, hash, attach point, state per
    /// core.
    Ls,
}

/// `warpctl module push`'s options: the keys of the `wasm` service kind
/// (wasm/host/README.md, "The spec").
#[derive(Debug, Args)]
pub struct PushArguments {
    /// The module, a `.wasm` file; `-` reads stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The service's name: [a-z0-9-], 1 to 32 characters.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// The hook point (`ipv4:forward`, `ipv4:proto:17`, `udp:9`, `port:rx`...).
    #[arg(long, value_name = "HOOK")]
    pub attach: String,
    /// The bytes handed to the module's `warpcore_init`.
    #[arg(long, value_name = "TEXT")]
    pub config: Option<String>,
    /// The cores to run it on (`0,1`); every core without.
    #[arg(long, value_name = "LIST")]
    pub cores: Option<String>,
    /// Other keys of the wasm kind, as KEY=VALUE (`fuel=100000`,
    /// `on_fault=pass`, `window=256`, `outputs=if1`...); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// Wait until every core runs it (`observedGeneration`); fail if the
    /// change was rolled back.
    #[arg(long)]
    pub wait: bool,
    /// With `--wait`: give up after SECS.
    #[arg(
        long = "wait-timeout",
        value_name = "SECS",
        default_value_t = 60,
        requires = "wait"
    )]
    pub wait_timeout: u64,
}

/// `warpctl capture`'s options. The appliance bounds every capture: 1000
/// frames and 30 s unless asked otherwise.
#[derive(Debug, Args)]
pub struct CaptureArguments {
    /// The interface, as the spec names it.
    #[arg(short = 'i', long = "interface", value_name = "NAME")]
    pub interface: String,
    /// Stop after N frames (1 to 1000000).
    #[arg(short = 'c', long = "count", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub count: Option<u64>,
    /// Stop after S seconds (1 to 3600).
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub seconds: Option<u32>,
    /// Keep the first BYTES of each frame (1 to 1514; 256 unless asked).
    #[arg(short = 's', long, value_name = "BYTES",
          value_parser = clap::value_parser!(u16).range(1..=1514))]
    pub snaplen: Option<u16>,
    /// Write the pcap to FILE; `-` is stdout (not a terminal).
    #[arg(short = 'w', long = "write", value_name = "FILE", default_value = "-")]
    pub file: PathBuf,
}

/// `warpctl logs`'s options.
#[derive(Debug, Args)]
pub struct LogsArguments {
    /// Only records whose message or target contains TEXT.
    #[arg(short = 'q', long = "query", value_name = "TEXT")]
    pub text: Option<String>,
    /// Only records at least this severe.
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub level: Option<Level>,
    /// At most the N newest records (the appliance answers 100 without).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Then print records as they are logged (the server-sent events of
    /// `/api/v1/logs/stream`), until Ctrl-C.
    #[arg(short = 'f', long)]
    pub follow: bool,
}

/// A log level, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Level {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Information and above.
    Info,
    /// Debugging and above.
    Debug,
    /// Everything.
    Trace,
}

impl Level {
    /// The name the API takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

/// `warpctl apply`'s options.
#[derive(Debug, Args)]
pub struct ApplyArguments {
    /// The spec file (TOML); `-` reads stdin.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// Only validate and plan: change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply only if the running spec still has this ETag (from `get spec`).
    #[arg(long, value_name = "ETAG")]
    pub if_match: Option<String>,
    /// Wait until the controller has finished with the new generation
    /// (`observedGeneration` in the status); fail if it was rolled back.
    #[arg(long, conflicts_with = "dry_run")]
    pub wait: bool,
    /// With `--wait`: give up after SECS.
    #[arg(long, value_name = "SECS", default_value_t = 60, requires = "wait")]
    pub timeout: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("warpctl").chain(args.split_whitespace()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_before_or_after_the_command() {
        let cli = parse("--server http://192.0.2.1:9000 status -o json --timeout 3").unwrap();
        assert_eq!(cli.connection.server.authority, "192.0.2.1:9000");
        assert_eq!((cli.output, cli.connection.timeout), (Output::Json, 3));
        assert!(matches!(cli.command, Command::Status));
        let cli = parse("apply -f spec.toml --dry-run --if-match \"abc\" --token t").unwrap();
        let Command::Apply(apply) = cli.command else {
            panic!("not apply");
        };
        assert!(apply.dry_run);
        assert_eq!(apply.file, PathBuf::from("spec.toml"));
        assert_eq!(cli.connection.token.as_deref(), Some("t"));
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in [
            "",
            "apply",
            "apply --dry-run",
            "get",
            "get logs",
            "logs --level loud",
            "logs --limit 0",
            "logs --limit 1001",
            "logs -q",
            "status -o yaml",
            "status --timeout 0",
            "status --server https://10.0.0.2",
            "status --server http://10.0.0.2:http",
            "metrics extra",
            "capture",
            "capture -i eth0 -c 0",
            "capture -i eth0 -c 1000001",
            "capture -i eth0 --seconds -1",
            "capture -i eth0 --seconds 0",
            "capture -i eth0 --seconds abc",
            "capture -i eth0 -s 1515",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(matches!(
            parse("metrics --grep udp").unwrap().command,
            Command::Metrics { grep: Some(_) }
        ));
        let Command::Capture(capture) =
            parse("capture -i eth0 -c 100 -w out.pcap").unwrap().command
        else {
            panic!("not capture");
        };
        assert_eq!(
            (capture.interface.as_str(), capture.count, capture.seconds),
            ("eth0", Some(100), None)
        );
        assert_eq!(capture.file, PathBuf::from("out.pcap"));
        let Command::Capture(capture) = parse("capture -i eth1 --seconds 5 -s 1514")
            .unwrap()
            .command
        else {
            panic!("not capture");
        };
        assert_eq!(capture.file, PathBuf::from("-"));
        assert_eq!((capture.seconds, capture.snaplen), (Some(5), Some(1514)));
        let Command::Logs(logs) = parse("logs -q up --level warn --limit 5 -f")
            .unwrap()
            .command
        else {
            panic!("not logs");
        };
        assert_eq!(
            (logs.text.as_deref(), logs.level, logs.limit, logs.follow),
            (Some("up"), Some(Level::Warn), Some(5), true)
        );
        assert!(matches!(
            parse("get spec").unwrap().command,
            Command::Get {
                resource: Resource::Spec
            }
        ));
    }

    #[test]
    fn servers_parse_with_defaults() {
        let parsed = |text| Endpoint::parse(text).unwrap();
        assert_eq!(parsed("http://10.0.0.2").authority, "10.0.0.2:80");
        assert_eq!(parsed("10.0.0.2:8080").authority, "10.0.0.2:8080");
        assert_eq!(parsed("http://[::1]").authority, "[::1]:80");
        let prefixed = parsed("http://[::1]:8080/appliance/");
        assert_eq!(
            (prefixed.authority.as_str(), prefixed.base_path.as_str()),
            ("[::1]:8080", "/appliance")
        );
        assert!(Endpoint::parse("http://").is_err());
        assert!(Endpoint::parse("http://user@host").is_err());
    }
}
