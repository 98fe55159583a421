//! Packet capture: a tap on every port's receive and transmit bursts that,
//! while a capture of the port's interface is armed, copies each frame's
//! first bytes into a per-port single-producer single-consumer ring the
//! management core reads (`GET /api/v1/capture`). Disarmed, a tap costs a
//! relaxed load and a compare per burst; armed, a copy per frame, no lock
//! and no allocation.

mod board;
mod flow;
mod record_ring;
mod tap;

pub use board::{
    ArmError, Capture, CaptureBoard, DEFAULT_RING_WORDS, DEFAULT_SNAPLEN, MAX_SNAPLEN, TapCounters,
};
pub use flow::TcpFlow;
pub use record_ring::{
    Direction, HEADER_WORDS, RecordConsumer, RecordHeader, RecordProducer, record_ring,
};
pub use tap::PortTap;
