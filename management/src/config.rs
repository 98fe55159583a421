//! `ManagementConfig`: what the management app serves from.

use crate::LogRing;
use alloc::string::String;
use alloc::sync::Arc;
use dataplane::{CaptureBoard, CountersBoard};

/// Everything [`ManagementApp`](crate::ManagementApp) needs, given once
/// when the platform builds core 0's TCP stack.
pub struct ManagementConfig {
    /// The running spec as written (served by `GET /api/v1/spec`).
    pub spec_text: String,
    /// The running spec, parsed (compared with `PUT` bodies for a plan).
    pub spec: control::Spec,
    /// Every core's counters (read by `/metrics` and `/api/v1/status`).
    pub board: Arc<CountersBoard>,
    /// SHA-256 of the API token; `None`: the token-protected endpoints
    /// answer 403.
    pub token_sha256: Option<[u8; 32]>,
    /// The service kinds, to validate `PUT` bodies.
    pub registry: services::Registry,
    /// The build's version and platform (`appliance` or `hosted`).
    pub build_info: (&'static str, &'static str),
    /// The platform clock (as `Stream::now_ns` reads it) when the instance
    /// started; `None`: the time of the app's first connection.
    pub started_ns: Option<u64>,
    /// A connection idle this long is closed (one stalled mid-request or
    /// mid-response is reset; every piece of a response written starts
    /// the time again): the spec's `idle_timeout_ms`.
    pub idle_timeout_ms: u32,
    /// The platform's log ring, which its logger appends to (searched by
    /// `GET /api/v1/logs`).
    pub logs: &'static LogRing,
    /// The capture board every core's ports are tapped from
    /// (`GET /api/v1/capture`, and the capture counters in `/metrics`).
    pub capture: Arc<CaptureBoard>,
    /// The controller that applies accepted specs to the cores
    /// (`control::reconcile`); `None`: `PUT /api/v1/spec` only validates
    /// (409 for a change) and the generation stays 1.
    pub controller: Option<control::reconcile::Controller>,
    /// The platform clock (the controller's time bound on acks).
    pub clock: fn() -> u64,
    /// Added to the platform clock, gives Unix time in nanoseconds (the
    /// timestamps of captured frames); 0 on a platform without a wall
    /// clock, whose captures then count from its clock's start.
    pub unix_offset_ns: u64,
}
