//! The hosted runtime's panic guard: every call of a nanoservice runs
//! under `std::panic::catch_unwind`, so that a panicking service is
//! contained by the executor's supervisor (see `dataplane::supervise`)
//! instead of ending the process. This needs `panic = "unwind"`, which
//! the workspace's release profile sets (the bare-metal target keeps
//! `panic=abort` through `.cargo/config.toml`).

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `call`; a panic comes back as its message. The standard panic
/// hook has already printed it with its location on stderr.
///
/// `AssertUnwindSafe`: the executor never calls a failed service again
/// (it is dropped when its replacement is built), and drops what the
/// call had in flight, so no broken state is observed after the panic.
pub fn guard(call: &mut dyn FnMut()) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(call)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::guard;

    #[test]
    fn a_panic_comes_back_as_its_message() {
        assert_eq!(guard(&mut || {}), Ok(()));
        assert_eq!(
            guard(&mut || panic!("marked {}", 7)),
            Err("marked 7".to_owned())
        );
        assert_eq!(guard(&mut || panic!("plain")), Err("plain".to_owned()));
    }
}
