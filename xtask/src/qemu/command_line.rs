//! The QEMU command line: machine, accelerator, memory, vCPUs, the kernel
//! and its spec module, and the virtio-net devices on taps.

use crate::qemu::image::qemu_binary;
use clap::ValueEnum;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The QEMU machine type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Machine {
    /// `-M q35`: PCIe with ECAM (MCFG), SeaBIOS assigns BARs.
    Q35,
    /// `-M microvm`: no firmware tables for PCI unless `pcie=on`, qboot, fastest boot.
    Microvm,
    /// `-M pc` (i440FX): legacy PCI through ports 0xcf8/0xcfc.
    Pc,
}

impl Machine {
    /// The `-M` argument. microvm gets `pcie=on` only when PCI devices are requested,
    /// because the PCIe host bridge costs boot time.
    fn argument(self, wants_pci: bool) -> &'static str {
        match (self, wants_pci) {
            (Machine::Q35, _) => "q35",
            (Machine::Microvm, false) => "microvm",
            (Machine::Microvm, true) => "microvm,pcie=on",
            (Machine::Pc, _) => "pc",
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.argument(false))
    }
}

/// The NIC model QEMU gives the appliance for a spec interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NicModel {
    /// `-device virtio-net-pci` (multi-queue, MSI-X).
    Virtio,
    /// `-device igb`: QEMU's Intel 82576 (QEMU 8 and later), driven by
    /// drivers/igb with one queue pair.
    Igb,
}

/// The QEMU accelerator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Accel {
    /// Multi-threaded TCG (the default: nested KVM here is slower and unreliable).
    Tcg,
    /// KVM with the host CPU model, for machines with real KVM.
    Kvm,
}

impl Accel {
    /// Parses `tcg` or `kvm` (as a scenario file names it).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        <Self as ValueEnum>::from_str(text, false)
            .map_err(|_| anyhow::anyhow!("unknown accelerator `{text}` (expected tcg or kvm)"))
    }
}

/// How to boot the kernel.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    /// Number of vCPUs (`-smp`).
    pub smp: u32,
    /// Guest RAM in MiB (`-m`).
    pub mem_mib: u32,
    /// Machine type.
    pub machine: Machine,
    /// Accelerator.
    pub accel: Accel,
    /// Spec file handed to the kernel as the first PVH module (`-initrd`).
    pub spec: Option<PathBuf>,
    /// Kernel command line (`-append`), e.g. `test=boot`.
    pub cmdline: String,
    /// Extra QEMU arguments (devices, netdevs).
    pub extra_args: Vec<String>,
    /// Which kernel image boots.
    pub image: Image,
    /// The QEMU binary; `None` is [`qemu_binary`] (`$WARPCORE_QEMU`, else the
    /// system's QEMU 10).
    pub qemu: Option<&'static str>,
}

impl QemuConfig {
    /// The QEMU binary that boots this configuration.
    pub fn binary(&self) -> &'static str {
        self.qemu.unwrap_or_else(qemu_binary)
    }
}

/// Which kernel image a configuration boots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Image {
    /// The release image: the appliance, or the test image (it has the
    /// example services) when the spec names one of them.
    #[default]
    Appliance,
    /// The test image, with the in-kernel test scenarios (cargo feature
    /// `scenarios`), for `test=NAME`.
    Scenarios,
}

impl Default for QemuConfig {
    fn default() -> Self {
        Self {
            smp: 1,
            mem_mib: 512,
            machine: Machine::Q35,
            accel: Accel::Tcg,
            spec: None,
            cmdline: String::new(),
            extra_args: Vec::new(),
            image: Image::Appliance,
            qemu: None,
        }
    }
}

