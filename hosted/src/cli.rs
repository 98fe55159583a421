//! Command-line options of `warpcore-hosted` (clap), parsed into
//! [`Options`] or a usage error that names the offending argument.

use af_packet_nic::TxPath;
use clap::Parser;
use clap::error::ErrorKind;
use std::path::PathBuf;
use std::time::Duration;

/// Which hosted driver runs an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostedDriver {
    /// A tap device.
    Tap,
    /// An AF_PACKET socket on an existing interface.
    AfPacket,
    /// An AF_XDP socket per core on consecutive queues of an existing
    /// interface.
    AfXdp,
}

impl HostedDriver {
    /// The name as written on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tap => "tap",
            Self::AfPacket => "af-packet",
            Self::AfXdp => "af-xdp",
        }
    }
}

/// `--nic NAME=DRIVER:IFNAME[:QUEUE]`: spec interface `NAME` runs on
/// `DRIVER` over Linux interface `IFNAME` (af-xdp: from queue `QUEUE` on,
/// one per core).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicOverride {
    /// The interface's name in the spec.
    pub interface: String,
    /// The hosted driver.
    pub driver: HostedDriver,
    /// The Linux interface.
    pub ifname: String,
    /// The first queue of the interface (af-xdp only; 0 when not given).
    pub queue: u32,
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "warpcore-hosted",
    about = "Runs a warpcore spec as a Linux process: one pinned worker thread per core over tap, AF_PACKET and AF_XDP NICs.",
    after_help = "On exit, and on SIGUSR1, the counters dump goes to stdout: one
`counter core=C ...key=value... value=N` line per counter, between
`counters begin cores=N` and `counters end`."
)]
pub struct Options {
    /// Spec (TOML) describing interfaces, routes, services.
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// Run spec interface NAME on a hosted NIC instead of its spec driver;
    /// DRIVER is tap, af-packet or af-xdp, IFNAME the Linux interface (a
    /// missing tap is created); af-xdp takes `:QUEUE`, the queue of core 0
    /// (core N binds QUEUE+N; default 0). Repeatable.
    #[arg(long = "nic", value_name = "NAME=DRIVER:IFNAME[:QUEUE]", value_parser = parse_nic)]
    pub nics: Vec<NicOverride>,
    /// Pinned worker threads, each with a queue on every interface.
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse_cores)]
    pub cores: usize,
    /// Stop after N seconds (default: run until SIGINT or SIGTERM).
    #[arg(
        long = "duration-secs",
        value_name = "N",
        value_parser = parse_duration,
        allow_negative_numbers = true
    )]
    pub duration: Option<Duration>,
    /// Rewrite PATH with the counters dump every 100 ms.
    #[arg(long, value_name = "PATH")]
    pub counters_file: Option<PathBuf>,
    /// How af-packet queues transmit: `ring` (the mapped TX ring and a
    /// coalesced `send` doorbell), `sendmmsg` (one call per burst on a
    /// send-only socket), or `auto`: sendmmsg on veth and tun devices,
    /// which copy each frame out of the ring's pages anyway, the ring
    /// elsewhere.
    #[arg(
        long = "af-packet-tx",
        value_name = "PATH",
        default_value = "auto",
        value_parser = parse_af_packet_tx
    )]
    pub af_packet_tx: TxPath,
}

/// Parses `--af-packet-tx`.
fn parse_af_packet_tx(text: &str) -> Result<TxPath, String> {
    match text {
        "auto" => Ok(TxPath::Auto),
        "ring" => Ok(TxPath::Ring),
        "sendmmsg" => Ok(TxPath::Sendmmsg),
        other => Err(format!(
            "`{other}` is not an af-packet transmit path (auto, ring or sendmmsg)"
        )),
    }
}

/// Most worker threads accepted.
const MAX_CORES: usize = 64;

/// Parses the command line (`args` starts with the program name). Help and
/// version requests come back as errors too: `clap::Error::exit` prints
/// them and exits 0, and usage errors with status 2.
pub fn parse<I, T>(args: I) -> Result<Options, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let options = Options::try_parse_from(args)?;
    for (position, nic) in options.nics.iter().enumerate() {
        if options.nics[..position]
            .iter()
            .any(|earlier| earlier.interface == nic.interface)
        {
            return Err(clap::Error::raw(
                ErrorKind::ValueValidation,
                format!("--nic: interface `{}` is mapped twice\n", nic.interface),
            )
            .with_cmd(&<Options as clap::CommandFactory>::command()));
        }
    }
    Ok(options)
}

/// Parses `--cores`.
fn parse_cores(text: &str) -> Result<usize, String> {
    text.parse()
        .ok()
        .filter(|n| (1..=MAX_CORES).contains(n))
        .ok_or_else(|| format!("--cores takes a number from 1 to {MAX_CORES}, got `{text}`"))
}

/// Parses `--duration-secs`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let seconds: u64 = text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
        format!("--duration-secs takes a positive number of seconds, got `{text}`")
    })?;
    Ok(Duration::from_secs(seconds))
}

