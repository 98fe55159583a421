//! The frame hand-off against a fake kernel over memory the test owns: no
//! socket and no system call, so it runs under Miri (which also checks the
//! status words' orderings with its data-race detector).

use super::*;

/// Where the fake kernel puts a received frame, as the kernel's `tp_mac`.
const RX_MAC_OFFSET: u16 = 80;

/// Ring memory the test owns: 16-byte aligned, zeroed (every status word
/// `TP_STATUS_KERNEL` / `TP_STATUS_AVAILABLE`), freed on drop. Everything
/// reaches it through the one raw pointer, so no reference aliases it.
struct TestMemory {
    storage: *mut [u128],
    frames: usize,
}

impl TestMemory {
    fn new(frames: usize) -> Self {
        let words = 2 * frames * FRAME_SIZE / size_of::<u128>();
        let storage = Box::into_raw(vec![0u128; words].into_boxed_slice());
        Self { storage, frames }
    }

    fn base(&self) -> NonNull<u8> {
        NonNull::new(self.storage.cast::<u8>()).unwrap()
    }

    fn rings(&self) -> FrameRings {
        // SAFETY: the allocation holds `2 * frames * FRAME_SIZE` bytes,
        // 16-aligned, and outlives the rings (each test drops them first);
        // the fake kernel touches status words only atomically and frame
        // bodies only while their status gives the frame to it.
        unsafe { FrameRings::new(self.base(), self.frames) }
    }

    fn kernel(&self) -> FakeKernel {
        FakeKernel {
            base: self.base().as_ptr(),
            frames: self.frames,
        }
    }
}

impl Drop for TestMemory {
    fn drop(&mut self) {
        // SAFETY: made by `Box::into_raw` in `new`; the rings and fake
        // kernels using it are gone by now.
        drop(unsafe { Box::from_raw(self.storage) });
    }
}

/// The kernel's side of the rings, written the way `af_packet.c` does it:
/// fill the frame, then publish its status with a release store.
struct FakeKernel {
    base: *mut u8,
    frames: usize,
}

// SAFETY: the fake kernel is the one other party of the hand-off protocol:
// it touches a frame body only while the frame's status word (accessed
// atomically) gives the frame to the kernel side.
unsafe impl Send for FakeKernel {}

impl FakeKernel {
    fn frame(&self, tx: bool, index: usize) -> *mut u8 {
        assert!(index < self.frames);
        let ring_offset = if tx { self.frames * FRAME_SIZE } else { 0 };
        self.base.wrapping_add(ring_offset + index * FRAME_SIZE)
    }

    fn status(&self, tx: bool, index: usize) -> &AtomicU32 {
        // SAFETY: the word is the first of a 2048-byte frame inside the test
        // memory, aligned, and accessed only atomically by both sides.
        unsafe { AtomicU32::from_ptr(self.frame(tx, index).cast()) }
    }

    /// Writes `frame` into RX slot `index` and hands it to the process;
    /// false when the process still holds the slot.
    fn deliver(&self, index: usize, frame: &[u8], packet_type: u8) -> bool {
        // Ordering: Acquire pairs with `release_rx`: the process finished
        // reading the slot before we overwrite it.
        if self.status(false, index).load(Ordering::Acquire) != libc::TP_STATUS_KERNEL {
            return false;
        }
        let slot = self.frame(false, index);
        let header = slot.cast::<libc::tpacket2_hdr>();
        // SAFETY: the slot is the kernel side's (status KERNEL); every write
        // stays inside its 2048 bytes and leaves the status word alone.
        unsafe {
            (&raw mut (*header).tp_len).write(frame.len() as u32);
            (&raw mut (*header).tp_snaplen).write(frame.len() as u32);
            (&raw mut (*header).tp_mac).write(RX_MAC_OFFSET);
            slot.add(TX_DATA_OFFSET + core::mem::offset_of!(libc::sockaddr_ll, sll_pkttype))
                .write(packet_type);
            core::ptr::copy_nonoverlapping(
                frame.as_ptr(),
                slot.add(usize::from(RX_MAC_OFFSET)),
                frame.len(),
            );
        }
        // Ordering: Release publishes the header and data to `rx_frame`'s
        // Acquire load.
        self.status(false, index)
            .store(libc::TP_STATUS_USER, Ordering::Release);
        true
    }

