//! `TapNic`: one queue of a tap device as a `dataplane::Nic`.

use crate::stats::TapStats;
use crate::sys::{self, TapError};
use dataplane::{Batch, LinkInfo, MacAddr, Mempool, Nic, Packet};
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

/// Which tap queue to open, and how it presents itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapConfig {
    /// Interface name, like `wctap0`; created when missing.
    pub ifname: String,
    /// Open with `IFF_MULTI_QUEUE`: needed for more than one queue, and
    /// required when the device was created `multi_queue`.
    pub multi_queue: bool,
    /// Which queue this is, for the NIC's name only.
    pub queue: usize,
    /// The MAC the dataplane uses on this link; `None` derives a locally
    /// administered one from the interface name (the kernel side of the tap
    /// has its own, different MAC).
    pub mac: Option<MacAddr>,
}

impl TapConfig {
    /// Queue 0 of `ifname`, single-queue, with a derived MAC.
    pub fn new(ifname: &str) -> Self {
        Self {
            ifname: ifname.to_owned(),
            multi_queue: false,
            queue: 0,
            mac: None,
        }
    }
}

/// One non-blocking queue of a tap device. Receive reads frames straight into
/// buffers of the queue's own mempool; transmit writes packets from theirs.
pub struct TapNic {
    fd: OwnedFd,
    pool: Mempool,
    /// A buffer allocated for a read that found the queue empty, kept for the
    /// next burst instead of going back to the pool and out again.
    spare: Option<Packet>,
    ifname: String,
    name: String,
    mac: MacAddr,
    stats: Arc<TapStats>,
}

impl TapNic {
    /// Opens the queue; received frames land in buffers of `pool`, which
    /// must be created on the core that polls this NIC.
    pub fn open(config: &TapConfig, pool: Mempool) -> Result<Self, TapError> {
        let fd = sys::open_queue(&config.ifname, config.multi_queue)?;
        Ok(Self {
            fd,
            pool,
            spare: None,
            ifname: config.ifname.clone(),
            name: format!("tap:{}.q{}", config.ifname, config.queue),
            mac: config.mac.unwrap_or_else(|| derived_mac(&config.ifname)),
            stats: Arc::new(TapStats::default()),
        })
    }

    /// The queue's counters; clone the `Arc` to read them from elsewhere.
    pub fn stats(&self) -> &Arc<TapStats> {
        &self.stats
    }

    /// The Linux interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// A duplicate of the queue's descriptor, for `poll(2)`: readable when
    /// a frame waits.
    pub fn wait_fd(&self) -> std::io::Result<OwnedFd> {
        self.fd.try_clone()
    }
}

/// A locally administered unicast MAC, `02:77:63:..` ("wc") followed by a
/// hash of the interface name, so every queue of one tap agrees on it.
fn derived_mac(ifname: &str) -> MacAddr {
    // FNV-1a: a stable, dependency-free hash.
    let hash = ifname.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    let [a, b, c, _] = hash.to_be_bytes();
    MacAddr([0x02, 0x77, 0x63, a, b, c])
}

impl Nic for TapNic {
    fn rx_burst(&mut self, batch: &mut Batch) -> usize {
        let mut received = 0;
        while !batch.is_full() {
            let Some(mut packet) = self.spare.take().or_else(|| self.pool.alloc()) else {
                self.stats.rx_no_buffer.increment();
                break;
            };
            let room = packet.tailroom();
            let Ok(buffer) = packet.append(room) else {
                // Impossible: `append` of exactly the tailroom always fits.
                break;
            };
            match sys::read_frame(self.fd.as_raw_fd(), buffer) {
                Ok(length) => {
                    packet.truncate(length);
                    self.stats.rx_packets.increment();
                    self.stats.rx_bytes.add(length as u64);
                    if batch.push(packet).is_err() {
                        // Impossible: the loop checked the batch has room.
                        break;
                    }
                    received += 1;
                }
                Err(error) => {
                    if error.kind() != ErrorKind::WouldBlock {
                        self.stats.rx_errors.increment();
                    }
                    packet.truncate(0);
                    self.spare = Some(packet);
                    break;
                }
            }
        }
        received
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> usize {
        let mut sent = 0;
        for packet in batch.iter() {
            match sys::write_frame(self.fd.as_raw_fd(), packet.payload()) {
                Ok(_) => {
                    self.stats.tx_packets.increment();
                    self.stats.tx_bytes.add(packet.len() as u64);
                    sent += 1;
                }
                Err(error) => {
                    if error.kind() == ErrorKind::WouldBlock {
                        self.stats.tx_full.increment();
                    } else {
                        self.stats.tx_errors.increment();
                    }
                    // This packet and the rest stay in the batch; the
                    // executor counts them as transmit drops.
                    break;
                }
            }
        }
        batch.packets_mut().drain(..sent);
        sent
    }

    fn mac(&self) -> MacAddr {
        self.mac
    }

    fn link(&self) -> LinkInfo {
        let (up, mtu) = sys::link_state(&self.ifname).unwrap_or((false, 1500));
        LinkInfo {
            up,
            speed_mbps: 0,
            mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
        }
    }

    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests;
