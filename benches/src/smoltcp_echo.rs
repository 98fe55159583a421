//! The smoltcp peer of the stack benchmark: an `Interface` with the echo
//! appliance's MAC and address and a UDP socket on port 7 that sends every
//! datagram back, over a `phy::Device` whose wire turns each transmitted
//! reply into the next request, as [`crate::reflector::ReflectorNic`] does
//! for warpcore.
//!
//! Differences from warpcore that are smoltcp's design, not the harness's:
//! a datagram is copied into the socket's receive buffer, out of it by the
//! application (`recv_slice`, as smoltcp's own examples echo), into the
//! transmit buffer (`send_slice`) and into the device's frame, and the reply
//! headers and UDP checksum are computed afresh; warpcore rewrites the
//! request in place. Both verify the IPv4 and UDP checksums of what they
//! receive, both learn the peer's MAC from its ARP request during warm-up,
//! and both run on a frozen clock.

use crate::frames::{
    ECHO_PORT, OUR_IP, OUR_MAC, PAYLOAD_LEN, arp_request, echo_payload, turn_around,
    udp_echo_request,
};
use crate::pipelines::ECHO_IN_FLIGHT;
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::udp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

/// Bytes of one frame slot: a full Ethernet frame without FCS.
const SLOT_LEN: usize = 1514;
/// Frames each direction of the device holds.
const DEVICE_SLOTS: usize = 2 * ECHO_IN_FLIGHT;
/// Datagrams each socket buffer holds.
const SOCKET_DATAGRAMS: usize = 2 * ECHO_IN_FLIGHT;

/// A FIFO of frames in fixed slots, allocated once.
struct FrameQueue {
    slots: Box<[[u8; SLOT_LEN]]>,
    lengths: Box<[usize]>,
    head: usize,
    len: usize,
}

impl FrameQueue {
    fn new(capacity: usize) -> Self {
        Self {
            slots: vec![[0; SLOT_LEN]; capacity].into_boxed_slice(),
            lengths: vec![0; capacity].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn index(&self, position: usize) -> usize {
        (self.head + position) % self.slots.len()
    }

    /// The free slot behind the last frame, or `None` when full.
    fn tail_slot(&mut self) -> Option<&mut [u8; SLOT_LEN]> {
        if self.len == self.slots.len() {
            return None;
        }
        let index = self.index(self.len);
        Some(&mut self.slots[index])
    }

    /// Makes the first `len` bytes of the tail slot a frame.
    fn commit_tail(&mut self, len: usize) {
        let index = self.index(self.len);
        self.lengths[index] = len;
        self.len += 1;
    }

    /// Appends a copy of `frame`; false when full.
    fn push(&mut self, frame: &[u8]) -> bool {
        let Some(slot) = self.tail_slot() else {
            return false;
        };
        slot[..frame.len()].copy_from_slice(frame);
        self.commit_tail(frame.len());
        true
    }

    /// Removes the oldest frame and lends it until the next change.
    fn pop(&mut self) -> Option<&[u8]> {
        if self.len == 0 {
            return None;
        }
        let index = self.head;
        self.head = self.index(1);
        self.len -= 1;
        Some(&self.slots[index][..self.lengths[index]])
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len).map(|position| {
            let index = self.index(position);
            &self.slots[index][..self.lengths[index]]
        })
    }
}

/// What the [`TurnaroundDevice`] saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeviceCounts {
    /// Frames handed to smoltcp.
    pub received: u64,
    /// Transmitted UDP frames turned around for the next round.
    pub reflected: u64,
    /// Transmitted frames that were not IPv4/UDP (ARP), dropped.
    pub ignored: u64,
    /// Transmitted frames dropped because the transmit queue was full.
    pub overflowed: u64,
}

