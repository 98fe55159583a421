//! The entry points of `cargo xtask`'s commands.

pub mod bench;
pub mod miri;
pub mod run;
pub mod test;
pub mod wasm_examples;
