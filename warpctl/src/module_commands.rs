//! `warpctl module push | rm | ls`: hot-loaded WebAssembly services
//! through `/api/v1/modules`.

use crate::api::{Api, percent_encode};
use crate::cli::{ModuleAction, Output, PushArguments};
use crate::commands::{CommandError, wait_observed};
use serde_json::Value;
use std::io::{self, Read, Write};
use std::time::Duration;

/// Runs one `module` action.
pub(crate) fn run(
    api: &Api,
    action: &ModuleAction,
    format: Output,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    match action {
        ModuleAction::Push(arguments) => push(api, arguments, format, out),
        ModuleAction::Rm {
            name,
            wait,
            wait_timeout,
        } => {
            let answer = api.remove_module(name)?;
            let generation = generation(&answer.value);
            finish(
                api,
                format,
                out,
                &answer.text,
                generation,
                *wait,
                *wait_timeout,
                || {
                    format!(
                        "removed: module {name}, generation {}",
                        generation.unwrap_or(0)
                    )
                },
            )
        }
        ModuleAction::Ls => {
            let listing = api.modules()?;
            match format {
                Output::Json => writeln!(out, "{}", listing.text.trim_end())?,
                Output::Table => out.write_all(table(&listing.value).as_bytes())?,
            }
            Ok(())
        }
    }
}

/// The query of a push: `attach`, `config`, `cores`, then each `--set`.
pub(crate) fn push_query(arguments: &PushArguments) -> Result<String, CommandError> {
    let mut pairs = vec![format!("attach={}", percent_encode(&arguments.attach))];
    if let Some(config) = &arguments.config {
        pairs.push(format!("config={}", percent_encode(config)));
    }
    if let Some(cores) = &arguments.cores {
        pairs.push(format!("cores={}", percent_encode(cores)));
    }
    for setting in &arguments.settings {
        let Some((key, value)) = setting.split_once('=') else {
            return Err(CommandError::Api(crate::api::ApiError::BadRequest {
                message: format!("--set {setting}: expected KEY=VALUE"),
            }));
        };
        pairs.push(format!("{}={}", percent_encode(key), percent_encode(value)));
    }
    Ok(pairs.join("&"))
}

/// `module push`: reads the file, uploads it, prints the generation.
fn push(
    api: &Api,
    arguments: &PushArguments,
    format: Output,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let path = &arguments.file;
    let read_error = |error| CommandError::ReadSpec {
        path: path.clone(),
        error,
    };
    let module = if path.as_os_str() == "-" {
        let mut module = Vec::new();
        io::stdin().read_to_end(&mut module).map_err(read_error)?;
        module
    } else {
        std::fs::read(path).map_err(read_error)?
    };
    let query = push_query(arguments)?;
    let answer = api.push_module(&arguments.name, &query, &module)?;
    let generation = generation(&answer.value);
    let name = &arguments.name;
    finish(
        api,
        format,
        out,
        &answer.text,
        generation,
        arguments.wait,
        arguments.wait_timeout,
        || {
            format!(
                "accepted: module {name} ({} bytes) at {}, generation {}",
                module.len(),
                arguments.attach,
                generation.unwrap_or(0)
            )
        },
    )
}

/// The generation of a 202 answer.
fn generation(answer: &Value) -> Option<u64> {
    answer.get("generation").and_then(Value::as_u64)
}

/// Prints the answer, then waits for the generation when asked.
#[allow(clippy::too_many_arguments)]
fn finish(
    api: &Api,
    format: Output,
    out: &mut dyn Write,
    text: &str,
    generation: Option<u64>,
    wait: bool,
    wait_timeout: u64,
    line: impl Fn() -> String,
) -> Result<(), CommandError> {
    match format {
        Output::Json => writeln!(out, "{}", text.trim_end())?,
        Output::Table => writeln!(out, "{}", line())?,
    }
    if wait && let Some(generation) = generation {
        out.flush()?;
        wait_observed(api, generation, Duration::from_secs(wait_timeout))?;
        if format == Output::Table {
            writeln!(out, "observed: generation {generation} runs on every core")?;
        }
    }
    Ok(())
}

/// `module ls` as a table: a line per module, its state per core.
pub(crate) fn table(listing: &Value) -> String {
    let modules = listing
        .get("modules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if modules.is_empty() {
        return String::from("no hot-loaded modules\n");
    }
    let mut text = String::from("NAME          SIZE  SHA256            ATTACH           CORES\n");
    for module in &modules {
        let string = |key: &str| module.get(key).and_then(Value::as_str).unwrap_or("");
        let sha = string("sha256");
        let cores: Vec<String> = module
            .get("cores")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|core| {
                let number = core.get("core").and_then(Value::as_u64).unwrap_or(0);
                let state = core.get("state").and_then(Value::as_str).unwrap_or("?");
                let faults = core.get("faults").and_then(Value::as_u64).unwrap_or(0);
                let dropped = core
                    .get("droppedByModule")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                format!("{number}:{state} (faults {faults}, dropped {dropped})")
            })
            .collect();
        text.push_str(&format!(
            "{:<12} {:>5}  {:<16}  {:<15}  {}\n",
            string("name"),
            module.get("size").and_then(Value::as_u64).unwrap_or(0),
            &sha[..sha.len().min(16)],
            string("attach"),
            cores.join(", ")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn push_arguments(args: &str) -> PushArguments {
        let cli =
            Cli::try_parse_from(std::iter::once("warpctl").chain(args.split_whitespace())).unwrap();
        match cli.command {
            Command::Module {
                action: ModuleAction::Push(arguments),
            } => arguments,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn push_builds_its_query() {
        let arguments = push_arguments(
            "module push acl.wasm --name acl --attach ipv4:proto:17 --config 9,19 --cores 0,1 --set fuel=5000 --wait",
        );
        assert!(arguments.wait);
        assert_eq!(
            push_query(&arguments).unwrap(),
            format!(
                "attach={}&config={}&cores={}&fuel=5000",
                percent_encode("ipv4:proto:17"),
                percent_encode("9,19"),
                percent_encode("0,1")
            )
        );
        let bad = push_arguments("module push a.wasm --name a --attach udp:9 --set fuel");
        assert!(
            push_query(&bad)
                .unwrap_err()
                .to_string()
                .contains("KEY=VALUE")
        );
    }

    #[test]
    fn module_needs_name_and_attach() {
        let missing = Cli::try_parse_from(["warpctl", "module", "push", "a.wasm", "--name", "a"]);
        assert!(missing.is_err());
    }

    #[test]
    fn ls_prints_a_table() {
        let listing: Value = serde_json::from_str(
            r#"{"generation":2,"observedGeneration":2,"modules":[{"name":"acl","size":412,"sha256":"00112233445566778899","module":"upload:acl:0011223344556677","attach":"ipv4:proto:17","cores":[{"core":0,"state":"running","faults":0,"quarantined":0,"restarts":0,"droppedByModule":3,"faultDropped":0}]}]}"#,
        )
        .unwrap();
        let text = table(&listing);
        assert!(text.contains("acl"), "{text}");
        assert!(text.contains("0:running (faults 0, dropped 3)"), "{text}");
        assert!(text.contains("0011223344556677 "), "{text}");
        let empty: Value = serde_json::from_str(r#"{"modules":[]}"#).unwrap();
        assert_eq!(table(&empty), "no hot-loaded modules\n");
    }
}
