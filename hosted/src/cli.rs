//! Command-line options of `warpcore-hosted`, parsed into [`Options`] or a
//! usage error that names the offending argument.

use std::path::PathBuf;
use std::time::Duration;

/// Usage text printed with every usage error.
pub const USAGE: &str = "\
usage: warpcore-hosted --spec FILE [--nic NAME=DRIVER:IFNAME]... [options]

  --spec FILE               spec (TOML) describing interfaces, routes, services
  --nic NAME=DRIVER:IFNAME  run spec interface NAME on a hosted NIC instead of
                            its spec driver; DRIVER is tap or af-packet, IFNAME
                            the Linux interface (a missing tap is created)
  --cores N                 pinned worker threads, each with a queue on every
                            interface (default 1)
  --duration-secs N         stop after N seconds (default: run until SIGINT
                            or SIGTERM)
  --counters-file PATH      rewrite PATH with the counters dump every 100 ms

On exit, and on SIGUSR1, the counters dump goes to stdout: one
`counter core=C ...key=value... value=N` line per counter, between
`counters begin cores=N` and `counters end`.
";

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The spec file.
    pub spec: PathBuf,
    /// Interface overrides, in order given.
    pub nics: Vec<NicOverride>,
    /// Worker threads.
    pub cores: usize,
    /// When to stop on our own.
    pub duration: Option<Duration>,
    /// Where to keep a fresh counters dump.
    pub counters_file: Option<PathBuf>,
}

/// Most worker threads accepted.
const MAX_CORES: usize = 64;

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut spec = None;
    let mut nics = Vec::new();
    let mut cores = 1;
    let mut duration = None;
    let mut counters_file = None;
    let mut args = args.iter();
    while let Some(option) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("option `{option}` needs a value"))
        };
        match option.as_str() {
            "--spec" => spec = Some(PathBuf::from(value()?)),
            "--nic" => nics.push(parse_nic(value()?)?),
            "--cores" => {
                let text = value()?;
                cores = text
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_CORES).contains(n))
                    .ok_or_else(|| {
                        format!("--cores takes a number from 1 to {MAX_CORES}, got `{text}`")
                    })?;
            }
            "--duration-secs" => {
                let text = value()?;
                let seconds: u64 = text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("--duration-secs takes a positive number of seconds, got `{text}`")
                })?;
                duration = Some(Duration::from_secs(seconds));
            }
            "--counters-file" => counters_file = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    let spec = spec.ok_or_else(|| "--spec FILE is required".to_owned())?;
    for (position, nic) in nics.iter().enumerate() {
        if nics[..position]
            .iter()
            .any(|earlier| earlier.interface == nic.interface)
        {
            return Err(format!(
                "--nic: interface `{}` is mapped twice",
                nic.interface
            ));
        }
    }
    Ok(Options {
        spec,
        nics,
        cores,
        duration,
        counters_file,
    })
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
        parse(&args.iter().map(|arg| arg.to_string()).collect::<Vec<_>>())
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
            (&["--spec"], "needs a value"),
            (&["--frobnicate"], "--frobnicate"),
        ] {
            let error = parse_args(args).unwrap_err();
            assert!(error.contains(names), "{args:?}: `{error}` lacks `{names}`");
        }
    }
}