    /// Takes the frame the process queued in TX slot `index`, if any, and
    /// marks the slot available again.
    fn transmit(&self, index: usize) -> Option<Vec<u8>> {
        // Ordering: Acquire pairs with `fill_tx`'s Release store.
        if self.status(true, index).load(Ordering::Acquire) != libc::TP_STATUS_SEND_REQUEST {
            return None;
        }
        let slot = self.frame(true, index);
        // SAFETY: the process handed the slot over (SEND_REQUEST seen with
        // Acquire); the length it wrote keeps the read inside the slot.
        let frame = unsafe {
            let len = (&raw const (*slot.cast::<libc::tpacket2_hdr>()).tp_len).read() as usize;
            assert!(len <= TX_MAX_FRAME);
            core::slice::from_raw_parts(slot.add(TX_DATA_OFFSET), len).to_vec()
        };
        // Ordering: Release: our reads of the slot finish before the process
        // sees it available (its `tx_status` is an Acquire load).
        self.status(true, index)
            .store(libc::TP_STATUS_AVAILABLE, Ordering::Release);
        Some(frame)
    }

    /// Refuses the frame in TX slot `index`, as the kernel does with a
    /// malformed one.
    fn reject(&self, index: usize) {
        // Ordering: Release, as in `transmit`.
        self.status(true, index)
            .store(libc::TP_STATUS_WRONG_FORMAT, Ordering::Release);
    }
}

fn frame_bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|offset| seed.wrapping_add(offset as u8))
        .collect()
}

#[test]
fn received_frames_are_read_in_place_and_handed_back() {
    let memory = TestMemory::new(4);
    let rings = memory.rings();
    let kernel = memory.kernel();
    assert!(rings.rx_frame(0).is_none(), "nothing delivered yet");
    assert!(kernel.deliver(0, &frame_bytes(1, 60), libc::PACKET_HOST));
    assert!(kernel.deliver(1, &frame_bytes(2, 1514), libc::PACKET_OUTGOING));
    assert!(rings.rx_frame(2).is_none());

    let first = rings.rx_frame(0).expect("delivered");
    assert_eq!(first.status & libc::TP_STATUS_USER, libc::TP_STATUS_USER);
    assert_eq!((first.len, first.snaplen), (60, 60));
    assert_eq!(first.mac_offset, RX_MAC_OFFSET);
    assert_eq!(first.packet_type, libc::PACKET_HOST);
    // SAFETY: `first` came from `rx_frame(0)` and the frame is not released.
    assert_eq!(unsafe { rings.rx_data(0, &first) }, frame_bytes(1, 60));
    let second = rings.rx_frame(1).expect("delivered");
    assert_eq!(second.packet_type, libc::PACKET_OUTGOING);
    // SAFETY: as above, for frame 1.
    assert_eq!(unsafe { rings.rx_data(1, &second) }, frame_bytes(2, 1514));

    assert!(
        !kernel.deliver(0, &frame_bytes(3, 60), libc::PACKET_HOST),
        "the process still holds frame 0"
    );
    rings.release_rx(0);
    assert!(rings.rx_frame(0).is_none(), "handed back");
    assert!(kernel.deliver(0, &frame_bytes(3, 64), libc::PACKET_HOST));
    let again = rings.rx_frame(0).expect("delivered again");
    // SAFETY: as above.
    assert_eq!(unsafe { rings.rx_data(0, &again) }, frame_bytes(3, 64));
}

#[test]
fn received_length_is_clamped_to_the_frame_slot() {
    let memory = TestMemory::new(1);
    let rings = memory.rings();
    let kernel = memory.kernel();
    assert!(kernel.deliver(0, &frame_bytes(0, 16), libc::PACKET_HOST));
    let mut frame = rings.rx_frame(0).unwrap();
    frame.snaplen = 60_000;
    // SAFETY: the frame is ours; the bogus snaplen is what is under test.
    let data = unsafe { rings.rx_data(0, &frame) };
    assert_eq!(data.len(), FRAME_SIZE - usize::from(RX_MAC_OFFSET));
}

