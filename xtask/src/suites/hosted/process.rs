//! A `warpcore-hosted` process under test, attached to client namespaces
//! through a tap or a veth pair (AF_PACKET or AF_XDP); every namespace,
//! device and process is torn down by a guard, also on failure.

use crate::counters::Counters;
use crate::net::devices::{Tap, Veth};
use crate::net::netns::{Netns, unique_name};
use crate::shell::host::workspace_root;
use crate::shell::process::{ChildGuard, spawn_reading_lines, wait_for_line};
use anyhow::{Context, Result, ensure};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// How long the appliance gets to say `ready` (a bound, not a check).
const READY_WAIT: Duration = Duration::from_secs(30);

/// Which hosted driver a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// A tap device.
    Tap,
    /// One end of a veth pair, through AF_PACKET.
    AfPacket,
    /// One end of a veth pair, through AF_XDP (copy mode: veth has no
    /// zero copy).
    AfXdp,
}

impl Link {
    /// The driver's name in `--nic`.
    pub fn driver(self) -> &'static str {
        match self {
            Self::Tap => "tap",
            Self::AfPacket => "af-packet",
            Self::AfXdp => "af-xdp",
        }
    }

    /// True when the appliance runs in a namespace of its own, holding
    /// its veth end.
    pub fn is_veth(self) -> bool {
        matches!(self, Self::AfPacket | Self::AfXdp)
    }
}

/// One appliance interface and the client namespace that reaches it. The
/// guards drop in field order: devices, then namespaces.
pub struct Attachment {
    /// `NAME=DRIVER:IFNAME` for `--nic`.
    pub nic_argument: String,
    /// The client-side interface, in `client`.
    pub client_ifname: String,
    /// The appliance's end of a veth pair (`None` on a tap).
    pub appliance_ifname: Option<String>,
    _tap: Option<Tap>,
    _veth: Option<Veth>,
    /// Where the client tools run (for a tap, also where the appliance runs).
    pub client: Netns,
}

/// Connects spec interface `interface` to a client namespace holding
/// `client_address`: a tap whose kernel side is in the client namespace
/// (the appliance must then run there too), or a veth pair with the
/// appliance end in `appliance`.
pub fn attach(
    link: Link,
    interface: &str,
    client_address: &str,
    appliance: Option<&Netns>,
) -> Result<Attachment> {
    attach_with_queues(link, interface, client_address, appliance, 1)
}

/// [`attach`] over a veth pair of `queues` queues per end (the tap ignores
/// `queues`: it gets one per appliance core when opened).
///
/// On AF_XDP the client end's transmit checksum offload is turned off:
/// a veth hands frames from the client's stack over with the transport
/// checksum left for "hardware" (`CHECKSUM_PARTIAL`), which AF_PACKET
/// reports (the af-packet driver completes it) but XDP does not, so an
/// AF_XDP socket would see a partial checksum. The same holds for every
/// AF_XDP user on veth (DPDK's net_af_xdp too); real NICs deliver full
/// checksums.
pub fn attach_with_queues(
    link: Link,
    interface: &str,
    client_address: &str,
    appliance: Option<&Netns>,
    queues: u32,
) -> Result<Attachment> {
    let client = Netns::create("wchc")?;
    match link {
        Link::Tap => {
            let tap = Tap::create("wcht", Some(&client), true)?;
            client.configure(tap.name(), Some(client_address))?;
            Ok(Attachment {
                nic_argument: format!("{interface}=tap:{}", tap.name()),
                client_ifname: tap.name().to_owned(),
                appliance_ifname: None,
                _tap: Some(tap),
                _veth: None,
                client,
            })
        }
        Link::AfPacket | Link::AfXdp => {
            let veth = Veth::with_queues("wchv", appliance, Some(&client), queues)?;
            client.configure(veth.second(), Some(client_address))?;
            if link == Link::AfXdp {
                client.run(&["ethtool", "-K", veth.second(), "tx", "off"])?;
            }
            Ok(Attachment {
                nic_argument: format!("{interface}={}:{}", link.driver(), veth.first()),
                client_ifname: veth.second().to_owned(),
                appliance_ifname: Some(veth.first().to_owned()),
                _tap: None,
                _veth: Some(veth),
                client,
            })
        }
    }
}

/// A running `warpcore-hosted`, killed on drop if still running.
pub struct Appliance {
    process: ChildGuard,
    lines: Receiver<String>,
    counters_file: PathBuf,
}

impl Appliance {
    /// Starts the appliance inside `netns` and waits (bounded) for `ready`.
    pub fn start(
        binary: &Path,
        netns: &Netns,
        spec: &str,
        nics: &[&str],
        cores: usize,
    ) -> Result<Self> {
        let counters_file = std::env::temp_dir().join(format!("{}.counters", unique_name("wchc")));
        let mut command = netns.command(&binary.to_string_lossy());
        command
            .current_dir(workspace_root())
            .arg("--spec")
            .arg(spec)
            .args(["--cores", &cores.to_string()])
            .arg("--counters-file")
            .arg(&counters_file)
            .stdin(Stdio::null());
        for nic in nics {
            command.args(["--nic", nic]);
        }
        let (process, lines) = spawn_reading_lines(&mut command)?;
        let appliance = Self {
            process,
            lines,
            counters_file,
        };
        wait_for_line(&appliance.lines, "warpcore-hosted: ready", READY_WAIT)?;
        Ok(appliance)
    }

