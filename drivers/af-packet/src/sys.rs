//! The Linux system calls behind an AF_PACKET queue: the socket and its
//! options, interface queries, the ring mapping and the transmit doorbell.

use core::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `TPACKET_V2` in `enum tpacket_versions`.
const TPACKET_V2: libc::c_int = 1;
/// `SOL_PACKET` option that hides frames this host sends (Linux 4.20).
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// Why an AF_PACKET queue could not be opened.
#[derive(Debug)]
pub enum AfPacketError {
    /// The interface name is empty, too long (15 bytes at most) or has a NUL.
    BadName,
    /// No interface of that name in this network namespace.
    NoSuchInterface(io::Error),
    /// A system call of the setup failed; names which one.
    Setup(&'static str, io::Error),
    /// The ring geometry is unusable (frames must be a power of two of at
    /// least 2048 bytes, and a block a multiple of the page size).
    BadGeometry,
}

impl fmt::Display for AfPacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadName => f.write_str("interface name must be 1 to 15 bytes, without NUL"),
            Self::NoSuchInterface(error) => write!(f, "no such interface: {error}"),
            Self::Setup(step, error) => write!(f, "{step} failed: {error}"),
            Self::BadGeometry => f.write_str("unusable ring geometry"),
        }
    }
}

impl std::error::Error for AfPacketError {}

/// `ETH_P_ALL` in network byte order, as `sockaddr_ll` and `socket` want it.
fn all_protocols() -> u16 {
    (libc::ETH_P_ALL as u16).to_be()
}

/// An `ifreq` naming `ifname`, zeroed otherwise.
fn ifreq_for(ifname: &str) -> Result<libc::ifreq, AfPacketError> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(AfPacketError::BadName);
    }
    // SAFETY: `ifreq` is plain old data for which all-zero bytes are valid.
    let mut request: libc::ifreq = unsafe { core::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    Ok(request)
}

/// Runs interface ioctl `request_code` on `socket` for `ifname`.
fn interface_ioctl(
    socket: RawFd,
    ifname: &str,
    request_code: libc::c_ulong,
) -> Result<libc::ifreq, AfPacketError> {
    let mut request = ifreq_for(ifname)?;
    // SAFETY: the SIOCGIF* requests used here read and fill one `ifreq`,
    // which `request` is and which outlives the call.
    if unsafe { libc::ioctl(socket, request_code as _, &mut request) } < 0 {
        return Err(AfPacketError::NoSuchInterface(io::Error::last_os_error()));
    }
    Ok(request)
}

/// The interface's index, MAC, flags and MTU, as the kernel reports them.
#[derive(Debug, Clone, Copy)]
pub struct InterfaceInfo {
    /// The interface index (`ifindex`).
    pub index: i32,
    /// The hardware address.
    pub mac: [u8; 6],
    /// Administratively up and running.
    pub up: bool,
    /// The MTU in bytes (0 if the kernel reported a negative one).
    pub mtu: u32,
}

/// Queries `ifname` through `socket` (any socket works).
pub(crate) fn interface_info(socket: RawFd, ifname: &str) -> Result<InterfaceInfo, AfPacketError> {
    let by_index = interface_ioctl(socket, ifname, libc::SIOCGIFINDEX)?;
    // SAFETY: SIOCGIFINDEX succeeded, so the union holds `ifru_ifindex`.
    let index = unsafe { by_index.ifr_ifru.ifru_ifindex };
    let hardware = interface_ioctl(socket, ifname, libc::SIOCGIFHWADDR)?;
    // SAFETY: SIOCGIFHWADDR succeeded, so the union holds `ifru_hwaddr`.
    let address = unsafe { hardware.ifr_ifru.ifru_hwaddr };
    let mut mac = [0; 6];
    for (byte, data) in mac.iter_mut().zip(address.sa_data) {
        *byte = data as u8;
    }
    let flags_request = interface_ioctl(socket, ifname, libc::SIOCGIFFLAGS)?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the union holds `ifru_flags`.
    let flags = i32::from(unsafe { flags_request.ifr_ifru.ifru_flags });
    let mtu_request = interface_ioctl(socket, ifname, libc::SIOCGIFMTU)?;
    // SAFETY: SIOCGIFMTU succeeded, so the union holds `ifru_mtu`.
    let mtu = unsafe { mtu_request.ifr_ifru.ifru_mtu };
    Ok(InterfaceInfo {
        index,
        mac,
        up: flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0,
        mtu: u32::try_from(mtu).unwrap_or(0),
    })
}

