//! Hosted Wasm nanoservices (issue 19): modules written in WAT
//! (wasm/host/tests/modules), compiled to `.wasm` files beside a spec that
//! names them, run by `warpcore-hosted` on a tap. An ACL drops what its
//! config says, counted per rule; a module that loops is stopped by fuel
//! while the core keeps echoing; one that traps is quarantined and rebuilt
//! after its backoff; a malformed one is refused at start, with the
//! engine's reason naming the service.

use crate::counters::Counters;
use crate::shell::process::{cargo, run as run_step};
use crate::suites::binaries;
use crate::suites::hosted::process::{EchoSetup, Link};
use crate::suites::hot_load::{ExampleModule, HotLoadModules, hot_load_checks, hot_load_spec};
use crate::suites::management_traffic::test_spec;
use crate::suites::runner::Case;
use crate::suites::traffic::{udp_dropped, udp_echo};
use anyhow::{Context, Result, ensure};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// One scenario: given the appliance binary, passes or says why not.
type Scenario = fn(&Path) -> Result<()>;

/// The hosted Wasm scenarios.
pub fn cases() -> Vec<Case<Scenario>> {
    vec![
        Case::new(
            "wasm-tap",
            "Wasm nanoservices over tap: an ACL module drops port 9 (counted per rule) and echoes port 7; a looping module stopped by fuel while port 7 echoes; a trapping one quarantined then rebuilt; a malformed one refused at start",
            wasm as Scenario,
        ),
        // On demand: building warpcore-hosted with wasmtime costs minutes
        // of CI time (see wasm/host/README.md).
        Case::on_demand(
            "wasm-wasmtime-tap",
            "Wasm nanoservices on wasmtime (warpcore-hosted built with the `wasmtime` feature; only when --only names it), one boot: the ACL (epoch deadline) drops port 9 (counted per rule) and echoes port 7; behind it a module stopped by fuel when it loops and quarantined when it traps, port 7 echoed throughout",
            wasmtime as Scenario,
        ),
        Case::new(
            "wasm-hot-load-tap",
            "Wasm hot loading on two cores over tap (warpctl module push/rm/ls), one boot: the nine example modules (ACL, flow counter, rewriter in Rust, C, AssemblyScript) pushed, checked on the wire and in their counters, removed with the previous path back; a malformed push refused with the reason and nothing changed; a looping module stopped by fuel while port 7 echoes; a trapping one quarantined and rebuilt; loadgen's UDP echo load on port 7 loses nothing meanwhile",
            hot_load as Scenario,
        ),
    ]
}

