//! Command-line options of `warpcore-hosted` (clap), parsed into
//! [`Options`] or a usage error that names the offending argument.

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
}

impl HostedDriver {
    /// The name as written on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tap => "tap",
            Self::AfPacket => "af-packet",
        }
    }
}

/// `--nic NAME=DRIVER:IFNAME`: spec interface `NAME` runs on `DRIVER` over
/// Linux interface `IFNAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicOverride {
    /// The interface's name in the spec.
    pub interface: String,
    /// The hosted driver.
    pub driver: HostedDriver,
    /// The Linux interface.
    pub ifname: String,
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "warpcore-hosted",
    about = "Runs a warpcore spec as a Linux process: one pinned worker thread per core over tap and AF_PACKET NICs.",
    after_help = "On exit, and on SIGUSR1, the counters dump goes to stdout: one
`counter core=C ...key=value... value=N` line per counter, between
`counters begin cores=N` and `counters end`."
)]
pub struct Options {
    /// Spec (TOML) describing interfaces, routes, services.
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// Run spec interface NAME on a hosted NIC instead of its spec driver;
    /// DRIVER is tap or af-packet, IFNAME the Linux interface (a missing tap
    /// is created). Repeatable.
    #[arg(long = "nic", value_name = "NAME=DRIVER:IFNAME", value_parser = parse_nic)]
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

/// Parses `NAME=DRIVER:IFNAME`.
fn parse_nic(text: &str) -> Result<NicOverride, String> {
    let shape = || format!("--nic takes NAME=DRIVER:IFNAME (like eth0=tap:wctap0), got `{text}`");
    let (interface, rest) = text.split_once('=').ok_or_else(shape)?;
    let (driver, ifname) = rest.split_once(':').ok_or_else(shape)?;
    if interface.is_empty() {
        return Err(shape());
    }
    let driver = match driver {
        "tap" => HostedDriver::Tap,
        "af-packet" | "af_packet" => HostedDriver::AfPacket,
        other => {
            return Err(format!(
                "--nic `{text}`: driver `{other}` is not a hosted driver (tap or af-packet)"
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
                ifname: "veth1".into()
            }
        );
        assert_eq!(options.counters_file, Some(PathBuf::from("/tmp/c")));
        let defaults = parse_args(&["--spec", "s"]).unwrap();
        assert_eq!((defaults.cores, defaults.duration), (1, None));
        assert!(defaults.nics.is_empty() && defaults.counters_file.is_none());
    }

    #[test]
    fn help_lists_every_option() {
        let help = parse_args(&["--help"]).unwrap_err();
        for option in [
            "--spec <FILE>",
            "--nic <NAME=DRIVER:IFNAME>",
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
