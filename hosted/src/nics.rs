//! Mapping spec interfaces to hosted NICs (`--nic`), and opening one queue of
//! each on a core.

use crate::cli::{HostedDriver, NicOverride};
use crate::counters::DriverStats;
use af_packet_nic::{AfPacketConfig, AfPacketNic, DEFAULT_TX_KICK_FRAMES, TxPath};
use af_xdp_nic::{AfXdpConfig, AfXdpNic, XdpProgram};
use control::spec::{Driver, Interface, Spec};
use dataplane::{MacAddr, Mempool, Nic};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use tap_nic::{TapConfig, TapError, TapNic};

/// Buffers in each NIC queue's receive pool.
const RX_POOL_BUFFERS: usize = 1024;

/// How one spec interface runs hosted.
#[derive(Debug, Clone)]
pub struct NicPlan {
    /// Index of the interface in the spec.
    pub interface: usize,
    /// Hosted driver.
    pub driver: HostedDriver,
    /// Linux interface.
    pub ifname: String,
    /// The spec's MAC for it.
    pub mac: MacAddr,
    /// af-xdp: the queue core 0 binds (core N binds `queue + N`).
    pub queue: u32,
    /// af-packet: how frames are transmitted (`--af-packet-tx`).
    pub af_packet_tx: TxPath,
    /// af-xdp: the XDP program steering the queues into the sockets, set
    /// by [`attach_programs`]; detached when the last holder drops it.
    pub program: Option<Arc<XdpProgram>>,
}

/// Decides a hosted NIC for every spec interface: its `--nic` override, else
/// the spec's driver if hosted (over the Linux interface of the same name).
/// Fails naming the interface or override that cannot work.
pub fn plan(spec: &Spec, overrides: &[NicOverride]) -> Result<Vec<NicPlan>, String> {
    for nic in overrides {
        if spec.interface_index(&nic.interface).is_none() {
            let known: Vec<&str> = spec.interfaces.iter().map(|i| i.name.as_str()).collect();
            return Err(format!(
                "--nic {}: the spec has no interface `{}` (it has: {})",
                nic.interface,
                nic.interface,
                known.join(", ")
            ));
        }
    }
    spec.interfaces
        .iter()
        .enumerate()
        .map(|(index, interface)| {
            let chosen = overrides.iter().find(|nic| nic.interface == interface.name);
            let (driver, ifname, queue) = match (chosen, interface.driver) {
                (Some(nic), _) => (nic.driver, nic.ifname.clone(), nic.queue),
                (None, Driver::Tap) => (HostedDriver::Tap, linux_name(interface), 0),
                (None, Driver::AfPacket) => (HostedDriver::AfPacket, linux_name(interface), 0),
                (None, Driver::AfXdp) => (
                    HostedDriver::AfXdp,
                    linux_name(interface),
                    interface.first_queue,
                ),
                (None, other) => {
                    return Err(format!(
                        "interface[{index}].driver: `{}` ({}) cannot run hosted; map it with \
                         --nic {}=tap:IFNAME, --nic {}=af-packet:IFNAME or --nic {}=af-xdp:IFNAME",
                        other.name(),
                        interface.name,
                        interface.name,
                        interface.name,
                        interface.name
                    ));
                }
            };
            Ok(NicPlan {
                interface: index,
                driver,
                ifname,
                mac: interface.mac,
                queue,
                af_packet_tx: TxPath::Auto,
                program: None,
            })
        })
        .collect()
}

/// The Linux interface a spec interface with a hosted driver runs on: its
/// `ifname`, else its own name.
fn linux_name(interface: &Interface) -> String {
    interface
        .ifname
        .clone()
        .unwrap_or_else(|| interface.name.clone())
}

