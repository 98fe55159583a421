//! `loadgen`: bounded UDP or ICMP echo load through one interface, with a
//! table or JSON of rates, loss and latency.
#![deny(unsafe_code)]

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use loadgen::frame::{Endpoints, FlowSpread, MIN_PAYLOAD, TranslatedMatch, Workload};
use loadgen::port::FramePort;
use loadgen::ring_port::{Engine, RingPort};
use loadgen::run::{ReturnPath, RunConfig, RunResult, run_on};
use loadgen::socket::{PacketSocket, parse_mac};
use loadgen::tcp::client::{TcpConfig, run_tcp};
use loadgen::tcp::protocol::Protocol;
use loadgen::vhost::device::VhostUserPort;
use loadgen::{arp, report};
use std::net::Ipv4Addr;
use std::time::Duration;

/// The command line, as clap reads it.
#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    group(clap::ArgGroup::new("by_payload").multiple(true).args(["new_flow_per_probe", "translated_source", "backend"])),
    group(clap::ArgGroup::new("forwarding").multiple(true).args(["receive_interface", "receive_vhost_user"])),
    about = "Bounded UDP or ICMP echo load through one interface, with a table or JSON of rates, loss and latency.",
    long_about = "Bounded UDP or ICMP echo load through one interface, with a table or JSON of rates, \
loss and latency.\n\nSends only on IF (an AF_PACKET socket bound to it) and answers ARP for \
--source-ip, which should not be an address the host itself owns."
)]
struct Arguments {
    /// Send and receive on this interface.
    #[arg(
        long,
        value_name = "IF",
        required_unless_present = "vhost_user",
        conflicts_with = "vhost_user"
    )]
    interface: Option<String>,
    /// Be the guest's NIC instead: a vhost-user net backend listening on
    /// this unix socket (QEMU: `-chardev socket,id=c0,path=SOCK -netdev
    /// vhost-user,id=n0,chardev=c0` and shared guest memory). Needs
    /// --destination-mac or answers from the guest to ARP.
    #[arg(long, value_name = "SOCK")]
    vhost_user: Option<std::path::PathBuf>,
    /// vhost-user: queue pairs (one per guest vCPU; QEMU's `queues=`).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=8))]
    queues: u64,
    /// vhost-user: how long QEMU and the guest driver may take to bring the
    /// rings up (a TCG guest boots slowly).
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=600))]
    guest_timeout: u64,
    /// Send from this address (loadgen answers ARP for it).
    #[arg(long, value_name = "IP")]
    source_ip: Ipv4Addr,
    /// The system under test.
    #[arg(long, value_name = "IP")]
    destination_ip: Ipv4Addr,
    /// Send from MAC (default: the interface's own; with --vhost-user
    /// 02:57:43:4c:47:00). A MAC the host does not
    /// own makes replies other-host frames that the host's IP stack drops at
    /// once instead of routing them.
    #[arg(long, value_name = "MAC", value_parser = parse_source_mac)]
    source_mac: Option<[u8; 6]>,
    /// Skip ARP resolution of the destination (or gateway).
    #[arg(long, value_name = "MAC", value_parser = parse_any_mac)]
    destination_mac: Option<[u8; 6]>,
    /// Resolve this router's MAC instead of the destination's.
    #[arg(long, value_name = "IP")]
    gateway: Option<Ipv4Addr>,
    /// Measure forwarding: probes come out of a router on IF (loadgen
    /// answers ARP for --destination-ip there).
    #[arg(long, value_name = "IF")]
    receive_interface: Option<String>,
    /// vhost-user: measure forwarding through a second device of the
    /// guest, served on this unix socket (`--vhost-user` is the first):
    /// probes sent into the first come out, routed, on this one (loadgen
    /// answers ARP for --destination-ip there).
    #[arg(long, value_name = "SOCK", requires = "vhost_user")]
    receive_vhost_user: Option<std::path::PathBuf>,
    /// vhost-user: once the guest's rings are up, wait for a line (or the
    /// end) on standard input before sending, so a harness can start the
    /// load when the guest says its service runs, not when its driver is.
    #[arg(long, requires = "vhost_user")]
    wait_stdin: bool,
    /// UDP datagrams or ICMP echo requests.
    #[arg(long, value_enum, default_value = "udp")]
    workload: WorkloadKind,
    /// UDP destination port (default 7), or the TCP server's (default 80
    /// for http, 11211 for memcache-*).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// TCP: connections, each with one request outstanding.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// TCP: poll the rings this long for a reply before sleeping on the
    /// guest's kicks (default: 200 µs when the host has a CPU beyond one
    /// per queue pair, else 0).
    #[arg(long, value_name = "US", value_parser = clap::value_parser!(u64).range(0..=10_000))]
    poll_before_sleep_us: Option<u64>,
    /// TCP: seconds of the same load before the measured --duration, not
    /// counted.
    #[arg(long, value_name = "SECS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=60))]
    warmup: u64,
    /// Distinct source ports / ICMP ids (UDP source ports 40000 up).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=25_000))]
    flows: u16,
    /// New flows per second: every probe opens a UDP 5-tuple of its own
    /// (source port and address vary; see --destination-ports) instead of
    /// going round --flows. Needs --receive-interface or
    /// --receive-vhost-user.
    #[arg(long, conflicts_with = "flows", requires = "forwarding")]
    new_flow_per_probe: bool,
    /// Spread the flows (new ones with --new-flow-per-probe, or the
    /// --flows) over N destination ports from --port up, so that a NAT can
    /// reuse each outside port per destination. Only where probes are
    /// recognised by their payload (--new-flow-per-probe,
    /// --translated-source or --backend).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "by_payload", value_parser = clap::value_parser!(u16).range(1..=1000))]
    destination_ports: u16,
    /// Forwarding through a masquerade: probes come out of the router with
    /// this source address (and any source port) and are recognised by
    /// their payload. Needs --receive-interface or --receive-vhost-user.
    #[arg(long, value_name = "IP", requires = "forwarding")]
    translated_source: Option<Ipv4Addr>,
    /// Forwarding through a load balancer: probes to --destination-ip (the
    /// virtual address) come out of the router to this backend (any
    /// port); loadgen answers ARP for it on the receiving interface (or
    /// device, --receive-vhost-user). Repeat for every backend.
    #[arg(long, value_name = "IP", requires = "forwarding")]
    backend: Vec<Ipv4Addr>,
    /// Payload bytes, at least 24.
    #[arg(long, value_name = "BYTES", default_value_t = 64, value_parser = parse_size)]
    size: usize,
    /// Stop after N probes (at most 10^9; default 10 000), or with TCP
    /// after N requests (default: none, --duration bounds the run).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    count: Option<u64>,
    /// Stop sending after SECS (at most 600).
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    duration: u64,
    /// Pace to PPS probes per second (default: as fast as possible); with
    /// TCP, requests per second over all connections, each on a fixed
    /// schedule with latency counted from its slot.
    #[arg(long, value_name = "PPS", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    rate: Option<u64>,
    /// Closed loop: at most N probes outstanding.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    window: Option<u64>,
    /// A probe unanswered after MS is lost (TCP: a request; its
    /// connection reconnects).
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    timeout_ms: u64,
    /// Probes per sendmmsg (at most 64).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=64))]
    burst: u64,
    /// How frames move on --interface (and --receive-interface):
    /// `sockets` (a packet socket, `sendmmsg`/`recvmmsg`), `rings` (mapped
    /// TPACKET_V2 rings, one `send` per burst, no call to receive) or
    /// `af-xdp` (an XSK socket in copy mode with libxdp's redirect program
    /// on the interface; needs Debian's libxdp1).
    #[arg(
        long,
        value_enum,
        default_value = "sockets",
        conflicts_with = "vhost_user"
    )]
    engine: EngineKind,
    /// Closed loop: send only whole bursts (--burst probes), waiting
    /// while the window has room for fewer.
    #[arg(long, requires = "window")]
    whole_bursts: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `--engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EngineKind {
    /// A packet socket with sendmmsg/recvmmsg.
    Sockets,
    /// The af-packet driver's mapped rings.
    Rings,
    /// The af-xdp driver in copy mode.
    AfXdp,
}

impl From<EngineKind> for Engine {
    fn from(kind: EngineKind) -> Self {
        match kind {
            EngineKind::Sockets => Engine::Sockets,
            EngineKind::Rings => Engine::Rings,
            EngineKind::AfXdp => Engine::AfXdp,
        }
    }
}

/// `--workload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WorkloadKind {
    /// UDP datagrams.
    Udp,
    /// ICMP echo requests.
    Icmp,
    /// TCP (--vhost-user only): HTTP/1.1 keep-alive `GET /`, one request
    /// outstanding per connection (--connections).
    Http,
    /// TCP: memcached `get` of a key each connection sets first.
    MemcacheGet,
    /// TCP: memcached `set` of a 32-byte value.
    MemcacheSet,
}

