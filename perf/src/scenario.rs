//! Scenario files: which workloads to run on which systems, and how.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What traffic a scenario offers and what the system does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// UDP datagrams echoed back.
    UdpEcho,
    /// ICMP echo requests answered.
    IcmpEcho,
    /// IPv4 forwarded between two interfaces.
    L3fwd,
    /// Frames dropped at the NIC: what the virtual NIC can carry at all.
    Sink,
    /// HTTP/1.1 `GET /` on keep-alive connections, closed loop (wrk):
    /// requests per second.
    HttpKeepalive,
    /// HTTP/1.1 `GET /` with `Connection: close`, a new connection per
    /// request (wrk): connections per second.
    HttpClose,
    /// HTTP/1.1 `GET /` on keep-alive connections at a fixed rate
    /// (`tcp-load --rate`): the latency percentiles at that load.
    HttpLatency,
    /// memcached text-protocol `get` of a 32-byte value, closed loop
    /// (`tcp-load`): operations per second.
    KvGet,
    /// memcached text-protocol `set` of a 32-byte value, closed loop
    /// (`tcp-load`): operations per second.
    KvSet,
    /// UDP echo through an appliance that serves its management plane,
    /// measured alone and then while a client hammers `/metrics` and
    /// `/api/v1/status` over `connections` connections (wrk): echoes per
    /// second under that load, with the rate alone beside it.
    UdpEchoManagementLoad,
    /// No load: the host CPU the idle system costs over `duration_secs`,
    /// then the round trip of the first UDP echo after 10 s of silence.
    /// Reported in its own table ([`crate::report::IdleRow`]), not as a
    /// rate.
    Idle,
    /// UDP forwarded through a stateful firewall (warpcore's `firewall`
    /// with `examples/firewall.toml`'s rules; nftables with conntrack in
    /// the Linux guest), round robin over `flows` flows.
    Firewall,
    /// UDP forwarded through a masquerading NAT (`examples/nat.toml`;
    /// nftables conntrack + masquerade), round robin over `flows` flows.
    Nat,
    /// UDP to a load balancer's virtual address, forwarded to its
    /// backends (`examples/lb.toml`, Maglev; IPVS NAT mode with `mh`),
    /// round robin over `flows` flows.
    Lb,
    /// [`Workload::Firewall`] with a new 5-tuple per probe: new flows per
    /// second.
    FirewallNewFlows,
    /// [`Workload::Nat`] with a new 5-tuple per probe.
    NatNewFlows,
    /// [`Workload::Lb`] with a new client address:port per probe.
    LbNewFlows,
    /// UDP echo offered at a fixed rate, open loop (loadgen `--rate`): the
    /// latency percentiles at that load. `rate = 0` offers half of the
    /// Linux guest's `udp-echo` peak measured earlier in the same run on
    /// the same backend.
    UdpLatency,
}

impl Workload {
    /// True for the TCP request/response workloads (servers on ports 80 and
    /// 11211 rather than loadgen's raw frames).
    pub fn is_tcp(self) -> bool {
        matches!(
            self,
            Workload::HttpKeepalive
                | Workload::HttpClose
                | Workload::HttpLatency
                | Workload::KvGet
                | Workload::KvSet
        )
    }

    /// True for the datacenter appliances (firewall, NAT, load balancer)
    /// forwarding UDP between two interfaces.
    pub fn is_appliance(self) -> bool {
        matches!(
            self,
            Workload::Firewall
                | Workload::Nat
                | Workload::Lb
                | Workload::FirewallNewFlows
                | Workload::NatNewFlows
                | Workload::LbNewFlows
        )
    }

    /// True for the workloads offered at one fixed rate (`http-latency`,
    /// `udp-latency`): their runs differ in latency, not in rate.
    pub fn is_fixed_rate(self) -> bool {
        matches!(self, Workload::HttpLatency | Workload::UdpLatency)
    }

