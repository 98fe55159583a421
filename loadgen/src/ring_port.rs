//! loadgen's ring engines: one of warpcore's own hosted NICs as a
//! [`FramePort`], so loadgen moves frames through shared rings instead of
//! a `sendmmsg`/`recvmmsg` per burst. `rings` is the af-packet driver
//! (`TPACKET_V2` RX and TX rings mapped, qdisc bypassed, one `send` per
//! transmit burst, no system call to receive); `af-xdp` is the af-xdp
//! driver on queue 0 in copy mode (libxdp's redirect program on loadgen's
//! interface, so replies skip the kernel's receive path and land in the
//! UMEM; one `sendto` per transmit burst when the kernel asks for it).
//!
//! Why: on a veth pair whose other end runs the system under test, the
//! kernel's per-frame work on loadgen's side (its socket calls, the
//! receive path into its socket) runs on loadgen's CPU and bounded the
//! echo rate of every system alike; the lighter engines leave more of
//! that CPU to the frames themselves.

use crate::port::FramePort;
use crate::socket::{FRAME_BUFFER, poll_for};
use af_packet_nic::{AfPacketConfig, AfPacketNic};
use af_xdp_nic::{AfXdpConfig, AfXdpNic, BindMode, XdpProgram};
use anyhow::{Context, Result, anyhow};
use dataplane::mem::mempool::DEFAULT_HEADROOM;
use dataplane::{Batch, Mempool, Nic};
use rustix::event::{PollFd, PollFlags};
use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

/// How loadgen moves frames on an interface (`--engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A packet socket with `sendmmsg`/`recvmmsg` ([`crate::socket`]).
    Sockets,
    /// The af-packet driver's mapped rings.
    Rings,
    /// The af-xdp driver, copy mode.
    AfXdp,
}

/// Buffers of the pool transmitted frames are built in (the NIC copies
/// them into its ring or UMEM, so they come back at once).
const TRANSMIT_POOL: usize = 256;
/// Frames in each of the af-packet driver's rings.
const RING_FRAMES: usize = 1024;

/// A hosted NIC driven by loadgen. `FramePort` takes `&self` (the run
/// loop holds the port shared with its ARP answers); the NIC, its pools
/// and batches sit in a `RefCell`, only ever borrowed inside one call.
pub struct RingPort {
    state: RefCell<State>,
    wait_fd: OwnedFd,
    mac: [u8; 6],
    description: String,
}

struct State {
    nic: Box<dyn Nic>,
    /// Where outgoing frames are built.
    pool: Mempool,
    outgoing: Batch,
    /// Frames received but not yet handed to the run loop (it may ask for
    /// fewer than a burst).
    incoming: Batch,
}

impl RingPort {
    /// Opens `engine` (not [`Engine::Sockets`]) on `interface`. Needs
    /// CAP_NET_RAW (rings) or CAP_NET_ADMIN and Debian's `libxdp1`
    /// (af-xdp).
    pub fn open(interface: &str, engine: Engine) -> Result<Self> {
        let (nic, wait_fd, description): (Box<dyn Nic>, OwnedFd, String) = match engine {
            Engine::Sockets => {
                return Err(anyhow!(
                    "the sockets engine is a packet socket, not a ring port"
                ));
            }
            Engine::Rings => {
                let pool = Mempool::with_heap(2 * RING_FRAMES, DEFAULT_HEADROOM)
                    .map_err(|error| anyhow!("receive pool: {error}"))?;
                let config = AfPacketConfig {
                    ring_frames: RING_FRAMES,
                    // A load generator's bursts go out as it sends them.
                    tx_kick_frames: 1,
                    ..AfPacketConfig::new(interface)
                };
                let nic = AfPacketNic::open(&config, pool)
                    .map_err(|error| anyhow!("af-packet rings on `{interface}`: {error}"))?;
                let fd = nic.wait_fd().context("duplicating the packet socket")?;
                (Box::new(nic), fd, format!("{interface} (af-packet rings)"))
            }
            Engine::AfXdp => {
                let program = XdpProgram::attach(interface)
                    .map_err(|error| anyhow!("af-xdp on `{interface}`: {error}"))?;
                let config = AfXdpConfig {
                    mode: BindMode::Copy,
                    // A veth's XDP queue has no NAPI instance to busy poll.
                    busy_poll: None,
                    ..AfXdpConfig::new(interface)
                };
                let nic = AfXdpNic::open(&config, Arc::new(program))
                    .map_err(|error| anyhow!("af-xdp on `{interface}` queue 0: {error}"))?;
                let fd = nic.wait_fd().context("duplicating the XSK socket")?;
                (
                    Box::new(nic),
                    fd,
                    format!("{interface} (af-xdp, copy mode)"),
                )
            }
        };
        let pool = Mempool::with_heap(TRANSMIT_POOL, DEFAULT_HEADROOM)
            .map_err(|error| anyhow!("transmit pool: {error}"))?;
        let mac = nic.mac().0;
        Ok(Self {
            state: RefCell::new(State {
                nic,
                pool,
                outgoing: Batch::new(),
                incoming: Batch::new(),
            }),
            wait_fd,
            mac,
            description,
        })
    }
}

impl FramePort for RingPort {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn send_batch(&self, frames: &[Vec<u8>]) -> io::Result<usize> {
        let mut state = self.state.borrow_mut();
        let State {
            nic,
            pool,
            outgoing,
            ..
        } = &mut *state;
        let mut sent = 0;
        for chunk in frames.chunks(dataplane::batch::BURST_SIZE) {
            outgoing.clear();
            for frame in chunk {
                let Some(mut packet) = pool.alloc() else {
                    break;
                };
                let Ok(bytes) = packet.append(frame.len()) else {
                    // Larger than a buffer: nothing loadgen builds.
                    break;
                };
                bytes.copy_from_slice(frame);
                if outgoing.push(packet).is_err() {
                    break;
                }
            }
            let queued = outgoing.len();
            let taken = nic.tx_burst(outgoing);
            // What the NIC did not take goes back to the pool.
            outgoing.clear();
            sent += taken;
            if taken < queued || queued < chunk.len() {
                break;
            }
        }
        Ok(sent)
    }

    fn recv_batch(
        &self,
        buffers: &mut [[u8; FRAME_BUFFER]],
        lengths: &mut [usize],
    ) -> io::Result<usize> {
        let mut state = self.state.borrow_mut();
        let State { nic, incoming, .. } = &mut *state;
        if incoming.is_empty() {
            nic.rx_burst(incoming);
        }
        let count = buffers.len().min(lengths.len()).min(incoming.len());
        for ((buffer, length), packet) in buffers
            .iter_mut()
            .zip(lengths.iter_mut())
            .zip(incoming.packets_mut().drain(..count))
        {
            let bytes = packet.payload();
            let copied = bytes.len().min(FRAME_BUFFER);
            buffer[..copied].copy_from_slice(&bytes[..copied]);
            *length = copied;
        }
        Ok(count)
    }

    fn wait_readable(&self, timeout: Duration) -> io::Result<()> {
        if !self.state.borrow().incoming.is_empty() {
            return Ok(());
        }
        poll_for(&mut [PollFd::new(&self.wait_fd, PollFlags::IN)], timeout)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