/// A `phy::Device` whose transmitted UDP frames are turned around
/// ([`turn_around`]) and received again after [`Self::deliver`]; other
/// frames are dropped. No allocation after construction.
pub struct TurnaroundDevice {
    received: FrameQueue,
    transmitted: FrameQueue,
    /// Where a frame goes when the transmit queue is full.
    overflow: Box<[u8; SLOT_LEN]>,
    counts: DeviceCounts,
}

impl TurnaroundDevice {
    fn new() -> Self {
        Self {
            received: FrameQueue::new(DEVICE_SLOTS),
            transmitted: FrameQueue::new(DEVICE_SLOTS),
            overflow: Box::new([0; SLOT_LEN]),
            counts: DeviceCounts::default(),
        }
    }

    /// Moves the turned-around frames to the receive side: the peer's
    /// requests for the next round. Swaps the queues when the receive side
    /// is empty (always, after a round), so frames are not copied.
    pub fn deliver(&mut self) {
        if self.received.is_empty() {
            core::mem::swap(&mut self.received, &mut self.transmitted);
            return;
        }
        while let Some(frame) = self.transmitted.pop() {
            if !self.received.push(frame) {
                self.counts.overflowed += 1;
            }
        }
    }

    /// The frames waiting to be received, oldest first.
    pub fn waiting(&self) -> impl Iterator<Item = &[u8]> {
        self.received.iter()
    }

    /// What the device saw so far.
    pub fn counts(&self) -> DeviceCounts {
        self.counts
    }
}

/// Lends one received frame.
pub struct FrameRxToken<'a> {
    frame: &'a [u8],
}

impl RxToken for FrameRxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
    }
}

/// Lends the next transmit slot; the frame is turned around when smoltcp
/// has written it.
pub struct FrameTxToken<'a> {
    queue: &'a mut FrameQueue,
    overflow: &'a mut [u8; SLOT_LEN],
    counts: &'a mut DeviceCounts,
}

impl TxToken for FrameTxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let Some(slot) = self.queue.tail_slot() else {
            self.counts.overflowed += 1;
            return f(&mut self.overflow[..len]);
        };
        let result = f(&mut slot[..len]);
        if turn_around(&mut slot[..len]) {
            self.queue.commit_tail(len);
            self.counts.reflected += 1;
        } else {
            self.counts.ignored += 1;
        }
        result
    }
}

impl Device for TurnaroundDevice {
    type RxToken<'a> = FrameRxToken<'a>;
    type TxToken<'a> = FrameTxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let Self {
            received,
            transmitted,
            overflow,
            counts,
        } = self;
        let frame = received.pop()?;
        counts.received += 1;
        Some((
            FrameRxToken { frame },
            FrameTxToken {
                queue: transmitted,
                overflow,
                counts,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        Some(FrameTxToken {
            queue: &mut self.transmitted,
            overflow: &mut self.overflow,
            counts: &mut self.counts,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = SLOT_LEN;
        capabilities
    }
}

/// smoltcp answering the echo loop: one [`round`](Self::round) receives
/// every waiting request, echoes it and transmits the replies.
pub struct SmoltcpEcho {
    interface: Interface,
    device: TurnaroundDevice,
    sockets: SocketSet<'static>,
    socket: SocketHandle,
    /// The application's copy of one datagram.
    datagram: [u8; 1500],
}

/// The timestamp every poll passes: frozen, like warpcore's clock here.
const NOW: Instant = Instant::ZERO;

impl SmoltcpEcho {
    /// The interface and socket, the device primed like warpcore's
    /// reflector (the peer's ARP request, then [`ECHO_IN_FLIGHT`] requests
    /// with a 64-byte payload), after one warm-up round.
    pub fn new() -> Self {
        let mut device = TurnaroundDevice::new();
        let request = udp_echo_request(&echo_payload());
        assert!(device.received.push(&arp_request()));
        for _ in 0..ECHO_IN_FLIGHT {
            assert!(device.received.push(&request));
        }
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(OUR_MAC.0)));
        config.random_seed = 0x7761_7270_636f_7265;
        let mut interface = Interface::new(config, &mut device, NOW);
        interface.update_ip_addrs(|addresses| {
            addresses
                .push(IpCidr::new(IpAddress::Ipv4(OUR_IP), 24))
                .expect("room for one address");
        });
        let buffer = || {
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; SOCKET_DATAGRAMS],
                vec![0u8; SOCKET_DATAGRAMS * PAYLOAD_LEN.next_power_of_two()],
            )
        };
        let mut socket = udp::Socket::new(buffer(), buffer());
        socket.bind(ECHO_PORT).expect("port 7 is free");
        let mut sockets = SocketSet::new(Vec::new());
        let socket = sockets.add(socket);
        let mut echo = Self {
            interface,
            device,
            sockets,
            socket,
            datagram: [0; 1500],
        };
        echo.round();
        echo
    }

    /// Receives every waiting frame, echoes every datagram, transmits the
    /// replies and delivers them back as requests. Returns the datagrams
    /// echoed.
    pub fn round(&mut self) -> usize {
        self.interface
            .poll(NOW, &mut self.device, &mut self.sockets);
        let socket = self.sockets.get_mut::<udp::Socket>(self.socket);
        let mut echoed = 0;
        while let Ok((len, metadata)) = socket.recv_slice(&mut self.datagram) {
            if socket.send_slice(&self.datagram[..len], metadata).is_err() {
                break;
            }
            echoed += 1;
        }
        while self
            .interface
            .poll_egress(NOW, &mut self.device, &mut self.sockets)
            == PollResult::SocketStateChanged
        {}
        self.device.deliver();
        echoed
    }

    /// The device, for its counts and waiting frames.
    pub fn device(&self) -> &TurnaroundDevice {
        &self.device
    }
}

