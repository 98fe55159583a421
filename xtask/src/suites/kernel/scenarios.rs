//! In-kernel scenarios run under QEMU: each boots the kernel with `test=NAME` on the
//! command line, waits for the isa-debug-exit status, and checks the serial log.

use crate::qemu::command_line::{Image, Machine, QemuConfig};
use crate::qemu::image::{QEMU_7_2, ensure_qemu, ensure_qemu_binary};
use crate::qemu::scenario::{self, ScenarioOutcome};
use crate::spec_file::example;
use crate::suites::kernel::checks::{
    check_boot, check_igb, check_mempool, check_page_fault, check_pci, check_pingpong,
    check_slices, check_spec, check_synthetic, check_timer, check_timer_lost_wakeup,
};
use crate::suites::runner::{self, Case, Filter};
use anyhow::{Context, Result, bail, ensure};
use std::path::PathBuf;
use std::time::Duration;

/// The suite's name in `--only` and in its summary line.
const SUITE: &str = "kernel";
/// The case that boots with x2APIC: QEMU's TCG offers x2APIC from 8.0 on
/// (`-cpu max`), so before QEMU 10 only KVM reached the kernel's x2APIC
/// path. QEMU 7.2 lacks it and skips the case.
const X2APIC_CASE: &str = "boot-x2apic";
/// The igb bring-up case: QEMU has the igb model from 8.0 on; 7.2 skips it.
const IGB_CASE: &str = "igb-bring-up";
/// The MAC QEMU gives the igb function, which the driver must read back.
const IGB_MAC: &str = "52:54:00:12:34:56";
/// Cases that need a QEMU newer than 7.2.
const NEEDS_QEMU_8: [&str; 2] = [X2APIC_CASE, IGB_CASE];
/// The same scenarios booted by QEMU 7.2 (`scripts/install-qemu.sh 7.2`),
/// the oldest QEMU we support: its own suite, so that `--only kernel/` is
/// the default QEMU alone.
const SUITE_QEMU_7_2: &str = "kernel-qemu7.2";
/// Address the page-fault scenario reads: canonical, far above any mapping.
const UNMAPPED_ADDRESS: u64 = 0x0000_0bad_0000_0000;
/// Identity-mapped RAM, used to show the page-fault check rejects a run without a fault.
const MAPPED_ADDRESS: u64 = 0x0020_0000;
/// Per-scenario timeout; boots take well under a second under TCG.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Decides whether an outcome is right; `Err` says what was wrong.
type Check = Box<dyn Fn(&ScenarioOutcome) -> Result<()>>;

/// One scenario: how to boot, and what the outcome must look like.
pub struct Scenario {
    /// How QEMU boots the kernel.
    config: QemuConfig,
    /// Checks the outcome; `Err` says what was wrong.
    check: Check,
    /// Whether the check is expected to reject this outcome (a control run that shows
    /// the check is real).
    expect_rejection: bool,
    /// A file (path, bytes) written before the boot and removed after it.
    fixture: Option<(PathBuf, Vec<u8>)>,
}

impl Scenario {
    /// A scenario whose check must accept the outcome.
    fn new(config: QemuConfig, check: impl Fn(&ScenarioOutcome) -> Result<()> + 'static) -> Self {
        Self {
            config,
            check: Box::new(check),
            expect_rejection: false,
            fixture: None,
        }
    }

    /// A control run: the check must reject its outcome.
    fn control(
        config: QemuConfig,
        check: impl Fn(&ScenarioOutcome) -> Result<()> + 'static,
    ) -> Self {
        Self {
            expect_rejection: true,
            ..Self::new(config, check)
        }
    }
}

/// A QEMU configuration of `smp` vCPUs on `machine` with kernel command line
/// `cmdline`.
pub fn config(smp: u32, machine: Machine, cmdline: &str) -> QemuConfig {
    QemuConfig {
        smp,
        machine,
        cmdline: cmdline.into(),
        image: Image::Scenarios,
        ..QemuConfig::default()
    }
}