/// Parses `NAME=DRIVER:IFNAME[:QUEUE]`.
pub(crate) fn parse_nic(text: &str) -> Result<NicOverride, String> {
    let shape =
        || format!("--nic takes NAME=DRIVER:IFNAME[:QUEUE] (like eth0=tap:wctap0), got `{text}`");
    let (interface, rest) = text.split_once('=').ok_or_else(shape)?;
    let (driver, target) = rest.split_once(':').ok_or_else(shape)?;
    let (ifname, queue) = match target.split_once(':') {
        Some((ifname, queue)) if driver == "af-xdp" || driver == "af_xdp" => {
            let queue = queue.parse::<u32>().map_err(|_| {
                format!("--nic `{text}`: queue `{queue}` is not a number from 0 to 4294967295")
            })?;
            (ifname, queue)
        }
        Some(_) => {
            return Err(format!(
                "--nic `{text}`: only af-xdp takes a queue (`:QUEUE` after the interface)"
            ));
        }
        None => (target, 0),
    };
    if interface.is_empty() {
        return Err(shape());
    }
    let driver = match driver {
        "tap" => HostedDriver::Tap,
        "af-packet" | "af_packet" => HostedDriver::AfPacket,
        "af-xdp" | "af_xdp" => HostedDriver::AfXdp,
        other => {
            return Err(format!(
                "--nic `{text}`: driver `{other}` is not a hosted driver (tap, af-packet or af-xdp)"
            ));
        }
    };
    if ifname.is_empty() || ifname.len() > 15 || ifname.contains(['/', ' ', '\0']) {
        return Err(format!(
            "--nic `{text}`: Linux interface name `{ifname}` must be 1 to 15 bytes without / or spaces"
        ));
    }
    Ok(NicOverride {
        interface: interface.to_owned(),
        driver,
        ifname: ifname.to_owned(),
        queue,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Options, String> {
        parse(std::iter::once("warpcore-hosted").chain(args.iter().copied()))
            .map_err(|error| error.to_string())
    }

    #[test]
    fn full_command_line_parses() {
        let options = parse_args(&[
            "--spec",
            "examples/echo.toml",
            "--nic",
            "eth0=tap:wctap0",
            "--nic",
            "eth1=af-packet:veth1",
            "--cores",
            "2",
            "--duration-secs",
            "5",
            "--counters-file",
            "/tmp/c",
        ])
        .unwrap();
        assert_eq!(options.cores, 2);
        assert_eq!(options.duration, Some(Duration::from_secs(5)));
        assert_eq!(
            options.nics[1],
            NicOverride {
                interface: "eth1".into(),
                driver: HostedDriver::AfPacket,
                ifname: "veth1".into(),
                queue: 0,
            }
        );
        assert_eq!(options.counters_file, Some(PathBuf::from("/tmp/c")));
        let defaults = parse_args(&["--spec", "s"]).unwrap();
        assert_eq!((defaults.cores, defaults.duration), (1, None));
        assert!(defaults.nics.is_empty() && defaults.counters_file.is_none());
    }

    #[test]
    fn af_packet_transmit_path_is_auto_unless_named() {
        assert_eq!(
            parse_args(&["--spec", "s"]).unwrap().af_packet_tx,
            TxPath::Auto
        );
        for (name, path) in [
            ("auto", TxPath::Auto),
            ("ring", TxPath::Ring),
            ("sendmmsg", TxPath::Sendmmsg),
        ] {
            let options = parse_args(&["--spec", "s", "--af-packet-tx", name]).unwrap();
            assert_eq!(options.af_packet_tx, path);
        }
        let error = parse_args(&["--spec", "s", "--af-packet-tx", "mmap"]).unwrap_err();
        assert!(
            error.contains("`mmap` is not an af-packet transmit path (auto, ring or sendmmsg)"),
            "{error}"
        );
    }

    #[test]
    fn af_xdp_takes_a_first_queue() {
        let options = parse_args(&[
            "--spec",
            "s",
            "--nic",
            "eth0=af-xdp:veth0:3",
            "--nic",
            "eth1=af-xdp:veth1",
        ])
        .unwrap();
        assert_eq!(
            (options.nics[0].driver, options.nics[0].queue),
            (HostedDriver::AfXdp, 3)
        );
        assert_eq!(options.nics[0].ifname, "veth0");
        assert_eq!(
            (options.nics[1].ifname.as_str(), options.nics[1].queue),
            ("veth1", 0)
        );
    }

    #[test]
    fn help_lists_every_option() {
        let help = parse_args(&["--help"]).unwrap_err();
        for option in [
            "--spec <FILE>",
            "--nic <NAME=DRIVER:IFNAME[:QUEUE]>",
            "--cores <N>",
            "--duration-secs <N>",
            "--counters-file <PATH>",
            "counters end",
        ] {
            assert!(help.contains(option), "help lacks {option}:\n{help}");
        }
    }

    #[test]
    fn nonsense_is_refused_naming_the_argument() {
        for (args, names) in [
            (&["--nic", "eth0=tap:x"][..], "--spec"),
            (&["--spec", "s", "--cores", "0"], "--cores"),
            (&["--spec", "s", "--cores", "lots"], "--cores"),
            (&["--spec", "s", "--duration-secs", "-1"], "--duration-secs"),
            (&["--spec", "s", "--nic", "eth0"], "--nic"),
            (&["--spec", "s", "--nic", "eth0=virtio:x"], "virtio"),
            (&["--spec", "s", "--nic", "eth0=tap:"], "interface name"),
            (&["--spec", "s", "--nic", "eth0=af-xdp:v:x"], "queue `x`"),
            (&["--spec", "s", "--nic", "eth0=tap:v:1"], "only af-xdp"),
            (
                &["--spec", "s", "--nic", "eth0=af-xdp::1"],
                "interface name",
            ),
            (
                &["--spec", "s", "--nic", "eth0=tap:a", "--nic", "eth0=tap:b"],
                "mapped twice",
            ),
            (&["--spec"], "a value is required for '--spec <FILE>'"),
            (&["--frobnicate"], "--frobnicate"),
        ] {
            let error = parse_args(args).unwrap_err();
            assert!(error.contains(names), "{args:?}: `{error}` lacks `{names}`");
        }
    }
}