impl WorkloadKind {
    /// The TCP protocol of a TCP workload.
    fn tcp(self) -> Option<Protocol> {
        match self {
            Self::Udp | Self::Icmp => None,
            Self::Http => Some(Protocol::Http),
            Self::MemcacheGet => Some(Protocol::MemcacheGet),
            Self::MemcacheSet => Some(Protocol::MemcacheSet),
        }
    }
}

fn main() {
    let arguments = Arguments::parse();
    match options(arguments).and_then(execute) {
        Ok(()) => {}
        Err(error) => {
            eprintln!("loadgen: error: {error:#}");
            std::process::exit(2);
        }
    }
}

/// Where loadgen sends.
enum Attachment {
    /// This interface, through this engine.
    Interface(String, Engine),
    /// A vhost-user device on this socket with this many queue pairs; a
    /// second device to receive forwarded probes on, when measuring a
    /// router.
    VhostUser {
        socket: std::path::PathBuf,
        receive_socket: Option<std::path::PathBuf>,
        queues: usize,
        guest_timeout: Duration,
        wait_stdin: bool,
    },
}

/// loadgen's MAC on a vhost-user device when --source-mac says none.
const VHOST_USER_MAC: [u8; 6] = [0x02, 0x57, 0x43, 0x4c, 0x47, 0x00];
/// loadgen's MAC on the receiving vhost-user device (`--receive-vhost-user`).
const VHOST_USER_RECEIVE_MAC: [u8; 6] = [0x02, 0x57, 0x43, 0x4c, 0x47, 0x01];

