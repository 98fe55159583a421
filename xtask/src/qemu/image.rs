//! QEMU itself and the image it boots: installs QEMU when it is missing and
//! builds the kernel's PVH ELF (once per xtask process).

use crate::qemu::command_line::{Image, QemuConfig};
use crate::shell::host::{ensure_bare_metal_target, have, is_root, target_dir, workspace_root};
use crate::shell::process::{cargo, run};
use crate::spec_file;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The QEMU binary the harness runs.
pub const QEMU: &str = "qemu-system-x86_64";
/// Debian package that provides `QEMU`.
pub const QEMU_PACKAGE: &str = "qemu-system-x86";
/// Builds the kernel (`cargo build -p kernel --release --target x86_64-unknown-none`)
/// and returns the path of the PVH ELF.
pub fn build_kernel() -> Result<PathBuf> {
    build_image("kernel", &[], &target_dir())
}

/// Builds the kernel with cargo `features` into `target` and returns the
/// image's path.
fn build_image(step: &str, features: &[&str], target: &Path) -> Result<PathBuf> {
    ensure_bare_metal_target()?;
    let mut command = cargo();
    command.args([
        "build",
        "-p",
        "kernel",
        "--release",
        "--target",
        "x86_64-unknown-none",
    ]);
    if !features.is_empty() {
        command.arg("--features").arg(features.join(","));
    }
    if target != target_dir() {
        command.arg("--target-dir").arg(target);
    }
    run(step, &mut command)?;
    let image = target.join("x86_64-unknown-none/release/kernel");
    if !image.is_file() {
        bail!("kernel build succeeded but {} is missing", image.display());
    }
    Ok(image)
}

/// Builds the release image once per xtask process and returns its path.
pub fn kernel_image() -> Result<PathBuf> {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    built_once(&IMAGE, build_kernel)
}

/// The image that can boot `config`: the scenario image for
/// [`Image::Scenarios`]; else the release image, or the one built with the
/// example services (cargo feature `example-port-filter`) when the spec
/// names one of them. A spec that does not parse gets the release image,
/// which refuses it with the same error.
pub fn image_for(config: &QemuConfig) -> Result<PathBuf> {
    if config.image == Image::Scenarios {
        return scenario_kernel_image();
    }
    let needs_examples = config
        .spec
        .as_deref()
        .and_then(|spec| spec_file::read(spec).ok())
        .is_some_and(|spec| spec_file::needs_example_services(&spec));
    if needs_examples {
        example_kernel_image()
    } else {
        kernel_image()
    }
}

/// Builds (once per xtask process) the image with the in-kernel test
/// scenarios, in its own target directory so that it never overwrites the
/// release image.
pub fn scenario_kernel_image() -> Result<PathBuf> {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    built_once(&IMAGE, || {
        build_image(
            "kernel with scenarios",
            &["scenarios"],
            &target_dir().join("scenario-image"),
        )
    })
}

/// Builds (once per xtask process) the image with the example services and
/// the test-only kinds (`faulty-echo`), in its own target directory.
fn example_kernel_image() -> Result<PathBuf> {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    built_once(&IMAGE, || {
        build_image(
            "kernel with example services",
            &["example-port-filter", "example-tcp-apps", "test-services"],
            &target_dir().join("example-image"),
        )
    })
}

/// The path in `cell`, built by `build` the first time.
fn built_once(
    cell: &OnceLock<PathBuf>,
    build: impl FnOnce() -> Result<PathBuf>,
) -> Result<PathBuf> {
    if let Some(image) = cell.get() {
        return Ok(image.clone());
    }
    let image = build()?;
    Ok(cell.get_or_init(|| image).clone())
}

/// Makes sure `qemu-system-x86_64` is available: installs `qemu-system-x86` with
/// `scripts/install-qemu.sh` when running as root, else fails saying what to install.
pub fn ensure_qemu() -> Result<()> {
    if have(QEMU) {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "{QEMU} not found: install the `{QEMU_PACKAGE}` package (sudo apt-get install -y {QEMU_PACKAGE})"
        );
    }
    let script = workspace_root().join("scripts/install-qemu.sh");
    eprintln!("xtask: [qemu] {QEMU} missing, running {}", script.display());
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .with_context(|| format!("could not run {}", script.display()))?;
    if !status.success() || !have(QEMU) {
        bail!(
            "installing `{QEMU_PACKAGE}` failed ({status}); install it with apt-get install -y {QEMU_PACKAGE}"
        );
    }
    Ok(())
}
