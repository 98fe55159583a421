//! `cargo xtask`: build, run, test and benchmark warpcore with one command each.
#![forbid(unsafe_code)]

mod appliance_malformed;
mod appliance_tests;
mod bench;
mod callgrind;
mod counters;
mod harness;
mod hosted_tests;
mod kernel_tests;
mod netns;
mod qemu;
mod raw_frames;
mod shell;
mod test;
mod udp_client;

use anyhow::{Context, Result, bail};
use std::path::PathBuf;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  build             build the appliance image (PVH ELF)
  run [options]     build the appliance and boot it in QEMU, serial on stdout
      --smp N                      vCPUs (default 2)
      --mem MIB                    guest RAM (default 512)
      --machine q35|microvm|pc     machine type (default q35)
      --accel tcg|kvm              accelerator (default tcg)
      --spec FILE                  spec file handed to the appliance (default examples/echo.toml);
                                   as root, each interface gets a tap in namespace wc-run
      --append ARGS                extra kernel command line
  test              fmt, clippy, host tests, Miri, kernel scenarios in QEMU
  bench [--quick]   microbenchmarks and the systems-under-test harness (bench --help)
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(error) = dispatch(&args) {
        eprintln!("xtask: error: {error:#}");
        std::process::exit(1);
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        print!("{USAGE}");
        bail!("no command given");
    };
    match command.as_str() {
        "build" => {
            if let Some(unknown) = rest.first() {
                bail!("`build` takes no arguments, got `{unknown}`");
            }
            shell::ensure_bare_metal_target()?;
            let image = qemu::build_kernel()?;
            println!("{}", image.display());
            Ok(())
        }
        "run" => {
            let mut config = parse_run_options(rest)?;
            if config.spec.is_none() {
                config.spec = Some(qemu::workspace_root().join("examples/echo.toml"));
            }
            shell::ensure_bare_metal_target()?;
            qemu::ensure_qemu()?;
            qemu::run_appliance(&config)
        }
        "test" => test::run(rest),
        // Internal: the UDP client the appliance tests run inside a namespace.
        "__udp-client" => udp_client::run(rest),
        // Internal: raw frames out of an interface (malformed-traffic tests).
        "__send-frames" => raw_frames::run(rest),
        // Internal: only the QEMU appliance tests (the last step of `test`).
        "__appliance-tests" => appliance_tests::run_all(),
        // Internal: only the hosted integration tests.
        "__hosted-tests" => hosted_tests::run_all(),
        "bench" => bench::run(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            print!("{USAGE}");
            bail!("unknown command `{other}`")
        }
    }
}

/// Parses `run`'s options into a QEMU configuration.
fn parse_run_options(args: &[String]) -> Result<qemu::QemuConfig> {
    let mut config = qemu::QemuConfig {
        smp: 2,
        ..qemu::QemuConfig::default()
    };
    let mut args = args.iter();
    while let Some(option) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("option `{option}` needs a value"))
        };
        match option.as_str() {
            "--smp" => {
                let text = value()?;
                config.smp = text
                    .parse()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .with_context(|| {
                        format!("--smp takes a number of vCPUs from 1 to 64, got `{text}`")
                    })?;
            }
            "--mem" => {
                let text = value()?;
                config.mem_mib = text.parse().ok().filter(|n| *n >= 64).with_context(|| {
                    format!("--mem takes MiB of guest RAM, at least 64, got `{text}`")
                })?;
            }
            "--machine" => config.machine = value()?.parse()?,
            "--accel" => config.accel = value()?.parse()?,
            "--spec" => {
                let path = PathBuf::from(value()?);
                if !path.is_file() {
                    bail!("spec file `{}` not found", path.display());
                }
                config.spec = Some(path);
            }
            "--append" => config.cmdline = value()?.clone(),
            other => bail!("unknown `run` option `{other}`\n{USAGE}"),
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<qemu::QemuConfig> {
        parse_run_options(&args.iter().map(|arg| arg.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn run_options_parse_and_reject_nonsense() {
        let config = parse(&["--smp", "4", "--machine", "microvm", "--accel", "kvm"]).unwrap();
        assert_eq!(
            (config.smp, config.machine, config.accel),
            (4, qemu::Machine::Microvm, qemu::Accel::Kvm)
        );
        assert_eq!(parse(&[]).unwrap().smp, 2);
        for bad in [
            &["--smp"][..],
            &["--smp", "0"],
            &["--smp", "many"],
            &["--mem", "1"],
            &["--machine", "vax"],
            &["--accel", "hax"],
            &["--spec", "/nonexistent.toml"],
            &["--frobnicate"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
