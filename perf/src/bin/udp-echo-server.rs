//! A UDP echo server for Linux peers in benchmarks: `recvmmsg` a burst,
//! `sendmmsg` it back to the senders. Runs until killed.
//!
//! usage: udp-echo-server [--port N] [--burst N]
#![deny(unsafe_code)]

use anyhow::{Context, Result, bail};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

const BUFFER: usize = 2048;

fn main() {
    if let Err(error) = run() {
        eprintln!("udp-echo-server: error: {error:#}");
        std::process::exit(2);
    }
}

fn run() -> Result<()> {
    let mut port = 7u16;
    let mut burst = 32usize;
    let mut args = std::env::args().skip(1);
    while let Some(option) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{option} needs a value"))?;
        match option.as_str() {
            "--port" => port = value.parse().context("--port takes a port number")?,
            "--burst" => {
                burst = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=256).contains(n))
                    .context("--burst takes 1..=256")?
            }
            other => {
                bail!("unknown option `{other}` (usage: udp-echo-server [--port N] [--burst N])")
            }
        }
    }
    let socket =
        UdpSocket::bind(("0.0.0.0", port)).with_context(|| format!("binding UDP port {port}"))?;
    println!("udp-echo-server listening on port {port}");
    echo_forever(&socket, burst)
}

/// Echoes bursts of datagrams back to their senders until an error. The one
/// unsafe function of the crate: rustix has no `recvmmsg`, and the headers
/// `sendmmsg` reuses are the ones `recvmmsg` filled.
#[allow(unsafe_code)]
fn echo_forever(socket: &UdpSocket, burst: usize) -> Result<()> {
    let mut buffers = vec![[0u8; BUFFER]; burst];
    // SAFETY: sockaddr_in is plain old data; zero is a valid value.
    let mut addresses: Vec<libc::sockaddr_in> = vec![unsafe { std::mem::zeroed() }; burst];
    let mut vectors: Vec<libc::iovec> = buffers
        .iter_mut()
        .map(|buffer| libc::iovec {
            iov_base: buffer.as_mut_ptr().cast(),
            iov_len: BUFFER,
        })
        .collect();
    let mut messages: Vec<libc::mmsghdr> = vectors
        .iter_mut()
        .zip(addresses.iter_mut())
        .map(|(vector, address)| {
            // SAFETY: msghdr is plain old data; zero is a valid start.
            let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
            header.msg_name = (address as *mut libc::sockaddr_in).cast();
            header.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            header.msg_iov = vector;
            header.msg_iovlen = 1;
            libc::mmsghdr {
                msg_hdr: header,
                msg_len: 0,
            }
        })
        .collect();
    loop {
        for (message, vector) in messages.iter_mut().zip(vectors.iter_mut()) {
            message.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            vector.iov_len = BUFFER;
        }
        // SAFETY: every header points at its own live address and buffer;
        // MSG_WAITFORONE returns once at least one datagram arrived.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                messages.as_mut_ptr(),
                burst as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error).context("recvmmsg");
        }
        let received = received as usize;
        for (message, vector) in messages.iter_mut().zip(vectors.iter_mut()).take(received) {
            vector.iov_len = message.msg_len as usize;
        }
        let mut done = 0;
        while done < received {
            // SAFETY: the first `received` headers hold datagrams and their
            // senders' addresses, as filled in by recvmmsg.
            let sent = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    messages.as_mut_ptr().add(done),
                    (received - done) as u32,
                    0,
                )
            };
            if sent <= 0 {
                // A full socket buffer or an unreachable sender: drop the rest.
                break;
            }
            done += sent as usize;
        }
    }
}
