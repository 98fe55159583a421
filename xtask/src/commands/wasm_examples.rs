//! `cargo xtask wasm-examples`: the nine Wasm example modules (ACL, flow
//! counter, rewriter in Rust, C and AssemblyScript) built from source into
//! `target/wasm-examples/<language>/<example>.wasm`, with their sizes and
//! the wasmi fuel each spends per packet; and the `wasm-examples` test
//! step, which builds them and lints the crates around them (the `host`
//! step runs `warpcore-wasm-examples-test` on them).

use crate::shell::host::{target_dir, workspace_root};
use crate::shell::process::{cargo, checked_output, run};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The examples, by file stem.
const EXAMPLES: [&str; 3] = ["acl", "flow-counter", "rewriter"];

/// The languages, by folder under `examples/wasm/`.
const LANGUAGES: [&str; 3] = ["rust", "c", "assemblyscript"];

/// The environment variable that tells `warpcore-wasm-examples-test`
/// where the modules are.
pub const MODULES_VARIABLE: &str = "WARPCORE_WASM_EXAMPLES";

/// Where the modules go.
pub fn output_folder() -> PathBuf {
    target_dir().join("wasm-examples")
}

/// `cargo xtask wasm-examples`: builds the modules, prints their sizes and
/// the fuel per packet each spends on the same frames.
pub fn run_command() -> Result<()> {
    let folder = build()?;
    print_sizes(&folder)?;
    run(
        "wasm example costs",
        cargo()
            .args([
                "run",
                "--quiet",
                "--release",
                "-p",
                "warpcore-wasm-examples-test",
            ])
            .args(["--bin", "wasm-example-costs"])
            .env(MODULES_VARIABLE, &folder),
    )
}

/// The `wasm-examples` test step: the modules built, the guest crate's own
/// tests, and fmt and clippy of the wasm32 workspace and the test crate
/// (neither is in the host's default build). The harness tests on the
/// modules run in the `host` step's `cargo test`, which shares their
/// dependencies' builds; with `harness_tests` (the `host` step not
/// selected, e.g. `--only wasm-examples`) here, in a `cargo test` of their
/// own.
pub fn test(harness_tests: bool) -> Result<()> {
    let folder = build()?;
    let rust_examples = workspace_root().join("examples/wasm/rust");
    run(
        "wasm examples fmt",
        cargo()
            .current_dir(&rust_examples)
            .args(["fmt", "--all", "--", "--check"]),
    )?;
    run(
        "wasm examples clippy",
        cargo()
            .current_dir(&rust_examples)
            .args(["clippy", "--release", "--workspace", "--target-dir"])
            .arg(target_dir().join("wasm-rust"))
            .args(["--", "-D", "warnings"]),
    )?;
    let host = host_triple()?;
    run(
        "wasm guest crate tests",
        cargo()
            .current_dir(&rust_examples)
            .args([
                "test",
                "-p",
                "warpcore-wasm-guest",
                "--target",
                &host,
                "--target-dir",
            ])
            .arg(target_dir().join("wasm-rust")),
    )?;
    run(
        "wasm examples test clippy",
        cargo().args([
            "clippy",
            "-p",
            "warpcore-wasm-examples-test",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    if harness_tests {
        run(
            "wasm examples tests",
            cargo()
                .args(["test", "--profile", "test-release"])
                .args(["-p", "warpcore-wasm-examples-test"])
                .env(MODULES_VARIABLE, &folder),
        )?;
    }
    Ok(())
}

/// The host's target triple, for the guest crate's unit tests (the wasm32
/// workspace builds for wasm32 by default).
fn host_triple() -> Result<String> {
    let version = checked_output(Command::new("rustc").arg("-vV"))?;
    version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV names no host")
}

/// Installs what is missing (`scripts/install-wasm-toolchains.sh`, quick
/// when everything is there), then builds the nine modules.
pub fn build() -> Result<PathBuf> {
    let root = workspace_root();
    run(
        "wasm toolchains",
        Command::new("bash").arg(root.join("scripts/install-wasm-toolchains.sh")),
    )?;
    let folder = output_folder();
    for language in LANGUAGES {
        std::fs::create_dir_all(folder.join(language))
            .with_context(|| format!("could not create {}", folder.join(language).display()))?;
    }
    build_rust(&root, &folder)?;
    for example in EXAMPLES {
        build_c(&root, &folder, example)?;
        build_assemblyscript(&root, &folder, example)?;
    }
    Ok(folder)
}

fn build_rust(root: &Path, folder: &Path) -> Result<()> {
    let rust_target = target_dir().join("wasm-rust");
    run(
        "wasm rust",
        cargo()
            .current_dir(root.join("examples/wasm/rust"))
            .args(["build", "--release", "--target-dir"])
            .arg(&rust_target),
    )?;
    for example in EXAMPLES {
        let built = rust_target
            .join("wasm32-unknown-unknown/release")
            .join(format!("wasm_{}.wasm", example.replace('-', "_")));
        let module = folder.join("rust").join(format!("{example}.wasm"));
        std::fs::copy(&built, &module).with_context(|| {
            format!("could not copy {} to {}", built.display(), module.display())
        })?;
    }
    Ok(())
}

fn build_c(root: &Path, folder: &Path, example: &str) -> Result<()> {
    run(
        &format!("wasm c {example}"),
        Command::new("clang")
            .current_dir(root)
            .args([
                "--target=wasm32",
                "-nostdlib",
                "-ffreestanding",
                "-mbulk-memory",
            ])
            .args(["-Os", "-Wall", "-Wextra", "-Werror", "-I", "wasm/abi"])
            .args([
                "-Wl,--no-entry",
                "-Wl,-z,stack-size=16384",
                "-Wl,--strip-all",
            ])
            .arg("-o")
            .arg(folder.join("c").join(format!("{example}.wasm")))
            .arg(format!("examples/wasm/c/{example}.c")),
    )
}

fn build_assemblyscript(root: &Path, folder: &Path, example: &str) -> Result<()> {
    run(
        &format!("wasm assemblyscript {example}"),
        Command::new("node")
            .current_dir(root)
            .arg("wasm/toolchain/node_modules/.bin/asc")
            .arg(format!("examples/wasm/assemblyscript/{example}.ts"))
            .args(["--runtime", "stub", "--use", "abort=", "-O3", "--noAssert"])
            .arg("-o")
            .arg(
                folder
                    .join("assemblyscript")
                    .join(format!("{example}.wasm")),
            ),
    )
}

fn print_sizes(folder: &Path) -> Result<()> {
    println!(
        "{:<18} {:>8} {:>8} {:>16}",
        "module", "rust", "c", "assemblyscript"
    );
    for example in EXAMPLES {
        let mut sizes = Vec::new();
        for language in LANGUAGES {
            let path = folder.join(language).join(format!("{example}.wasm"));
            let metadata =
                std::fs::metadata(&path).with_context(|| format!("{} missing", path.display()))?;
            sizes.push(metadata.len());
        }
        println!(
            "{:<18} {:>8} {:>8} {:>16}",
            format!("{example}.wasm"),
            sizes[0],
            sizes[1],
            sizes[2]
        );
    }
    Ok(())
}
