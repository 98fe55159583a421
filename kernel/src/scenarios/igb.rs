//! The igb driver's bring-up against QEMU's 82576 model (`-device igb`,
//! QEMU 8 and later): reset, the MAC address QEMU was given, link up after
//! auto-negotiation, and one receive / transmit queue pair enabled.

use igb::{Igb, QueueRings};

use crate::boot::cmdline;
use crate::dev::exit::{ExitCode, exit_qemu};
use crate::dev::igb_platform::{KernelIgbRegisters, igb_devices};
use crate::mem::frames;
use crate::scenarios::dispatch::fail;

/// Descriptors per ring in the scenario.
const RING_DESCRIPTORS: u16 = 256;
/// Receive buffer size the queue is programmed for.
const BUFFER_BYTES: u32 = 2048;
/// How long auto-negotiation may take (QEMU: about 500 ms).
const LINK_BUDGET_MS: u32 = 3_000;

/// Brings up the first igb function; passes when its MAC is `expect_mac=`
/// (as QEMU's `mac=`), the link comes up and both queues report enabled.
pub fn bring_up() -> ! {
    let Some(device) = igb_devices().next() else {
        fail(
            "igb",
            format_args!("no igb PCI function (8086:10c9 or 8086:1521)"),
        )
    };
    let Some(registers) = KernelIgbRegisters::new(device) else {
        fail("igb", format_args!("BAR 0 is not an assigned memory BAR"))
    };
    let mut nic = match Igb::reset(registers) {
        Ok(nic) => nic,
        Err(error) => fail("igb", format_args!("reset: {error}")),
    };
    let mac = nic.mac();
    let mac_text = MacText(mac);
    crate::kprintln!("scenario igb: {} reset, mac {mac_text}", device.address);
    if let Some(expected) = cmdline::get("expect_mac")
        && !mac_text.matches(expected)
    {
        fail("igb", format_args!("mac {mac_text}, expected {expected}"));
    }
    if let Err(error) = nic.set_link_up() {
        fail("igb", format_args!("link: {error}"));
    }
    let link = nic.wait_for_link(LINK_BUDGET_MS);
    if !link.up {
        fail(
            "igb",
            format_args!("link still down after {LINK_BUDGET_MS} ms"),
        );
    }
    crate::kprintln!(
        "scenario igb: link up {} Mb/s {} duplex",
        link.speed_mbps,
        if link.full_duplex { "full" } else { "half" }
    );
    let ring_bytes = u64::from(RING_DESCRIPTORS) * igb::descriptors::DESCRIPTOR_BYTES as u64;
    let (Ok(rx_ring), Ok(tx_ring)) = (
        frames::allocate_zeroed(ring_bytes, frames::FRAME_BYTES),
        frames::allocate_zeroed(ring_bytes, frames::FRAME_BYTES),
    ) else {
        fail("igb", format_args!("no memory for the rings"))
    };
    let rings = |physical_address| QueueRings {
        physical_address,
        descriptors: RING_DESCRIPTORS,
    };
    if let Err(error) = nic.configure_rx_queue(0, rings(rx_ring), BUFFER_BYTES) {
        fail("igb", format_args!("receive queue: {error}"));
    }
    if let Err(error) = nic.configure_tx_queue(0, rings(tx_ring)) {
        fail("igb", format_args!("transmit queue: {error}"));
    }
    nic.enable_receiver();
    nic.enable_transmitter();
    let stats = nic.update_stats();
    crate::kprintln!(
        "scenario igb: queue pair 0 enabled ({RING_DESCRIPTORS} descriptors), rx_good_packets={} tx_good_packets={}",
        stats.rx_good_packets,
        stats.tx_good_packets
    );
    crate::kprintln!("scenario igb: PASS");
    exit_qemu(ExitCode::Success)
}

/// A MAC address printed as `52:54:00:12:34:56`.
struct MacText([u8; 6]);

impl MacText {
    /// Whether `text` (colon-separated hex, either case) is this address.
    fn matches(&self, text: &str) -> bool {
        let mut parts = text.split(':');
        let same = self.0.iter().all(|byte| {
            parts
                .next()
                .and_then(|part| u8::from_str_radix(part, 16).ok())
                == Some(*byte)
        });
        same && parts.next().is_none()
    }
}

impl core::fmt::Display for MacText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}
