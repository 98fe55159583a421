//! Runs one parsed command against the appliance and writes what it
//! prints; every failure comes back as a `CommandError`.

use crate::api::{Api, ApiError, LogEvent, LogQuery};
use crate::capture::{self, CaptureError, CaptureQuery};
use crate::cli::{ApplyArguments, CaptureArguments, Cli, Command, LogsArguments, Output, Resource};
use crate::http::Client;
use crate::output;
use std::fmt;
use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

/// How long a followed log stream may be silent before `logs -f` gives
/// up: three of the appliance's 15 s keep-alives.
pub const FOLLOW_IDLE: Duration = Duration::from_secs(45);

/// Why a command failed.
#[derive(Debug)]
pub enum CommandError {
    /// The spec file could not be read.
    ReadSpec {
        /// The file.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// The appliance call failed.
    Api(ApiError),
    /// The appliance answered 200 with `"valid": false`.
    InvalidPlan {
        /// The plan as printed.
        plan: String,
    },
    /// Writing the output failed.
    Write(io::Error),
    /// The capture's file could not be made.
    CreateOutput {
        /// The file.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// A pcap would have gone to a terminal.
    Terminal,
    /// The capture failed part way.
    Capture(CaptureError),
    /// `apply --wait`: the controller rolled the generation back.
    RolledBack {
        /// The `Degraded` condition's message.
        message: String,
    },
    /// `apply --wait`: the generation was not observed in time.
    WaitTimedOut {
        /// The generation waited for.
        generation: u64,
        /// How long.
        seconds: u64,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::ReadSpec { path, error } => {
                write!(formatter, "cannot read {}: {error}", path.display())
            }
            CommandError::Api(error) => write!(formatter, "{error}"),
            CommandError::InvalidPlan { plan } => {
                write!(
                    formatter,
                    "the appliance found the spec invalid: {}",
                    plan.trim()
                )
            }
            CommandError::Write(error) => write!(formatter, "cannot write the output: {error}"),
            CommandError::CreateOutput { path, error } => {
                write!(formatter, "cannot create {}: {error}", path.display())
            }
            CommandError::Terminal => formatter.write_str(
                "refusing to write pcap to a terminal: give -w FILE, or pipe it (-w - | tshark -r -)",
            ),
            CommandError::Capture(error) => write!(formatter, "{error}"),
            CommandError::RolledBack { message } => {
                write!(formatter, "the change was not applied: {message}")
            }
            CommandError::WaitTimedOut {
                generation,
                seconds,
            } => write!(
                formatter,
                "generation {generation} was not observed within {seconds} s (see `warpctl status`)"
            ),
        }
    }
}

impl std::error::Error for CommandError {}

impl From<ApiError> for CommandError {
    fn from(error: ApiError) -> CommandError {
        CommandError::Api(error)
    }
}

impl From<io::Error> for CommandError {
    fn from(error: io::Error) -> CommandError {
        CommandError::Write(error)
    }
}

/// Runs `cli`'s command, printing to stdout and stderr. A reader that
/// closes stdout early (`warpctl metrics | head`) is not an error.
pub fn run(cli: &Cli) -> Result<(), CommandError> {
    if let Command::Capture(arguments) = &cli.command
        && arguments.file.as_os_str() == "-"
        && io::stdout().is_terminal()
    {
        return Err(CommandError::Terminal);
    }
    let result = run_with(cli, &mut io::stdout().lock(), &mut io::stderr().lock());
    match result {
        Err(CommandError::Write(error)) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Runs `cli`'s command, printing to `out` and, for notes beside the
/// output, `notes`.
pub fn run_with(cli: &Cli, out: &mut dyn Write, notes: &mut dyn Write) -> Result<(), CommandError> {
    let connection = &cli.connection;
    let client = Client::new(
        connection.server.clone(),
        Duration::from_secs(connection.timeout),
    );
    let api = Api::new(client, connection.token.clone());
    match &cli.command {
        Command::Status => {
            let status = api.status()?;
            match cli.output {
                Output::Json => write_json(out, &status.text)?,
                Output::Table => out.write_all(output::status(&status.value).as_bytes())?,
            }
        }
        Command::Get {
            resource: Resource::Spec,
        } => {
            let spec = api.spec()?;
            match cli.output {
                Output::Json => {
                    let document = serde_json::json!({
                        "generation": spec.generation,
                        "etag": spec.etag,
                        "spec": spec.text,
                    });
                    writeln!(out, "{document}")?;
                }
                Output::Table => {
                    out.write_all(spec.text.as_bytes())?;
                    writeln!(
                        notes,
                        "# generation {}, ETag {}",
                        spec.generation
                            .map_or_else(|| "unknown".to_string(), |value| value.to_string()),
                        spec.etag.as_deref().unwrap_or("none"),
                    )?;
                }
            }
        }
        Command::Apply(arguments) => apply(&api, arguments, cli.output, out)?,
        Command::Logs(arguments) => logs(&api, arguments, cli.output, out, notes, FOLLOW_IDLE)?,
        Command::Capture(arguments) => capture(&api, arguments, cli.output, out, notes)?,
        Command::Module { action } => {
            crate::module_commands::run(&api, action, cli.output, out)?;
        }
        Command::Metrics { grep } => {
            let scrape = api.metrics()?;
            out.write_all(output::metrics(&scrape, grep.as_deref()).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `warpctl apply`: reads the spec, sends it, prints the plan.
fn apply(
    api: &Api,
    arguments: &ApplyArguments,
    format: Output,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let path = &arguments.file;
    let read_error = |error| CommandError::ReadSpec {
        path: path.clone(),
        error,
    };
    let (spec, source) = if path.as_os_str() == "-" {
        let mut spec = Vec::new();
        io::stdin().read_to_end(&mut spec).map_err(read_error)?;
        (spec, "stdin".to_string())
    } else {
        (
            std::fs::read(path).map_err(read_error)?,
            path.display().to_string(),
        )
    };
    let plan = api.apply(
        &spec,
        &source,
        arguments.dry_run,
        arguments.if_match.as_deref(),
    )?;
    let printed = match format {
        Output::Json => format!("{}\n", plan.text.trim_end()),
        Output::Table => output::plan(&plan.value),
    };
    if plan.value.get("valid").and_then(serde_json::Value::as_bool) == Some(false) {
        return Err(CommandError::InvalidPlan { plan: plan.text });
    }
    out.write_all(printed.as_bytes())?;
    if arguments.wait
        && let Some(generation) = plan
            .value
            .get("generation")
            .and_then(serde_json::Value::as_u64)
    {
        out.flush()?;
        wait_observed(api, generation, Duration::from_secs(arguments.timeout))?;
        if format == Output::Table {
            writeln!(out, "observed: generation {generation} runs on every core")?;
        }
    }
    Ok(())
}

/// Polls the status until `observedGeneration` reaches `generation`,
/// for at most `timeout`; an error if the generation was rolled back
/// (its `Degraded` condition true).
pub(crate) fn wait_observed(
    api: &Api,
    generation: u64,
    timeout: Duration,
) -> Result<(), CommandError> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let status = api.status()?.value;
        let observed = status
            .get("observedGeneration")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if observed >= generation {
            let degraded = status
                .get("conditions")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .find(|condition| {
                    condition.get("type").and_then(serde_json::Value::as_str) == Some("Degraded")
                        && condition.get("status").and_then(serde_json::Value::as_str)
                            == Some("True")
                        && condition
                            .get("observedGeneration")
                            .and_then(serde_json::Value::as_u64)
                            == Some(generation)
                });
            return match degraded {
                Some(condition) => Err(CommandError::RolledBack {
                    message: condition
                        .get("message")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("no reason given")
                        .to_string(),
                }),
                None => Ok(()),
            };
        }
        if std::time::Instant::now() >= deadline {
            return Err(CommandError::WaitTimedOut {
                generation,
                seconds: timeout.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `warpctl logs`: the search, oldest of the found records first; with
/// `-f`, then each record as the stream brings it (one JSON object a line
/// with `-o json`), until the stream fails (or Ctrl-C). A silence of
/// `idle` on the stream is a failure.
pub fn logs(
    api: &Api,
    arguments: &LogsArguments,
    format: Output,
    out: &mut dyn Write,
    notes: &mut dyn Write,
    idle: Duration,
) -> Result<(), CommandError> {
    let mut query = LogQuery {
        text: arguments.text.clone(),
        level: arguments.level.map(|level| level.as_str().to_string()),
        limit: arguments.limit,
        since: None,
    };
    let found = api.logs(&query)?;
    let not_json = |reason: &str| ApiError::NotJson {
        path: "/api/v1/logs".to_string(),
        reason: reason.to_string(),
    };
    let entries = found
        .value
        .get("entries")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| not_json("no `entries` array"))?;
    match (format, arguments.follow) {
        (Output::Json, false) => write_json(out, &found.text)?,
        (Output::Json, true) => {
            for entry in entries.iter().rev() {
                writeln!(out, "{entry}")?;
            }
        }
        (Output::Table, following) => {
            out.write_all(output::logs(entries, following).as_bytes())?;
        }
    }
    if !arguments.follow {
        return Ok(());
    }
    out.flush()?;
    query.since = Some(
        found
            .value
            .get("next")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| not_json("no `next` sequence number"))?,
    );
    let mut stream = api.follow_logs(&query, idle)?;
    // Each turn waits for the appliance's next event, at most `idle`.
    loop {
        match stream.next_event()? {
            LogEvent::Record(record) => {
                match format {
                    Output::Json => writeln!(out, "{}", record.text.trim())?,
                    Output::Table => out.write_all(output::log_line(&record.value).as_bytes())?,
                }
                out.flush()?;
            }
            LogEvent::Lost { message, .. } => {
                writeln!(notes, "warpctl: {message}")?;
                notes.flush()?;
            }
        }
    }
}

/// `warpctl capture`: the pcap to the file (or `out` for `-`), a line
/// on `notes` once the appliance armed the capture, and the summary
/// there at the end (a JSON object with `-o json`).
fn capture(
    api: &Api,
    arguments: &CaptureArguments,
    format: Output,
    out: &mut dyn Write,
    notes: &mut dyn Write,
) -> Result<(), CommandError> {
    let query = CaptureQuery {
        interface: arguments.interface.clone(),
        count: arguments.count,
        seconds: arguments.seconds,
        snaplen: arguments.snaplen,
    };
    let mut file;
    let sink: &mut dyn Write = if arguments.file.as_os_str() == "-" {
        out
    } else {
        file =
            std::fs::File::create(&arguments.file).map_err(|error| CommandError::CreateOutput {
                path: arguments.file.clone(),
                error,
            })?;
        &mut file
    };
    let interface = &arguments.interface;
    let mut started = || {
        if format == Output::Table {
            writeln!(notes, "warpctl: capturing on {interface}")?;
            notes.flush()?;
        }
        Ok(())
    };
    let summary =
        capture::capture(api, &query, sink, &mut started).map_err(CommandError::Capture)?;
    match format {
        Output::Json => writeln!(
            notes,
            "{}",
            serde_json::json!({
                "interface": interface,
                "frames": summary.frames,
                "dropped": summary.dropped,
                "end": summary.end,
            })
        )?,
        Output::Table => writeln!(notes, "warpctl: {summary} on {interface}")?,
    }
    Ok(())
}

/// The server's JSON as sent, ending in one newline.
fn write_json(out: &mut dyn Write, text: &str) -> io::Result<()> {
    writeln!(out, "{}", text.trim_end())
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