/// Everything the command line says.
struct Options {
    attachment: Attachment,
    source_ip: Ipv4Addr,
    destination_ip: Ipv4Addr,
    source_mac: Option<[u8; 6]>,
    destination_mac: Option<[u8; 6]>,
    gateway: Option<Ipv4Addr>,
    receive_interface: Option<String>,
    config: RunConfig,
    /// A TCP workload's configuration (then `config` is unused).
    tcp: Option<TcpConfig>,
    json: bool,
}

/// `--source-mac`: a unicast MAC.
fn parse_source_mac(text: &str) -> Result<[u8; 6]> {
    let mac = parse_mac(text)?;
    if mac[0] & 1 != 0 {
        bail!("--source-mac must be a unicast address");
    }
    Ok(mac)
}

/// `--destination-mac`: any MAC.
fn parse_any_mac(text: &str) -> Result<[u8; 6]> {
    parse_mac(text)
}

/// `--size`: from the smallest payload that carries a probe to 1472.
fn parse_size(text: &str) -> Result<usize, String> {
    let size: usize = text
        .parse()
        .map_err(|_| format!("--size takes a number, got `{text}`"))?;
    if !(MIN_PAYLOAD..=1472).contains(&size) {
        return Err(format!(
            "--size must be between {MIN_PAYLOAD} and 1472, got {size}"
        ));
    }
    Ok(size)
}

