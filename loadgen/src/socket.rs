//! An AF_PACKET socket bound to one interface: batched raw frame I/O with
//! `sendmmsg`/`recvmmsg`, bypassing the qdisc layer.

use af_packet_nic::AfPacketError;
use anyhow::{Context, Result, anyhow, bail};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// Largest frame we receive.
pub const FRAME_BUFFER: usize = 2048;

/// A raw socket on one interface. Frames go out only there: the socket is
/// bound to the interface index and `send_batch` takes no address.
pub struct PacketSocket {
    fd: OwnedFd,
    mac: [u8; 6],
    interface: String,
}

impl PacketSocket {
    /// Opens a raw socket on `interface` (needs CAP_NET_RAW) with the
    /// AF_PACKET driver's setup: bound to the interface, qdisc bypassed,
    /// this host's own outgoing frames hidden. Sends and receives never
    /// block (`MSG_DONTWAIT`).
    pub fn open(interface: &str) -> Result<Self> {
        let (fd, info) =
            af_packet_nic::socket::open_bound(interface).map_err(|error| match error {
                AfPacketError::BadName => anyhow!("`{interface}` is not an interface name"),
                AfPacketError::NoSuchInterface(_) => {
                    anyhow!("no interface called `{interface}` in this network namespace")
                }
                AfPacketError::Setup(step, cause)
                    if cause.kind() == io::ErrorKind::PermissionDenied =>
                {
                    anyhow!("{step}: {cause} (are you root / CAP_NET_RAW?)")
                }
                other => anyhow!("opening `{interface}`: {other}"),
            })?;
        Ok(Self {
            fd,
            mac: info.mac,
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
    poll_for(&mut polled, timeout)
}

/// Waits until one of `polled` is ready or `timeout` passes; a signal
/// ends the wait early, as a ready descriptor would.
pub(crate) fn poll_for(polled: &mut [PollFd<'_>], timeout: std::time::Duration) -> io::Result<()> {
    let timeout = Timespec {
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    match poll(polled, Some(&timeout)) {
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