    /// What the rate of a run counts, for table headers.
    pub fn rate_unit(self) -> &'static str {
        match self {
            Workload::Firewall | Workload::Nat | Workload::Lb => "pps",
            Workload::FirewallNewFlows | Workload::NatNewFlows | Workload::LbNewFlows => {
                "new flows/s"
            }
            Workload::UdpEcho
            | Workload::IcmpEcho
            | Workload::L3fwd
            | Workload::Sink
            | Workload::UdpEchoManagementLoad
            | Workload::UdpLatency => "pps",
            Workload::HttpKeepalive | Workload::HttpLatency => "requests/s",
            Workload::HttpClose => "connections/s",
            Workload::KvGet | Workload::KvSet => "ops/s",
            Workload::Idle => "% of a host CPU",
        }
    }
}

/// A system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// The warpcore appliance in QEMU.
    WarpcoreQemu,
    /// Debian's Linux in the same QEMU command line.
    LinuxGuest,
    /// warpcore hosted on Linux, on a tap.
    WarpcoreHosted,
    /// The Linux host kernel on a veth pair, with a recvmmsg echo server.
    LinuxHost,
    /// QEMU's tap backend when the guest drops every frame at the NIC.
    QemuCeiling,
    /// The warpcore appliance in QEMU with `idle = "poll"`: its cores
    /// never sleep (the reference for what halting costs under load).
    WarpcoreQemuPoll,
    /// The warpcore appliance in QEMU with `idle = "haltpoll"`: its cores
    /// poll for an adaptive window (up to 200 µs) before they halt.
    WarpcoreQemuHaltpoll,
    /// warpcore hosted on one end of a veth pair, through AF_XDP.
    WarpcoreAfXdp,
    /// warpcore hosted on one end of a veth pair, through AF_PACKET.
    WarpcoreAfPacket,
    /// `WarpcoreAfXdp` with `idle = "poll"`: its core never sleeps, as
    /// testpmd's forwarding lcore.
    WarpcoreAfXdpPoll,
    /// `WarpcoreAfPacket` with `idle = "poll"`.
    WarpcoreAfPacketPoll,
    /// `WarpcoreAfPacket` transmitting through its TPACKET_V2 TX ring
    /// (`--af-packet-tx ring`), as testpmd's `net_af_packet` does, instead
    /// of the `sendmmsg` its default picks on a veth.
    WarpcoreAfPacketRing,
    /// DPDK's `dpdk-testpmd` (5tswap) on the same veth, `net_af_xdp` PMD.
    TestpmdAfXdp,
    /// DPDK's `dpdk-testpmd` (5tswap) on the same veth, `net_af_packet` PMD.
    TestpmdAfPacket,
    /// DPDK's `dpdk-testpmd` as the guest's vhost-user backend (its
    /// `net_vhost` PMD, `txonly`) in place of loadgen, sending into the
    /// appliance that drops every frame at its NIC (a MAC it does not
    /// own): the reference for loadgen's own engine ceiling
    /// (`qemu-ceiling` on the `vhost-user` backend). Only on `vhost-user`.
    TestpmdVhostCeiling,
}

