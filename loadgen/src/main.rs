//! `loadgen`: bounded UDP or ICMP echo load through one interface, with a
//! table or JSON of rates, loss and latency.
#![deny(unsafe_code)]

use anyhow::{Context, Result, bail};
use loadgen::frame::{Endpoints, MIN_PAYLOAD, Workload};
use loadgen::run::{ReturnPath, RunConfig, run_with_return};
use loadgen::socket::{PacketSocket, parse_mac};
use loadgen::{arp, report};
use std::net::Ipv4Addr;
use std::time::Duration;

const USAGE: &str = "\
usage: loadgen --interface IF --source-ip IP --destination-ip IP [options]

Sends only on IF (an AF_PACKET socket bound to it) and answers ARP for
--source-ip, which should not be an address the host itself owns.

options:
  --source-mac MAC        send from MAC (default: the interface's own). A MAC the
                          host does not own makes replies other-host frames that
                          the host's IP stack drops at once instead of routing them
  --destination-mac MAC   skip ARP resolution of the destination (or gateway)
  --gateway IP            resolve this router's MAC instead of the destination's
  --receive-interface IF  measure forwarding: probes come out of a router on IF
                          (loadgen answers ARP for --destination-ip there)
  --workload udp|icmp     UDP datagrams (default) or ICMP echo requests
  --port N                UDP destination port (default 7)
  --flows N               distinct source ports / ICMP ids (default 1)
  --size BYTES            payload bytes, at least 24 (default 64)
  --count N               stop after N probes (default 10000, at most 10^9)
  --duration SECS         stop sending after SECS (default 10, at most 600)
  --rate PPS              pace to PPS probes per second (default: as fast as possible)
  --window N              closed loop: at most N probes outstanding
  --timeout-ms MS         a probe unanswered after MS is lost (default 1000)
  --burst N               probes per sendmmsg (default 32, at most 64)
  --json                  print JSON instead of a table
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args).and_then(execute) {
        Ok(()) => {}
        Err(error) => {
            eprintln!("loadgen: error: {error:#}");
            std::process::exit(2);
        }
    }
}

/// Everything the command line says.
struct Options {
    interface: String,
    source_ip: Ipv4Addr,
    destination_ip: Ipv4Addr,
    source_mac: Option<[u8; 6]>,
    destination_mac: Option<[u8; 6]>,
    gateway: Option<Ipv4Addr>,
    receive_interface: Option<String>,
    config: RunConfig,
    json: bool,
}

fn number<T>(option: &str, text: &str, range: std::ops::RangeInclusive<T>) -> Result<T>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let value: T = text
        .parse()
        .ok()
        .with_context(|| format!("{option} takes a number, got `{text}`"))?;
    if !range.contains(&value) {
        bail!(
            "{option} must be between {} and {}, got {value}",
            range.start(),
            range.end()
        );
    }
    Ok(value)
}

