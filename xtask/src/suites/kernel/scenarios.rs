//! In-kernel scenarios run under QEMU: each boots the kernel with `test=NAME` on the
//! command line, waits for the isa-debug-exit status, and checks the serial log.

use anyhow::{Result, bail, ensure};
use std::time::Duration;

use crate::qemu::{self, Machine, QemuConfig, ScenarioOutcome, exit_status};

/// Address the page-fault scenario reads: canonical, far above any mapping.
const UNMAPPED_ADDRESS: u64 = 0x0000_0bad_0000_0000;
/// Identity-mapped RAM, used to show the page-fault check rejects a run without a fault.
const MAPPED_ADDRESS: u64 = 0x0020_0000;
/// Per-scenario timeout; boots take well under a second under TCG.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Decides whether an outcome is right; `Err` says what was wrong.
pub type Check = Box<dyn Fn(&ScenarioOutcome) -> Result<()>>;

/// One scenario: how to boot, and what the outcome must look like.
pub struct Scenario {
    /// Short name shown in the report.
    pub name: String,
    /// How QEMU boots the kernel.
    pub config: QemuConfig,
    /// Checks the outcome; `Err` says what was wrong.
    pub check: Check,
    /// Whether the check is expected to reject this outcome (a control run that shows
    /// the check is real).
    pub expect_rejection: bool,
}

