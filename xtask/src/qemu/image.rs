//! QEMU itself and the image it boots: installs QEMU when it is missing and
//! builds the kernel's PVH ELF (once per xtask process).

use crate::qemu::command_line::{Image, QemuConfig};
use crate::shell::host::{ensure_bare_metal_target, have, is_root, target_dir, workspace_root};
use crate::shell::process::{cargo, run};
use crate::spec_file;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The QEMU binary the harness runs unless `WARPCORE_QEMU` names another.
pub const DEFAULT_QEMU: &str = "qemu-system-x86_64";
/// Debian package that provides [`DEFAULT_QEMU`].
pub const QEMU_PACKAGE: &str = "qemu-system-x86";
/// Where `scripts/install-qemu.sh 7.2` puts QEMU 7.2 beside the system's QEMU 10.
pub const QEMU_7_2: &str = "/opt/warpcore/qemu-7.2/bin/qemu-system-x86_64";
/// The environment variable that chooses the QEMU binary (a path, or a name
/// looked up in `PATH`): every boot of `run`, `test` and `bench`, warpcore's and
/// the Linux guest's, uses it.
pub const QEMU_VARIABLE: &str = "WARPCORE_QEMU";

/// The QEMU binary: `$WARPCORE_QEMU`, else [`DEFAULT_QEMU`].
pub fn qemu_binary() -> &'static str {
    static BINARY: OnceLock<String> = OnceLock::new();
    BINARY.get_or_init(|| {
        std::env::var(QEMU_VARIABLE)
            .ok()
            .filter(|value| !value.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_QEMU.to_string())
    })
}
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

/// The image that can boot `config`: the test image for
/// [`Image::Scenarios`]; else the release image, or the test image when
/// the spec names one of the example services or test-only kinds (which
/// the release image does not register). A spec that does not parse gets
/// the release image, which refuses it with the same error.
pub fn image_for(config: &QemuConfig) -> Result<PathBuf> {
    if config.image == Image::Scenarios {
        return test_kernel_image();
    }
    let needs_examples = config
        .spec
        .as_deref()
        .and_then(|spec| spec_file::read(spec).ok())
        .is_some_and(|spec| spec_file::needs_example_services(&spec));
    if needs_examples {
        test_kernel_image()
    } else {
        kernel_image()
    }
}

/// The cargo features of the test image: the in-kernel test scenarios,
/// the example services and the test-only kinds (`faulty-echo`).
pub const TEST_IMAGE_FEATURES: [&str; 4] = [
    "scenarios",
    "example-port-filter",
    "example-tcp-apps",
    "test-services",
];

