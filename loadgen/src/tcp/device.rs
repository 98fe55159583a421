//! smoltcp's view of a share of loadgen's frames: a `phy::Device` whose
//! receive side is a queue the client fills from the port (frames the
//! guest sent) and whose transmit side collects frames for the client to
//! hand to the port in one burst (written into the guest's receive ring).

use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;
use std::collections::VecDeque;

/// Largest Ethernet frame either way, without FCS (the vhost-user device
/// offers no offloads, so no segment is larger than the MTU).
pub const MAX_FRAME: usize = 1514;

/// Frames waiting for the port past which the device refuses to
/// transmit: smoltcp then keeps the data in the socket and sends it on a
/// later poll, so a full guest ring slows the client instead of losing
/// frames.
pub const TRANSMIT_BACKLOG: usize = 256;

/// The frames of one shard of the client's connections, each way.
#[derive(Default)]
pub struct QueueDevice {
    /// Frames from the port, oldest first.
    pub received: VecDeque<Vec<u8>>,
    /// Frames for the port, oldest first.
    pub to_send: Vec<Vec<u8>>,
}

impl QueueDevice {
    /// Whether a frame waits to be processed.
    pub fn has_received(&self) -> bool {
        !self.received.is_empty()
    }
}

/// A received frame, handed to smoltcp.
pub struct FrameRx(Vec<u8>);

impl RxToken for FrameRx {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

/// Room for one frame in the device's send list.
pub struct FrameTx<'a>(&'a mut Vec<Vec<u8>>);

impl TxToken for FrameTx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut frame = vec![0; len];
        let result = f(&mut frame);
        self.0.push(frame);
        result
    }
}

impl Device for QueueDevice {
    type RxToken<'a> = FrameRx;
    type TxToken<'a> = FrameTx<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(FrameRx, FrameTx<'_>)> {
        let frame = self.received.pop_front()?;
        Some((FrameRx(frame), FrameTx(&mut self.to_send)))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<FrameTx<'_>> {
        (self.to_send.len() < TRANSMIT_BACKLOG).then_some(FrameTx(&mut self.to_send))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = MAX_FRAME;
        capabilities
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_pass_in_order_and_a_full_backlog_refuses_more() {
        let mut device = QueueDevice::default();
        device.received.push_back(vec![1, 2, 3]);
        device.received.push_back(vec![4]);
        let now = Instant::from_millis(0);
        let (rx, tx) = device.receive(now).unwrap();
        assert_eq!(rx.consume(|bytes| bytes.to_vec()), vec![1, 2, 3]);
        tx.consume(2, |buffer| buffer.copy_from_slice(&[9, 9]));
        assert_eq!(device.to_send, vec![vec![9, 9]]);
        assert!(device.has_received());
        let (rx, _) = device.receive(now).unwrap();
        assert_eq!(rx.consume(|bytes| bytes.len()), 1);
        assert!(device.receive(now).is_none());
        for _ in 1..TRANSMIT_BACKLOG {
            device.transmit(now).unwrap().consume(1, |_| ());
        }
        assert!(device.transmit(now).is_none());
        assert_eq!(device.capabilities().max_transmission_unit, MAX_FRAME);
    }
}
