//! Where `cargo xtask wasm-examples` puts the nine compiled modules, and
//! their names.

use std::path::PathBuf;

/// The language a module was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// `examples/wasm/rust`, built by cargo for wasm32-unknown-unknown.
    Rust,
    /// `examples/wasm/c`, built by Debian's clang and wasm-ld.
    C,
    /// `examples/wasm/assemblyscript`, built by asc with the stub runtime.
    AssemblyScript,
}

impl Language {
    /// Every language, in the order results are reported.
    pub const ALL: [Language; 3] = [Language::Rust, Language::C, Language::AssemblyScript];

    /// The folder name under `examples/wasm/` and the output folder.
    pub fn folder(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::C => "c",
            Language::AssemblyScript => "assemblyscript",
        }
    }
}

/// The examples, each written once per language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Example {
    /// The 5-tuple ACL firewall.
    Acl,
    /// The per-flow packet counter.
    FlowCounter,
    /// The header rewriter.
    Rewriter,
}

impl Example {
    /// Every example.
    pub const ALL: [Example; 3] = [Example::Acl, Example::FlowCounter, Example::Rewriter];

    /// The module's file stem.
    pub fn name(self) -> &'static str {
        match self {
            Example::Acl => "acl",
            Example::FlowCounter => "flow-counter",
            Example::Rewriter => "rewriter",
        }
    }
}

/// The environment variable that names the output folder (xtask sets it).
pub const MODULES_VARIABLE: &str = "WARPCORE_WASM_EXAMPLES";

/// The folder holding `<language>/<example>.wasm`: `$WARPCORE_WASM_EXAMPLES`,
/// else `target/wasm-examples` of this workspace.
pub fn modules_folder() -> PathBuf {
    match std::env::var_os(MODULES_VARIABLE) {
        Some(folder) => PathBuf::from(folder),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm-examples"),
    }
}

/// The path of one compiled module.
pub fn module_path(language: Language, example: Example) -> PathBuf {
    modules_folder()
        .join(language.folder())
        .join(format!("{}.wasm", example.name()))
}

/// The bytes of one compiled module; panics naming the command that
/// builds them when they are missing (a test must not pass without them).
pub fn module_bytes(language: Language, example: Example) -> Vec<u8> {
    let path = module_path(language, example);
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; build the modules with `cargo xtask wasm-examples`",
            path.display()
        )
    })
}
