//! The Linux system calls behind an XSK socket: the socket, its UMEM
//! registration, ring sizes and mappings, bind, options, statistics, the
//! wake-up calls, and interface queries.

use core::fmt;
use core::ptr::NonNull;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::program::ProgramError;

/// Why an AF_XDP queue could not be opened.
#[derive(Debug)]
pub enum AfXdpError {
    /// The interface name is empty, too long (15 bytes at most) or has a NUL.
    BadName,
    /// No interface of that name in this network namespace.
    NoSuchInterface(io::Error),
    /// The kernel refuses AF_XDP sockets (built without
    /// `CONFIG_XDP_SOCKETS`).
    Unsupported(io::Error),
    /// Not allowed: AF_XDP and XDP programs need `CAP_NET_RAW`,
    /// `CAP_NET_ADMIN` and `CAP_BPF` (or root).
    Permission(&'static str, io::Error),
    /// Binding to the queue failed (a queue the interface does not have,
    /// zero copy asked of a driver without it, ...).
    Bind {
        /// The queue asked for.
        queue: u32,
        /// What the kernel said.
        error: io::Error,
    },
    /// A system call of the setup failed; names which one.
    Setup(&'static str, io::Error),
    /// The UMEM's mempool could not be made.
    Pool(dataplane::MempoolError),
    /// The XDP program could not take the socket.
    Program(ProgramError),
}

impl fmt::Display for AfXdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadName => f.write_str("interface name must be 1 to 15 bytes, without NUL"),
            Self::NoSuchInterface(error) => write!(f, "no such interface: {error}"),
            Self::Unsupported(error) => write!(
                f,
                "this kernel refuses AF_XDP sockets (CONFIG_XDP_SOCKETS): {error}"
            ),
            Self::Permission(step, error) => write!(
                f,
                "{step}: {error} (AF_XDP needs root or CAP_NET_RAW, CAP_NET_ADMIN and CAP_BPF)"
            ),
            Self::Bind { queue, error } => write!(f, "binding to queue {queue} failed: {error}"),
            Self::Setup(step, error) => write!(f, "{step} failed: {error}"),
            Self::Pool(error) => write!(f, "UMEM pool: {error}"),
            Self::Program(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for AfXdpError {}

/// The result of a libc call returning -1 on failure, as `io::Result`.
fn check(step: &'static str, result: libc::c_int) -> Result<libc::c_int, AfXdpError> {
    if result >= 0 {
        return Ok(result);
    }
    let error = io::Error::last_os_error();
    Err(match error.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => AfXdpError::Permission(step, error),
        _ => AfXdpError::Setup(step, error),
    })
}

/// The index of interface `ifname`.
pub(crate) fn interface_index(ifname: &str) -> Result<u32, AfXdpError> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(AfXdpError::BadName);
    }
    let name = std::ffi::CString::new(bytes).map_err(|_| AfXdpError::BadName)?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(AfXdpError::NoSuchInterface(io::Error::last_os_error()));
    }
    Ok(index)
}

/// A fresh AF_XDP socket.
pub(crate) fn xsk_socket() -> Result<OwnedFd, AfXdpError> {
    // SAFETY: plain socket(2); the descriptor is checked below.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        let error = io::Error::last_os_error();
        return Err(match error.raw_os_error() {
            Some(libc::EAFNOSUPPORT) => AfXdpError::Unsupported(error),
            Some(libc::EPERM | libc::EACCES) => AfXdpError::Permission("socket(AF_XDP)", error),
            _ => AfXdpError::Setup("socket(AF_XDP)", error),
        });
    }
    // SAFETY: `fd` is a descriptor we just opened and own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(SOL_XDP, option, value)`.
fn set_option<T>(
    socket: &OwnedFd,
    step: &'static str,
    option: libc::c_int,
    value: &T,
) -> Result<(), AfXdpError> {
    // SAFETY: `value` points to a `T` that outlives the call and the
    // length is its size; the option takes exactly that structure.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_XDP,
            option,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    check(step, result).map(drop)
}

