//! Supervision: a nanoservice that panics or overruns its per-batch time
//! budget is contained (the core keeps running its other nodes), its
//! in-flight packets are dropped and counted, and it is rebuilt from its
//! spec after an exponential backoff, like Kubernetes' CrashLoopBackOff on
//! a dataplane's time scale. See `dataplane/README.md`, "Supervision".

#[cfg(any(test, feature = "std"))]
mod catch;
mod counters;
mod policy;
mod supervisor;

#[cfg(any(test, feature = "std"))]
pub use catch::{CATCH_UNWIND, catch_panic};
pub use counters::{ServiceState, SupervisionCounters};
pub use policy::SupervisionPolicy;
pub(crate) use supervisor::Supervisor;
pub use supervisor::{Failure, Guard, Rebuild};