impl Default for SmoltcpEcho {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{PEER_IP, PEER_MAC, PEER_PORT, UdpSummary};

    #[test]
    fn smoltcp_loop_echoes_every_request_unchanged() {
        let mut echo = SmoltcpEcho::new();
        let warm = echo.device().counts();
        // Warm-up: the ARP request and every UDP request in; the ARP reply
        // went out and was not reflected.
        assert_eq!(warm.received, ECHO_IN_FLIGHT as u64 + 1);
        assert_eq!(warm.ignored, 1);
        assert_eq!(warm.reflected, ECHO_IN_FLIGHT as u64);

        let rounds = 10u64;
        for _ in 0..rounds {
            assert_eq!(echo.round(), ECHO_IN_FLIGHT);
        }
        let counts = echo.device().counts();
        assert_eq!(
            counts.received - warm.received,
            rounds * ECHO_IN_FLIGHT as u64
        );
        assert_eq!(
            counts.reflected - warm.reflected,
            rounds * ECHO_IN_FLIGHT as u64
        );
        assert_eq!((counts.ignored, counts.overflowed), (1, 0));

        assert_eq!(echo.device().waiting().count(), ECHO_IN_FLIGHT);
        for frame in echo.device().waiting() {
            let request = UdpSummary::of(frame).expect("valid checksums");
            assert_eq!(request.macs, (OUR_MAC, PEER_MAC));
            assert_eq!(request.addresses, (PEER_IP, OUR_IP));
            assert_eq!(request.ports, (PEER_PORT, ECHO_PORT));
            assert_eq!(request.payload, echo_payload());
        }
    }

    #[test]
    fn frame_queue_is_fifo_and_bounded() {
        let mut queue = FrameQueue::new(2);
        assert!(queue.push(b"one"));
        assert!(queue.push(b"two"));
        assert!(!queue.push(b"three"));
        assert_eq!(queue.pop(), Some(&b"one"[..]));
        assert!(queue.push(b"four"));
        assert_eq!(queue.iter().collect::<Vec<_>>(), [&b"two"[..], b"four"]);
        assert_eq!(queue.pop(), Some(&b"two"[..]));
        assert_eq!(queue.pop(), Some(&b"four"[..]));
        assert_eq!(queue.pop(), None);
    }
}