/// `SOL_SOCKET` options of socket busy polling (`asm-generic/socket.h`;
/// x86 and arm use these values).
const SO_BUSY_POLL: libc::c_int = 46;
const SO_PREFER_BUSY_POLL: libc::c_int = 69;
const SO_BUSY_POLL_BUDGET: libc::c_int = 70;
const SO_INCOMING_NAPI_ID: libc::c_int = 56;

/// Turns on preferred busy polling on `socket`: its `sendto`/`recvfrom`
/// run the interface queue's NAPI poll (up to `budget` frames, for up to
/// `usecs`) in the calling thread, and the kernel prefers that poll to
/// its own softirq. Linux 5.11 or later; raising the time above
/// `net.core.busy_read` needs `CAP_NET_ADMIN`.
pub(crate) fn set_busy_poll(socket: &OwnedFd, usecs: u32, budget: u32) -> Result<(), AfXdpError> {
    let set = |step: &'static str, option: libc::c_int, value: libc::c_int| {
        // SAFETY: `value` is a live `c_int` and the length is its size.
        let result = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&value as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        check(step, result).map(drop)
    };
    let clamp = |value: u32| libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
    set("setsockopt(SO_PREFER_BUSY_POLL)", SO_PREFER_BUSY_POLL, 1)?;
    set("setsockopt(SO_BUSY_POLL)", SO_BUSY_POLL, clamp(usecs))?;
    set(
        "setsockopt(SO_BUSY_POLL_BUDGET)",
        SO_BUSY_POLL_BUDGET,
        clamp(budget),
    )
}

