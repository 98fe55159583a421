//! The Linux system calls behind a tap queue: opening `/dev/net/tun`,
//! `TUNSETIFF`, interface queries, and reads and writes on the queue's file
//! descriptor.

use core::fmt;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Why a tap queue could not be opened.
#[derive(Debug)]
pub enum TapError {
    /// The interface name is empty, too long (15 bytes at most) or has a NUL.
    BadName,
    /// `/dev/net/tun` could not be opened (missing module, no permission).
    OpenDevice(io::Error),
    /// `TUNSETIFF` refused the interface (exists with other flags, no
    /// `CAP_NET_ADMIN`, ...).
    Attach(io::Error),
}

impl fmt::Display for TapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadName => f.write_str("tap interface name must be 1 to 15 bytes, without NUL"),
            Self::OpenDevice(error) => write!(f, "cannot open /dev/net/tun: {error}"),
            Self::Attach(error) => write!(f, "TUNSETIFF failed: {error}"),
        }
    }
}

impl std::error::Error for TapError {}

/// An `ifreq` naming `ifname`, zeroed otherwise.
pub(crate) fn ifreq_for(ifname: &str) -> Result<libc::ifreq, TapError> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(TapError::BadName);
    }
    // SAFETY: `ifreq` is plain old data (a name array and a union of
    // integers, addresses and pointers) for which all-zero bytes are valid.
    let mut request: libc::ifreq = unsafe { core::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    Ok(request)
}

/// Opens one queue of tap `ifname`, non-blocking; creates the device when it
/// does not exist (it then lives as long as a queue is open).
pub(crate) fn open_queue(ifname: &str, multi_queue: bool) -> Result<OwnedFd, TapError> {
    let mut request = ifreq_for(ifname)?;
    let path: &CStr = c"/dev/net/tun";
    // SAFETY: `path` is a NUL-terminated string; open has no other
    // preconditions.
    let raw = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(TapError::OpenDevice(io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a file descriptor we just opened and nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
    if multi_queue {
        flags |= libc::IFF_MULTI_QUEUE;
    }
    request.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one `ifreq`, which `request` is and
    // which outlives the call.
    let result = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut request) };
    if result < 0 {
        return Err(TapError::Attach(io::Error::last_os_error()));
    }
    Ok(fd)
}

/// What `SIOCGIFFLAGS` and `SIOCGIFMTU` say about `ifname`: (up and
/// running, MTU), or `None` when the interface cannot be queried.
pub(crate) fn link_state(ifname: &str) -> Option<(bool, u32)> {
    let mut request = ifreq_for(ifname).ok()?;
    // SAFETY: socket has no memory preconditions.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return None;
    }
    // SAFETY: `raw` is a socket we just opened and nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: SIOCGIFFLAGS fills one `ifreq`, which `request` is.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut request) } < 0 {
        return None;
    }
    // SAFETY: SIOCGIFFLAGS succeeded, so the union holds `ifru_flags`.
    let flags = i32::from(unsafe { request.ifr_ifru.ifru_flags });
    // SAFETY: SIOCGIFMTU fills one `ifreq`, which `request` is.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFMTU as _, &mut request) } < 0 {
        return None;
    }
    // SAFETY: SIOCGIFMTU succeeded, so the union holds `ifru_mtu`.
    let mtu = unsafe { request.ifr_ifru.ifru_mtu };
    let up = flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0;
    Some((up, u32::try_from(mtu).unwrap_or(0)))
}

/// One `read(2)` into `buffer`: `Ok(n)` bytes, `Err(WouldBlock)` when the
/// queue is empty.
#[inline]
pub(crate) fn read_frame(fd: RawFd, buffer: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buffer` is valid for writes of `buffer.len()` bytes for the
    // duration of the call.
    let read = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
    if read < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(read as usize)
}

/// One `write(2)` of `frame`: a tap write is always a whole frame.
#[inline]
pub(crate) fn write_frame(fd: RawFd, frame: &[u8]) -> io::Result<usize> {
    // SAFETY: `frame` is valid for reads of `frame.len()` bytes for the
    // duration of the call.
    let written = unsafe { libc::write(fd, frame.as_ptr().cast(), frame.len()) };
    if written < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(written as usize)
}
