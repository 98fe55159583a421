//! `AfXdpNic`: one XSK socket, its UMEM being the queue's mempool, as a
//! `dataplane::Nic`.

use crate::program::XdpProgram;
use crate::ring::Ring;
use crate::stats::AfXdpStats;
use crate::sys::{self, AfXdpError, Kick, Mapping};
use dataplane::mem::mempool::{DEFAULT_HEADROOM, MempoolConfig};
use dataplane::{Batch, DmaRegion, LinkInfo, MacAddr, Mempool, Nic, Packet};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;

/// Bytes per UMEM chunk, which is also the mempool's buffer stride: a
/// power of two no larger than a page, so every driver's zero-copy mode
/// takes it (aligned chunks never cross a page).
pub(crate) const CHUNK_SIZE: usize = 4096;
/// Fill-ring entries posted per refill at most.
const FILL_BURST: u32 = 64;
/// Completion-ring entries reclaimed per call at most.
const COMPLETION_BURST: u32 = 256;
/// Bursts between two reads of the kernel's socket statistics.
const STATISTICS_EVERY: u32 = 1024;

/// How to bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// Zero copy where the driver supports it, else copy (the kernel's own
    /// fallback when neither flag is given).
    Auto,
    /// `XDP_COPY`.
    Copy,
    /// `XDP_ZEROCOPY`: fail if the driver cannot.
    ZeroCopy,
}

/// Which queue to bind, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfXdpConfig {
    /// Interface name, like `veth1`.
    pub ifname: String,
    /// The interface's queue to bind (and the XSKMAP key).
    pub queue: u32,
    /// Zero copy, copy, or whichever the driver allows.
    pub mode: BindMode,
    /// Entries in each of the four rings (a power of two).
    pub ring_size: u32,
    /// UMEM chunks, i.e. buffers of the queue's mempool.
    pub frames: usize,
    /// The MAC the dataplane uses; `None` takes the interface's own.
    pub mac: Option<MacAddr>,
    /// Preferred busy polling on the socket, or `None` to leave the
    /// interface's NAPI poll to the kernel's softirq.
    pub busy_poll: Option<BusyPoll>,
}

/// Socket busy polling (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL`,
/// `SO_BUSY_POLL_BUDGET`): the driver's `sendto` after a TX burst, and a
/// `recvfrom` when a poll finds the RX ring empty, run the queue's NAPI
/// poll in the polling thread, so the kernel's receive work for this
/// queue (the XDP program and, in copy mode, the copy into the UMEM) is
/// done on this core instead of in the sender's softirq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyPoll {
    /// How long one call may poll, in microseconds (`SO_BUSY_POLL`).
    pub usecs: u32,
    /// Frames one NAPI poll may take (`SO_BUSY_POLL_BUDGET`).
    pub budget: u32,
}

impl BusyPoll {
    /// DPDK `net_af_xdp`'s defaults: 20 µs, 64 frames.
    pub const DEFAULT: Self = Self {
        usecs: 20,
        budget: 64,
    };
}

impl AfXdpConfig {
    /// Queue 0 of `ifname`, automatic mode, 1024-entry rings, 4096 frames
    /// (16 MiB), the interface's MAC, busy polling with
    /// [`BusyPoll::DEFAULT`].
    pub fn new(ifname: &str) -> Self {
        Self {
            ifname: ifname.to_owned(),
            queue: 0,
            mode: BindMode::Auto,
            ring_size: 1024,
            frames: 4096,
            mac: None,
            busy_poll: Some(BusyPoll::DEFAULT),
        }
    }
}

/// The four rings and the mappings they live in.
struct Rings {
    fill: Ring<u64>,
    completion: Ring<u64>,
    rx: Ring<libc::xdp_desc>,
    tx: Ring<libc::xdp_desc>,
    _mappings: [Mapping; 4],
}

impl Rings {
    fn map(socket: &OwnedFd, size: u32) -> Result<Self, AfXdpError> {
        let offsets = sys::mmap_offsets(socket)?;
        let address_ring = |offset: &libc::xdp_ring_offset| {
            offset.desc as usize + size as usize * size_of::<u64>()
        };
        let descriptor_ring = |offset: &libc::xdp_ring_offset| {
            offset.desc as usize + size as usize * size_of::<libc::xdp_desc>()
        };
        let fill_map = Mapping::map(
            socket,
            "mmap fill ring",
            libc::XDP_UMEM_PGOFF_FILL_RING,
            address_ring(&offsets.fr),
        )?;
        let completion_map = Mapping::map(
            socket,
            "mmap completion ring",
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            address_ring(&offsets.cr),
        )?;
        let rx_map = Mapping::map(
            socket,
            "mmap RX ring",
            libc::XDP_PGOFF_RX_RING as u64,
            descriptor_ring(&offsets.rx),
        )?;
        let tx_map = Mapping::map(
            socket,
            "mmap TX ring",
            libc::XDP_PGOFF_TX_RING as u64,
            descriptor_ring(&offsets.tx),
        )?;
        // SAFETY: each mapping is the kernel's ring of `size` entries (a
        // power of two, checked by `open`) at the offsets it reported, kept
        // alive in `_mappings` as long as the rings; the kernel uses the
        // index words atomically and a slot only while the indices give it
        // to the kernel.
        let rings = unsafe {
            Self {
                fill: Ring::new(fill_map.base(), &offsets.fr, size),
                completion: Ring::new(completion_map.base(), &offsets.cr, size),
                rx: Ring::new(rx_map.base(), &offsets.rx, size),
                tx: Ring::new(tx_map.base(), &offsets.tx, size),
                _mappings: [fill_map, completion_map, rx_map, tx_map],
            }
        };
        Ok(rings)
    }
}