impl System {
    /// The name used in files and tables.
    pub fn name(self) -> &'static str {
        match self {
            System::WarpcoreQemu => "warpcore-qemu",
            System::LinuxGuest => "linux-guest",
            System::WarpcoreHosted => "warpcore-hosted",
            System::LinuxHost => "linux-host",
            System::QemuCeiling => "qemu-ceiling",
            System::WarpcoreQemuPoll => "warpcore-qemu-poll",
            System::WarpcoreQemuHaltpoll => "warpcore-qemu-haltpoll",
            System::WarpcoreAfXdp => "warpcore-af-xdp",
            System::WarpcoreAfPacket => "warpcore-af-packet",
            System::WarpcoreAfXdpPoll => "warpcore-af-xdp-poll",
            System::WarpcoreAfPacketPoll => "warpcore-af-packet-poll",
            System::WarpcoreAfPacketRing => "warpcore-af-packet-ring",
            System::TestpmdAfXdp => "testpmd-af-xdp",
            System::TestpmdAfPacket => "testpmd-af-packet",
            System::TestpmdVhostCeiling => "testpmd-vhost-ceiling",
        }
    }

    /// The spec's `idle` for the QEMU appliance systems that do not use
    /// the default (`"halt"`): `"poll"` or `"haltpoll"`.
    pub fn appliance_idle(self) -> Option<&'static str> {
        match self {
            System::WarpcoreQemuPoll => Some("poll"),
            System::WarpcoreQemuHaltpoll => Some("haltpoll"),
            _ => None,
        }
    }

    /// True for the warpcore systems.
    pub fn is_warpcore(self) -> bool {
        matches!(
            self,
            System::WarpcoreQemu
                | System::WarpcoreHosted
                | System::WarpcoreQemuPoll
                | System::WarpcoreQemuHaltpoll
                | System::WarpcoreAfXdp
                | System::WarpcoreAfPacket
                | System::WarpcoreAfXdpPoll
                | System::WarpcoreAfPacketPoll
                | System::WarpcoreAfPacketRing
        )
    }

    /// Whether the system runs on `backend`: the QEMU guests on both, the
    /// testpmd vhost-user backend only on `vhost-user`, the host systems
    /// (which have no QEMU backend) once, under `tap`.
    pub fn runs_on(self, backend: Backend) -> bool {
        match self {
            System::WarpcoreQemu
            | System::WarpcoreQemuPoll
            | System::WarpcoreQemuHaltpoll
            | System::LinuxGuest
            | System::QemuCeiling => true,
            System::TestpmdVhostCeiling => backend == Backend::VhostUser,
            System::WarpcoreHosted
            | System::LinuxHost
            | System::WarpcoreAfXdp
            | System::WarpcoreAfPacket
            | System::WarpcoreAfXdpPoll
            | System::WarpcoreAfPacketPoll
            | System::WarpcoreAfPacketRing
            | System::TestpmdAfXdp
            | System::TestpmdAfPacket => backend == Backend::Tap,
        }
    }
}

/// How QEMU connects a guest's virtio-net device to the traffic engine.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// `-netdev tap` in a network namespace, loadgen on AF_PACKET: QEMU's
    /// I/O thread moves every frame with a syscall.
    #[default]
    Tap,
    /// `-netdev vhost-user` with guest RAM in a shared memfd: loadgen
    /// (`--vhost-user`) is the NIC and writes frames straight into the
    /// guest's rings.
    VhostUser,
}

impl Backend {
    /// The name used in files and tables.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Tap => "tap",
            Backend::VhostUser => "vhost-user",
        }
    }
}

fn tap_only() -> Vec<Backend> {
    vec![Backend::Tap]
}

/// Settings every scenario inherits unless it says otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Defaults {
    /// Seconds of load per run.
    pub duration_secs: u64,
    /// Runs per scenario, system and core count; the report keeps the median.
    pub repetitions: u32,
    /// UDP/ICMP payload bytes.
    pub payload: usize,
    /// Distinct flows (source ports), so RSS spreads them.
    pub flows: u16,
    /// Closed loop: probes outstanding at once; 0 sends open loop at full speed.
    pub window: u64,
    /// Upper bound on probes per run.
    pub max_probes: u64,
    /// QEMU accelerator: tcg or kvm.
    pub accel: String,
    /// TCP workloads: connections, each with one request outstanding.
    pub connections: u32,
    /// `http-latency`: requests per second offered; 0 offers half of the
    /// Linux peer's `http-keepalive` rate measured earlier in the same run.
    pub rate: u64,
    /// `http-latency`: seconds of the same fixed-rate load before the
    /// measured `duration_secs`, not counted (a freshly booted guest's
    /// first seconds are its warm-up, not its latency at that load).
    pub warmup_secs: u64,
    /// Run the systems' repetitions in turn (A B C A B C …) instead of
    /// one system's all together (A A A B B B …), so a change in the
    /// host's load during the run reaches every system alike.
    pub interleave: bool,
    /// How loadgen moves frames on its interface (`sockets`, `rings` or
    /// `af-xdp`; loadgen's `--engine`): not for the vhost-user backend.
    pub loadgen_engine: LoadgenEngine,
}