/// The management spec with udp-echo on 9 too, and the nine example
/// modules and the hostile ones pushed and removed through the management
/// API while loadgen runs.
fn hot_load(binary: &Path) -> Result<()> {
    let examples_folder = crate::commands::wasm_examples::build()?;
    let dir = module_dir()?;
    let outcome = (|| {
        let management = std::fs::read_to_string(test_spec()?).context("reading the spec")?;
        let spec = dir.join("hot-load.toml");
        std::fs::write(&spec, hot_load_spec(&management))?;
        let setup = EchoSetup::with_spec(binary, Link::Tap, 2, &spec.to_string_lossy())?;
        let modules = HotLoadModules {
            examples_folder: &examples_folder,
            examples: &ExampleModule::ALL,
            test_modules: &dir,
        };
        hot_load_checks(
            &setup.attachment.client,
            &setup.attachment.client_ifname,
            &modules,
            2,
        )?;
        // The ACL is gone from the graph, and its counters with it.
        setup.appliance.stop()?;
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

/// The interface and the echo services every spec here starts with.
const BASE: &str = "[[interface]]\nname = \"eth0\"\ndriver = \"virtio\"\nmac = \"02:00:00:00:00:01\"\naddress = \"10.0.0.2/24\"\n\n\
    [[service]]\nkind = \"udp-echo\"\nport = 7\n\n[[service]]\nkind = \"udp-echo\"\nport = 9\n\n";

/// A directory of this run with the test modules compiled to `.wasm`.
pub(crate) fn module_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("warpcore-wasm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    for (name, text) in [
        (
            "acl",
            include_str!("../../../../wasm/host/tests/modules/acl.wat"),
        ),
        (
            "verdicts",
            include_str!("../../../../wasm/host/tests/modules/verdicts.wat"),
        ),
    ] {
        let bytes = wat::parse_str(text).with_context(|| format!("{name}.wat"))?;
        std::fs::write(dir.join(format!("{name}.wasm")), bytes)?;
    }
    std::fs::write(dir.join("garbage.wasm"), b"this is not a module")?;
    Ok(dir)
}

/// Writes `BASE` and `service` as `name.toml` in `dir`.
fn spec(dir: &Path, name: &str, service: &str) -> Result<String> {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, format!("{BASE}{service}"))?;
    Ok(path.to_string_lossy().into_owned())
}

/// The counter of `node` with `labels` (e.g. `("event", "trap")`).
fn node_count(counters: &Counters, node: &str, label: (&str, &str)) -> u64 {
    counters.sum(None, &[("node", node), label])
}

fn wasm(binary: &Path) -> Result<()> {
    let dir = module_dir()?;
    let outcome = acl(binary, &dir)
        .and_then(|()| faults(binary, &dir))
        .and_then(|()| malformed(binary, &dir));
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

/// The wasmtime engine end to end: the ACL (`meter = "epoch"`) and,
/// behind it in the chain, verdicts.wat (fuel; loops on 15, traps on 14),
/// both `engine = "wasmtime"`, on a binary built with the `wasmtime`
/// feature.
fn wasmtime(_default_binary: &Path) -> Result<()> {
    let binary = wasmtime_binary()?;
    let dir = module_dir()?;
    let outcome = (|| {
        let spec = spec(
            &dir,
            "wasmtime",
            "[[service]]\nkind = \"wasm\"\nname = \"acl\"\nmodule = \"acl.wasm\"\nengine = \"wasmtime\"\n\
             meter = \"epoch\"\nattach = \"ipv4:proto:17\"\nconfig = \"9\"\n\n\
             [[service]]\nkind = \"wasm\"\nname = \"judge\"\nmodule = \"verdicts.wasm\"\nengine = \"wasmtime\"\n\
             attach = \"ipv4:proto:17\"\nfuel = 100000\non_fault = \"drop\"\nquarantine_after = 3\nquarantine_window_ms = 60000\n",
        )?;
        let setup = EchoSetup::with_spec(&binary, Link::Tap, 1, &spec)?;
        let client = &setup.attachment.client;
        udp_echo(client, "10.0.0.2", 1, 20)?;
        udp_dropped(client, "10.0.0.2", 9, 3)?;
        udp_dropped(client, "10.0.0.2", 15, 1)?;
        udp_echo(client, "10.0.0.2", 1, 20)?;
        udp_dropped(client, "10.0.0.2", 14, 2)?;
        let counters = setup.appliance.stop()?;
        for (node, label, expected) in [
            ("acl", ("drop", "dropped-by-module"), 3),
            ("acl", ("event", "rule-0"), 3),
            ("judge", ("event", "fuel-exhausted"), 1),
            ("judge", ("event", "trap"), 2),
            ("judge", ("event", "quarantined"), 1),
            ("judge", ("drop", "fault-dropped"), 3),
        ] {
            let count = node_count(&counters, node, label);
            ensure!(
                count == expected,
                "{node}/{} counted {count}, expected {expected}",
                label.1
            );
        }
        let echoed = counters.sum(None, &[("node", "udp-echo"), ("stat", "received")]);
        ensure!(
            echoed >= 40,
            "udp-echo received {echoed}, expected the 40 port-7 datagrams"
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

/// `warpcore-hosted` with the `wasmtime` feature, as
/// `warpcore-hosted-wasmtime` beside the suite's binary, which is built
/// again after it (cargo keeps both builds: the second only copies its
/// binary back).
fn wasmtime_binary() -> Result<PathBuf> {
    let folder = binaries::folder();
    run_step(
        "build warpcore-hosted with wasmtime",
        cargo()
            .args(["build", "--profile", binaries::PROFILE])
            .args(["-p", "warpcore-hosted", "--features"])
            .arg(format!("{},wasmtime", binaries::HOSTED_FEATURES)),
    )?;
    let binary = folder.join("warpcore-hosted-wasmtime");
    std::fs::copy(folder.join("warpcore-hosted"), &binary)
        .context("copying warpcore-hosted-wasmtime")?;
    binaries::build()?;
    Ok(binary)
}

/// The ACL in front of the UDP stage drops port 9, which udp-echo would
/// otherwise answer, and passes port 7.
fn acl(binary: &Path, dir: &Path) -> Result<()> {
    let spec = spec(
        dir,
        "acl",
        "[[service]]\nkind = \"wasm\"\nname = \"acl\"\nmodule = \"acl.wasm\"\nattach = \"ipv4:proto:17\"\nconfig = \"9\"\n",
    )?;
    let setup = EchoSetup::with_spec(binary, Link::Tap, 1, &spec)?;
    let client = &setup.attachment.client;
    udp_echo(client, "10.0.0.2", 1, 20)?;
    udp_dropped(client, "10.0.0.2", 9, 3)?;
    udp_echo(client, "10.0.0.2", 1, 20)?;
    let counters = setup.appliance.stop()?;
    let dropped = node_count(&counters, "acl", ("drop", "dropped-by-module"));
    ensure!(
        dropped == 3,
        "acl/dropped-by-module counted {dropped}, expected 3"
    );
    let rule = node_count(&counters, "acl", ("event", "rule-0"));
    ensure!(rule == 3, "acl's counter rule-0 counted {rule}, expected 3");
    let echoed = counters.sum(None, &[("node", "udp-echo"), ("stat", "received")]);
    ensure!(
        echoed >= 40,
        "udp-echo received {echoed}, expected the 40 port-7 datagrams"
    );
    Ok(())
}

/// verdicts.wat loops on port 15 and traps on port 14: fuel stops the
/// loop and port 7 is echoed meanwhile; the third fault quarantines it
/// (its packets dropped, `on_fault`), and it is rebuilt after 100 ms.
fn faults(binary: &Path, dir: &Path) -> Result<()> {
    let spec = spec(
        dir,
        "faults",
        "[[service]]\nkind = \"wasm\"\nname = \"judge\"\nmodule = \"verdicts.wasm\"\nattach = \"ipv4:proto:17\"\n\
         fuel = 100000\non_fault = \"drop\"\nquarantine_after = 3\nquarantine_window_ms = 60000\n",
    )?;
    let setup = EchoSetup::with_spec(binary, Link::Tap, 1, &spec)?;
    let client = &setup.attachment.client;
    udp_dropped(client, "10.0.0.2", 15, 1)?;
    udp_echo(client, "10.0.0.2", 1, 20)?;
    udp_dropped(client, "10.0.0.2", 14, 2)?;
    let counters = setup.appliance.counters()?;
    for (event, expected) in [("fuel-exhausted", 1), ("trap", 2), ("quarantined", 1)] {
        let count = node_count(&counters, "judge", ("event", event));
        ensure!(
            count == expected,
            "judge/{event} counted {count}, expected {expected}"
        );
    }
    // The backoff is 100 ms; the core rebuilds the module on its tick.
    std::thread::sleep(Duration::from_millis(500));
    udp_echo(client, "10.0.0.2", 1, 20)?;
    let lines = setup.appliance.lines_so_far();
    // Faults and the quarantine are warnings and errors (stderr); the
    // rebuild is info, on the lines the test reads.
    ensure!(
        lines
            .iter()
            .any(|line| line.contains("wasm judge core 0: rebuilt after quarantine")),
        "no rebuild in the log: {lines:?}"
    );
    let counters = setup.appliance.stop()?;
    let restarts = node_count(&counters, "judge", ("event", "restarts"));
    ensure!(
        restarts == 1,
        "judge/restarts counted {restarts}, expected 1"
    );
    let faulted = node_count(&counters, "judge", ("drop", "fault-dropped"));
    ensure!(
        faulted == 3,
        "judge/fault-dropped counted {faulted}, expected the 3 faulting datagrams"
    );
    Ok(())
}

/// A module that is not Wasm: the appliance refuses to start, status 2,
/// naming the service, the module and the engine's reason.
fn malformed(binary: &Path, dir: &Path) -> Result<()> {
    let garbage = spec(
        dir,
        "malformed",
        "[[service]]\nkind = \"wasm\"\nname = \"bad\"\nmodule = \"garbage.wasm\"\n",
    )?;
    let output = Command::new("timeout")
        .args([
            "20",
            &binary.to_string_lossy(),
            "--spec",
            &garbage,
            "--nic",
            "eth0=tap:wcnone",
        ])
        .output()
        .context("running warpcore-hosted")?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        output.status.code() == Some(2),
        "exit status {:?}, expected 2: {said}",
        output.status
    );
    ensure!(
        said.contains("service `bad`: module `garbage.wasm` refused: invalid module"),
        "the refusal does not name the service, module and reason: {said}"
    );
    eprintln!("xtask: [hosted] malformed module refused: {}", said.trim());
    // The suite's binary has no wasmtime: a spec asking for it is refused
    // with the reason (as the appliance refuses it).
    let no_wasmtime = spec(
        dir,
        "no-wasmtime",
        "[[service]]\nkind = \"wasm\"\nname = \"jit\"\nmodule = \"acl.wasm\"\nengine = \"wasmtime\"\n",
    )?;
    let output = Command::new("timeout")
        .args([
            "20",
            &binary.to_string_lossy(),
            "--spec",
            &no_wasmtime,
            "--nic",
            "eth0=tap:wcnone",
        ])
        .output()
        .context("running warpcore-hosted")?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        output.status.code() == Some(2)
            && said.contains(
                "service `jit`: module `acl.wasm` refused: engine `wasmtime` is not in this build"
            ),
        "engine = \"wasmtime\" without the feature: exit status {:?}, expected 2 and the reason: {said}",
        output.status
    );
    Ok(())
}
