//! Fuzzes `Spec::parse`: any UTF-8 text gives a spec or an error that
//! renders with its line, never a panic.
#![forbid(unsafe_code)]
#![no_main]

use control::Spec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    match Spec::parse(text, &services::Registry::with_builtin()) {
        Ok(spec) => {
            assert!(spec.interfaces.len() <= control::spec::MAX_INTERFACES);
            for route in &spec.routes {
                assert!(route.interface < spec.interfaces.len());
            }
        }
        Err(error) => {
            let message = error.to_string();
            assert!(message.starts_with("line "));
            assert!(error.line <= text.lines().count() + 1);
        }
    }
});