/// loadgen's `--engine` on an interface (tap or veth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadgenEngine {
    /// A packet socket with `sendmmsg`/`recvmmsg`.
    #[default]
    Sockets,
    /// Mapped `TPACKET_V2` rings (the af-packet driver).
    Rings,
    /// An AF_XDP socket in copy mode (the af-xdp driver).
    AfXdp,
}

impl LoadgenEngine {
    /// loadgen's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sockets => "sockets",
            Self::Rings => "rings",
            Self::AfXdp => "af-xdp",
        }
    }
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            duration_secs: 3,
            repetitions: 1,
            payload: 64,
            flows: 4,
            window: 64,
            max_probes: 5_000_000,
            accel: "tcg".into(),
            connections: 16,
            rate: 0,
            warmup_secs: 0,
            interleave: false,
            loadgen_engine: LoadgenEngine::Sockets,
        }
    }
}

/// One scenario as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Unique name, used in file names.
    pub name: String,
    /// What to run.
    pub workload: Workload,
    /// Which systems to measure, side by side.
    pub systems: Vec<System>,
    /// Core counts to measure (1, 2).
    #[serde(default = "one_core")]
    pub cores: Vec<u32>,
    /// Overrides of the defaults.
    pub duration_secs: Option<u64>,
    /// Overrides of the defaults.
    pub repetitions: Option<u32>,
    /// Overrides of the defaults.
    pub payload: Option<usize>,
    /// Overrides of the defaults.
    pub flows: Option<u16>,
    /// Overrides of the defaults.
    pub window: Option<u64>,
    /// Overrides of the defaults.
    pub connections: Option<u32>,
    /// Overrides of the defaults.
    pub rate: Option<u64>,
    /// Overrides of the defaults.
    pub warmup_secs: Option<u64>,
    /// Overrides of the defaults.
    pub interleave: Option<bool>,
    /// Overrides of the defaults.
    pub loadgen_engine: Option<LoadgenEngine>,
    /// The NIC QEMU gives the guests (virtio when not named).
    #[serde(default)]
    pub nic: GuestNic,
    /// The backends the QEMU systems run on, each measured in turn
    /// (`["tap"]` when not named). Host systems ignore it.
    #[serde(default = "tap_only")]
    pub backends: Vec<Backend>,
}

/// The NIC model the QEMU systems of a scenario run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestNic {
    /// `-device virtio-net-pci` (multi-queue over a multi-queue tap).
    #[default]
    Virtio,
    /// `-device igb` (QEMU's 82576: warpcore's igb driver, Linux's igb).
    Igb,
}

fn one_core() -> Vec<u32> {
    vec![1]
}

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Settings for every scenario.
    #[serde(default)]
    pub defaults: Defaults,
    /// The scenarios, in the order they run.
    #[serde(rename = "scenario")]
    pub scenarios: Vec<ScenarioSpec>,
}

/// One scenario with the defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Unique name.
    pub name: String,
    /// What to run.
    pub workload: Workload,
    /// Systems, side by side.
    pub systems: Vec<System>,
    /// Core counts.
    pub cores: Vec<u32>,
    /// Seconds of load per run.
    pub duration_secs: u64,
    /// Runs per point.
    pub repetitions: u32,
    /// Payload bytes.
    pub payload: usize,
    /// Flows.
    pub flows: u16,
    /// Closed-loop window (0: open loop).
    pub window: u64,
    /// Probe bound per run.
    pub max_probes: u64,
    /// QEMU accelerator.
    pub accel: String,
    /// TCP workloads: connections.
    pub connections: u32,
    /// `http-latency`: offered requests per second (0: half the Linux
    /// peer's keep-alive peak in this run).
    pub rate: u64,
    /// The NIC of the QEMU systems.
    pub nic: GuestNic,
    /// The backends of the QEMU systems.
    #[serde(default = "tap_only")]
    pub backends: Vec<Backend>,
    /// `http-latency`: unmeasured seconds of load before the measured ones.
    #[serde(default)]
    pub warmup_secs: u64,
    /// The systems' repetitions run in turn.
    #[serde(default)]
    pub interleave: bool,
    /// loadgen's engine on its interface.
    #[serde(default)]
    pub loadgen_engine: LoadgenEngine,
}

