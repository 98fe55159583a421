//! The hosted runtime's panic guard: every call of a nanoservice runs
//! under `std::panic::catch_unwind` (`dataplane::supervise::catch_panic`),
//! so that a panicking service is contained by the executor's supervisor
//! instead of ending the process. This needs `panic = "unwind"`, which the
//! workspace's release profile sets (the bare-metal target keeps
//! `panic=abort` through `.cargo/config.toml`).

pub use dataplane::supervise::CATCH_UNWIND as GUARD;