fn virtio_net_args() -> Vec<String> {
    [
        "-device",
        "virtio-net-pci,netdev=n0,romfile=",
        "-netdev",
        "user,id=n0",
    ]
    .map(String::from)
    .to_vec()
}

/// The spec fixture of the spec scenario: a real spec (the appliance would
/// accept it), with a comment line in front so the bytes differ from the
/// built-in default; its path and bytes.
fn spec_fixture() -> Result<(PathBuf, Vec<u8>)> {
    let source = example("echo.toml");
    let echo = std::fs::read(&source).with_context(|| source.display().to_string())?;
    let mut bytes = b"# warpcore spec fixture for the PVH module scenario\n".to_vec();
    bytes.extend_from_slice(&echo);
    let path =
        std::env::temp_dir().join(format!("warpcore-spec-fixture-{}.toml", std::process::id()));
    Ok((path, bytes))
}

/// Every kernel scenario, in the order `cargo xtask test` runs them.
fn cases() -> Result<Vec<Case<Scenario>>> {
    let mut list = Vec::new();
    for (machine, smp) in [
        (Machine::Q35, 1),
        (Machine::Q35, 2),
        (Machine::Q35, 4),
        (Machine::Microvm, 4),
        (Machine::Pc, 2),
    ] {
        list.push(Case::new(
            format!("boot-{machine}-smp{smp}"),
            format!("boot {machine} -smp {smp}"),
            Scenario::new(config(smp, machine, "test=boot"), move |outcome| {
                check_boot(outcome, smp)
            }),
        ));
    }
    list.push(Case::new(
        X2APIC_CASE,
        "boot q35 -smp 2 -cpu max: x2APIC under TCG (QEMU 8 and later)",
        Scenario::new(
            QemuConfig {
                extra_args: ["-cpu", "max"].map(String::from).to_vec(),
                ..config(2, Machine::Q35, "test=boot")
            },
            |outcome| {
                check_boot(outcome, 2)?;
                ensure!(
                    outcome.serial_log.contains("apic X2Apic"),
                    "kernel did not use x2APIC although -cpu max offers it"
                );
                Ok(())
            },
        ),
    ));
    list.push(Case::new(
        "boot-xapic",
        "boot q35 -smp 2 xAPIC forced",
        Scenario::new(config(2, Machine::Q35, "test=boot apic=xapic"), |outcome| {
            check_boot(outcome, 2)?;
            ensure!(
                outcome.serial_log.contains("apic XApic"),
                "kernel did not use xAPIC"
            );
            Ok(())
        }),
    ));
    list.push(Case::new(
        "page-fault",
        format!("page fault at {UNMAPPED_ADDRESS:#x} is reported and fails the run"),
        Scenario::new(
            config(
                2,
                Machine::Q35,
                &format!("test=pagefault fault_addr={UNMAPPED_ADDRESS:#x}"),
            ),
            |outcome| check_page_fault(outcome, UNMAPPED_ADDRESS),
        ),
    ));
    list.push(Case::new(
        "null-dereference",
        "null dereference faults (page 0 unmapped)",
        Scenario::new(
            config(1, Machine::Q35, "test=pagefault fault_addr=0x0"),
            |outcome| check_page_fault(outcome, 0),
        ),
    ));
    list.push(Case::new(
        "control-page-fault",
        "control: page-fault check rejects a run without a fault",
        Scenario::control(
            config(
                1,
                Machine::Q35,
                &format!("test=pagefault fault_addr={MAPPED_ADDRESS:#x}"),
            ),
            |outcome| check_page_fault(outcome, MAPPED_ADDRESS),
        ),
    ));
    for (machine, how) in [
        (Machine::Q35, "q35, ECAM"),
        (Machine::Pc, "pc, port I/O"),
        (Machine::Microvm, "microvm, pcie=on"),
    ] {
        list.push(Case::new(
            format!("pci-{machine}"),
            format!("pci finds virtio-net ({how})"),
            Scenario::new(
                QemuConfig {
                    extra_args: virtio_net_args(),
                    ..config(1, machine, "test=pci expect_pci=1af4:1000")
                },
                check_pci,
            ),
        ));
    }
    list.push(Case::new(
        IGB_CASE,
        "igb driver bring-up on QEMU's 82576 (-device igb): reset, MAC, link, queue pair 0",
        Scenario::new(
            QemuConfig {
                extra_args: [
                    "-device",
                    &format!("igb,netdev=n0,mac={IGB_MAC},romfile="),
                    "-netdev",
                    "user,id=n0",
                ]
                .map(String::from)
                .to_vec(),
                ..config(1, Machine::Q35, &format!("test=igb expect_mac={IGB_MAC}"))
            },
            check_igb,
        ),
    ));
    const MESSAGES: u64 = 1_000_000;
    list.push(Case::new(
        "pingpong",
        "ping-pong of 10^6 messages over SpscRing, core 0 <-> core 1",
        Scenario::new(config(2, Machine::Q35, "test=pingpong"), |outcome| {
            check_pingpong(outcome, MESSAGES)
        }),
    ));
    list.push(Case::new(
        "mempool",
        "mempool exhausted and refilled (local and remote), no leak",
        Scenario::new(config(2, Machine::Q35, "test=mempool"), check_mempool),
    ));
    const SYNTHETIC_PACKETS: u64 = 50_000;
    for pipelines in [1, 2] {
        list.push(Case::new(
            format!(
                "synthetic-{pipelines}-pipeline{}",
                if pipelines == 1 { "" } else { "s" }
            ),
            format!(
                "synthetic: {SYNTHETIC_PACKETS} UDP echoes through {pipelines} pipeline core(s) over rings, all checked"
            ),
            Scenario::new(
                config(
                    pipelines + 1,
                    Machine::Q35,
                    &format!(
                        "test=synthetic synthetic_verify=full synthetic_packets={SYNTHETIC_PACKETS}"
                    ),
                ),
                move |outcome| check_synthetic(outcome, pipelines, "core", Some(SYNTHETIC_PACKETS)),
            ),
        ));
    }
    list.push(Case::new(
        "synthetic-local",
        "synthetic: local generators on 2 pipeline cores for 300 ms in 50 ms slices (both, one alone in turn), every echo checked",
        Scenario::new(
            config(
                3,
                Machine::Q35,
                "test=synthetic synthetic_verify=full synthetic_generator=local synthetic_ms=300 synthetic_slice_ms=50",
            ),
            |outcome| {
                check_synthetic(outcome, 2, "local", None)?;
                check_slices(outcome, 5)
            },
        ),
    ));
    list.push(Case::new(
        "timer",
        "LAPIC timer: cores run with interrupts on, no tick after stop_timer, one-shot sleeps wake even when the timer expires before the hlt",
        Scenario::new(config(2, Machine::Q35, "test=timer"), check_timer),
    ));
    list.push(Case::new(
        "control-timer",
        "control: a one-shot timer armed with interrupts on and expiring before the hlt loses the wake-up (the watchdog catches it)",
        // Not `Scenario::control` with `check_timer`: that rejects any
        // failure (a timeout, `needs 2 cores`, a mistyped switch) and would
        // pass on all of them. This run must fail exactly by the watchdog.
        Scenario::new(
            config(2, Machine::Q35, "test=timer timer_halt=interrupts-on"),
            check_timer_lost_wakeup,
        ),
    ));
    let (path, bytes) = spec_fixture()?;
    let expected = bytes.clone();
    list.push(Case::new(
        "spec-module",
        "spec file arrives as the first PVH module",
        Scenario {
            fixture: Some((path.clone(), bytes)),
            ..Scenario::new(
                QemuConfig {
                    spec: Some(path),
                    ..config(1, Machine::Q35, "test=spec")
                },
                move |outcome| check_spec(outcome, &expected),
            )
        },
    ));
    list.push(Case::new(
        "control-pci",
        "control: pci check rejects a machine without virtio-net",
        Scenario::control(
            config(1, Machine::Q35, "test=pci expect_pci=1af4:1000"),
            check_pci,
        ),
    ));
    Ok(list)
}