/// `struct ethtool_drvinfo` (linux/ethtool.h), for `ETHTOOL_GDRVINFO`.
#[repr(C)]
struct EthtoolDriverInfo {
    /* 0x00 */ command: u32,
    /* 0x04 */ driver: [u8; 32],
    /* 0x24 */ version: [u8; 32],
    /* 0x44 */ firmware_version: [u8; 32],
    /* 0x64 */ bus_info: [u8; 32],
    /* 0x84 */ expansion_rom_version: [u8; 32],
    /* 0xa4 */ reserved: [u8; 12],
    /* 0xb0 */ private_flags: u32,
    /* 0xb4 */ statistics: u32,
    /* 0xb8 */ test_info_length: u32,
    /* 0xbc */ eeprom_dump_length: u32,
    /* 0xc0 */ register_dump_length: u32,
}
const _: () = assert!(size_of::<EthtoolDriverInfo>() == 0xc4);
/// `ETHTOOL_GDRVINFO`: get driver information.
const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;

/// The name of the kernel driver behind `ifname` (`veth`, `tun`, `igb`,
/// ...), as `ethtool -i` prints it; `None` when the device answers no
/// ethtool requests.
pub(crate) fn driver_name(socket: RawFd, ifname: &str) -> Result<Option<String>, AfPacketError> {
    let mut request = ifreq_for(ifname)?;
    // SAFETY: plain old data; all-zero is valid.
    let mut info: EthtoolDriverInfo = unsafe { core::mem::zeroed() };
    info.command = ETHTOOL_GDRVINFO;
    request.ifr_ifru.ifru_data = (&raw mut info).cast();
    // SAFETY: SIOCETHTOOL with ETHTOOL_GDRVINFO reads the command word and
    // fills one `ethtool_drvinfo` at `ifru_data`, which `info` is and which
    // outlives the call.
    if unsafe { libc::ioctl(socket, libc::SIOCETHTOOL as _, &mut request) } < 0 {
        return Ok(None);
    }
    let end = info
        .driver
        .iter()
        .position(|byte| *byte == 0)
        .unwrap_or(info.driver.len());
    Ok(Some(
        String::from_utf8_lossy(&info.driver[..end]).into_owned(),
    ))
}