/// One XSK socket bound to a queue of an interface. Its UMEM is the memory
/// of its own mempool, one 4 KiB chunk per buffer: received frames are
/// packets of that pool, and packets of that pool are transmitted in
/// place. Packets lent to the kernel (fill ring, TX ring) are held in
/// `lent`, by chunk, until it gives them back (RX ring, completion ring).
pub struct AfXdpNic {
    // Field order: rings and socket go before the lent packets and the
    // pool, so the kernel is done with the UMEM before its buffers return.
    rings: Rings,
    socket: OwnedFd,
    lent: Vec<Option<Packet>>,
    pool: Mempool,
    /// The UMEM's start as the pool's packets report it (`buffer_phys`).
    umem_base: u64,
    umem_len: u64,
    _program: Arc<XdpProgram>,
    ifname: String,
    name: String,
    mac: MacAddr,
    zero_copy: bool,
    /// Busy polling is on: an empty RX poll calls `recvfrom`.
    busy_poll: bool,
    /// The socket's frames came from no NAPI instance the kernel can busy
    /// poll (`SO_INCOMING_NAPI_ID` 0 after frames arrived: a veth's XDP
    /// queue on Linux 6.18), so the empty-poll `recvfrom` would do nothing
    /// but cost a system call; it is skipped until an id shows up.
    napi_missing: bool,
    bursts: u32,
    stats: Arc<AfXdpStats>,
}

impl AfXdpNic {
    /// Makes the UMEM and its pool, opens the socket, maps its rings, binds
    /// it to the queue, puts it into `program`'s XSKMAP and fills the fill
    /// ring. Call on the core that polls this NIC (the pool is that core's).
    pub fn open(config: &AfXdpConfig, program: Arc<XdpProgram>) -> Result<Self, AfXdpError> {
        if !config.ring_size.is_power_of_two() || config.frames < 2 * config.ring_size as usize {
            return Err(AfXdpError::Setup(
                "ring geometry",
                std::io::Error::other("ring size must be a power of two, frames at least twice it"),
            ));
        }
        let ifindex = sys::interface_index(&config.ifname)?;
        let info = sys::interface_info(&config.ifname)?;
        let umem_len = config.frames * CHUNK_SIZE;
        let region = DmaRegion::from_heap(umem_len).ok_or_else(|| {
            AfXdpError::Setup("UMEM allocation", std::io::Error::other("out of memory"))
        })?;
        let umem = region.virt();
        let umem_base = region.phys();
        let pool = Mempool::with_data_size(
            region,
            MempoolConfig {
                headroom: DEFAULT_HEADROOM,
                buffer_count: Some(config.frames),
            },
            CHUNK_SIZE - DEFAULT_HEADROOM,
        )
        .map_err(AfXdpError::Pool)?;
        debug_assert_eq!(pool.buffer_stride(), CHUNK_SIZE);
        let socket = sys::xsk_socket()?;
        sys::register_umem(&socket, umem, umem_len, CHUNK_SIZE as u32)?;
        sys::size_rings(&socket, config.ring_size)?;
        let rings = Rings::map(&socket, config.ring_size)?;
        let mode_flag = match config.mode {
            BindMode::Auto => 0,
            BindMode::Copy => libc::XDP_COPY,
            BindMode::ZeroCopy => libc::XDP_ZEROCOPY,
        };
        sys::bind(
            &socket,
            ifindex,
            config.queue,
            mode_flag | libc::XDP_USE_NEED_WAKEUP,
        )?;
        let zero_copy = sys::is_zero_copy(socket.as_raw_fd())?;
        program
            .insert(config.queue, socket.as_fd())
            .map_err(AfXdpError::Program)?;
        // Busy polling is an optimisation: a kernel older than 5.11 or a
        // process without CAP_NET_ADMIN runs without it (`busy_poll` 0).
        let busy_poll = config
            .busy_poll
            .is_some_and(|busy| sys::set_busy_poll(&socket, busy.usecs, busy.budget).is_ok());
        let stats = Arc::new(AfXdpStats::default());
        stats.zero_copy.add(u64::from(zero_copy));
        stats.busy_poll.add(u64::from(busy_poll));
        let mut nic = Self {
            rings,
            socket,
            lent: (0..config.frames).map(|_| None).collect(),
            pool,
            umem_base,
            umem_len: umem_len as u64,
            _program: program,
            ifname: config.ifname.clone(),
            name: format!("af-xdp:{}.q{}", config.ifname, config.queue),
            mac: config.mac.unwrap_or(MacAddr(info.mac)),
            zero_copy,
            busy_poll,
            napi_missing: false,
            bursts: 0,
            stats,
        };
        while nic.refill() > 0 {}
        Ok(nic)
    }