/// The names of the kernel scenarios, for `--list`.
pub fn names() -> Result<Vec<String>> {
    Ok(runner::names(SUITE, &cases()?))
}

/// The names of the kernel scenarios on QEMU 7.2, for `--list`.
pub fn names_on_qemu_7_2() -> Result<Vec<String>> {
    let mut cases = cases()?;
    cases.retain(|case| !NEEDS_QEMU_8.contains(&case.name.as_str()));
    Ok(runner::names(SUITE_QEMU_7_2, &cases))
}

/// Runs the kernel scenarios `filter` selects, printing one line each;
/// fails if any failed.
pub fn run(filter: &Filter) -> Result<()> {
    run_suite(SUITE, cases()?, filter, ensure_qemu)
}

/// Runs the kernel scenarios `filter` selects under QEMU 7.2 (installed
/// beside QEMU 10 when missing, as root).
pub fn run_on_qemu_7_2(filter: &Filter) -> Result<()> {
    let mut cases = cases()?;
    cases.retain(|case| !NEEDS_QEMU_8.contains(&case.name.as_str()));
    for case in &mut cases {
        case.body.config.qemu = Some(QEMU_7_2);
    }
    run_suite(SUITE_QEMU_7_2, cases, filter, || {
        ensure_qemu_binary(QEMU_7_2).map(|_| ())
    })
}