/// A raw packet socket that receives nothing until bound.
pub(crate) fn packet_socket() -> Result<OwnedFd, AfPacketError> {
    // SAFETY: socket has no memory preconditions. Protocol 0: no frames are
    // queued before the rings exist and `bind` names the protocol.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(AfPacketError::Setup(
            "socket(AF_PACKET)",
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: `raw` is a socket we just opened and nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// `setsockopt(SOL_PACKET, option, value)`.
fn set_packet_option<T>(
    socket: &OwnedFd,
    option: libc::c_int,
    value: &T,
    step: &'static str,
) -> Result<(), AfPacketError> {
    // SAFETY: `value` points to a live `T` of `size_of::<T>()` bytes, the
    // layout the kernel expects for `option` (callers pass the matching
    // uapi struct or int).
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            option,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if result < 0 {
        return Err(AfPacketError::Setup(step, io::Error::last_os_error()));
    }
    Ok(())
}

/// Selects TPACKET_V2 frames and bypasses the qdisc layer on transmit.
pub(crate) fn configure_socket(socket: &OwnedFd) -> Result<(), AfPacketError> {
    set_packet_option(socket, libc::PACKET_VERSION, &TPACKET_V2, "PACKET_VERSION")?;
    bypass_qdisc(socket)
}

/// Sends frames straight to the device, past the qdisc layer.
pub(crate) fn bypass_qdisc(socket: &OwnedFd) -> Result<(), AfPacketError> {
    let on: libc::c_int = 1;
    set_packet_option(
        socket,
        libc::PACKET_QDISC_BYPASS,
        &on,
        "PACKET_QDISC_BYPASS",
    )
}

/// Hides from the socket the frames this host sends on the interface
/// (Linux 4.20), so a sender does not read its own traffic back.
pub(crate) fn ignore_outgoing(socket: &OwnedFd) -> Result<(), AfPacketError> {
    let on: libc::c_int = 1;
    set_packet_option(
        socket,
        PACKET_IGNORE_OUTGOING,
        &on,
        "PACKET_IGNORE_OUTGOING",
    )
}

/// Asks for an RX (`PACKET_RX_RING`) or TX (`PACKET_TX_RING`) ring.
pub(crate) fn request_ring(
    socket: &OwnedFd,
    option: libc::c_int,
    request: &libc::tpacket_req,
) -> Result<(), AfPacketError> {
    let step = if option == libc::PACKET_RX_RING {
        "PACKET_RX_RING"
    } else {
        "PACKET_TX_RING"
    };
    set_packet_option(socket, option, request, step)
}

/// Binds the socket to every protocol on interface `index`.
pub(crate) fn bind(socket: &OwnedFd, index: i32) -> Result<(), AfPacketError> {
    bind_protocol(socket, index, all_protocols())
}

/// Binds the socket to interface `index` for sending only: protocol 0
/// registers no receive hook, so the kernel queues nothing to it.
pub(crate) fn bind_send_only(socket: &OwnedFd, index: i32) -> Result<(), AfPacketError> {
    bind_protocol(socket, index, 0)
}

/// Binds the socket to `protocol` (network order) on interface `index`.
fn bind_protocol(socket: &OwnedFd, index: i32, protocol: u16) -> Result<(), AfPacketError> {
    // SAFETY: `sockaddr_ll` is plain old data; all-zero is valid.
    let mut address: libc::sockaddr_ll = unsafe { core::mem::zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_protocol = protocol;
    address.sll_ifindex = index;
    // SAFETY: `address` is a live `sockaddr_ll` and the length says so.
    let result = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&address as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if result < 0 {
        return Err(AfPacketError::Setup("bind", io::Error::last_os_error()));
    }
    Ok(())
}

/// Puts interface `index` in promiscuous mode for as long as the socket
/// lives, so frames for the dataplane's own MAC arrive on real NICs too.
pub(crate) fn enable_promiscuous(socket: &OwnedFd, index: i32) -> Result<(), AfPacketError> {
    let request = libc::packet_mreq {
        mr_ifindex: index,
        mr_type: libc::PACKET_MR_PROMISC as u16,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    set_packet_option(
        socket,
        libc::PACKET_ADD_MEMBERSHIP,
        &request,
        "PACKET_ADD_MEMBERSHIP(promiscuous)",
    )
}

/// Joins fanout `group` in hash mode: the kernel hands each flow to one
/// member socket.
pub(crate) fn join_fanout(socket: &OwnedFd, group: u16) -> Result<(), AfPacketError> {
    let argument: libc::c_int = i32::from(group) | ((libc::PACKET_FANOUT_HASH as i32) << 16);
    set_packet_option(socket, libc::PACKET_FANOUT, &argument, "PACKET_FANOUT")
}

/// What a doorbell did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Doorbell {
    /// The kernel walked the ring.
    Rung,
    /// The kernel stopped early (`EAGAIN`: socket send buffer full;
    /// `ENOBUFS`: the device dropped a frame, which the kernel then marked
    /// `SEND_REQUEST` again). Frames from the one it stopped at on stay
    /// marked and go only with a later doorbell.
    Busy,
}

/// Tells the kernel to transmit the TX frames marked `SEND_REQUEST`, from
/// its own ring head on, without blocking. `tpacket_snd` stops at the first
/// frame not marked, and also when it cannot allocate or the device drops a
/// frame; then it may still return a byte count, so only the frames' status
/// words say which frames it took.
pub(crate) fn ring_doorbell(socket: RawFd) -> io::Result<Doorbell> {
    // SAFETY: a zero-length send with a null buffer reads no memory; for a
    // packet socket with a TX ring it only kicks the ring.
    let result = unsafe { libc::send(socket, core::ptr::null(), 0, libc::MSG_DONTWAIT) };
    if result < 0 {
        let error = io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ENOBUFS) => Ok(Doorbell::Busy),
            _ => Err(error),
        };
    }
    Ok(Doorbell::Rung)
}

/// Sends `frames` on the bound socket with one `sendmmsg(2)`, without
/// blocking; returns how many the kernel took (a prefix of `frames`; the
/// frame after it was refused or dropped by the device).
/// At most [`dataplane::BURST_SIZE`] frames go per call.
pub(crate) fn send_frames(socket: RawFd, frames: &[&[u8]]) -> io::Result<usize> {
    const MAX: usize = dataplane::BURST_SIZE;
    let count = frames.len().min(MAX);
    // SAFETY: iovec and mmsghdr are plain old data; all-zero is valid.
    let mut vectors: [libc::iovec; MAX] = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    let mut messages: [libc::mmsghdr; MAX] = unsafe { core::mem::zeroed() };
    for ((vector, message), frame) in vectors.iter_mut().zip(&mut messages).zip(frames) {
        vector.iov_base = frame.as_ptr().cast_mut().cast();
        vector.iov_len = frame.len();
        message.msg_hdr.msg_iov = vector;
        message.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the first `count` headers each point to one iovec that
    // describes a live frame; the kernel only reads them (a send), and all
    // of them outlive the call.
    let sent = unsafe {
        libc::sendmmsg(
            socket,
            messages.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}
