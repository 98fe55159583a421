//! The vhost-user port: listens on a unix socket for QEMU, waits for the
//! guest driver to bring its rings up, then moves bursts of frames between
//! loadgen and the guest's virtqueues (receive queue 2p, transmit 2p + 1 of
//! pair p, one pair per guest vCPU). Kicks are slept on only when there is
//! nothing to do, and only with notifications armed; calls honour the
//! guest's event index or no-interrupt flag.

use super::handler::{MAX_QUEUE_PAIRS, NetDevice, SharedDevice, lock, memory};
use super::protocol::{ProtocolError, serve};
use super::rings::{RingErrors, arm_kick, call, disarm_kick, has_available};
use super::split::{Burst, GuestMap};
use crate::port::FramePort;
use crate::socket::FRAME_BUFFER;
use anyhow::{Context, Result, bail};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use virtio_queue::QueueT;
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};

/// How long a closed loop polls an empty transmit ring before it sleeps on
/// its kicks, when loadgen has a host CPU of its own.
const POLL_BEFORE_SLEEP: Duration = Duration::from_micros(200);

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
    /// Kicks from the guest that woke loadgen.
    pub kicks: u64,
    /// Sleeps on kicks (nothing to do, notifications armed).
    pub sleeps: u64,
    /// Guest mistakes, counted and survived.
    pub errors: RingErrors,
}

/// loadgen's end of a vhost-user virtio-net device.
pub struct VhostUserPort {
    path: PathBuf,
    mac: [u8; 6],
    device: SharedDevice,
    pairs: usize,
    /// The protocol thread: ends when QEMU hangs up.
    server: Option<JoinHandle<std::result::Result<(), ProtocolError>>>,
    counters: Cell<DeviceCounters>,
    /// The transmit ring read first next time, so that no pair starves.
    next_transmit: Cell<usize>,
    /// Copies of the kick eventfds, per queue, as of device generation
    /// `kicks_generation`: polled without holding the device lock.
    kicks: RefCell<Vec<Option<File>>>,
    kicks_generation: Cell<u64>,
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
        let device = NetDevice::new(pairs, GuestMemoryAtomic::new(GuestMemoryMmap::new()));
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("removing the stale {}", path.display()));
            }
        }
        let listener =
            UnixListener::bind(path).with_context(|| format!("listening on {}", path.display()))?;
        let shared = device.clone();
        let server = std::thread::Builder::new()
            .name("vhost-user".into())
            .spawn(move || {
                let (stream, _) = listener.accept()?;
                match serve(stream, &shared) {
                    Err(ProtocolError::Disconnected) => Ok(()),
                    other => other,
                }
            })
            .context("starting the vhost-user thread")?;
        Ok(Self {
            path: path.to_owned(),
            mac,
            device,
            pairs,
            server: Some(server),
            counters: Cell::new(DeviceCounters {
                queue_pairs: pairs as u64,
                ..DeviceCounters::default()
            }),
            next_transmit: Cell::new(0),
            kicks: RefCell::new(Vec::new()),
            kicks_generation: Cell::new(u64::MAX),
        })
    }

    /// Waits (at most `timeout`) until QEMU connected and the guest driver
    /// started every queue pair and posted receive buffers.
    pub fn wait_for_guest(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(server) = self.server.take_if(|server| server.is_finished()) {
                let reason = match server.join() {
                    Ok(Ok(())) => "it disconnected".to_owned(),
                    Ok(Err(error)) => error.to_string(),
                    Err(_) => "the protocol thread panicked".to_owned(),
                };
                bail!(
                    "QEMU hung up on {} before the guest brought its rings up ({reason})",
                    self.path.display()
                );
            }
            if self.rings_up() {
                let mut device = lock(&self.device);
                let memory = memory(&device);
                for slot in &mut device.queues {
                    disarm_kick(&mut slot.queue, &memory);
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the guest did not bring up its {} queue pair(s) on {} within {timeout:?}",
                    self.pairs,
                    self.path.display()
                );
            }
            // Setup is QEMU's and the guest's business: look again soon.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every ring started, enabled and in guest memory, every receive ring
    /// holding buffers.
    fn rings_up(&self) -> bool {
        let device = lock(&self.device);
        let memory = memory(&device);
        device.queues.iter().enumerate().all(|(index, slot)| {
            slot.enabled
                && slot.queue.ready()
                && slot.queue.is_valid(&*memory)
                && (index % 2 == 1 || has_available(&slot.queue, &memory))
        })
    }

    /// The device's counters so far.
    pub fn counters(&self) -> DeviceCounters {
        self.counters.get()
    }

    /// Arms kicks on the queues `first, first + 2, ...` (receive queues
    /// from 0, transmit queues from 1), sleeps on them unless work is
    /// already waiting, and disarms them again.
    fn wait_on(&self, first: usize, timeout: Duration) -> io::Result<()> {
        let mut pending = false;
        {
            let mut device = lock(&self.device);
            let memory = memory(&device);
            for slot in device.queues.iter_mut().skip(first).step_by(2) {
                pending |= arm_kick(&mut slot.queue, &memory);
            }
            self.refresh_kicks(&device)?;
        }
        if !pending {
            self.sleep_on_kicks(first, timeout)?;
        }
        let mut device = lock(&self.device);
        let memory = memory(&device);
        for slot in device.queues.iter_mut().skip(first).step_by(2) {
            disarm_kick(&mut slot.queue, &memory);
        }
        Ok(())
    }

    /// Copies the kick eventfds when QEMU changed the rings since last time.
    fn refresh_kicks(&self, device: &NetDevice) -> io::Result<()> {
        if self.kicks_generation.get() == device.generation {
            return Ok(());
        }
        let copies = device
            .queues
            .iter()
            .map(|slot| slot.kick.as_ref().map(File::try_clone).transpose())
            .collect::<io::Result<Vec<_>>>()?;
        *self.kicks.borrow_mut() = copies;
        self.kicks_generation.set(device.generation);
        Ok(())
    }

    /// Sleeps until one of the kick eventfds of queues `first, first + 2,
    /// ...` fires or `timeout` passes, and clears the ones that fired.
    fn sleep_on_kicks(&self, first: usize, timeout: Duration) -> io::Result<()> {
        let kicks = self.kicks.borrow();
        let mut polled: Vec<PollFd<'_>> = kicks
            .iter()
            .skip(first)
            .step_by(2)
            .flatten()
            .map(|kick| PollFd::new(kick, PollFlags::IN))
            .collect();
        let timeout = Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        let mut counters = self.counters.get();
        counters.sleeps += 1;
        match poll(&mut polled, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(error) => return Err(error.into()),
        }
        let fired: Vec<usize> = polled
            .iter()
            .enumerate()
            .filter(|(_, polled)| polled.revents().contains(PollFlags::IN))
            .map(|(position, _)| position)
            .collect();
        drop(polled);
        for (position, kick) in kicks.iter().skip(first).step_by(2).flatten().enumerate() {
            if fired.contains(&position) {
                let mut value = [0u8; 8];
                let mut kick: &File = kick;
                // Readable: the eventfd's counter is not zero, so this read
                // does not block.
                kick.read_exact(&mut value)?;
                counters.kicks += 1;
            }
        }
        self.counters.set(counters);
        Ok(())
    }

    /// The pair a frame goes to: by its UDP or TCP source port or ICMP identifier,
    /// so that one flow stays on one queue (and one guest core), as RSS
    /// would keep it.
    fn pair_of(&self, frame: &[u8]) -> usize {
        if self.pairs <= 1 || frame.len() < 40 || frame[12..14] != [0x08, 0x00] {
            return 0;
        }
        let key = match frame[23] {
            6 | 17 => u16::from_be_bytes([frame[34], frame[35]]),
            1 => u16::from_be_bytes([frame[38], frame[39]]),
            _ => 0,
        };
        usize::from(key) % self.pairs
    }
}

