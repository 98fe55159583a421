//! A UDP echo server for Linux peers in benchmarks: `recvmmsg` a burst,
//! `sendmmsg` it back to the senders. Runs until killed.
//!
//! usage: udp-echo-server [--port N] [--burst N]
#![deny(unsafe_code)]

use anyhow::{Context, Result};
use clap::Parser;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

const BUFFER: usize = 2048;

/// A UDP echo server for Linux peers in benchmarks: `recvmmsg` a burst,
/// `sendmmsg` it back to the senders. Runs until killed.
#[derive(Debug, Parser)]
#[command(name = "udp-echo-server")]
struct Arguments {
    /// UDP port to echo on.
    #[arg(long, value_name = "N", default_value_t = 7)]
    port: u16,
    /// Datagrams per recvmmsg/sendmmsg.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=256))]
    burst: u16,
}

fn main() {
    let arguments = Arguments::parse();
    if let Err(error) = run(arguments.port, usize::from(arguments.burst)) {
        eprintln!("udp-echo-server: error: {error:#}");
        std::process::exit(2);
    }
}

fn run(port: u16, burst: usize) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Arguments, clap::Error> {
        Arguments::try_parse_from(std::iter::once("udp-echo-server").chain(args.iter().copied()))
    }

    #[test]
    fn parses_port_and_burst_and_refuses_nonsense() {
        let defaults = parse(&[]).unwrap();
        assert_eq!((defaults.port, defaults.burst), (7, 32));
        let given = parse(&["--port", "9", "--burst", "256"]).unwrap();
        assert_eq!((given.port, given.burst), (9, 256));
        for (bad, names) in [
            (&["--burst", "0"][..], "--burst"),
            (&["--burst", "257"], "--burst"),
            (&["--port", "70000"], "--port"),
            (&["--port"], "--port"),
            (&["--frobnicate", "1"], "--frobnicate"),
        ] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(error.contains(names), "{bad:?}: `{error}` lacks `{names}`");
        }
    }
}