/// Checks what clap cannot check alone and builds the run's configuration.
fn options(arguments: Arguments) -> Result<Options> {
    let workload = match arguments.workload {
        WorkloadKind::Icmp => Workload::IcmpEcho { identifier: 0x5700 },
        _ => Workload::Udp {
            port: arguments.port.unwrap_or(7),
            source_port: 40_000,
        },
    };
    let endpoints = Endpoints {
        source_mac: [0; 6],
        destination_mac: [0; 6],
        source_ip: arguments.source_ip,
        destination_ip: arguments.destination_ip,
    };
    let config = RunConfig {
        endpoints,
        workload,
        flows: arguments.flows,
        payload_len: arguments.size,
        count: arguments.count.unwrap_or(10_000),
        duration: Duration::from_secs(arguments.duration),
        rate_pps: arguments.rate,
        window: arguments.window,
        timeout: Duration::from_millis(arguments.timeout_ms),
        burst: arguments.burst as usize,
        whole_bursts: arguments.whole_bursts,
        run_id: std::process::id() ^ (loadgen::run::now_ns() as u32),
        progress: !arguments.json,
        spread: if arguments.new_flow_per_probe {
            FlowSpread::NewPerProbe {
                destination_ports: arguments.destination_ports,
            }
        } else {
            FlowSpread::RoundRobin {
                destination_ports: arguments.destination_ports,
            }
        },
        translated: (arguments.translated_source.is_some()
            || !arguments.backend.is_empty()
            || arguments.new_flow_per_probe)
            .then(|| TranslatedMatch {
                source: arguments.translated_source,
                destinations: arguments.backend.clone(),
            }),
    };
    if arguments.new_flow_per_probe && !matches!(workload, Workload::Udp { .. }) {
        bail!("--new-flow-per-probe opens UDP flows; use --workload udp");
    }
    if (arguments.receive_interface.is_some() || arguments.receive_vhost_user.is_some())
        && !matches!(workload, Workload::Udp { .. })
    {
        bail!("--receive-interface measures UDP forwarding; use --workload udp");
    }
    if arguments.queues > 1 && arguments.vhost_user.is_none() {
        bail!("--queues sets the queue pairs of --vhost-user; an interface has its own");
    }
    if arguments.receive_interface.is_some() && arguments.interface.is_none() {
        bail!(
            "--receive-interface measures forwarding between two interfaces; not with --vhost-user"
        );
    }
    if arguments.receive_interface.is_some() && arguments.receive_interface == arguments.interface {
        bail!("--receive-interface must differ from --interface");
    }
    if arguments.receive_vhost_user.is_some() && arguments.vhost_user.is_none() {
        bail!("--receive-vhost-user is the second device of --vhost-user; give --vhost-user too");
    }
    if arguments.receive_vhost_user.is_some()
        && arguments.receive_vhost_user == arguments.vhost_user
    {
        bail!("--receive-vhost-user must differ from --vhost-user");
    }
    let tcp = match arguments.workload.tcp() {
        None => None,
        Some(protocol) => {
            if arguments.vhost_user.is_none() {
                bail!(
                    "the TCP workloads run over --vhost-user only (on an interface the host's own TCP would answer the server's segments)"
                );
            }
            if arguments.receive_vhost_user.is_some() || arguments.window.is_some() {
                bail!(
                    "the TCP workloads take --connections (one request outstanding each), not --window or --receive-vhost-user"
                );
            }
            Some(TcpConfig {
                source_mac: arguments.source_mac.unwrap_or(VHOST_USER_MAC),
                source_ip: arguments.source_ip,
                prefix_len: 24,
                destination_ip: arguments.destination_ip,
                port: arguments.port.unwrap_or(match protocol {
                    Protocol::Http => 80,
                    Protocol::MemcacheGet | Protocol::MemcacheSet => 11211,
                }),
                protocol,
                connections: arguments.connections,
                duration: Duration::from_secs(arguments.duration),
                warmup: Duration::from_secs(arguments.warmup),
                rate: arguments.rate,
                count: arguments.count,
                reply_timeout: Duration::from_millis(arguments.timeout_ms),
                seed: u64::from(config.run_id),
                poll_before_sleep: arguments.poll_before_sleep_us.map(Duration::from_micros),
            })
        }
    };
    let attachment = match (arguments.interface, arguments.vhost_user) {
        (Some(interface), None) => Attachment::Interface(interface, arguments.engine.into()),
        (None, Some(socket)) => Attachment::VhostUser {
            socket,
            receive_socket: arguments.receive_vhost_user,
            wait_stdin: arguments.wait_stdin,
            queues: arguments.queues as usize,
            guest_timeout: Duration::from_secs(arguments.guest_timeout),
        },
        _ => bail!("give one of --interface and --vhost-user"),
    };
    Ok(Options {
        attachment,
        source_ip: arguments.source_ip,
        destination_ip: arguments.destination_ip,
        source_mac: arguments.source_mac,
        destination_mac: arguments.destination_mac,
        gateway: arguments.gateway,
        receive_interface: arguments.receive_interface,
        config,
        tcp,
        json: arguments.json,
    })
}

