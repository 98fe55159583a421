//! The image suite: what the release image holds. Its symbol table must name
//! no test scenario (they are behind the kernel's cargo feature
//! `scenarios`); as a control, the test image's (scenarios and example
//! services) must, so the check is known to find them when they are there.

use crate::qemu::image::{kernel_image, test_kernel_image};
use crate::shell::host::ensure_programs;
use crate::suites::runner::{self, Case, Filter};
use anyhow::{Context, Result, ensure};
use std::path::Path;
use std::process::Command;

/// The suite's name in `--only` and in its summary line.
const SUITE: &str = "image";
/// The module path every scenario symbol starts with.
const SCENARIO_PATH: &str = "kernel::scenarios::";

/// One check of an image.
type Check = fn() -> Result<()>;

/// Every case of the suite.
fn cases() -> Vec<Case<Check>> {
    vec![
        Case::new(
            "release-has-no-scenarios",
            "the release image's symbol table names no test scenario",
            release_has_no_scenarios as Check,
        ),
        Case::new(
            "control-scenario-image-has-them",
            "control: the test image's symbol table names them",
            scenario_image_has_them,
        ),
    ]
}

/// The names of the image checks, for `--list`.
pub fn names() -> Vec<String> {
    runner::names(SUITE, &cases())
}

/// Runs the image checks `filter` selects.
pub fn run(filter: &Filter) -> Result<()> {
    runner::run(
        SUITE,
        cases(),
        filter,
        || ensure_programs("the image checks", &[("nm", "binutils")]),
        |(), check| check(),
    )
}

/// The demangled symbols of `image` under [`SCENARIO_PATH`].
fn scenario_symbols(image: &Path) -> Result<Vec<String>> {
    let output = Command::new("nm")
        .args(["--demangle", "--defined-only"])
        .arg(image)
        .output()
        .context("running nm")?;
    ensure!(
        output.status.success(),
        "nm {} failed: {}",
        image.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let symbols = String::from_utf8_lossy(&output.stdout);
    ensure!(
        symbols.lines().count() > 100,
        "nm found almost no symbols in {}: is it stripped?",
        image.display()
    );
    Ok(symbols
        .lines()
        .filter(|line| line.contains(SCENARIO_PATH))
        .map(str::to_owned)
        .collect())
}

fn release_has_no_scenarios() -> Result<()> {
    let image = kernel_image()?;
    let found = scenario_symbols(&image)?;
    ensure!(
        found.is_empty(),
        "{} holds {} scenario symbols, e.g. {}",
        image.display(),
        found.len(),
        found.first().map_or("", String::as_str)
    );
    eprintln!("    {}: no symbol under {SCENARIO_PATH}", image.display());
    Ok(())
}

fn scenario_image_has_them() -> Result<()> {
    let image = test_kernel_image()?;
    let found = scenario_symbols(&image)?;
    ensure!(
        !found.is_empty(),
        "{} holds no symbol under {SCENARIO_PATH}: the check could not see them",
        image.display()
    );
    eprintln!(
        "    {}: {} symbols under {SCENARIO_PATH}",
        image.display(),
        found.len()
    );
    Ok(())
}
