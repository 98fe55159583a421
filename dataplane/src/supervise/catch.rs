//! The [`Guard`] of platforms with `std`: `catch_unwind`.

use super::Guard;
use alloc::string::String;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// [`catch_panic`] as a guard.
pub const CATCH_UNWIND: Guard = Guard {
    run: catch_panic,
    unwinds: true,
};

/// Runs `call`; a panic comes back as its message. The panic hook has
/// already reported it (std's prints it with its location on stderr).
/// Needs `panic = "unwind"` (with `"abort"` the process ends first).
///
/// `AssertUnwindSafe`: after a panic the executor never calls the failed
/// service again (it is dropped when its replacement is built) and drops
/// what the call had in flight, so no state the panic may have broken is
/// observed.
pub fn catch_panic(call: &mut dyn FnMut()) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(call)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|text| String::from(*text))
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| String::from("a panic without a message"))
    })
}

#[cfg(test)]
mod tests {
    use super::catch_panic;

    #[test]
    fn a_panic_comes_back_as_its_message() {
        assert_eq!(catch_panic(&mut || {}), Ok(()));
        assert_eq!(
            catch_panic(&mut || panic!("marked {}", 7)),
            Err("marked 7".into())
        );
        assert_eq!(catch_panic(&mut || panic!("plain")), Err("plain".into()));
    }
}
