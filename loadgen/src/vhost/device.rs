//! The vhost-user port: listens on a unix socket for QEMU, waits for the
//! guest driver to bring its rings up, then moves bursts of frames between
//! loadgen and the guest's virtqueues (receive queue 2p, transmit 2p + 1 of
//! pair p, one pair per guest vCPU).

use super::backend::{MAX_QUEUE_PAIRS, NetBackend, Shared};
use super::rings::{
    RingErrors, arm_kick, call_if_wanted, disarm_kick, has_available, pop_frame, push_frame,
};
use crate::port::FramePort;
use crate::socket::FRAME_BUFFER;
use anyhow::{Context, Result, bail};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use std::cell::Cell;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vhost::vhost_user::Listener;
use vhost_user_backend::{VhostUserDaemon, VringRwLock, VringT};
use virtio_queue::QueueT;
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};

/// What the device did besides moving frames, for the report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceCounters {
    /// Queue pairs served.
    pub queue_pairs: u64,
    /// Frames written into receive rings.
    pub frames_to_guest: u64,
    /// Frames taken off transmit rings.
    pub frames_from_guest: u64,
    /// Sends that found every receive buffer taken (the guest was behind).
    pub receive_ring_full: u64,
    /// Interrupts raised in the guest (call eventfd writes).
    pub calls: u64,
    /// Kicks from the guest (new receive buffers or transmitted frames).
    pub kicks: u64,
    /// Guest mistakes, counted and survived.
    pub errors: RingErrors,
}

/// loadgen's end of a vhost-user virtio-net device.
pub struct VhostUserPort {
    path: PathBuf,
    mac: [u8; 6],
    shared: Arc<Shared>,
    memory: GuestMemoryAtomic<GuestMemoryMmap>,
    /// (receive, transmit) vrings per pair, once the guest is up.
    pairs: Vec<(VringRwLock, VringRwLock)>,
    /// The protocol thread: ends when QEMU hangs up.
    server: JoinHandle<std::result::Result<(), vhost_user_backend::Error>>,
    counters: Cell<DeviceCounters>,
    /// The transmit ring read first next time, so that no pair starves.
    next_transmit: Cell<usize>,
}

impl VhostUserPort {
    /// Listens on `path` (replacing a stale socket) for one QEMU connection
    /// offering `pairs` queue pairs, and serves the protocol on a thread of
    /// its own from then on. Returns once the socket exists: start QEMU
    /// after this.
    pub fn listen(path: &Path, pairs: usize, mac: [u8; 6]) -> Result<Self> {
        if !(1..=MAX_QUEUE_PAIRS).contains(&pairs) {
            bail!("--queues must be between 1 and {MAX_QUEUE_PAIRS}, got {pairs}");
        }
        let backend = NetBackend::new(pairs).context("creating the wake-up eventfd")?;
        let shared = backend.shared();
        let memory = GuestMemoryAtomic::new(GuestMemoryMmap::new());
        let mut daemon = VhostUserDaemon::new("loadgen-vhost".into(), backend, memory.clone())
            .map_err(|error| anyhow::anyhow!("starting the vhost-user daemon: {error}"))?;
        let mut listener = Listener::new(path, true)
            .with_context(|| format!("listening on {}", path.display()))?;
        let server = std::thread::Builder::new()
            .name("vhost-user".into())
            .spawn(move || {
                daemon.start(&mut listener)?;
                daemon.wait()
            })
            .context("starting the vhost-user thread")?;
        Ok(Self {
            path: path.to_owned(),
            mac,
            shared,
            memory,
            pairs: Vec::new(),
            server,
            counters: Cell::new(DeviceCounters {
                queue_pairs: pairs as u64,
                ..DeviceCounters::default()
            }),
            next_transmit: Cell::new(0),
        })
    }