/// The NAPI instance the socket's frames came from
/// (`SO_INCOMING_NAPI_ID`), which is the one its busy polling runs; 0 when
/// the kernel has not marked one, and then busy polling does nothing.
pub(crate) fn incoming_napi_id(socket: RawFd) -> Option<u32> {
    let mut value: libc::c_uint = 0;
    let mut len = size_of::<libc::c_uint>() as libc::socklen_t;
    // SAFETY: `value` is a writable `c_uint` of `len` bytes that outlives
    // the call; the kernel writes at most `len` bytes.
    let result = unsafe {
        libc::getsockopt(
            socket,
            libc::SOL_SOCKET,
            SO_INCOMING_NAPI_ID,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    (result == 0).then_some(value)
}

/// `getsockopt(SOL_XDP, option)` into a `T`.
fn get_option<T: Default>(
    socket: RawFd,
    step: &'static str,
    option: libc::c_int,
) -> Result<T, AfXdpError> {
    let mut value = T::default();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is a writable `T` of `len` bytes that outlives the
    // call; the kernel writes at most `len` bytes.
    let result = unsafe {
        libc::getsockopt(
            socket,
            libc::SOL_XDP,
            option,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    check(step, result).map(|_| value)
}

/// Registers `len` bytes at `base` as the socket's UMEM, cut into aligned
/// chunks of `chunk_size` bytes.
pub(crate) fn register_umem(
    socket: &OwnedFd,
    base: NonNull<u8>,
    len: usize,
    chunk_size: u32,
) -> Result<(), AfXdpError> {
    // The v1 layout (no flags, no TX metadata): accepted by every kernel
    // with AF_XDP, and all we need.
    let registration = libc::xdp_umem_reg_v1 {
        addr: base.as_ptr() as u64,
        len: len as u64,
        chunk_size,
        headroom: 0,
    };
    set_option(socket, "XDP_UMEM_REG", libc::XDP_UMEM_REG, &registration)
}

/// Sizes the four rings.
pub(crate) fn size_rings(socket: &OwnedFd, size: u32) -> Result<(), AfXdpError> {
    set_option(
        socket,
        "XDP_UMEM_FILL_RING",
        libc::XDP_UMEM_FILL_RING,
        &size,
    )?;
    set_option(
        socket,
        "XDP_UMEM_COMPLETION_RING",
        libc::XDP_UMEM_COMPLETION_RING,
        &size,
    )?;
    set_option(socket, "XDP_RX_RING", libc::XDP_RX_RING, &size)?;
    set_option(socket, "XDP_TX_RING", libc::XDP_TX_RING, &size)
}

/// Where the indices, flags and descriptors lie in each ring's mapping.
pub(crate) fn mmap_offsets(socket: &OwnedFd) -> Result<libc::xdp_mmap_offsets, AfXdpError> {
    let mut offsets = libc::xdp_mmap_offsets {
        rx: zero_offsets(),
        tx: zero_offsets(),
        fr: zero_offsets(),
        cr: zero_offsets(),
    };
    let mut len = size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
    // SAFETY: `offsets` is writable for `len` bytes and outlives the call.
    let result = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_XDP,
            libc::XDP_MMAP_OFFSETS,
            (&raw mut offsets).cast(),
            &mut len,
        )
    };
    check("XDP_MMAP_OFFSETS", result)?;
    if len as usize != size_of::<libc::xdp_mmap_offsets>() {
        // Kernels before 5.4 have no flags word, hence no need-wakeup.
        return Err(AfXdpError::Setup(
            "XDP_MMAP_OFFSETS",
            io::Error::other("kernel too old: rings without a flags word (Linux 5.4 needed)"),
        ));
    }
    Ok(offsets)
}

fn zero_offsets() -> libc::xdp_ring_offset {
    libc::xdp_ring_offset {
        producer: 0,
        consumer: 0,
        desc: 0,
        flags: 0,
    }
}

/// One ring's mapping, unmapped on drop.
pub(crate) struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes of the socket at page offset `offset` (one of the
    /// `XDP_*_PGOFF_*` values).
    pub(crate) fn map(
        socket: &OwnedFd,
        step: &'static str,
        offset: u64,
        len: usize,
    ) -> Result<Self, AfXdpError> {
        // SAFETY: a fresh shared mapping of the socket's ring; nothing else
        // in this process refers to the address range it returns.
        let pointer = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                socket.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if pointer == libc::MAP_FAILED {
            return Err(AfXdpError::Setup(step, io::Error::last_os_error()));
        }
        let base = NonNull::new(pointer.cast()).ok_or_else(|| {
            AfXdpError::Setup(step, io::Error::other("mmap returned a null mapping"))
        })?;
        Ok(Self { base, len })
    }

    /// Where the mapping starts.
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base .. base + len` is the mapping `map` made, unmapped
        // once, here; the rings pointing into it are dropped with it.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// Binds the socket to queue `queue` of interface `ifindex` with `flags`
/// (`XDP_COPY`, `XDP_ZEROCOPY`, `XDP_USE_NEED_WAKEUP`).
pub(crate) fn bind(
    socket: &OwnedFd,
    ifindex: u32,
    queue: u32,
    flags: u16,
) -> Result<(), AfXdpError> {
    let address = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: 0,
    };
    // SAFETY: `address` is a valid `sockaddr_xdp` of the given length that
    // outlives the call.
    let result = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&raw const address).cast(),
            size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        )
    };
    if result < 0 {
        let error = io::Error::last_os_error();
        return Err(match error.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => AfXdpError::Permission("bind", error),
            _ => AfXdpError::Bind { queue, error },
        });
    }
    Ok(())
}

/// True when the bound socket runs in zero-copy mode (`XDP_OPTIONS`).
pub(crate) fn is_zero_copy(socket: RawFd) -> Result<bool, AfXdpError> {
    let options: u32 = get_option(socket, "XDP_OPTIONS", libc::XDP_OPTIONS)?;
    Ok(options & libc::XDP_OPTIONS_ZEROCOPY != 0)
}

/// The kernel's drop counters of the socket (`XDP_STATISTICS`): rx_dropped,
/// rx_invalid_descs, tx_invalid_descs, rx_ring_full,
/// rx_fill_ring_empty_descs, tx_ring_empty_descs.
pub(crate) fn statistics(socket: RawFd) -> Option<[u64; 6]> {
    let mut stats = [0u64; 6];
    let mut len = size_of::<[u64; 6]>() as libc::socklen_t;
    // SAFETY: `stats` is writable for `len` bytes and outlives the call;
    // `struct xdp_statistics` is six u64s.
    let result = unsafe {
        libc::getsockopt(
            socket,
            libc::SOL_XDP,
            libc::XDP_STATISTICS,
            stats.as_mut_ptr().cast(),
            &mut len,
        )
    };
    (result == 0).then_some(stats)
}

/// What a wake-up call came back with.
pub(crate) enum Kick {
    /// The kernel took the call.
    Done,
    /// It was busy (`EAGAIN`, `EBUSY`, `ENOBUFS`): try again on a later burst.
    Busy,
    /// Any other error.
    Failed,
}

fn kick_result(result: isize) -> Kick {
    if result >= 0 {
        return Kick::Done;
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::EINTR) => Kick::Busy,
        _ => Kick::Failed,
    }
}

/// Wakes the kernel's transmit side: an empty, non-blocking `sendto`.
pub(crate) fn kick_tx(socket: RawFd) -> Kick {
    // SAFETY: a zero-length send with no buffer and no address.
    let result = unsafe {
        libc::sendto(
            socket,
            core::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            core::ptr::null(),
            0,
        )
    };
    kick_result(result)
}

/// Wakes the kernel's receive side (the driver waits for fill-ring
/// entries): an empty, non-blocking `recvfrom`.
pub(crate) fn kick_rx(socket: RawFd) -> Kick {
    // SAFETY: a zero-length receive with no buffer and no address.
    let result = unsafe {
        libc::recvfrom(
            socket,
            core::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
        )
    };
    kick_result(result)
}

/// An interface's flags, MTU and MAC, as the kernel reports them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InterfaceInfo {
    pub(crate) up: bool,
    pub(crate) mtu: i32,
    pub(crate) mac: [u8; 6],
}

/// Asks the kernel about `ifname` through a throwaway UDP socket (AF_XDP
/// sockets take no interface ioctls).
pub(crate) fn interface_info(ifname: &str) -> Result<InterfaceInfo, AfXdpError> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(AfXdpError::BadName);
    }
    // SAFETY: plain socket(2), checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    let fd = check("socket(AF_INET)", fd)?;
    // SAFETY: `fd` was just opened and is ours.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let ask = |code: libc::c_ulong| -> Result<libc::ifreq, AfXdpError> {
        // SAFETY: `ifreq` is plain old data for which zero bytes are valid.
        let mut request: libc::ifreq = unsafe { core::mem::zeroed() };
        for (slot, byte) in request.ifr_name.iter_mut().zip(bytes) {
            *slot = *byte as libc::c_char;
        }
        // SAFETY: the SIOCGIF* requests fill one `ifreq`, which `request`
        // is and which outlives the call.
        if unsafe { libc::ioctl(socket.as_raw_fd(), code as _, &mut request) } < 0 {
            return Err(AfXdpError::NoSuchInterface(io::Error::last_os_error()));
        }
        Ok(request)
    };
    let flags = ask(libc::SIOCGIFFLAGS)?;
    let mtu = ask(libc::SIOCGIFMTU)?;
    let hardware = ask(libc::SIOCGIFHWADDR)?;
    // SAFETY: each request filled the union member it is named after.
    let (flags, mtu, address) = unsafe {
        (
            flags.ifr_ifru.ifru_flags,
            mtu.ifr_ifru.ifru_mtu,
            hardware.ifr_ifru.ifru_hwaddr,
        )
    };
    let mut mac = [0u8; 6];
    for (byte, value) in mac.iter_mut().zip(address.sa_data.iter()) {
        *byte = *value as u8;
    }
    Ok(InterfaceInfo {
        up: flags & libc::IFF_UP as libc::c_short != 0,
        mtu,
        mac,
    })
}
