//! `AfPacketNic`: one packet socket with mapped rings as a `dataplane::Nic`.

use crate::checksum;
use crate::frames::TX_MAX_FRAME;
use crate::ring::Rings;
use crate::stats::AfPacketStats;
use crate::sys::{self, AfPacketError, Doorbell};
use crate::transmit::{DEFAULT_TX_KICK_FRAMES, MAX_DEFERRED_POLLS, TxPath, send_burst};
use dataplane::{Batch, LinkInfo, MacAddr, Mempool, Nic};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

/// Which interface to bind, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// Interface name, like `veth1`.
    pub ifname: String,
    /// Fanout group to join in hash mode, so that each of several sockets on
    /// the interface (one per core) gets whole flows; `None` for a single
    /// queue. Groups are per network namespace: pick one unique to the
    /// process and interface.
    pub fanout_group: Option<u16>,
    /// Which queue this is, for the NIC's name only.
    pub queue: usize,
    /// Frames in each ring, rounded up to whole 64 KiB blocks.
    pub ring_frames: usize,
    /// The MAC the dataplane uses; `None` takes the interface's own.
    pub mac: Option<MacAddr>,
    /// Frames a transmit burst leaves marked in the TX ring, without a
    /// doorbell, while the receive ring still has frames: the doorbell
    /// rings once this many are waiting, or from the next receive poll that
    /// finds the RX ring empty, or after [`MAX_DEFERRED_POLLS`] receive
    /// polls, whichever comes first. 1 rings it from every transmit burst.
    pub tx_kick_frames: usize,
    /// How transmitted frames reach the kernel.
    pub tx_path: TxPath,
}

impl AfPacketConfig {
    /// Queue 0 of `ifname`, no fanout, 512-frame rings, the interface's MAC.
    pub fn new(ifname: &str) -> Self {
        Self {
            ifname: ifname.to_owned(),
            fanout_group: None,
            queue: 0,
            ring_frames: 512,
            mac: None,
            tx_kick_frames: DEFAULT_TX_KICK_FRAMES,
            tx_path: TxPath::Auto,
        }
    }
}

/// One AF_PACKET socket bound to an interface, its rings mapped. Receive
/// copies frames from the RX ring into buffers of the queue's own mempool;
/// transmit copies packets into the TX ring or, with [`TxPath::Sendmmsg`],
/// hands each burst to one `sendmmsg` on a send-only socket.
///
/// On the ring path the doorbell (`send(2)`, which makes the kernel walk the TX ring) is
/// coalesced across bursts, as NAPI's `xmit_more` coalesces a NIC's tail
/// writes: while the RX ring keeps yielding frames, transmitted frames wait
/// marked in the ring until [`AfPacketConfig::tx_kick_frames`] are pending;
/// a receive poll that finds the RX ring empty rings it for whatever is
/// pending, and so does the [`MAX_DEFERRED_POLLS`]th receive poll in a row
/// that found frames. Under load that is one system call per several
/// bursts; when traffic stops, the next (empty) poll sends the rest. The
/// executor polls receive every round, so no frame waits longer than one
/// round after its burst's input ran dry.
///
/// The kernel may leave frames of a kick in the ring (it stops early when
/// the socket's send buffer is full or the device drops a frame, keeping
/// them marked for a later doorbell). The NIC counts such frames and rings
/// the doorbell again from every receive poll until the kernel has taken
/// them all, so they never wait for the next transmit burst, which may never
/// come once traffic stops.
pub struct AfPacketNic {
    // Field order: the mapping goes before the socket that owns the rings.
    rings: Rings,
    socket: OwnedFd,
    /// The send-only socket of [`TxPath::Sendmmsg`].
    tx_socket: Option<OwnedFd>,
    pool: Mempool,
    rx_next: usize,
    tx_next: usize,
    /// Frames marked `SEND_REQUEST` that the kernel has not taken yet: the
    /// slots just before `tx_next`. The kernel takes frames in ring order,
    /// so these are contiguous and the oldest is the kernel's ring head.
    tx_unsent: usize,
    /// Of those, the frames marked since the last doorbell (the newest).
    tx_unkicked: usize,
    /// Receive polls that found frames since frames began waiting for a
    /// doorbell.
    tx_deferred_polls: u32,
    /// When a transmit burst rings the doorbell itself: this many frames
    /// waiting (at least 1, at most half the ring).
    tx_kick_frames: usize,
    ifname: String,
    name: String,
    mac: MacAddr,
    stats: Arc<AfPacketStats>,
}