    /// Waits (at most `timeout`) until QEMU connected and the guest driver
    /// enabled every queue pair and posted receive buffers.
    pub fn wait_for_guest(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.server.is_finished() {
                bail!(
                    "QEMU hung up on {} before the guest brought its rings up",
                    self.path.display()
                );
            }
            if let Some(pairs) = self.shared.vrings()
                && self.rings_up(&pairs)
            {
                for (receive, transmit) in &pairs {
                    disarm_kick(&mut receive.get_mut());
                    disarm_kick(&mut transmit.get_mut());
                }
                self.pairs = pairs;
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                bail!(
                    "the guest did not bring up its {} queue pair(s) on {} within {timeout:?}",
                    self.counters.get().queue_pairs,
                    self.path.display()
                );
            }
            self.sleep_on_kick((deadline - now).min(Duration::from_millis(100)))?;
        }
    }

    /// Every ring ready and enabled, every receive ring holding buffers.
    fn rings_up(&self, pairs: &[(VringRwLock, VringRwLock)]) -> bool {
        let memory = self.memory.memory();
        pairs.iter().all(|(receive, transmit)| {
            let receive = receive.get_ref();
            let transmit = transmit.get_ref();
            receive.get_queue().ready()
                && receive.is_enabled()
                && transmit.get_queue().ready()
                && transmit.is_enabled()
                && has_available(&receive, &memory)
        })
    }

    /// The device's counters so far.
    pub fn counters(&self) -> DeviceCounters {
        let mut counters = self.counters.get();
        counters.kicks = self.shared.kicks();
        counters
    }

    /// Sleeps until a kick or `timeout`, then clears the wake-up.
    fn sleep_on_kick(&self, timeout: Duration) -> io::Result<()> {
        let wake = self.shared.wake();
        let mut polled = [PollFd::new(wake, PollFlags::IN)];
        let timeout = Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        match poll(&mut polled, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(error) => return Err(error.into()),
        }
        let mut value = [0u8; 8];
        match rustix::io::read(wake, &mut value) {
            Ok(_) | Err(rustix::io::Errno::AGAIN) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Arms kicks on `rings`, sleeps for one (unless work is already
    /// waiting), and disarms them again.
    fn wait_on(&self, rings: impl Iterator<Item = VringRwLock> + Clone, timeout: Duration) -> io::Result<()> {
        let mut pending = false;
        for ring in rings.clone() {
            pending |= arm_kick(&mut ring.get_mut());
        }
        if !pending {
            self.sleep_on_kick(timeout)?;
        }
        for ring in rings {
            disarm_kick(&mut ring.get_mut());
        }
        Ok(())
    }

    /// The pair a frame goes to: by its UDP source port or ICMP identifier,
    /// so that one flow stays on one queue (and one guest core), as RSS
    /// would keep it.
    fn pair_of(&self, frame: &[u8]) -> usize {
        let pairs = self.pairs.len();
        if pairs <= 1 || frame.len() < 40 || frame[12..14] != [0x08, 0x00] {
            return 0;
        }
        let key = match frame[23] {
            17 => u16::from_be_bytes([frame[34], frame[35]]),
            1 => u16::from_be_bytes([frame[38], frame[39]]),
            _ => 0,
        };
        usize::from(key) % pairs
    }
}

impl FramePort for VhostUserPort {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn send_batch(&self, frames: &[Vec<u8>]) -> io::Result<usize> {
        if self.pairs.is_empty() {
            return Ok(0);
        }
        let memory = self.memory.memory();
        let mut counters = self.counters.get();
        let mut guards: Vec<_> = self.pairs.iter().map(|(receive, _)| receive.get_mut()).collect();
        let mut touched = 0u32;
        let mut sent = 0;
        for frame in frames {
            let pair = self.pair_of(frame);
            if !push_frame(&mut guards[pair], &memory, frame, &mut counters.errors) {
                counters.receive_ring_full += 1;
                break;
            }
            touched |= 1 << pair;
            sent += 1;
        }
        let event_idx = self.shared.event_idx();
        for (pair, guard) in guards.iter_mut().enumerate() {
            if touched & (1 << pair) != 0 && call_if_wanted(guard, &memory, event_idx)? {
                counters.calls += 1;
            }
        }
        counters.frames_to_guest += sent as u64;
        self.counters.set(counters);
        Ok(sent)
    }

    fn recv_batch(
        &self,
        buffers: &mut [[u8; FRAME_BUFFER]],
        lengths: &mut [usize],
    ) -> io::Result<usize> {
        let room = buffers.len().min(lengths.len());
        let pairs = self.pairs.len();
        if pairs == 0 || room == 0 {
            return Ok(0);
        }
        let memory = self.memory.memory();
        let event_idx = self.shared.event_idx();
        let mut counters = self.counters.get();
        let mut count = 0;
        let first = self.next_transmit.get();
        for step in 0..pairs {
            let pair = (first + step) % pairs;
            let mut ring = self.pairs[pair].1.get_mut();
            let mut taken = 0;
            while count < room {
                match pop_frame(&mut ring, &memory, &mut buffers[count], &mut counters.errors) {
                    None => break,
                    Some(Some(length)) => {
                        lengths[count] = length;
                        count += 1;
                        taken += 1;
                    }
                    Some(None) => taken += 1,
                }
            }
            if taken > 0 && call_if_wanted(&mut ring, &memory, event_idx)? {
                counters.calls += 1;
            }
        }
        self.next_transmit.set((first + 1) % pairs);
        counters.frames_from_guest += count as u64;
        self.counters.set(counters);
        Ok(count)
    }

    fn wait_readable(&self, timeout: Duration) -> io::Result<()> {
        self.wait_on(self.pairs.iter().map(|(_, transmit)| transmit.clone()), timeout)
    }

    fn wait_send_room(&self, timeout: Duration) -> io::Result<()> {
        self.wait_on(self.pairs.iter().map(|(receive, _)| receive.clone()), timeout)
    }

    fn describe(&self) -> String {
        format!("vhost-user socket {}", self.path.display())
    }
}