/// Attaches the XDP redirect program to every af-xdp interface (once per
/// Linux interface), before any core opens a socket, so that a failure
/// names the interface and libxdp's reason and nothing has started yet.
pub fn attach_programs(plans: &mut [NicPlan]) -> Result<(), String> {
    for index in 0..plans.len() {
        if plans[index].driver != HostedDriver::AfXdp {
            continue;
        }
        let shared = plans[..index]
            .iter()
            .find(|earlier| earlier.ifname == plans[index].ifname)
            .and_then(|earlier| earlier.program.clone());
        let program = match shared {
            Some(program) => program,
            None => {
                let program = XdpProgram::attach(&plans[index].ifname)
                    .map_err(|error| format!("af-xdp {}: {error}", plans[index].ifname))?;
                log::info!(
                    "af-xdp {}: XDP program {} ({} mode)",
                    plans[index].ifname,
                    if program.attached_here() {
                        "attached"
                    } else {
                        "already attached, reused"
                    },
                    program.mode()
                );
                Arc::new(program)
            }
        };
        plans[index].program = Some(program);
    }
    Ok(())
}

/// A freshly opened queue and what the runtime keeps of it.
pub struct OpenedNic {
    /// The queue, for the executor.
    pub nic: Box<dyn Nic>,
    /// Its name, like `tap:wctap0.q1`.
    pub name: String,
    /// Its counters.
    pub stats: DriverStats,
    /// Readable when the queue has a frame: what an idle worker waits on.
    pub wait_fd: OwnedFd,
}