impl AfPacketNic {
    /// Opens the socket, maps its rings, binds it to the interface (in
    /// promiscuous mode) and joins the fanout group. Received frames land in
    /// buffers of `pool`, which must be created on the core that polls this
    /// NIC.
    pub fn open(config: &AfPacketConfig, pool: Mempool) -> Result<Self, AfPacketError> {
        let socket = sys::packet_socket()?;
        let info = sys::interface_info(socket.as_raw_fd(), &config.ifname)?;
        sys::configure_socket(&socket)?;
        let rings = Rings::map(&socket, config.ring_frames)?;
        sys::bind(&socket, info.index)?;
        // The kernel then skips the socket when the host transmits on the
        // interface, instead of copying each of our own frames into the RX
        // ring for `rx_burst` to skip (Linux 4.20; older kernels refuse it,
        // and the skip below still holds).
        let _ = sys::ignore_outgoing(&socket);
        sys::enable_promiscuous(&socket, info.index)?;
        if let Some(group) = config.fanout_group {
            sys::join_fanout(&socket, group)?;
        }
        let stats = Arc::new(AfPacketStats::default());
        let tx_path = match config.tx_path {
            TxPath::Auto => {
                match sys::driver_name(socket.as_raw_fd(), &config.ifname)?.as_deref() {
                    Some("veth" | "tun") => TxPath::Sendmmsg,
                    _ => TxPath::Ring,
                }
            }
            chosen => chosen,
        };
        let tx_socket = match tx_path {
            TxPath::Auto | TxPath::Ring => None,
            TxPath::Sendmmsg => {
                let tx_socket = sys::packet_socket()?;
                sys::bypass_qdisc(&tx_socket)?;
                sys::bind_send_only(&tx_socket, info.index)?;
                stats.tx_sendmmsg.set(1);
                Some(tx_socket)
            }
        };
        let tx_kick_frames = config.tx_kick_frames.clamp(1, (rings.frames() / 2).max(1));
        Ok(Self {
            rings,
            socket,
            tx_socket,
            pool,
            rx_next: 0,
            tx_next: 0,
            tx_unsent: 0,
            tx_unkicked: 0,
            tx_deferred_polls: 0,
            tx_kick_frames,
            ifname: config.ifname.clone(),
            name: format!("af-packet:{}.q{}", config.ifname, config.queue),
            mac: config.mac.unwrap_or(MacAddr(info.mac)),
            stats,
        })
    }

    /// The queue's counters; clone the `Arc` to read them from elsewhere.
    pub fn stats(&self) -> &Arc<AfPacketStats> {
        &self.stats
    }

    /// The Linux interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// A duplicate of the socket, for `poll(2)`: readable when the receive
    /// ring holds a frame.
    pub fn wait_fd(&self) -> std::io::Result<OwnedFd> {
        self.socket.try_clone()
    }

    /// How this queue transmits ([`TxPath::Auto`] resolved).
    pub fn tx_path(&self) -> TxPath {
        if self.tx_socket.is_some() {
            TxPath::Sendmmsg
        } else {
            TxPath::Ring
        }
    }

    /// Frames in the TX ring that the kernel has not taken yet: those
    /// waiting for a coalesced doorbell and those the last one left.
    pub fn unsent_frames(&self) -> usize {
        self.tx_unsent
    }

    /// Rings the doorbell, then forgets the unsent frames the kernel took.
    fn kick(&mut self) {
        self.stats.tx_doorbells.increment();
        self.tx_unkicked = 0;
        self.tx_deferred_polls = 0;
        match sys::ring_doorbell(self.socket.as_raw_fd()) {
            Ok(Doorbell::Rung) => {}
            Ok(Doorbell::Busy) => self.stats.tx_doorbell_busy.increment(),
            Err(_) => self.stats.tx_doorbell_errors.increment(),
        }
        // `send` has returned, so the kernel is done walking the ring: a
        // frame it took is SENDING or already AVAILABLE again (or
        // WRONG_FORMAT if it refused it); one it left is still
        // SEND_REQUEST. Bounded: `tx_unsent <= frames`.
        let frames = self.rings.frames();
        while self.tx_unsent > 0 {
            let oldest = (self.tx_next + frames - self.tx_unsent) % frames;
            if self.rings.tx_status(oldest) == libc::TP_STATUS_SEND_REQUEST {
                break;
            }
            self.tx_unsent -= 1;
        }
    }