impl FramePort for VhostUserPort {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn send_batch(&self, frames: &[Vec<u8>]) -> io::Result<usize> {
        let mut device = lock(&self.device);
        let memory = memory(&device);
        let map = GuestMap::new(&memory);
        let event_idx = device.event_idx();
        let mut counters = self.counters.get();
        // One burst per receive ring, opened once: rings translated once,
        // one used-index store and one call decision each.
        let mut bursts: [Option<Burst<'_, '_>>; MAX_QUEUE_PAIRS] = std::array::from_fn(|pair| {
            (pair < self.pairs)
                .then(|| Burst::open(&device.queues[2 * pair].queue, &map))
                .flatten()
        });
        let mut sent = 0;
        for frame in frames {
            let pair = self.pair_of(frame);
            let pushed = match &mut bursts[pair] {
                Some(burst) => burst.push_frame(frame, &mut counters.errors),
                None => {
                    if device.queues[2 * pair].queue.ready() {
                        counters.errors.used_ring_errors += 1;
                    }
                    false
                }
            };
            if !pushed {
                counters.receive_ring_full += 1;
                break;
            }
            sent += 1;
        }
        for (pair, burst) in bursts.iter_mut().enumerate() {
            if let Some(burst) = burst.take() {
                let slot = &mut device.queues[2 * pair];
                if burst.finish(&mut slot.queue, event_idx) && call(slot)? {
                    counters.calls += 1;
                }
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
        let mut device = lock(&self.device);
        let memory = memory(&device);
        let map = GuestMap::new(&memory);
        let event_idx = device.event_idx();
        let mut counters = self.counters.get();
        let mut count = 0;
        let first = self.next_transmit.get();
        for step in 0..self.pairs {
            let slot = &mut device.queues[2 * ((first + step) % self.pairs) + 1];
            let Some(mut burst) = Burst::open(&slot.queue, &map) else {
                if slot.queue.ready() {
                    counters.errors.used_ring_errors += 1;
                }
                continue;
            };
            while count < room {
                match burst.pop_frame(&mut buffers[count], &mut counters.errors) {
                    None => break,
                    Some(Some(length)) => {
                        lengths[count] = length;
                        count += 1;
                    }
                    Some(None) => {}
                }
            }
            if burst.finish(&mut slot.queue, event_idx) && call(slot)? {
                counters.calls += 1;
            }
        }
        self.next_transmit.set((first + 1) % self.pairs);
        counters.frames_from_guest += count as u64;
        self.counters.set(counters);
        Ok(count)
    }

    fn wait_readable(&self, timeout: Duration) -> io::Result<()> {
        self.wait_on(1, timeout)
    }

    fn wait_send_room(&self, timeout: Duration) -> io::Result<()> {
        self.wait_on(0, timeout)
    }

    /// Polls for up to [`POLL_BEFORE_SLEEP`] when the host has a CPU beyond
    /// one per guest vCPU (one queue pair each): then loadgen's polling
    /// takes no vCPU's time, and a sleep's wake-up would add to every
    /// round trip. Otherwise it sleeps at once and leaves the CPU to the
    /// guest.
    fn poll_before_sleep(&self) -> Duration {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        if cpus > self.pairs {
            POLL_BEFORE_SLEEP
        } else {
            Duration::ZERO
        }
    }

    fn describe(&self) -> String {
        format!("vhost-user socket {}", self.path.display())
    }
}