fn execute(options: Options) -> Result<()> {
    let result = match &options.attachment {
        Attachment::Interface(interface, Engine::Sockets) => {
            let socket = PacketSocket::open(interface)?;
            let receiver = options
                .receive_interface
                .as_deref()
                .map(PacketSocket::open)
                .transpose()?;
            let receiver_port = receiver.as_ref().map(|socket| socket as &dyn FramePort);
            run_through(&socket, receiver_port, &options)?
        }
        Attachment::Interface(interface, engine) => {
            let port = RingPort::open(interface, *engine)?;
            let receiver = options
                .receive_interface
                .as_deref()
                .map(|name| RingPort::open(name, *engine))
                .transpose()?;
            let receiver_port = receiver.as_ref().map(|port| port as &dyn FramePort);
            run_through(&port, receiver_port, &options)?
        }
        Attachment::VhostUser {
            socket,
            receive_socket,
            queues,
            guest_timeout,
            wait_stdin,
        } => {
            let mut port = VhostUserPort::listen(
                socket,
                *queues,
                options.source_mac.unwrap_or(VHOST_USER_MAC),
            )?;
            // Both sockets listen before QEMU starts: it connects to each
            // of its vhost-user netdevs in turn while it sets up, and each
            // device's protocol runs on a thread of its own.
            let mut receiver = receive_socket
                .as_deref()
                .map(|path| VhostUserPort::listen(path, *queues, VHOST_USER_RECEIVE_MAC))
                .transpose()?;
            port.wait_for_guest(*guest_timeout)?;
            if let Some(receiver) = &mut receiver {
                receiver.wait_for_guest(*guest_timeout)?;
            }
            if *wait_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("waiting for the start line on standard input")?;
            }
            let receiver_port = receiver.as_ref().map(|port| port as &dyn FramePort);
            let mut result = match &options.tcp {
                Some(tcp) => {
                    let (result, counters, failure) = run_tcp(&port, tcp)?;
                    let busy_ns = counters.cpu_ns.saturating_sub(counters.spin_ns);
                    eprintln!(
                        "loadgen: tcp: {} connects, {} failed, {} replies, {} smoltcp polls, {} foreign frames, {} malformed; data thread {} ms on a CPU, {} ms of it polling before sleeps, {:.2} µs a reply besides{}",
                        counters.connects,
                        counters.failures,
                        counters.replies,
                        counters.polls,
                        counters.foreign_frames,
                        counters.malformed_frames,
                        counters.cpu_ns / 1_000_000,
                        counters.spin_ns / 1_000_000,
                        busy_ns as f64 / 1000.0 / counters.replies.max(1) as f64,
                        failure
                            .map(|failure| format!("; first failure: {failure}"))
                            .unwrap_or_default()
                    );
                    RunResult {
                        tcp_client: Some(Box::new(counters)),
                        ..result
                    }
                }
                None => run_through(&port, receiver_port, &options)?,
            };
            result.vhost_user = Some(Box::new(port.counters()));
            result.vhost_user_receive = receiver.map(|port| Box::new(port.counters()));
            result
        }
    };
    if options.json {
        println!("{}", report::json(&result));
    } else {
        print!("{}", report::table(&result));
    }
    Ok(())
}