    /// The latest counters, keyed `core=C <key>=<name>...` without `value`.
    pub fn counters(&self) -> Result<Counters> {
        // The file is rewritten every 100 ms; wait for two rewrites so it
        // reflects what happened before this call.
        std::thread::sleep(Duration::from_millis(250));
        let text = std::fs::read_to_string(&self.counters_file)
            .with_context(|| format!("reading {}", self.counters_file.display()))?;
        Counters::parse_dump(&text)
    }

    /// The lines it printed since the last look (its log: info and
    /// below), without waiting.
    pub fn lines_so_far(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Stops the appliance with SIGTERM and checks it exits 0 and prints its
    /// final counters.
    pub fn stop(mut self) -> Result<Counters> {
        self.process.signal("TERM")?;
        let mut dump = String::new();
        while let Ok(line) = self.lines.recv_timeout(READY_WAIT) {
            dump.push_str(&line);
            dump.push('\n');
            if line == "counters end" {
                break;
            }
        }
        let status = self.process.child_mut().wait()?;
        ensure!(status.success(), "warpcore-hosted exited with {status}");
        let _ = std::fs::remove_file(&self.counters_file);
        Counters::parse_dump(&dump)
    }
}

/// `examples/echo.toml` on one link with `cores` workers, and the client
/// namespace that reaches it. Fields drop in order: the appliance, then the
/// devices and client namespace, then the appliance's own namespace.
pub struct EchoSetup {
    /// The running appliance.
    pub appliance: Appliance,
    /// Its interface and the client namespace.
    pub attachment: Attachment,
    /// The appliance's own namespace (on a veth), where its end is.
    pub appliance_netns: Option<Netns>,
}

impl EchoSetup {
    /// Starts the appliance on `link` with `cores` workers.
    pub fn start(binary: &Path, link: Link, cores: usize) -> Result<Self> {
        Self::with_spec(binary, link, cores, "examples/echo.toml")
    }

    /// Starts the appliance with `spec` (one interface `eth0` at
    /// 10.0.0.2/24) on `link` with `cores` workers, mapped by `--nic`.
    pub fn with_spec(binary: &Path, link: Link, cores: usize, spec: &str) -> Result<Self> {
        Self::start_with(binary, link, cores, spec, false)
    }

    /// [`start`](Self::start) with the link named in the spec instead of
    /// `--nic`: `examples/echo.toml` with `driver = "<link>"` and
    /// `ifname = "<veth end>"` (its `first_queue` left at the default 0, the
    /// queue `--nic eth0=<link>:<veth end>` binds).
    pub fn with_driver_in_spec(binary: &Path, link: Link, cores: usize) -> Result<Self> {
        Self::start_with(binary, link, cores, "examples/echo.toml", true)
    }

    fn start_with(
        binary: &Path,
        link: Link,
        cores: usize,
        spec: &str,
        driver_in_spec: bool,
    ) -> Result<Self> {
        // On a tap the appliance runs where the tap is, in the client's
        // namespace; on AF_PACKET it gets its own, holding its veth end.
        let appliance_netns = if link.is_veth() {
            Some(Netns::create("wcha")?)
        } else {
            None
        };
        // AF_XDP binds one socket per core to queues 0.., so the veth gets
        // a queue per core.
        let attachment = attach_with_queues(
            link,
            "eth0",
            "10.0.0.1/24",
            appliance_netns.as_ref(),
            cores as u32,
        )?;
        let run_in = appliance_netns.as_ref().unwrap_or(&attachment.client);
        let appliance = if driver_in_spec {
            let ifname = attachment
                .appliance_ifname
                .as_deref()
                .unwrap_or(&attachment.client_ifname);
            let text = std::fs::read_to_string(workspace_root().join(spec))
                .with_context(|| format!("reading {spec}"))?;
            ensure!(
                text.contains("driver = \"virtio\""),
                "{spec}: no `driver = \"virtio\"` line to replace"
            );
            let text = text.replacen(
                "driver = \"virtio\"",
                &format!("driver = \"{}\"\nifname = \"{ifname}\"", link.driver()),
                1,
            );
            let path = std::env::temp_dir().join(format!("{}.toml", unique_name("wchs")));
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            let started = Appliance::start(binary, run_in, &path.to_string_lossy(), &[], cores);
            let _ = std::fs::remove_file(&path);
            started?
        } else {
            Appliance::start(binary, run_in, spec, &[&attachment.nic_argument], cores)?
        };
        Ok(Self {
            appliance,
            attachment,
            appliance_netns,
        })
    }
}
