//! What `-o table` prints: the status as tables of conditions and cores,
//! an apply plan as a list of changes, a filtered scrape.

use serde_json::Value;
use std::fmt::Write;

/// How a column's cells line up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// Rows under a header, columns two spaces apart, no trailing blanks.
fn table(columns: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(index, (name, _))| {
            rows.iter()
                .map(|row| row.get(index).map_or(0, |cell| cell.chars().count()))
                .chain(std::iter::once(name.len()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let header: Vec<String> = columns.iter().map(|(name, _)| name.to_string()).collect();
    let mut text = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (index, (_, align)) in columns.iter().enumerate() {
            let cell = row.get(index).map_or("", String::as_str);
            let width = widths[index];
            let _ = match align {
                Align::Left => write!(line, "{cell:<width$}  "),
                Align::Right => write!(line, "{cell:>width$}  "),
            };
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// A JSON value as one cell: strings bare, absent as `-`.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// Seconds as `1d 2h 3m 4s`, leading zero units left out.
pub fn duration(seconds: u64) -> String {
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut left = seconds;
    let mut parts = Vec::new();
    for (size, unit) in units {
        let count = left / size;
        left %= size;
        if count > 0 || !parts.is_empty() || size == 1 {
            parts.push(format!("{count}{unit}"));
        }
    }
    parts.join(" ")
}

/// `/api/v1/status` as a summary line, a table of conditions and a
/// table of cores.
pub fn status(status: &Value) -> String {
    let mut text = String::new();
    let _ = write!(
        text,
        "generation {}, observed {}",
        cell(status.get("generation")),
        cell(status.get("observedGeneration"))
    );
    if let Some(seconds) = status.get("uptimeSeconds").and_then(Value::as_u64) {
        let _ = write!(text, ", up {}", duration(seconds));
    }
    text.push_str("\n\n");
    let empty = Vec::new();
    let conditions = status
        .get("conditions")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    if conditions.is_empty() {
        text.push_str("no conditions reported\n");
    } else {
        let rows: Vec<Vec<String>> = conditions
            .iter()
            .map(|condition| {
                ["type", "status", "reason", "message"]
                    .iter()
                    .map(|key| cell(condition.get(key)))
                    .collect()
            })
            .collect();
        text.push_str(&table(
            &[
                ("CONDITION", Align::Left),
                ("STATUS", Align::Left),
                ("REASON", Align::Left),
                ("MESSAGE", Align::Left),
            ],
            &rows,
        ));
    }
    text.push('\n');
    let cores = status
        .get("cores")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    if cores.is_empty() {
        text.push_str("no cores reported\n");
        return text;
    }
    let rows: Vec<Vec<String>> = cores
        .iter()
        .map(|core| {
            let busy = core
                .get("busyShare")
                .and_then(Value::as_f64)
                .map_or_else(|| "-".to_string(), |share| format!("{:.1}%", share * 100.0));
            let services = core.get("services").and_then(Value::as_array).map_or_else(
                || "-".to_string(),
                |names| {
                    names
                        .iter()
                        .map(|name| cell(Some(name)))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            );
            vec![
                cell(core.get("core")),
                cell(core.get("polls")),
                cell(core.get("idlePolls")),
                busy,
                services,
            ]
        })
        .collect();
    text.push_str(&table(
        &[
            ("CORE", Align::Right),
            ("POLLS", Align::Right),
            ("IDLE POLLS", Align::Right),
            ("BUSY", Align::Right),
            ("SERVICES", Align::Left),
        ],
        &rows,
    ));
    text
}

/// One planned change: a string as is, an object as `key=value` pairs.
fn change(change: &Value) -> String {
    match change {
        Value::String(text) => text.clone(),
        Value::Object(fields) => fields
            .iter()
            .map(|(key, value)| format!("{key}={}", cell(Some(value))))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// The plan `PUT /api/v1/spec` answers: what was (or would be) done.
pub fn plan(plan: &Value) -> String {
    let dry_run = plan.get("dryRun").and_then(Value::as_bool).unwrap_or(false);
    let valid = plan.get("valid").and_then(Value::as_bool).unwrap_or(true);
    let generation = cell(plan.get("generation"));
    let empty = Vec::new();
    let changes = plan
        .get("changes")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let mut text = match (dry_run, valid) {
        (_, false) => "the appliance found the spec invalid".to_string(),
        (true, true) => format!("dry run: the spec is valid (generation {generation})"),
        (false, true) => format!("accepted: generation {generation}"),
    };
    match changes.len() {
        0 => text.push_str(", no changes\n"),
        1 => text.push_str(", 1 change:\n"),
        count => {
            let _ = writeln!(text, ", {count} changes:");
        }
    }
    for entry in changes {
        let _ = writeln!(text, "  {}", change(entry));
    }
    text
}

/// The log table's columns: fixed widths, so that the lines `logs -f`
/// adds later line up under the same header.
const LOG_COLUMNS: (usize, usize, usize, usize) = (6, 10, 5, 20);

/// The log table's header line.
pub fn log_header() -> String {
    let (seq, time, level, target) = LOG_COLUMNS;
    format!(
        "{:>seq$}  {:>time$}  {:<level$}  {:<target$}  MESSAGE\n",
        "SEQ", "TIME (s)", "LEVEL", "TARGET"
    )
}

/// One record (`{"seq","timeMs","level","target","message"}`) as a line
/// of the log table; line breaks in its message are shown as `\n`.
pub fn log_line(entry: &Value) -> String {
    let (seq, time, level, target) = LOG_COLUMNS;
    let seconds = entry.get("timeMs").and_then(Value::as_u64).map_or_else(
        || "-".to_string(),
        |ms| format!("{}.{:03}", ms / 1000, ms % 1000),
    );
    let message = cell(entry.get("message"))
        .replace('\r', "\\r")
        .replace('\n', "\\n");
    let line = format!(
        "{:>seq$}  {seconds:>time$}  {:<level$}  {:<target$}  {message}",
        cell(entry.get("seq")),
        cell(entry.get("level")),
        cell(entry.get("target")),
    );
    format!("{}\n", line.trim_end())
}

/// The records of a `/api/v1/logs` answer (newest first, as it sends
/// them) as a table, oldest first; without any, a line saying so unless
/// more are to follow.
pub fn logs(entries: &[Value], following: bool) -> String {
    if entries.is_empty() && !following {
        return "no log records match\n".to_string();
    }
    let mut text = log_header();
    for entry in entries.iter().rev() {
        text.push_str(&log_line(entry));
    }
    text
}

/// The lines of a scrape that contain `pattern` (all of them without one).
pub fn metrics(scrape: &str, pattern: Option<&str>) -> String {
    let mut text = String::new();
    for line in scrape.lines() {
        if pattern.is_none_or(|pattern| line.contains(pattern)) {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
#[path = "output_tests.rs"]
mod tests;