/// The QEMU command line for `config` booting `kernel`; `interactive` multiplexes the
/// monitor on stdio so that Ctrl-A X quits.
pub fn qemu_command(config: &QemuConfig, kernel: &Path, interactive: bool) -> Command {
    let wants_pci = config.extra_args.iter().any(|arg| arg.contains("-pci"));
    let mut command = Command::new(config.binary());
    command
        .args(["-M", config.machine.argument(wants_pci)])
        .args(["-m", &config.mem_mib.to_string()])
        .args(["-smp", &config.smp.to_string()]);
    match config.accel {
        Accel::Tcg => command.args(["-accel", "tcg,thread=multi"]),
        Accel::Kvm => command.args(["-accel", "kvm", "-cpu", "host,-arch-capabilities"]),
    };
    command
        .arg("-kernel")
        .arg(kernel)
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .args(["-no-reboot", "-display", "none", "-nic", "none"])
        .args(["-serial", if interactive { "mon:stdio" } else { "stdio" }]);
    if !interactive {
        command.args(["-monitor", "none"]);
    }
    let mut cmdline = config.cmdline.clone();
    if config.machine == Machine::Microvm && wants_pci {
        // microvm has no MCFG; its ECAM window is fixed at 0xe0000000 (hw/i386/microvm.c).
        cmdline.push_str(" pci_ecam=0xe0000000");
    }
    let cmdline = cmdline.trim();
    if !cmdline.is_empty() {
        command.args(["-append", cmdline]);
    }
    if let Some(spec) = &config.spec {
        // The spec, with the Wasm modules it names bundled after it.
        command
            .arg("-initrd")
            .arg(crate::spec_file::boot_module(spec));
    }
    command.args(&config.extra_args);
    command
}

/// Arguments that give QEMU one NIC of `model` on `tap` (index `index`);
/// igb's tap has one queue whatever `queues` says: the device's own RSS
/// spreads the frames over the driver's queue pairs.
///
/// QEMU's igb registers its SR-IOV virtual functions at the function's
/// slot + 16 and + 17 when it is created, so two igb functions in
/// neighbouring slots collide ("slot 19 function 0 not available for
/// igbvf"): igb `index` sits at slot 4 + 2 × index, its functions at
/// 20 + 2 × index and the next, free of each other.
pub fn model_nic_args(
    model: NicModel,
    index: usize,
    tap: &str,
    mac: &str,
    queues: u16,
) -> Vec<String> {
    match model {
        NicModel::Virtio => tap_nic_args(index, tap, mac, queues),
        NicModel::Igb => vec![
            "-netdev".into(),
            format!("tap,id=net{index},ifname={tap},script=no,downscript=no,vhost=off"),
            "-device".into(),
            format!(
                "igb,netdev=net{index},mac={mac},romfile=,addr={:#x}",
                IGB_FIRST_SLOT + 2 * index
            ),
        ],
    }
}

/// The PCI slot of the first igb function (see [`model_nic_args`]).
const IGB_FIRST_SLOT: usize = 4;

/// Arguments that give QEMU one virtio-net device on `tap` (index `index`).
/// `in_order=on`: the device offers `VIRTIO_F_IN_ORDER` (off by default in
/// QEMU 10), which warpcore's driver negotiates.
pub fn tap_nic_args(index: usize, tap: &str, mac: &str, queues: u16) -> Vec<String> {
    let mut netdev = format!("tap,id=net{index},ifname={tap},script=no,downscript=no,vhost=off");
    let mut device = format!("virtio-net-pci,netdev=net{index},mac={mac},romfile=,in_order=on");
    if queues > 1 {
        netdev.push_str(&format!(",queues={queues}"));
        device.push_str(&format!(",mq=on,vectors={}", 2 * queues + 2));
    }
    vec!["-netdev".into(), netdev, "-device".into(), device]
}

/// Arguments that give QEMU one virtio-net device on a vhost-user backend
/// listening on `socket` (loadgen `--vhost-user`), with guest RAM of
/// `mem_mib` MiB in shared memory the backend can map (`mem_mib` must be
/// the configuration's `-m`).
pub fn vhost_user_nic_args(socket: &Path, mac: &str, queues: u16, mem_mib: u32) -> Vec<String> {
    vhost_user_nics_args(&[(socket, mac)], queues, mem_mib)
}

