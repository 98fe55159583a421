//! An AF_PACKET socket bound to one interface: batched raw frame I/O with
//! `sendmmsg`/`recvmmsg`, bypassing the qdisc layer.

use anyhow::{Context, Result, bail};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Largest frame we receive.
pub const FRAME_BUFFER: usize = 2048;
/// `SOL_PACKET` option that hides frames this host sends (Linux 4.20).
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// A raw socket on one interface. Frames go out only there: the socket is
/// bound to the interface index and `send_batch` takes no address.
pub struct PacketSocket {
    fd: OwnedFd,
    mac: [u8; 6],
    interface: String,
}

impl PacketSocket {
    /// Opens a non-blocking raw socket on `interface` (needs CAP_NET_RAW).
    pub fn open(interface: &str) -> Result<Self> {
        if interface.is_empty() || interface.len() >= libc::IFNAMSIZ || interface.contains('/') {
            bail!("`{interface}` is not an interface name");
        }
        let name = std::ffi::CString::new(interface).context("interface name has a NUL byte")?;
        // SAFETY: `name` is a valid NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            bail!("no interface called `{interface}` in this network namespace");
        }
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call; the result is checked below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(protocol),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error())
                .context("AF_PACKET socket (are you root / CAP_NET_RAW?)");
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain old data; zero is a valid start.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = protocol;
        address.sll_ifindex = index as i32;
        // SAFETY: `address` is a valid sockaddr_ll and the length matches it.
        let bound = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const address).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if bound < 0 {
            return Err(io::Error::last_os_error())
                .with_context(|| format!("binding to `{interface}`"));
        }
        set_option(&fd, libc::PACKET_QDISC_BYPASS, 1).context("PACKET_QDISC_BYPASS")?;
        set_option(&fd, PACKET_IGNORE_OUTGOING, 1).context("PACKET_IGNORE_OUTGOING")?;
        let mac = hardware_address(&fd, interface)?;
        Ok(Self {
            fd,
            mac,
            interface: interface.into(),
        })
    }

    /// The interface's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The interface's name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Sends `frames` with one `sendmmsg`; returns how many the kernel took
    /// (0 when its queue is full).
    pub fn send_batch(&self, frames: &[Vec<u8>]) -> io::Result<usize> {
        if frames.is_empty() {
            return Ok(0);
        }
        let mut vectors: Vec<libc::iovec> = frames
            .iter()
            .map(|frame| libc::iovec {
                iov_base: frame.as_ptr() as *mut _,
                iov_len: frame.len(),
            })
            .collect();
        let mut messages = message_headers(&mut vectors);
        // SAFETY: `messages` points at `frames.len()` headers whose iovecs
        // reference live frame buffers; the kernel only reads them.
        let sent = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                messages.as_mut_ptr(),
                messages.len() as u32,
                libc::MSG_DONTWAIT,
            )
        };
        if sent < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::WouldBlock
                || error.raw_os_error() == Some(libc::ENOBUFS)
            {
                return Ok(0);
            }
            return Err(error);
        }
        Ok(sent as usize)
    }

    /// Receives up to `buffers.len()` frames with one `recvmmsg`, without
    /// waiting; `lengths[i]` is frame `i`'s size. Returns how many arrived.
    pub fn recv_batch(
        &self,
        buffers: &mut [[u8; FRAME_BUFFER]],
        lengths: &mut [usize],
    ) -> io::Result<usize> {
        let count = buffers.len().min(lengths.len());
        let mut vectors: Vec<libc::iovec> = buffers[..count]
            .iter_mut()
            .map(|buffer| libc::iovec {
                iov_base: buffer.as_mut_ptr().cast(),
                iov_len: FRAME_BUFFER,
            })
            .collect();
        let mut messages = message_headers(&mut vectors);
        // SAFETY: each header's iovec covers one whole, exclusively borrowed
        // buffer of FRAME_BUFFER bytes.
        let received = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                messages.as_mut_ptr(),
                count as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            let error = io::Error::last_os_error();
            return if error.kind() == io::ErrorKind::WouldBlock {
                Ok(0)
            } else {
                Err(error)
            };
        }
        for (length, message) in lengths.iter_mut().zip(&messages).take(received as usize) {
            *length = message.msg_len as usize;
        }
        Ok(received as usize)
    }
}

/// Sleeps until one of `sockets` has a frame to read or `timeout` passed
/// (a signal also ends the wait). Lets a closed-loop run with a full window
/// give its CPU to the system under test instead of spinning on `recvmmsg`.
pub fn wait_readable(sockets: &[&PacketSocket], timeout: std::time::Duration) -> io::Result<()> {
    let mut polled: Vec<PollFd<'_>> = sockets
        .iter()
        .map(|socket| PollFd::new(&socket.fd, PollFlags::IN))
        .collect();
    let timeout = Timespec {
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    match poll(&mut polled, Some(&timeout)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// One `sendmmsg`/`recvmmsg` header per iovec, without addresses.
fn message_headers(vectors: &mut [libc::iovec]) -> Vec<libc::mmsghdr> {
    vectors
        .iter_mut()
        .map(|vector| {
            // SAFETY: msghdr is plain old data; zero is a valid start.
            let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
            header.msg_iov = vector;
            header.msg_iovlen = 1;
            libc::mmsghdr {
                msg_hdr: header,
                msg_len: 0,
            }
        })
        .collect()
}

fn set_option(fd: &OwnedFd, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and the length says so.
    let result = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            option,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The interface's MAC, asked of the kernel through the socket (sysfs may
/// belong to another network namespace).
fn hardware_address(fd: &OwnedFd, interface: &str) -> Result<[u8; 6]> {
    // SAFETY: ifreq is plain old data; zero is a valid start.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(interface.bytes()) {
        *slot = byte as libc::c_char;
    }
    // SAFETY: SIOCGIFHWADDR reads the NUL-terminated name (the name is
    // shorter than IFNAMSIZ, checked in `open`) and fills `ifru_hwaddr`.
    let result = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &raw mut request) };
    if result < 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("MAC address of `{interface}`"));
    }
    // SAFETY: a successful SIOCGIFHWADDR initialised the `ifru_hwaddr` member.
    let address = unsafe { request.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (out, byte) in mac.iter_mut().zip(address.sa_data.iter()) {
        *out = *byte as u8;
    }
    Ok(mac)
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next().context("a MAC address has six parts")?;
        *byte = u8::from_str_radix(part, 16).with_context(|| format!("`{part}` is not hex"))?;
    }
    if parts.next().is_some() {
        bail!("a MAC address has six parts");
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_interfaces_and_macs() {
        assert!(PacketSocket::open("").is_err());
        assert!(PacketSocket::open("no-such-interface0").is_err());
        assert!(PacketSocket::open("../etc").is_err());
        assert_eq!(parse_mac("02:00:00:00:00:0a").unwrap(), [2, 0, 0, 0, 0, 10]);
        assert!(parse_mac("02:00:00:00:00").is_err());
        assert!(parse_mac("02:00:00:00:00:00:00").is_err());
        assert!(parse_mac("zz:00:00:00:00:00").is_err());
    }
}