/// Builds (once per xtask process) the test image: the release profile
/// with [`TEST_IMAGE_FEATURES`], in its own target directory so that it
/// never overwrites the release image. One image serves the kernel
/// scenarios (`test=NAME`) and the appliance specs that name an example
/// service or a test-only kind: without `test=` on the command line the
/// scenario code never runs (`kernel/src/runtime.rs`), and one image
/// instead of two saves a whole bare-metal build (its dependencies and
/// fat LTO) from every `cargo xtask test`.
pub fn test_kernel_image() -> Result<PathBuf> {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    built_once(&IMAGE, || {
        build_image(
            "kernel with scenarios and example services",
            &TEST_IMAGE_FEATURES,
            &target_dir().join("test-image"),
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

/// Makes sure the QEMU binary ([`qemu_binary`]) is available, and says once
/// which version it is (see [`ensure_qemu_binary`]).
pub fn ensure_qemu() -> Result<()> {
    ensured_version().map(|_| ())
}

/// The version of the QEMU binary after [`ensure_qemu`]'s checks, e.g.
/// `10.0.2` (for reports).
pub fn ensured_version() -> Result<&'static str> {
    static VERSION: OnceLock<String> = OnceLock::new();
    if let Some(version) = VERSION.get() {
        return Ok(version);
    }
    let version = ensure_qemu_binary(qemu_binary())?;
    Ok(VERSION.get_or_init(|| version))
}

/// Makes sure `binary` can run, and returns its version (printing it the
/// first time). A missing [`DEFAULT_QEMU`] is installed with
/// `scripts/install-qemu.sh` (QEMU 10) and a missing [`QEMU_7_2`] with
/// `scripts/install-qemu.sh 7.2` when running as root; anything else fails
/// saying what to install.
pub fn ensure_qemu_binary(binary: &str) -> Result<String> {
    static SEEN: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, version)) = seen.iter().find(|(known, _)| known == binary) {
        return Ok(version.clone());
    }
    if !is_runnable(binary) {
        let script_argument = match binary {
            DEFAULT_QEMU => "10",
            QEMU_7_2 => "7.2",
            other => bail!("{QEMU_VARIABLE}={other}: no such executable"),
        };
        if !is_root() {
            bail!(
                "{binary} not found: run sudo scripts/install-qemu.sh {script_argument} \
                 (QEMU 10 is Debian's `{QEMU_PACKAGE}` from bookworm-backports)"
            );
        }
        let script = workspace_root().join("scripts/install-qemu.sh");
        eprintln!(
            "xtask: [qemu] {binary} missing, running {} {script_argument}",
            script.display()
        );
        let status = Command::new("bash")
            .arg(&script)
            .arg(script_argument)
            .status()
            .with_context(|| format!("could not run {}", script.display()))?;
        if !status.success() || !is_runnable(binary) {
            bail!(
                "installing QEMU {script_argument} failed ({status}); run scripts/install-qemu.sh {script_argument}"
            );
        }
    }
    let mut version = qemu_version(binary)?;
    if binary == DEFAULT_QEMU && major(&version) < 10 {
        // An older system QEMU (bookworm's 7.2, from before QEMU 10 was the
        // default): the igb and x2APIC scenarios need QEMU 8 or later.
        if is_root() {
            eprintln!("xtask: [qemu] {binary} is QEMU {version}; upgrading to QEMU 10");
            let script = workspace_root().join("scripts/install-qemu.sh");
            let status = Command::new("bash")
                .arg(&script)
                .arg("10")
                .status()
                .with_context(|| format!("could not run {}", script.display()))?;
            if !status.success() {
                bail!("upgrading to QEMU 10 failed ({status}); run scripts/install-qemu.sh 10");
            }
            version = qemu_version(binary)?;
        } else {
            eprintln!(
                "xtask: [qemu] warning: {binary} is QEMU {version}, not 10; \
                 run sudo scripts/install-qemu.sh (the igb and x2APIC scenarios need QEMU 8 or later)"
            );
        }
    }
    eprintln!("xtask: [qemu] {binary}: QEMU {version}");
    seen.push((binary.to_string(), version.clone()));
    Ok(version)
}

/// The major version of a version string like `10.0.2` (0 when unreadable).
fn major(version: &str) -> u32 {
    version
        .split('.')
        .next()
        .and_then(|part| part.parse().ok())
        .unwrap_or(0)
}

/// True when `binary` is a path to an executable file or a program in `PATH`.
fn is_runnable(binary: &str) -> bool {
    if binary.contains('/') {
        Path::new(binary).is_file()
    } else {
        have(binary)
    }
}

/// The version `binary --version` prints, e.g. `10.0.2`.
fn qemu_version(binary: &str) -> Result<String> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("could not run {binary} --version"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_version(&text)
        .map(str::to_string)
        .with_context(|| format!("{binary} --version printed no QEMU version: {text}"))
}

/// The version number in QEMU's `--version` text.
fn parse_version(text: &str) -> Option<&str> {
    let rest = text
        .lines()
        .next()?
        .strip_prefix("QEMU emulator version ")?;
    let version = rest.split_whitespace().next()?;
    version
        .split('.')
        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        .then_some(version)
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions_read_from_both_debian_builds() {
        assert_eq!(
            parse_version(
                "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright"
            ),
            Some("10.0.2")
        );
        assert_eq!(
            parse_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n"),
            Some("7.2.22")
        );
        assert_eq!(parse_version("qemu-img version 10.0.2"), None);
        assert_eq!(parse_version("QEMU emulator version 10..2"), None);
        assert_eq!((super::major("10.0.2"), super::major("7.2.22")), (10, 7));
    }
}