/// [`vhost_user_nic_args`] for several devices, one per (socket, MAC) in
/// the order of the guest's interfaces, over one shared memory backend.
/// `in_order=on`: QEMU offers `VIRTIO_F_IN_ORDER` to the guest when the
/// backend does too (loadgen's does).
pub fn vhost_user_nics_args(nics: &[(&Path, &str)], queues: u16, mem_mib: u32) -> Vec<String> {
    let mut args = vec![
        "-object".into(),
        format!("memory-backend-memfd,id=mem,size={mem_mib}M,share=on"),
        "-numa".into(),
        "node,memdev=mem".into(),
    ];
    for (index, (socket, mac)) in nics.iter().enumerate() {
        let mut netdev = format!("vhost-user,id=net{index},chardev=vhost{index}");
        let mut device = format!("virtio-net-pci,netdev=net{index},mac={mac},romfile=,in_order=on");
        if queues > 1 {
            netdev.push_str(&format!(",queues={queues}"));
            device.push_str(&format!(",mq=on,vectors={}", 2 * queues + 2));
        }
        args.extend([
            "-chardev".into(),
            format!("socket,id=vhost{index},path={}", socket.display()),
            "-netdev".into(),
            netdev,
            "-device".into(),
            device,
        ]);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nic_args_name_the_tap_and_queues() {
        let args = tap_nic_args(1, "wct0", "02:00:00:00:00:01", 2);
        assert_eq!(
            args[1],
            "tap,id=net1,ifname=wct0,script=no,downscript=no,vhost=off,queues=2"
        );
        assert_eq!(
            args[3],
            "virtio-net-pci,netdev=net1,mac=02:00:00:00:00:01,romfile=,in_order=on,mq=on,vectors=6"
        );
        assert!(!tap_nic_args(0, "t", "m", 1)[3].contains("mq"));
        let igb = model_nic_args(NicModel::Igb, 0, "wct0", "02:00:00:00:00:01", 2);
        assert_eq!(
            igb[3],
            "igb,netdev=net0,mac=02:00:00:00:00:01,romfile=,addr=0x4"
        );
        let second = model_nic_args(NicModel::Igb, 1, "wct1", "02:00:00:00:00:02", 1);
        assert!(second[3].ends_with(",addr=0x6"));
        assert!(!igb[1].contains("queues"));
    }

    #[test]
    fn vhost_user_args_share_memory_and_name_the_socket() {
        let args = vhost_user_nic_args(Path::new("/tmp/v.sock"), "02:00:00:00:00:01", 2, 512);
        assert_eq!(args[1], "memory-backend-memfd,id=mem,size=512M,share=on");
        assert_eq!(args[5], "socket,id=vhost0,path=/tmp/v.sock");
        assert_eq!(args[7], "vhost-user,id=net0,chardev=vhost0,queues=2");
        assert!(args[9].ends_with(",mq=on,vectors=6"));
        assert!(!vhost_user_nic_args(Path::new("s"), "m", 1, 64)[7].contains("queues"));
        let two = vhost_user_nics_args(
            &[
                (Path::new("/tmp/a"), "02:00:00:00:01:01"),
                (Path::new("/tmp/b"), "02:00:00:00:02:01"),
            ],
            1,
            512,
        );
        assert_eq!(two.len(), 4 + 2 * 6);
        assert_eq!(two[11], "socket,id=vhost1,path=/tmp/b");
        assert_eq!(two[13], "vhost-user,id=net1,chardev=vhost1");
        assert_eq!(
            two[15],
            "virtio-net-pci,netdev=net1,mac=02:00:00:00:02:01,romfile=,in_order=on"
        );
    }

    #[test]
    fn machines_and_accelerators_read_as_typed() {
        assert_eq!(Machine::Microvm.to_string(), "microvm");
        assert_eq!(Accel::parse("kvm").unwrap(), Accel::Kvm);
        assert!(Accel::parse("hax").is_err());
    }
}
