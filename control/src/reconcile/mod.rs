//! The controller: it makes the running cores match an accepted spec
//! without a restart. A spec change becomes one command per core on that
//! core's control ring; each core, between two polls (a batch boundary),
//! takes its graph apart, builds the new spec's graph from it (taking
//! over what did not change: [`rebuild_core`](crate::rebuild_core)) and
//! acknowledges on its ack ring. The [`Controller`] (on the management
//! plane's core) gathers the acknowledgements: all good and the
//! generation is observed; a core that failed, or did not answer within
//! [`ACK_TIMEOUT_NS`], and every core goes back to the previous spec, the
//! `Degraded` condition saying why. Changes a running core cannot make
//! ([`live::restart_needed`]) are refused before any of this.

mod channel;
mod controller;
pub mod live;

pub use channel::{Ack, Boards, Command, CoreControl, CoreEnds, channels};
pub use controller::{ACK_TIMEOUT_NS, Busy, Condition, Controller, ReconcileCounters};