fn run_suite(
    suite: &str,
    cases: Vec<Case<Scenario>>,
    filter: &Filter,
    prepare: impl FnOnce() -> Result<()>,
) -> Result<()> {
    runner::run(suite, cases, filter, prepare, |(), scenario| {
        let outcome = run_scenario(scenario)?;
        let ready = outcome
            .ready_after
            .map(|after| {
                format!(
                    ", ready after {:.0} ms wall, boot_ms={}",
                    after.as_secs_f64() * 1e3,
                    outcome.ready_field("boot_ms").unwrap_or("?")
                )
            })
            .unwrap_or_default();
        eprintln!("    {:.2} s{ready}", outcome.elapsed.as_secs_f64());
        Ok(())
    })
}

/// Boots one scenario (with its fixture written for the boot) and decides
/// whether it passed.
fn run_scenario(scenario: &Scenario) -> Result<ScenarioOutcome> {
    if let Some((path, bytes)) = &scenario.fixture {
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    let outcome = scenario::run_scenario(&scenario.config, TIMEOUT);
    if let Some((path, _)) = &scenario.fixture {
        let _ = std::fs::remove_file(path);
    }
    let outcome = outcome?;
    match ((scenario.check)(&outcome), scenario.expect_rejection) {
        (Ok(()), false) => Ok(outcome),
        (Err(reason), true) => {
            eprintln!("    (rejected as expected: {reason:#})");
            Ok(outcome)
        }
        (Ok(()), true) => bail!(
            "the check accepted an outcome it must reject\n{}",
            outcome.serial_log
        ),
        (Err(reason), false) => bail!(
            "{reason:#}\n--- serial log ---\n{}--- end ---",
            outcome.serial_log
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_are_unique_words() {
        let names = names().unwrap();
        assert_eq!(names.len(), 23);
        // QEMU 7.2 boots every scenario but the two that need QEMU 8.
        let old_qemu = names_on_qemu_7_2().unwrap();
        assert_eq!(old_qemu.len(), 21);
        assert!(names.contains(&format!("{SUITE}/{IGB_CASE}")));
        assert!(
            !old_qemu
                .iter()
                .any(|name| NEEDS_QEMU_8.iter().any(|case| name.ends_with(case)))
        );
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert!(names.iter().all(|name| {
            name.strip_prefix("kernel/").is_some_and(|rest| {
                rest.bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
            })
        }));
        assert!(names.contains(&"kernel/boot-microvm-smp4".to_owned()));
    }
}