fn config(smp: u32, machine: Machine, cmdline: &str) -> QemuConfig {
    QemuConfig {
        smp,
        machine,
        cmdline: cmdline.into(),
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

/// Every core reported its executor, the ready line names them all, exit was success.
pub fn check_boot(outcome: &ScenarioOutcome, cores: u32) -> Result<()> {
    ensure!(
        outcome.succeeded(),
        "expected success, got {}",
        outcome.describe_exit()
    );
    let ready_cores = outcome.ready_field("cores");
    ensure!(
        ready_cores == Some(&*cores.to_string()),
        "ready line reports cores={ready_cores:?}, expected {cores}"
    );
    for core in 0..cores {
        let needle = format!("core {core} executor running");
        ensure!(outcome.serial_log.contains(&needle), "missing `{needle}`");
    }
    ensure!(
        outcome
            .serial_log
            .contains(&format!("scenario boot: PASS cores={cores}")),
        "missing the boot PASS line"
    );
    Ok(())
}

/// The kernel reported a page fault at `address` with CR2 and exited with the
/// exception status.
pub fn check_page_fault(outcome: &ScenarioOutcome, address: u64) -> Result<()> {
    ensure!(
        outcome.exit_code == Some(exit_status::EXCEPTION),
        "expected the exception exit status 39, got {}",
        outcome.describe_exit()
    );
    let line = outcome
        .serial_log
        .lines()
        .find(|line| line.starts_with("EXCEPTION #PF page fault vector=14"))
        .ok_or_else(|| anyhow::anyhow!("no page-fault report on the console"))?;
    let cr2 = format!("cr2={address:#018x}");
    ensure!(
        line.contains(&cr2),
        "page-fault report lacks `{cr2}`: {line}"
    );
    ensure!(
        outcome.serial_log.contains("  rax="),
        "page-fault report lacks the register dump"
    );
    Ok(())
}

/// The expected PCI function was found and the scenario passed.
pub fn check_pci(outcome: &ScenarioOutcome) -> Result<()> {
    ensure!(
        outcome.succeeded(),
        "expected success, got {}",
        outcome.describe_exit()
    );
    ensure!(
        outcome.serial_log.contains("scenario pci: PASS"),
        "missing the pci PASS line"
    );
    Ok(())
}

/// Core 0 and core 1 exchanged every message and both checked each one.
pub fn check_pingpong(outcome: &ScenarioOutcome, messages: u64) -> Result<()> {
    ensure!(
        outcome.succeeded(),
        "expected success, got {}",
        outcome.describe_exit()
    );
    let summary = format!(
        "scenario pingpong: messages={messages} echoed={messages} errors=0 core1_errors=0 "
    );
    ensure!(outcome.serial_log.contains(&summary), "missing `{summary}`");
    ensure!(
        outcome.serial_log.contains("scenario pingpong: PASS"),
        "missing the pingpong PASS line"
    );
    Ok(())
}

/// The pool was exhausted and refilled locally and through core 1 without a leak.
pub fn check_mempool(outcome: &ScenarioOutcome) -> Result<()> {
    ensure!(
        outcome.succeeded(),
        "expected success, got {}",
        outcome.describe_exit()
    );
    for needle in [
        "local rounds of",
        "came back remotely",
        "scenario mempool: PASS",
    ] {
        ensure!(outcome.serial_log.contains(needle), "missing `{needle}`");
    }
    Ok(())
}

/// The `synthetic cores=N key=value ...` line of a `test=synthetic` run.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticLine {
    /// Pipeline cores (the generator core not counted).
    pub cores: u32,
    /// `core` (core 0 turns echoes into requests) or `local` (each
    /// pipeline core does); lines from before the local mode say neither.
    pub generator: String,
    /// Echoes in the measured window.
    pub packets: u64,
    /// Million echoes per second through all pipeline cores.
    pub mpps: f64,
    /// TSC cycles per packet of one pipeline core (busy polls only).
    pub cycles_per_packet: f64,
    /// Share of the window the pipeline cores had packets, in percent.
    pub busy_percent: u64,
    /// Requests the generator sent.
    pub generated: u64,
    /// Correct echoes that came back.
    pub echoed: u64,
    /// Wrong frames that came back.
    pub errors: u64,
    /// Packets the pipeline cores dropped.
    pub drops: u64,
}

impl SyntheticLine {
    /// Finds and parses the result line in a serial log.
    pub fn find(serial_log: &str) -> Result<Self> {
        let line = serial_log
            .lines()
            .find(|line| line.starts_with("synthetic cores="))
            .ok_or_else(|| anyhow::anyhow!("no `synthetic cores=` line on the console"))?;
        let field = |name: &str| -> Result<&str> {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
                .ok_or_else(|| anyhow::anyhow!("`{line}` lacks `{name}=`"))
        };
        let number = |name: &str| -> Result<u64> {
            field(name)?
                .parse()
                .map_err(|error| anyhow::anyhow!("`{name}` in `{line}`: {error}"))
        };
        let real = |name: &str| -> Result<f64> {
            field(name)?
                .parse()
                .map_err(|error| anyhow::anyhow!("`{name}` in `{line}`: {error}"))
        };
        Ok(Self {
            cores: number("cores")? as u32,
            generator: field("generator").unwrap_or("core").to_owned(),
            packets: number("packets")?,
            mpps: real("mpps")?,
            cycles_per_packet: real("cycles_per_packet")?,
            busy_percent: number("busy_percent")?,
            generated: number("generated")?,
            echoed: number("echoed")?,
            errors: number("errors")?,
            drops: number("drops")?,
        })
    }
}

/// Every request (exactly `packets` of them when given) came back as a
/// correct echo from the `pipelines` pipeline cores with `generator`
/// turning echoes around, and nothing was dropped.
pub fn check_synthetic(
    outcome: &ScenarioOutcome,
    pipelines: u32,
    generator: &str,
    packets: Option<u64>,
) -> Result<()> {
    ensure!(
        outcome.succeeded(),
        "expected success, got {}",
        outcome.describe_exit()
    );
    let line = SyntheticLine::find(&outcome.serial_log)?;
    ensure!(
        line.cores == pipelines,
        "{} pipeline cores, expected {pipelines}",
        line.cores
    );
    ensure!(
        line.generator == generator,
        "generator={}, expected {generator}",
        line.generator
    );
    let expected = packets.unwrap_or(line.generated);
    ensure!(
        expected > 0 && line.generated == expected && line.echoed == expected,
        "{} of {} requests echoed, expected {expected}",
        line.echoed,
        line.generated
    );
    ensure!(
        line.errors == 0 && line.drops == 0,
        "{} wrong echoes, {} drops",
        line.errors,
        line.drops
    );
    ensure!(
        outcome.serial_log.contains("scenario synthetic: PASS"),
        "missing the synthetic PASS line"
    );
    Ok(())
}

/// Measures the in-guest synthetic pipeline with `pipelines` pipeline cores
/// (plus the generator core) over a `window_ms` window.
pub fn measure_synthetic(pipelines: u32, generator: &str, window_ms: u64) -> Result<SyntheticLine> {
    let config = config(
        pipelines + 1,
        Machine::Q35,
        &format!("test=synthetic synthetic_generator={generator} synthetic_ms={window_ms}"),
    );
    let outcome = qemu::run_scenario(&config, TIMEOUT)?;
    let line = SyntheticLine::find(&outcome.serial_log)
        .map_err(|error| anyhow::anyhow!("{error:#}\n{}", outcome.serial_log))?;
    ensure!(
        outcome.succeeded(),
        "synthetic run failed ({}): {:?}",
        outcome.describe_exit(),
        line
    );
    Ok(line)
}

/// FNV-1a, as the kernel's spec scenario computes it.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The kernel saw exactly the bytes of the spec file as its first PVH module.
pub fn check_spec(outcome: &ScenarioOutcome, spec: &[u8]) -> Result<()> {
    ensure!(
        outcome.succeeded(),
        "expected success, got {}",
        outcome.describe_exit()
    );
    let expected = format!(
        "scenario spec: module bytes={} fnv1a={:#018x}",
        spec.len(),
        fnv1a(spec)
    );
    ensure!(
        outcome.serial_log.contains(&expected),
        "missing `{expected}`"
    );
    Ok(())
}

/// A small spec file written for the spec scenario.
fn spec_fixture() -> Result<(std::path::PathBuf, Vec<u8>)> {
    // A real spec (the appliance would accept it), with a comment line in
    // front so the bytes differ from the built-in default.
    let echo = std::fs::read(crate::shell::workspace_root().join("examples/echo.toml"))?;
    let mut bytes = b"# warpcore spec fixture for the PVH module scenario\n".to_vec();
    bytes.extend_from_slice(&echo);
    let path =
        std::env::temp_dir().join(format!("warpcore-spec-fixture-{}.toml", std::process::id()));
    std::fs::write(&path, &bytes)?;
    Ok((path, bytes))
}

/// The scenario list run by `cargo xtask test`.
pub fn scenarios() -> Vec<Scenario> {
    let mut list = Vec::new();
    for (machine, smp) in [
        (Machine::Q35, 1),
        (Machine::Q35, 2),
        (Machine::Q35, 4),
        (Machine::Microvm, 4),
        (Machine::Pc, 2),
    ] {
        list.push(Scenario {
            name: format!("boot {machine} -smp {smp}"),
            config: config(smp, machine, "test=boot"),
            check: Box::new(move |outcome| check_boot(outcome, smp)),
            expect_rejection: false,
        });
    }
    list.push(Scenario {
        name: "boot q35 -smp 2 xAPIC forced".into(),
        config: config(2, Machine::Q35, "test=boot apic=xapic"),
        check: Box::new(|outcome| {
            check_boot(outcome, 2)?;
            ensure!(
                outcome.serial_log.contains("apic XApic"),
                "kernel did not use xAPIC"
            );
            Ok(())
        }),
        expect_rejection: false,
    });
    list.push(Scenario {
        name: format!("page fault at {UNMAPPED_ADDRESS:#x} is reported and fails the run"),
        config: config(
            2,
            Machine::Q35,
            &format!("test=pagefault fault_addr={UNMAPPED_ADDRESS:#x}"),
        ),
        check: Box::new(|outcome| check_page_fault(outcome, UNMAPPED_ADDRESS)),
        expect_rejection: false,
    });
    list.push(Scenario {
        name: "null dereference faults (page 0 unmapped)".into(),
        config: config(1, Machine::Q35, "test=pagefault fault_addr=0x0"),
        check: Box::new(|outcome| check_page_fault(outcome, 0)),
        expect_rejection: false,
    });
    list.push(Scenario {
        name: "control: page-fault check rejects a run without a fault".into(),
        config: config(
            1,
            Machine::Q35,
            &format!("test=pagefault fault_addr={MAPPED_ADDRESS:#x}"),
        ),
        check: Box::new(|outcome| check_page_fault(outcome, MAPPED_ADDRESS)),
        expect_rejection: true,
    });
    list.push(Scenario {
        name: "pci finds virtio-net (q35, ECAM)".into(),
        config: QemuConfig {
            extra_args: virtio_net_args(),
            ..config(1, Machine::Q35, "test=pci expect_pci=1af4:1000")
        },
        check: Box::new(check_pci),
        expect_rejection: false,
    });
    list.push(Scenario {
        name: "pci finds virtio-net (pc, port I/O)".into(),
        config: QemuConfig {
            extra_args: virtio_net_args(),
            ..config(1, Machine::Pc, "test=pci expect_pci=1af4:1000")
        },
        check: Box::new(check_pci),
        expect_rejection: false,
    });
    list.push(Scenario {
        name: "pci finds virtio-net (microvm, pcie=on)".into(),
        config: QemuConfig {
            extra_args: virtio_net_args(),
            ..config(1, Machine::Microvm, "test=pci expect_pci=1af4:1000")
        },
        check: Box::new(check_pci),
        expect_rejection: false,
    });
    const MESSAGES: u64 = 1_000_000;
    list.push(Scenario {
        name: "ping-pong of 10^6 messages over SpscRing, core 0 <-> core 1".into(),
        config: config(2, Machine::Q35, "test=pingpong"),
        check: Box::new(|outcome| check_pingpong(outcome, MESSAGES)),
        expect_rejection: false,
    });
    list.push(Scenario {
        name: "mempool exhausted and refilled (local and remote), no leak".into(),
        config: config(2, Machine::Q35, "test=mempool"),
        check: Box::new(check_mempool),
        expect_rejection: false,
    });
    const SYNTHETIC_PACKETS: u64 = 50_000;
    for pipelines in [1, 2] {
        list.push(Scenario {
            name: format!(
                "synthetic: {SYNTHETIC_PACKETS} UDP echoes through {pipelines} pipeline core(s) over rings, all checked"
            ),
            config: config(
                pipelines + 1,
                Machine::Q35,
                &format!(
                    "test=synthetic synthetic_verify=full synthetic_packets={SYNTHETIC_PACKETS}"
                ),
            ),
            check: Box::new(move |outcome| {
                check_synthetic(outcome, pipelines, "core", Some(SYNTHETIC_PACKETS))
            }),
            expect_rejection: false,
        });
    }
    list.push(Scenario {
        name: "synthetic: local generators on 2 pipeline cores for 300 ms, every echo checked"
            .into(),
        config: config(
            3,
            Machine::Q35,
            "test=synthetic synthetic_verify=full synthetic_generator=local synthetic_ms=300",
        ),
        check: Box::new(|outcome| check_synthetic(outcome, 2, "local", None)),
        expect_rejection: false,
    });
    match spec_fixture() {
        Ok((path, bytes)) => list.push(Scenario {
            name: "spec file arrives as the first PVH module".into(),
            config: QemuConfig {
                spec: Some(path),
                ..config(1, Machine::Q35, "test=spec")
            },
            check: Box::new(move |outcome| check_spec(outcome, &bytes)),
            expect_rejection: false,
        }),
        Err(error) => eprintln!("xtask: cannot write the spec fixture: {error}"),
    }
    list.push(Scenario {
        name: "control: pci check rejects a machine without virtio-net".into(),
        config: config(1, Machine::Q35, "test=pci expect_pci=1af4:1000"),
        check: Box::new(check_pci),
        expect_rejection: true,
    });
    list
}

/// Runs one scenario and decides whether it passed.
pub fn run_scenario(scenario: &Scenario) -> Result<ScenarioOutcome> {
    let outcome = qemu::run_scenario(&scenario.config, TIMEOUT)?;
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

/// Runs every scenario, printing one line each; fails if any failed.
pub fn run_all() -> Result<()> {
    let scenarios = scenarios();
    let mut failed = Vec::new();
    for scenario in &scenarios {
        match run_scenario(scenario) {
            Ok(outcome) => {
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
                println!(
                    "kernel scenario ok: {} ({:.2} s{ready})",
                    scenario.name,
                    outcome.elapsed.as_secs_f64()
                );
            }
            Err(error) => {
                println!("kernel scenario FAILED: {}: {error:#}", scenario.name);
                failed.push(scenario.name.clone());
            }
        }
    }
    println!(
        "kernel-scenarios: {} passed, {} failed",
        scenarios.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        bail!("kernel scenarios failed: {}", failed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_line_parses_and_checks() {
        let log = "boot\nsynthetic cores=2 packets=100 seconds=1.000 mpps=0.250 \
            cycles_per_packet=1620.5 busy_percent=97 generated=120 echoed=120 errors=0 \
            drops=0 unsolicited=2\nscenario synthetic: PASS\n";
        let line = SyntheticLine::find(log).unwrap();
        assert_eq!(line.cores, 2);
        assert_eq!(line.packets, 100);
        assert_eq!(line.mpps, 0.25);
        assert_eq!(line.cycles_per_packet, 1620.5);
        assert_eq!((line.generated, line.echoed, line.errors), (120, 120, 0));
        assert!(SyntheticLine::find("synthetic cores=1 packets=x").is_err());
        assert!(SyntheticLine::find("nothing here").is_err());
        let outcome = |log: &str| ScenarioOutcome {
            exit_code: Some(exit_status::SUCCESS),
            serial_log: log.into(),
            timed_out: false,
            ready_after: None,
            elapsed: Duration::ZERO,
        };
        assert_eq!(line.generator, "core", "lines without generator= are core");
        check_synthetic(&outcome(log), 2, "core", Some(120)).unwrap();
        check_synthetic(&outcome(log), 2, "core", None).unwrap();
        assert!(
            check_synthetic(&outcome(log), 1, "core", Some(120)).is_err(),
            "core count"
        );
        assert!(
            check_synthetic(&outcome(log), 2, "local", Some(120)).is_err(),
            "generator mode"
        );
        assert!(
            check_synthetic(&outcome(log), 2, "core", Some(121)).is_err(),
            "lost echo"
        );
        let local = log.replace("cores=2", "cores=2 generator=local");
        check_synthetic(&outcome(&local), 2, "local", None).unwrap();
        let lost = local.replace("echoed=120", "echoed=119");
        assert!(
            check_synthetic(&outcome(&lost), 2, "local", None).is_err(),
            "lost echo, window mode"
        );
        let bad = log.replace("errors=0", "errors=1");
        assert!(
            check_synthetic(&outcome(&bad), 2, "core", Some(120)).is_err(),
            "wrong echo"
        );
    }
}