/// Resolves the destination through `port` (unless given) and runs the
/// load; forwarded probes come back on `receiver` when there is one.
fn run_through<P: FramePort>(
    port: &P,
    receiver: Option<&dyn FramePort>,
    options: &Options,
) -> Result<RunResult> {
    let mut config = options.config.clone();
    let next_hop = options.gateway.unwrap_or(options.destination_ip);
    let source_mac = options.source_mac.unwrap_or(port.mac());
    let destination_mac = match options.destination_mac {
        Some(mac) => mac,
        None => arp::resolve(
            port,
            source_mac,
            options.source_ip,
            next_hop,
            Duration::from_secs(3),
        )?,
    };
    config.endpoints.source_mac = source_mac;
    config.endpoints.destination_mac = destination_mac;
    let path = receiver.map_or(ReturnPath::Echo, ReturnPath::Forwarded);
    run_on(port, path, &config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Options> {
        let arguments =
            Arguments::try_parse_from(std::iter::once("loadgen").chain(text.split_whitespace()))?;
        options(arguments)
    }

    #[test]
    fn parses_and_refuses_nonsense() {
        let base = "--interface veth0 --source-ip 10.0.0.100 --destination-ip 10.0.0.2";
        let options = parse(&format!("{base} --flows 4 --rate 1000 --workload icmp")).unwrap();
        assert_eq!(options.config.flows, 4);
        assert_eq!(options.config.rate_pps, Some(1000));
        assert!(matches!(options.config.workload, Workload::IcmpEcho { .. }));
        for (engine, expected) in [
            ("sockets", Engine::Sockets),
            ("rings", Engine::Rings),
            ("af-xdp", Engine::AfXdp),
        ] {
            let options = parse(&format!("{base} --engine {engine}")).unwrap();
            assert!(
                matches!(options.attachment, Attachment::Interface(_, chosen) if chosen == expected),
                "--engine {engine}"
            );
        }
        assert!(
            parse(&format!("{base} --window 128 --whole-bursts"))
                .unwrap()
                .config
                .whole_bursts
        );
        let defaults = parse(base).unwrap();
        assert_eq!(
            (
                defaults.config.payload_len,
                defaults.config.count,
                defaults.config.burst
            ),
            (64, 10_000, 32)
        );
        assert_eq!(defaults.config.duration, Duration::from_secs(10));
        assert_eq!(defaults.config.timeout, Duration::from_millis(1000));
        assert_eq!(
            defaults.config.workload,
            Workload::Udp {
                port: 7,
                source_port: 40_000
            }
        );
        for (bad, names) in [
            ("", "--interface"),
            ("--interface veth0", "--source-ip"),
            (&format!("{base} --count 0"), "--count"),
            (&format!("{base} --duration 601"), "--duration"),
            (&format!("{base} --size 10"), "--size"),
            (&format!("{base} --workload tcp"), "tcp"),
            (&format!("{base} --port"), "--port"),
            (&format!("{base} --destination-mac 02:00"), "six parts"),
            (&format!("{base} --source-mac 03:00:00:00:00:01"), "unicast"),
            (&format!("{base} --bogus"), "--bogus"),
            (&format!("{base} --engine dpdk"), "dpdk"),
            (&format!("{base} --whole-bursts"), "--window"),
            (&format!("{base} --receive-interface veth0"), "must differ"),
            (
                &format!("{base} --receive-interface veth1 --workload icmp"),
                "UDP forwarding",
            ),
            (&format!("{base} --gateway 10.0.0"), "--gateway"),
            (
                "--interface veth0 --source-ip 10.0.0 --destination-ip 10.0.0.2",
                "--source-ip",
            ),
        ] {
            let error = format!(
                "{:#}",
                parse(bad)
                    .err()
                    .unwrap_or_else(|| panic!("accepted `{bad}`"))
            );
            assert!(error.contains(names), "`{bad}`: `{error}` lacks `{names}`");
        }
    }

    #[test]
    fn translated_and_new_flow_modes_parse_and_need_a_receive_interface() {
        let base = "--interface t0 --receive-interface t1 --source-ip 10.0.1.100 --destination-ip 10.0.2.100";
        let nat = parse(&format!(
            "{base} --translated-source 10.0.2.1 --new-flow-per-probe --destination-ports 40"
        ))
        .unwrap();
        assert_eq!(
            nat.config.spread,
            FlowSpread::NewPerProbe {
                destination_ports: 40
            }
        );
        let established = parse(&format!(
            "{base} --translated-source 10.0.2.1 --flows 10000 --destination-ports 40"
        ))
        .unwrap();
        assert_eq!(
            established.config.spread,
            FlowSpread::RoundRobin {
                destination_ports: 40
            }
        );
        let expected = nat.config.translated.unwrap();
        assert_eq!(expected.source, Some(Ipv4Addr::new(10, 0, 2, 1)));
        let lb = parse(&format!(
            "{base} --port 80 --backend 10.0.2.2 --backend 10.0.2.3 --flows 10000"
        ))
        .unwrap();
        assert_eq!(lb.config.flows, 10_000);
        assert_eq!(lb.config.translated.unwrap().destinations.len(), 2);
        assert_eq!(parse(base).unwrap().config.translated, None);
        let alone = "--interface t0 --source-ip 10.0.1.100 --destination-ip 10.0.2.100";
        for (bad, names) in [
            (
                format!("{alone} --translated-source 10.0.2.1"),
                "--receive-interface",
            ),
            (format!("{alone} --backend 10.0.2.2"), "--receive-interface"),
            (
                format!("{alone} --new-flow-per-probe"),
                "--receive-interface",
            ),
            (
                format!("{base} --destination-ports 4"),
                "--new-flow-per-probe",
            ),
            (
                format!("{base} --flows 4 --destination-ports 4"),
                "--backend",
            ),
            (format!("{base} --new-flow-per-probe --flows 4"), "--flows"),
            (format!("{base} --flows 25001"), "--flows"),
        ] {
            let error = format!(
                "{:#}",
                parse(&bad)
                    .err()
                    .unwrap_or_else(|| panic!("accepted `{bad}`"))
            );
            assert!(error.contains(names), "`{bad}`: `{error}` lacks `{names}`");
        }
    }

    #[test]
    fn vhost_user_mode_parses_and_refuses_mixtures() {
        let ips = "--source-ip 10.0.0.100 --destination-ip 10.0.0.2";
        let options = parse(&format!("--vhost-user /tmp/lg.sock --queues 2 {ips}")).unwrap();
        match options.attachment {
            Attachment::VhostUser {
                socket,
                queues,
                receive_socket,
                ..
            } => {
                assert_eq!((socket.to_str(), queues), (Some("/tmp/lg.sock"), 2));
                assert_eq!(receive_socket, None);
            }
            Attachment::Interface(..) => panic!("expected the vhost-user mode"),
        }
        assert!(options.tcp.is_none());
        // The TCP client: its server's port by protocol, its bounds.
        let http = parse(&format!(
            "--vhost-user s --workload http --connections 64 --rate 5000 --warmup 2 {ips}"
        ))
        .unwrap()
        .tcp
        .unwrap();
        assert_eq!(
            (
                http.protocol,
                http.port,
                http.connections,
                http.rate,
                http.count
            ),
            (Protocol::Http, 80, 64, Some(5000), None)
        );
        assert_eq!(http.warmup, Duration::from_secs(2));
        let kv = parse(&format!(
            "--vhost-user s --workload memcache-get --count 500 {ips}"
        ))
        .unwrap()
        .tcp
        .unwrap();
        assert_eq!((kv.port, kv.count), (11211, Some(500)));
        // The appliances' modes work on two devices as on two interfaces.
        let two = "--vhost-user s --receive-vhost-user r --source-ip 10.0.1.100 --destination-ip 10.0.2.100";
        let nat = parse(&format!(
            "{two} --translated-source 10.0.2.1 --new-flow-per-probe --destination-ports 40"
        ))
        .unwrap();
        assert_eq!(
            nat.config.spread,
            FlowSpread::NewPerProbe {
                destination_ports: 40
            }
        );
        let lb = parse(&format!("{two} --port 80 --backend 10.0.2.2 --flows 10000")).unwrap();
        assert_eq!(lb.config.translated.unwrap().destinations.len(), 1);
        for (bad, names) in [
            (
                format!("--interface veth0 --vhost-user s {ips}"),
                "--vhost-user",
            ),
            (
                format!("--interface veth0 --queues 2 {ips}"),
                "--vhost-user",
            ),
            (format!("--vhost-user s --queues 9 {ips}"), "--queues"),
            (format!("--vhost-user s --engine rings {ips}"), "--engine"),
            (
                format!("--vhost-user s --receive-interface veth1 {ips}"),
                "not with --vhost-user",
            ),
            (
                format!("--interface veth0 --receive-vhost-user r {ips}"),
                "--vhost-user",
            ),
            (
                format!("--vhost-user s --receive-vhost-user s {ips}"),
                "must differ",
            ),
            (
                format!("--vhost-user s --receive-vhost-user r --workload icmp {ips}"),
                "UDP forwarding",
            ),
            (
                format!("--vhost-user s --translated-source 10.0.2.1 {ips}"),
                "--receive-vhost-user",
            ),
            (
                format!("--vhost-user s --new-flow-per-probe {ips}"),
                "--receive-vhost-user",
            ),
            (
                format!("--interface veth0 --workload http {ips}"),
                "--vhost-user only",
            ),
            (
                format!("--vhost-user s --workload http --window 8 {ips}"),
                "--connections",
            ),
            (
                format!("--vhost-user s --workload http --connections 0 {ips}"),
                "--connections",
            ),
        ] {
            let error = format!(
                "{:#}",
                parse(&bad)
                    .err()
                    .unwrap_or_else(|| panic!("accepted `{bad}`"))
            );
            assert!(error.contains(names), "`{bad}`: `{error}` lacks `{names}`");
        }
    }
}