    /// Copies frames from the RX ring into pool buffers until the batch is
    /// full or the ring has none; returns how many.
    fn receive(&mut self, batch: &mut Batch) -> usize {
        let mut received = 0;
        while !batch.is_full() {
            let index = self.rx_next;
            let Some(frame) = self.rings.rx_frame(index) else {
                break;
            };
            if frame.packet_type == libc::PACKET_OUTGOING {
                self.stats.rx_outgoing_skipped.increment();
                self.rings.release_rx(index);
                self.rx_next = (index + 1) % self.rings.frames();
                continue;
            }
            let Some(mut packet) = self.pool.alloc() else {
                // Leave the frame in the ring for the next burst.
                self.stats.rx_no_buffer.increment();
                break;
            };
            // SAFETY: `frame` came from `rx_frame(index)` just now and the
            // frame is released only below, after the copy.
            let data = unsafe { self.rings.rx_data(index, &frame) };
            let copied = data.len().min(packet.tailroom());
            if let Ok(buffer) = packet.append(copied) {
                buffer.copy_from_slice(&data[..copied]);
            }
            self.rings.release_rx(index);
            self.rx_next = (index + 1) % self.rings.frames();
            if frame.snaplen < frame.len || copied < data.len() {
                self.stats.rx_truncated.increment();
            }
            if frame.status & libc::TP_STATUS_CSUMNOTREADY != 0
                && checksum::complete_partial(packet.payload_mut())
            {
                self.stats.rx_checksums_completed.increment();
            }
            self.stats.rx_packets.increment();
            self.stats.rx_bytes.add(packet.len() as u64);
            if batch.push(packet).is_err() {
                // Impossible: the loop checked the batch has room.
                break;
            }
            received += 1;
        }
        received
    }
}

impl Nic for AfPacketNic {
    fn rx_burst(&mut self, batch: &mut Batch) -> usize {
        let received = self.receive(batch);
        // The executor polls receive every round but transmits only when it
        // has packets: frames waiting for a coalesced doorbell, and frames
        // a doorbell left behind, go from here.
        if self.tx_unsent > 0 {
            if self.tx_unkicked == 0 {
                self.stats.tx_rekicks.increment();
                self.kick();
            } else if received == 0 {
                self.stats.tx_doorbells_rx_empty.increment();
                self.kick();
            } else {
                self.tx_deferred_polls += 1;
                if self.tx_deferred_polls >= MAX_DEFERRED_POLLS {
                    self.stats.tx_doorbells_deferred_polls.increment();
                    self.kick();
                }
            }
        }
        received
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> usize {
        if let Some(tx_socket) = &self.tx_socket {
            let sent = send_burst(tx_socket, batch, &self.stats);
            batch.packets_mut().drain(..sent);
            return sent;
        }
        let mut sent = 0;
        for packet in batch.iter() {
            let index = self.tx_next;
            let status = self.rings.tx_status(index);
            if status & libc::TP_STATUS_WRONG_FORMAT != 0 {
                self.stats.tx_wrong_format.increment();
                self.rings.reset_tx(index);
            } else if status != libc::TP_STATUS_AVAILABLE {
                self.stats.tx_ring_full.increment();
                break;
            }
            let frame = packet.payload();
            if frame.len() > TX_MAX_FRAME {
                self.stats.tx_too_large.increment();
                break;
            }
            // SAFETY: the slot is AVAILABLE (checked, or reset from
            // WRONG_FORMAT, both meaning the kernel is done with it), and the
            // length was checked against TX_MAX_FRAME.
            unsafe { self.rings.fill_tx(index, frame) };
            self.tx_next = (index + 1) % self.rings.frames();
            self.tx_unsent += 1;
            self.tx_unkicked += 1;
            self.stats.tx_packets.increment();
            self.stats.tx_bytes.add(frame.len() as u64);
            sent += 1;
        }
        if self.tx_unkicked >= self.tx_kick_frames {
            self.stats.tx_doorbells_pending.increment();
            self.kick();
        } else if sent < batch.len() && self.tx_unkicked > 0 {
            // Cut short (ring full, or a frame too large): let the kernel
            // free slots now rather than after the next receive poll.
            self.stats.tx_doorbells_cut_short.increment();
            self.kick();
        }
        batch.packets_mut().drain(..sent);
        sent
    }

    fn mac(&self) -> MacAddr {
        self.mac
    }

    fn link(&self) -> LinkInfo {
        match sys::interface_info(self.socket.as_raw_fd(), &self.ifname) {
            Ok(info) => LinkInfo {
                up: info.up,
                speed_mbps: 0,
                mtu: u16::try_from(info.mtu).unwrap_or(u16::MAX),
            },
            Err(_) => LinkInfo {
                up: false,
                speed_mbps: 0,
                mtu: 1500,
            },
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    /// The receive ring signals through the socket (see [`wait_fd`]); frames
    /// a doorbell left in the TX ring need this core to poll, not sleep.
    ///
    /// [`wait_fd`]: AfPacketNic::wait_fd
    fn enable_wakeup(&mut self) -> bool {
        self.tx_unsent == 0
    }
}

#[cfg(test)]
mod tests;