#[test]
fn transmitted_frames_carry_their_length_and_data() {
    let memory = TestMemory::new(2);
    let rings = memory.rings();
    let kernel = memory.kernel();
    assert_eq!(rings.tx_status(0), libc::TP_STATUS_AVAILABLE);
    assert_eq!(kernel.transmit(0), None, "nothing queued");
    // SAFETY: slot 0 is AVAILABLE and the frame fits.
    unsafe { rings.fill_tx(0, &frame_bytes(7, 42)) };
    // SAFETY: slot 1 is AVAILABLE and a maximal frame fits by definition.
    unsafe { rings.fill_tx(1, &frame_bytes(9, TX_MAX_FRAME)) };
    assert_eq!(rings.tx_status(0), libc::TP_STATUS_SEND_REQUEST);
    assert_eq!(kernel.transmit(0), Some(frame_bytes(7, 42)));
    assert_eq!(kernel.transmit(1), Some(frame_bytes(9, TX_MAX_FRAME)));
    assert_eq!(rings.tx_status(0), libc::TP_STATUS_AVAILABLE);
    assert_eq!(rings.tx_status(1), libc::TP_STATUS_AVAILABLE);
}

#[test]
fn rejected_slot_is_reset_to_available() {
    let memory = TestMemory::new(1);
    let rings = memory.rings();
    let kernel = memory.kernel();
    // SAFETY: slot 0 is AVAILABLE and the frame fits.
    unsafe { rings.fill_tx(0, &frame_bytes(1, 10)) };
    kernel.reject(0);
    assert_eq!(rings.tx_status(0), libc::TP_STATUS_WRONG_FORMAT);
    rings.reset_tx(0);
    assert_eq!(rings.tx_status(0), libc::TP_STATUS_AVAILABLE);
    assert_eq!(kernel.transmit(0), None, "a reset slot is not a request");
}

#[test]
#[should_panic(expected = "frame index out of range")]
fn frame_index_past_the_ring_panics() {
    let memory = TestMemory::new(2);
    let rings = memory.rings();
    rings.rx_frame(2);
}

/// The kernel on another thread delivers frames and drains transmissions
/// while the process receives and sends: the status words alone order the
/// frame bodies (Miri's race detector checks it).
#[test]
fn frames_cross_threads_through_the_status_words() {
    const FRAMES: usize = 4;
    let count: usize = if cfg!(miri) { 24 } else { 10_000 };
    let memory = TestMemory::new(FRAMES);
    let rings = memory.rings();
    let kernel = memory.kernel();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let (mut delivered, mut transmitted) = (0, 0);
            while delivered < count || transmitted < count {
                if delivered < count
                    && kernel.deliver(
                        delivered % FRAMES,
                        &frame_bytes(delivered as u8, 60 + delivered % 7),
                        libc::PACKET_HOST,
                    )
                {
                    delivered += 1;
                }
                if let Some(frame) = kernel.transmit(transmitted % FRAMES) {
                    assert_eq!(frame, frame_bytes(!(transmitted as u8), 42));
                    transmitted += 1;
                }
                std::thread::yield_now();
            }
        });
        let (mut received, mut sent) = (0, 0);
        while received < count || sent < count {
            let index = received % FRAMES;
            if received < count
                && let Some(frame) = rings.rx_frame(index)
            {
                // SAFETY: `frame` came from `rx_frame(index)`, not released yet.
                let data = unsafe { rings.rx_data(index, &frame) };
                assert_eq!(data, frame_bytes(received as u8, 60 + received % 7));
                rings.release_rx(index);
                received += 1;
            }
            let slot = sent % FRAMES;
            if sent < count && rings.tx_status(slot) == libc::TP_STATUS_AVAILABLE {
                // SAFETY: the slot is AVAILABLE and 42 bytes fit.
                unsafe { rings.fill_tx(slot, &frame_bytes(!(sent as u8), 42)) };
                sent += 1;
            }
            std::thread::yield_now();
        }
    });
}