    /// The queue's counters; clone the `Arc` to read them from elsewhere.
    pub fn stats(&self) -> &Arc<AfXdpStats> {
        &self.stats
    }

    /// True when the socket runs zero copy, false in copy mode.
    pub fn is_zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// True when the socket busy-polls (see [`BusyPoll`]).
    pub fn is_busy_polling(&self) -> bool {
        self.busy_poll
    }

    /// The Linux interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// A duplicate of the socket, for `poll(2)`: readable when the RX ring
    /// holds a frame.
    pub fn wait_fd(&self) -> std::io::Result<OwnedFd> {
        self.socket.try_clone()
    }

    /// The UMEM chunk of a UMEM address, if it is one of ours.
    fn chunk_of(&self, address: u64) -> Option<usize> {
        (address < self.umem_len).then_some((address / CHUNK_SIZE as u64) as usize)
    }

    /// Lends up to `FILL_BURST` free pool buffers to the kernel through
    /// the fill ring, publishing once; returns how many.
    fn refill(&mut self) -> u32 {
        let room = self.rings.fill.free(FILL_BURST);
        let mut posted = 0;
        while posted < room {
            let Some(packet) = self.pool.alloc() else {
                self.stats.fill_no_buffer.increment();
                break;
            };
            let address = packet.buffer_phys().0 - self.umem_base;
            let Some(chunk) = self.chunk_of(address) else {
                // Impossible: the pool's buffers are the UMEM.
                break;
            };
            self.rings.fill.write(address);
            self.lent[chunk] = Some(packet);
            posted += 1;
        }
        if posted > 0 {
            self.rings.fill.publish();
            self.stats.fill_posted.add(u64::from(posted));
        }
        if self.rings.fill.needs_wakeup() {
            self.stats.rx_wakeups.increment();
            self.count_kick(sys::kick_rx(self.socket.as_raw_fd()));
        }
        posted
    }

    /// Takes back the buffers the kernel finished transmitting.
    fn reclaim(&mut self) {
        let done = self.rings.completion.ready(COMPLETION_BURST);
        for _ in 0..done {
            let address = self.rings.completion.read();
            if let Some(chunk) = self.chunk_of(address) {
                // Dropping the packet returns its buffer to the pool.
                self.lent[chunk] = None;
            }
        }
        if done > 0 {
            self.rings.completion.release();
            self.stats.tx_completed.add(u64::from(done));
        }
    }

    /// Wakes the kernel's transmit side if it asked to be.
    fn wake_tx(&mut self) {
        if self.rings.tx.needs_wakeup() {
            self.stats.tx_wakeups.increment();
            self.count_kick(sys::kick_tx(self.socket.as_raw_fd()));
        }
    }

    fn count_kick(&self, kick: Kick) {
        match kick {
            Kick::Done => {}
            Kick::Busy => self.stats.wakeups_busy.increment(),
            Kick::Failed => self.stats.wakeup_errors.increment(),
        }
    }

    /// Copies the kernel's socket statistics into the counters, and looks
    /// again whether busy polling has a NAPI instance to run.
    fn read_kernel_statistics(&mut self) {
        let Some(kernel) = sys::statistics(self.socket.as_raw_fd()) else {
            return;
        };
        let set = |counter: &dataplane::Counter, value: u64| {
            let now = counter.get();
            if value > now {
                counter.add(value - now);
            }
        };
        set(&self.stats.kernel_rx_dropped, kernel[0]);
        set(&self.stats.kernel_rx_invalid_descs, kernel[1]);
        set(&self.stats.kernel_tx_invalid_descs, kernel[2]);
        set(&self.stats.kernel_rx_ring_full, kernel[3]);
        set(&self.stats.kernel_rx_fill_ring_empty, kernel[4]);
        if let Some(napi_id) = sys::incoming_napi_id(self.socket.as_raw_fd()) {
            set(&self.stats.napi_id, u64::from(napi_id));
            // The kernel marks the id when the first frame arrives; before
            // any frame, 0 says nothing yet.
            self.napi_missing = napi_id == 0 && self.stats.rx_packets.get() > 0;
        }
    }