/// Opens queue `core` (of `cores`) of `plan`'s interface, with a receive
/// pool owned by the calling thread.
pub fn open(plan: &NicPlan, core: usize, cores: usize) -> Result<OpenedNic, String> {
    let pool = Mempool::with_heap(RX_POOL_BUFFERS, dataplane::mem::mempool::DEFAULT_HEADROOM)
        .map_err(|error| format!("receive pool for {}: {error}", plan.ifname))?;
    match plan.driver {
        HostedDriver::Tap => {
            let config = TapConfig {
                ifname: plan.ifname.clone(),
                multi_queue: true,
                queue: core,
                mac: Some(plan.mac),
            };
            // A tap made without `multi_queue` refuses IFF_MULTI_QUEUE; one
            // core can still use it as a plain tap.
            let nic = match TapNic::open(&config, pool) {
                Ok(nic) => nic,
                Err(TapError::Attach(_)) if cores == 1 => {
                    let single = TapConfig {
                        multi_queue: false,
                        ..config
                    };
                    let pool = Mempool::with_heap(
                        RX_POOL_BUFFERS,
                        dataplane::mem::mempool::DEFAULT_HEADROOM,
                    )
                    .map_err(|error| format!("receive pool for {}: {error}", plan.ifname))?;
                    TapNic::open(&single, pool)
                        .map_err(|error| format!("tap {}: {error}", plan.ifname))?
                }
                Err(error) => return Err(format!("tap {}: {error}", plan.ifname)),
            };
            let wait_fd = nic
                .wait_fd()
                .map_err(|error| format!("tap {}: duplicating the queue: {error}", plan.ifname))?;
            Ok(OpenedNic {
                name: nic.name().to_owned(),
                stats: DriverStats::Tap(nic.stats().clone()),
                wait_fd,
                nic: Box::new(nic),
            })
        }
        HostedDriver::AfPacket => {
            let config = AfPacketConfig {
                ifname: plan.ifname.clone(),
                // Fanout groups are per namespace: the pid keeps runs apart,
                // the interface index keeps this run's interfaces apart.
                fanout_group: (cores > 1).then(|| {
                    (std::process::id() as u16).wrapping_mul(16) ^ (plan.interface as u16)
                }),
                queue: core,
                ring_frames: 512,
                mac: Some(plan.mac),
                tx_kick_frames: DEFAULT_TX_KICK_FRAMES,
                tx_path: plan.af_packet_tx,
            };
            let nic = AfPacketNic::open(&config, pool)
                .map_err(|error| format!("af-packet {}: {error}", plan.ifname))?;
            let wait_fd = nic.wait_fd().map_err(|error| {
                format!("af-packet {}: duplicating the socket: {error}", plan.ifname)
            })?;
            Ok(OpenedNic {
                name: nic.name().to_owned(),
                stats: DriverStats::AfPacket(nic.stats().clone()),
                wait_fd,
                nic: Box::new(nic),
            })
        }
        HostedDriver::AfXdp => {
            let program = plan
                .program
                .clone()
                .ok_or_else(|| format!("af-xdp {}: no XDP program attached", plan.ifname))?;
            let queue = plan.queue + core as u32;
            let config = AfXdpConfig {
                queue,
                mac: Some(plan.mac),
                ..AfXdpConfig::new(&plan.ifname)
            };
            let nic = AfXdpNic::open(&config, program)
                .map_err(|error| format!("af-xdp {} queue {queue}: {error}", plan.ifname))?;
            log::info!(
                "af-xdp {} queue {queue}: {} mode, {}",
                plan.ifname,
                if nic.is_zero_copy() {
                    "zero-copy (XDP_ZEROCOPY)"
                } else {
                    "copy (XDP_COPY)"
                },
                if nic.is_busy_polling() {
                    "busy polling"
                } else {
                    "no busy polling (the kernel refused SO_PREFER_BUSY_POLL)"
                }
            );
            let wait_fd = nic.wait_fd().map_err(|error| {
                format!("af-xdp {}: duplicating the socket: {error}", plan.ifname)
            })?;
            Ok(OpenedNic {
                name: nic.name().to_owned(),
                stats: DriverStats::AfXdp(nic.stats().clone()),
                wait_fd,
                nic: Box::new(nic),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "\
[[interface]]
name = \"eth0\"
driver = \"virtio\"
mac = \"02:00:00:00:00:01\"
address = \"10.0.0.2/24\"

[[interface]]
name = \"eth1\"
driver = \"af-packet\"
mac = \"02:00:00:00:00:02\"
address = \"10.0.1.2/24\"
";

    fn override_of(text: &str) -> NicOverride {
        let (interface, rest) = text.split_once('=').unwrap();
        let (driver, ifname) = rest.split_once(':').unwrap();
        NicOverride {
            interface: interface.into(),
            driver: if driver == "tap" {
                HostedDriver::Tap
            } else {
                HostedDriver::AfPacket
            },
            ifname: ifname.into(),
            queue: 0,
        }
    }

    #[test]
    fn overrides_and_hosted_spec_drivers_map() {
        let spec = Spec::parse(SPEC, &services::Registry::with_builtin()).unwrap();
        let plans = plan(&spec, &[override_of("eth0=tap:wctap0")]).unwrap();
        assert_eq!(plans[0].driver, HostedDriver::Tap);
        assert_eq!(plans[0].ifname, "wctap0");
        assert_eq!(plans[0].mac, MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(plans[1].driver, HostedDriver::AfPacket);
        assert_eq!(plans[1].ifname, "eth1");
    }

    #[test]
    fn spec_af_xdp_maps_like_its_nic_option() {
        let text = SPEC.replace(
            "\"af-packet\"",
            "\"af-xdp\"\nifname = \"veth1\"\nfirst_queue = 3",
        );
        let spec = Spec::parse(&text, &services::Registry::with_builtin()).unwrap();
        let plans = plan(&spec, &[override_of("eth0=tap:wctap0")]).unwrap();
        let option = crate::cli::parse_nic("eth1=af-xdp:veth1:3").unwrap();
        assert_eq!(
            (plans[1].driver, plans[1].ifname.as_str(), plans[1].queue),
            (option.driver, option.ifname.as_str(), option.queue)
        );
        assert_eq!(plans[1].driver, HostedDriver::AfXdp);
    }

    #[test]
    fn unmapped_virtio_and_unknown_names_are_refused() {
        let spec = Spec::parse(SPEC, &services::Registry::with_builtin()).unwrap();
        let error = plan(&spec, &[]).unwrap_err();
        assert!(error.contains("interface[0].driver"), "{error}");
        let error = plan(&spec, &[override_of("eth9=tap:x")]).unwrap_err();
        assert!(error.contains("eth9"), "{error}");
    }
}