fn parse(args: &[String]) -> Result<Options> {
    let mut interface = None;
    let mut source_ip = None;
    let mut destination_ip = None;
    let mut source_mac = None;
    let mut destination_mac = None;
    let mut gateway = None;
    let mut receive_interface = None;
    let mut workload = "udp".to_string();
    let mut port = 7u16;
    let mut flows = 1u16;
    let mut size = 64usize;
    let mut count = 10_000u64;
    let mut duration = 10u64;
    let mut rate = None;
    let mut window = None;
    let mut timeout_ms = 1000u64;
    let mut burst = 32usize;
    let mut json = false;
    let mut args = args.iter();
    while let Some(option) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{option} needs a value\n{USAGE}"))
        };
        match option.as_str() {
            "--interface" => interface = Some(value()?.clone()),
            "--source-ip" => {
                source_ip = Some(
                    value()?
                        .parse()
                        .context("--source-ip takes an IPv4 address")?,
                )
            }
            "--destination-ip" => {
                destination_ip = Some(
                    value()?
                        .parse()
                        .context("--destination-ip takes an IPv4 address")?,
                )
            }
            "--source-mac" => {
                let mac = parse_mac(value()?).context("--source-mac")?;
                if mac[0] & 1 != 0 {
                    bail!("--source-mac must be a unicast address");
                }
                source_mac = Some(mac);
            }
            "--destination-mac" => {
                destination_mac = Some(parse_mac(value()?).context("--destination-mac")?)
            }
            "--gateway" => {
                gateway = Some(
                    value()?
                        .parse()
                        .context("--gateway takes an IPv4 address")?,
                )
            }
            "--receive-interface" => receive_interface = Some(value()?.clone()),
            "--workload" => workload = value()?.clone(),
            "--port" => port = number(option, value()?, 1..=65535)?,
            "--flows" => flows = number(option, value()?, 1..=4096)?,
            "--size" => size = number(option, value()?, MIN_PAYLOAD..=1472)?,
            "--count" => count = number(option, value()?, 1..=1_000_000_000)?,
            "--duration" => duration = number(option, value()?, 1..=600)?,
            "--rate" => rate = Some(number(option, value()?, 1..=100_000_000)?),
            "--window" => window = Some(number(option, value()?, 1..=1_000_000)?),
            "--timeout-ms" => timeout_ms = number(option, value()?, 1..=60_000)?,
            "--burst" => burst = number(option, value()?, 1..=64)?,
            "--json" => json = true,
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown option `{other}`\n{USAGE}"),
        }
    }
    let interface = interface.context("--interface is required")?;
    let source_ip = source_ip.context("--source-ip is required")?;
    let destination_ip = destination_ip.context("--destination-ip is required")?;
    let workload = match workload.as_str() {
        "udp" => Workload::Udp {
            port,
            source_port: 40_000,
        },
        "icmp" => Workload::IcmpEcho { identifier: 0x5700 },
        other => bail!("--workload takes udp or icmp, got `{other}`"),
    };
    let endpoints = Endpoints {
        source_mac: [0; 6],
        destination_mac: [0; 6],
        source_ip,
        destination_ip,
    };
    let config = RunConfig {
        endpoints,
        workload,
        flows,
        payload_len: size,
        count,
        duration: Duration::from_secs(duration),
        rate_pps: rate,
        window,
        timeout: Duration::from_millis(timeout_ms),
        burst,
        run_id: std::process::id() ^ (loadgen::run::now_ns() as u32),
        progress: !json,
    };
    if receive_interface.is_some() && !matches!(workload, Workload::Udp { .. }) {
        bail!("--receive-interface measures UDP forwarding; use --workload udp");
    }
    if receive_interface.as_ref() == Some(&interface) {
        bail!("--receive-interface must differ from --interface");
    }
    Ok(Options {
        interface,
        source_ip,
        destination_ip,
        source_mac,
        destination_mac,
        gateway,
        receive_interface,
        config,
        json,
    })
}

fn execute(mut options: Options) -> Result<()> {
    let socket = PacketSocket::open(&options.interface)?;
    let receiver = options
        .receive_interface
        .as_deref()
        .map(PacketSocket::open)
        .transpose()?;
    let next_hop = options.gateway.unwrap_or(options.destination_ip);
    let source_mac = options.source_mac.unwrap_or(socket.mac());
    let destination_mac = match options.destination_mac {
        Some(mac) => mac,
        None => arp::resolve(
            &socket,
            source_mac,
            options.source_ip,
            next_hop,
            Duration::from_secs(3),
        )?,
    };
    options.config.endpoints.source_mac = source_mac;
    options.config.endpoints.destination_mac = destination_mac;
    let path = receiver
        .as_ref()
        .map_or(ReturnPath::Echo, ReturnPath::Forwarded);
    let result = run_with_return(&socket, path, &options.config)?;
    if options.json {
        println!("{}", report::json(&result));
    } else {
        print!("{}", report::table(&result));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_and_refuses_nonsense() {
        let base = "--interface veth0 --source-ip 10.0.0.100 --destination-ip 10.0.0.2";
        let options = parse(&args(&format!(
            "{base} --flows 4 --rate 1000 --workload icmp"
        )))
        .unwrap();
        assert_eq!(options.config.flows, 4);
        assert_eq!(options.config.rate_pps, Some(1000));
        assert!(matches!(options.config.workload, Workload::IcmpEcho { .. }));
        for bad in [
            "",
            "--interface veth0",
            &format!("{base} --count 0"),
            &format!("{base} --duration 601"),
            &format!("{base} --size 10"),
            &format!("{base} --workload tcp"),
            &format!("{base} --port"),
            &format!("{base} --destination-mac 02:00"),
            &format!("{base} --source-mac 03:00:00:00:00:01"),
            &format!("{base} --bogus"),
            &format!("{base} --receive-interface veth0"),
            &format!("{base} --receive-interface veth1 --workload icmp"),
            &format!("{base} --gateway 10.0.0"),
            "--interface veth0 --source-ip 10.0.0 --destination-ip 10.0.0.2",
        ] {
            assert!(parse(&args(bad)).is_err(), "accepted `{bad}`");
        }
    }
}