    /// The UMEM address of `packet`'s data if its buffer is one of our
    /// chunks, else `None` (another pool's packet).
    fn umem_address(&self, packet: &Packet) -> Option<u64> {
        let address = packet.phys_addr().checked_sub(self.umem_base)?;
        (address < self.umem_len).then_some(address)
    }
}

impl Nic for AfXdpNic {
    fn rx_burst(&mut self, batch: &mut Batch) -> usize {
        self.bursts = self.bursts.wrapping_add(1);
        if self.bursts.is_multiple_of(STATISTICS_EVERY) {
            self.read_kernel_statistics();
        }
        self.reclaim();
        self.refill();
        // Frames the kernel left in the TX ring (its `sendto` stopped
        // early) go from here when it asks to be woken: the executor
        // transmits only when it has packets.
        if self.rings.tx.unconsumed() > 0 {
            self.wake_tx();
        }
        let mut ready = self.rings.rx.ready(batch.remaining_capacity() as u32);
        if ready == 0 && self.busy_poll && !self.napi_missing {
            // Run the queue's NAPI poll here, then look again.
            self.stats.rx_busy_polls.increment();
            self.count_kick(sys::kick_rx(self.socket.as_raw_fd()));
            ready = self.rings.rx.ready(batch.remaining_capacity() as u32);
        }
        let mut received = 0;
        for _ in 0..ready {
            let descriptor = self.rings.rx.read();
            let chunk_address = descriptor.addr & !(CHUNK_SIZE as u64 - 1);
            let offset = (descriptor.addr - chunk_address) as usize;
            let packet = self
                .chunk_of(chunk_address)
                .and_then(|chunk| self.lent[chunk].take());
            let Some(mut packet) = packet else {
                self.stats.rx_invalid.increment();
                continue;
            };
            if packet.set_range(offset, descriptor.len as usize).is_err() {
                self.stats.rx_invalid.increment();
                continue;
            }
            self.stats.rx_packets.increment();
            self.stats.rx_bytes.add(u64::from(descriptor.len));
            if batch.push(packet).is_err() {
                // Impossible: `ready` is at most the batch's room.
                continue;
            }
            received += 1;
        }
        if ready > 0 {
            self.rings.rx.release();
        }
        received
    }

    fn tx_burst(&mut self, batch: &mut Batch) -> usize {
        self.reclaim();
        let room = self.rings.tx.free(batch.len() as u32) as usize;
        if room < batch.len() {
            self.stats.tx_ring_full.increment();
        }
        // First pass: a descriptor per packet; packets of another pool are
        // copied into a buffer of ours, which is lent at once.
        let mut sent = 0;
        for packet in batch.iter().take(room) {
            let address = match self.umem_address(packet) {
                Some(address) => address,
                None => {
                    let Some(mut copy) = self.pool.alloc() else {
                        self.stats.tx_no_buffer.increment();
                        break;
                    };
                    let Ok(bytes) = copy.append(packet.len()) else {
                        // Larger than a chunk: the executor keeps it and
                        // drops it as untransmittable.
                        break;
                    };
                    bytes.copy_from_slice(packet.payload());
                    let Some(address) = self.umem_address(&copy) else {
                        break;
                    };
                    self.stats.tx_copied.increment();
                    let chunk = (address / CHUNK_SIZE as u64) as usize;
                    self.lent[chunk] = Some(copy);
                    address
                }
            };
            self.rings.tx.write(libc::xdp_desc {
                addr: address,
                len: packet.len() as u32,
                options: 0,
            });
            self.stats.tx_bytes.add(packet.len() as u64);
            sent += 1;
        }
        // Second pass: our own packets are lent until their completion;
        // copied originals go back to their pools.
        for packet in batch.packets_mut().drain(..sent) {
            if let Some(address) = self.umem_address(&packet) {
                let chunk = (address / CHUNK_SIZE as u64) as usize;
                self.lent[chunk] = Some(packet);
            }
        }
        if sent > 0 {
            self.rings.tx.publish();
            self.stats.tx_packets.add(sent as u64);
            self.wake_tx();
        }
        sent
    }

    fn mac(&self) -> MacAddr {
        self.mac
    }

    fn link(&self) -> LinkInfo {
        match sys::interface_info(&self.ifname) {
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

    /// The RX ring signals through the socket (see [`wait_fd`]); frames
    /// left in the TX ring need this core to poll, not sleep.
    ///
    /// [`wait_fd`]: AfXdpNic::wait_fd
    fn enable_wakeup(&mut self) -> bool {
        self.rings.tx.unconsumed() == 0
    }
}

impl Drop for AfXdpNic {
    fn drop(&mut self) {
        self.read_kernel_statistics();
    }
}