impl ScenarioFile {
    /// Parses and checks a scenario file's text.
    pub fn parse(text: &str) -> Result<Vec<Scenario>> {
        let file: ScenarioFile = toml::from_str(text).context("scenario file")?;
        let defaults = file.defaults;
        if !matches!(defaults.accel.as_str(), "tcg" | "kvm") {
            bail!(
                "defaults.accel must be tcg or kvm, got `{}`",
                defaults.accel
            );
        }
        let mut names = std::collections::HashSet::new();
        let mut scenarios = Vec::new();
        for spec in file.scenarios {
            let name = spec.name.clone();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                bail!("scenario name `{name}` must be letters, digits, - and _");
            }
            if !names.insert(name.clone()) {
                bail!("scenario `{name}` appears twice");
            }
            if spec.systems.is_empty() {
                bail!("scenario `{name}`: systems is empty");
            }
            if spec.cores.is_empty() || spec.cores.iter().any(|&c| !(1..=2).contains(&c)) {
                bail!("scenario `{name}`: cores must list 1 and/or 2");
            }
            let scenario = Scenario {
                name,
                workload: spec.workload,
                systems: spec.systems,
                cores: spec.cores,
                duration_secs: spec.duration_secs.unwrap_or(defaults.duration_secs),
                repetitions: spec.repetitions.unwrap_or(defaults.repetitions),
                payload: spec.payload.unwrap_or(defaults.payload),
                flows: spec.flows.unwrap_or(defaults.flows),
                window: spec.window.unwrap_or(defaults.window),
                max_probes: defaults.max_probes,
                accel: defaults.accel.clone(),
                connections: spec.connections.unwrap_or(defaults.connections),
                rate: spec.rate.unwrap_or(defaults.rate),
                nic: spec.nic,
                backends: spec.backends,
                warmup_secs: spec.warmup_secs.unwrap_or(defaults.warmup_secs),
                interleave: spec.interleave.unwrap_or(defaults.interleave),
                loadgen_engine: spec.loadgen_engine.unwrap_or(defaults.loadgen_engine),
            };
            if !(1..=600).contains(&scenario.duration_secs)
                || !(1..=20).contains(&scenario.repetitions)
            {
                bail!(
                    "scenario `{}`: duration_secs 1..=600 and repetitions 1..=20",
                    scenario.name
                );
            }
            if !(24..=1472).contains(&scenario.payload) || scenario.flows == 0 {
                bail!(
                    "scenario `{}`: payload 24..=1472 bytes and at least one flow",
                    scenario.name
                );
            }
            if scenario.warmup_secs > 60 {
                bail!("scenario `{}`: warmup_secs 0..=60", scenario.name);
            }
            if scenario.backends.is_empty() {
                bail!("scenario `{}`: backends is empty", scenario.name);
            }
            if scenario.backends.contains(&Backend::VhostUser) && scenario.nic != GuestNic::Virtio {
                bail!(
                    "scenario `{}`: the vhost-user backend serves virtio-net only",
                    scenario.name
                );
            }
            if !(1..=1024).contains(&scenario.connections) {
                bail!("scenario `{}`: connections 1..=1024", scenario.name);
            }
            scenarios.push(scenario);
        }
        if scenarios.is_empty() {
            bail!("the file has no [[scenario]]");
        }
        Ok(scenarios)
    }

    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> Result<Vec<Scenario>> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_and_overrides_win() {
        let scenarios = ScenarioFile::parse(
            r#"
            [defaults]
            duration_secs = 2
            [[scenario]]
            name = "udp-echo"
            workload = "udp-echo"
            systems = ["warpcore-qemu", "linux-guest"]
            cores = [1, 2]
            payload = 128
            "#,
        )
        .unwrap();
        assert_eq!(scenarios.len(), 1);
        assert_eq!(scenarios[0].nic, GuestNic::Virtio);
        let igb = ScenarioFile::parse(
            "[[scenario]]\nname = \"e\"\nworkload = \"udp-echo\"\nsystems = [\"linux-guest\"]\nnic = \"igb\"\n",
        )
        .unwrap();
        assert_eq!(igb[0].nic, GuestNic::Igb);
        assert!(
            ScenarioFile::parse(
                "[[scenario]]\nname = \"e\"\nworkload = \"udp-echo\"\nsystems = [\"linux-guest\"]\nnic = \"e1000\"\n",
            )
            .is_err()
        );
        let scenario = &scenarios[0];
        assert_eq!(scenario.duration_secs, 2);
        assert_eq!(scenario.payload, 128);
        assert_eq!(scenario.flows, 4);
        assert_eq!(scenario.systems, [System::WarpcoreQemu, System::LinuxGuest]);
        assert_eq!((scenario.connections, scenario.rate), (16, 0));
        assert_eq!(scenario.backends, [Backend::Tap]);
        let both = ScenarioFile::parse(
            "[[scenario]]\nname = \"e\"\nworkload = \"udp-echo\"\nsystems = [\"linux-guest\"]\nbackends = [\"tap\", \"vhost-user\"]\n",
        )
        .unwrap();
        assert_eq!(both[0].backends, [Backend::Tap, Backend::VhostUser]);
        assert!(!scenario.interleave);
        assert_eq!(scenario.loadgen_engine, LoadgenEngine::Sockets);
        let interleaved = ScenarioFile::parse(
            "[defaults]\ninterleave = true\nloadgen_engine = \"af-xdp\"\n[[scenario]]\nname = \"e\"\nworkload = \"udp-echo\"\nsystems = [\"linux-guest\"]\n[[scenario]]\nname = \"f\"\nworkload = \"udp-echo\"\nsystems = [\"linux-guest\"]\ninterleave = false\nloadgen_engine = \"rings\"\n",
        )
        .unwrap();
        assert!(interleaved[0].interleave && !interleaved[1].interleave);
        assert_eq!(interleaved[0].loadgen_engine, LoadgenEngine::AfXdp);
        assert_eq!(interleaved[1].loadgen_engine, LoadgenEngine::Rings);
        assert!(
            ScenarioFile::parse(
                "[[scenario]]\nname = \"e\"\nworkload = \"udp-echo\"\nsystems = [\"linux-guest\"]\nloadgen_engine = \"dpdk\"\n",
            )
            .is_err()
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let base = |extra: &str| {
            format!(
                "[[scenario]]\nname = \"a\"\nworkload = \"udp-echo\"\nsystems = [\"linux-host\"]\n{extra}"
            )
        };
        for (text, reason) in [
            (base("cores = [3]"), "cores"),
            (base("payload = 2"), "payload"),
            (base("colour = 1"), "unknown field"),
            (String::from("[defaults]\naccel = \"hax\"\n"), "scenario"),
            (base("").replace("udp-echo", "tcp-echo"), "unknown variant"),
            (base("connections = 0"), "connections"),
            (base("backends = []"), "backends"),
            (base("backends = [\"af-xdp\"]"), "unknown variant"),
            (
                base("nic = \"igb\"\nbackends = [\"vhost-user\"]"),
                "virtio-net only",
            ),
            (format!("{}{}", base(""), base("")), "twice"),
        ] {
            let error = format!("{:#}", ScenarioFile::parse(&text).unwrap_err());
            assert!(error.contains(reason), "`{text}` gave `{error}`");
        }
    }

    #[test]
    fn shipped_scenario_files_parse() {
        for file in [
            "quick.toml",
            "full.toml",
            "datacenter.toml",
            "vhost-user.toml",
            "veth.toml",
            "veth-engines.toml",
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scenarios")
                .join(file);
            ScenarioFile::load(&path).unwrap();
        }
    }
}
