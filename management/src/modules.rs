//! Hot-loaded Wasm modules (`/api/v1/modules`): the query of a `PUT
//! /api/v1/modules/<name>` turned into a `kind = "wasm"` service table,
//! the spec text with that table put in or taken out, and the list of
//! modules with their state per core.
//!
//! A module's table sits at the end of the spec text between two comment
//! lines (`# module <name> <reference> <bytes> <sha256>` and `# end module
//! <name>`), so the spec served by `GET /api/v1/spec` shows it, a `PUT` of
//! that text keeps it, and a second upload of the name replaces it. The
//! module's bytes travel in memory (`warpcore_wasm::uploads`), named by
//! `module = "upload:<name>:<first 16 hex of sha256>"`.

use crate::json::push_string;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use dataplane::CountersBoard;
use dataplane::stats::CoreCounters;

/// Largest module body: 256 KiB; larger ones are answered 413.
pub const MAX_MODULE_BYTES: usize = 256 * 1024;

/// Query keys copied into the service table as numbers.
const NUMBER_KEYS: [&str; 7] = [
    "window",
    "slots",
    "fuel",
    "memory_pages",
    "map_entries",
    "quarantine_after",
    "quarantine_window_ms",
];

/// A module upload's settings: the service table's lines, checked for
/// shape here (the spec check then checks ranges and the module itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSettings {
    /// The hook point (`attach=`; `ipv4:forward` when absent).
    pub attach: String,
    /// `key = value` lines for the table, in the query's order.
    lines: Vec<String>,
}

/// True for a service name of the spec: `[a-z0-9-]{1,32}`.
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

/// Decodes `%XX` and `+` of a query value; `None` when malformed or not
/// UTF-8.
fn percent_decode(value: &[u8]) -> Option<String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut index = 0;
    while index < value.len() {
        match value[index] {
            b'%' => {
                let hex = value.get(index + 1..index + 3)?;
                let text = core::str::from_utf8(hex).ok()?;
                bytes.push(u8::from_str_radix(text, 16).ok()?);
                index += 3;
            }
            b'+' => {
                bytes.push(b' ');
                index += 1;
            }
            byte => {
                bytes.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(bytes).ok()
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            control if (control as u32) < 0x20 || control as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04X}", control as u32);
            }
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

/// A comma-separated list of numbers as a TOML array, or `None`.
fn number_list(text: &str) -> Option<String> {
    let mut out = String::from("[");
    for (index, item) in text.split(',').enumerate() {
        let item = item.trim();
        if item.is_empty() || !item.bytes().all(|byte| byte.is_ascii_digit()) || item.len() > 6 {
            return None;
        }
        if index > 0 {
            out.push_str(", ");
        }
        out.push_str(item);
    }
    out.push(']');
    Some(out)
}

impl ModuleSettings {
    /// Reads the query of `PUT /api/v1/modules/<name>`: `attach`,
    /// `config`, `cores` (`0,1`), `outputs` (`a,b`), `on_fault` and the
    /// numbers of the wasm kind. A sentence for the 400 otherwise.
    pub fn parse(query: &[u8]) -> Result<Self, String> {
        let mut attach = String::from("ipv4:forward");
        let mut lines = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for pair in query
            .split(|byte| *byte == b'&')
            .filter(|pair| !pair.is_empty())
        {
            let (key, value) = match pair.iter().position(|byte| *byte == b'=') {
                Some(equals) => (&pair[..equals], &pair[equals + 1..]),
                None => (pair, &b""[..]),
            };
            let key = percent_decode(key).ok_or("a query key is not percent-encoded UTF-8")?;
            let value = percent_decode(value)
                .ok_or_else(|| alloc::format!("`{key}` is not percent-encoded UTF-8"))?;
            if seen.contains(&key) {
                return Err(alloc::format!("`{key}` is given twice"));
            }
            seen.push(key.clone());
            match key.as_str() {
                "attach" => {
                    if value.is_empty() {
                        return Err(String::from("`attach` is empty"));
                    }
                    attach = value;
                }
                "config" | "on_fault" => {
                    lines.push(alloc::format!("{key} = {}", toml_string(&value)));
                }
                "cores" => {
                    let list = number_list(&value).ok_or(
                        "`cores` is not a comma-separated list of core numbers, e.g. cores=0,1",
                    )?;
                    lines.push(alloc::format!("cores = {list}"));
                }
                "outputs" => {
                    let mut list = String::from("[");
                    for (index, output) in value.split(',').enumerate() {
                        if index > 0 {
                            list.push_str(", ");
                        }
                        list.push_str(&toml_string(output.trim()));
                    }
                    list.push(']');
                    lines.push(alloc::format!("outputs = {list}"));
                }
                "dryRun" => {}
                number if NUMBER_KEYS.contains(&number) => {
                    if value.is_empty()
                        || value.len() > 20
                        || !value.bytes().all(|byte| byte.is_ascii_digit())
                    {
                        return Err(alloc::format!("`{key}` is not a whole number: `{value}`"));
                    }
                    lines.push(alloc::format!("{key} = {value}"));
                }
                _ => {
                    return Err(alloc::format!(
                        "unknown parameter `{key}` (attach, config, cores, outputs, on_fault, {})",
                        NUMBER_KEYS.join(", ")
                    ));
                }
            }
        }
        Ok(Self { attach, lines })
    }
}

/// The reference a spec uses for module `name` with SHA-256 `digest`.
pub fn reference(name: &str, digest: &[u8; 32]) -> String {
    let mut out = alloc::format!("{}{name}:", warpcore_wasm::uploads::UPLOAD_PREFIX);
    for byte in &digest[..8] {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The spec text's table for module `name`, between its marker lines.
pub fn block(
    name: &str,
    reference: &str,
    size: usize,
    digest: &[u8; 32],
    settings: &ModuleSettings,
) -> String {
    let mut out = alloc::format!("# module {name} {reference} {size} ");
    for byte in digest {
        let _ = write!(out, "{byte:02x}");
    }
    out.push_str(" (hot loaded: PUT/DELETE /api/v1/modules/");
    out.push_str(name);
    out.push_str(")\n[[service]]\nkind = \"wasm\"\n");
    let _ = writeln!(out, "name = {}", toml_string(name));
    let _ = writeln!(out, "module = {}", toml_string(reference));
    let _ = writeln!(out, "attach = {}", toml_string(&settings.attach));
    for line in &settings.lines {
        out.push_str(line);
        out.push('\n');
    }
    let _ = writeln!(out, "# end module {name}");
    out
}

/// `text` with `block` added at the end (on a line of its own).
pub fn with_block(text: &str, block: &str) -> String {
    let mut out = String::with_capacity(text.len() + block.len() + 1);
    out.push_str(text);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(block);
    out
}

/// `text` without module `name`'s table, or `None` when it has none.
pub fn without_block(text: &str, name: &str) -> Option<String> {
    let start_marker = alloc::format!("# module {name} ");
    let end_marker = alloc::format!("# end module {name}");
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    let mut found = false;
    for line in text.split_inclusive('\n') {
        if !inside && line.starts_with(&start_marker) {
            inside = true;
            found = true;
            continue;
        }
        if inside {
            if line.trim_end() == end_marker {
                inside = false;
            }
            continue;
        }
        out.push_str(line);
    }
    found.then_some(out)
}

/// A hot-loaded module, as its marker line in the spec text says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The service's name.
    pub name: String,
    /// `upload:<name>:<hash>`.
    pub reference: String,
    /// Bytes of the module.
    pub size: usize,
    /// SHA-256 of the module, in hexadecimal.
    pub sha256: String,
    /// The hook point (the table's `attach`).
    pub attach: String,
}

/// The modules of `text` (from their marker lines).
pub fn listed(text: &str) -> Vec<Listed> {
    let mut modules = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("# module ") else {
            continue;
        };
        let mut words = rest.split(' ');
        let (Some(name), Some(reference), Some(size), Some(sha256)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        let Ok(size) = size.parse() else { continue };
        let mut attach = String::new();
        for line in lines.by_ref() {
            if let Some(value) = line.strip_prefix("attach = ") {
                attach = String::from(value.trim_matches('"'));
            }
            if line.starts_with("# end module ") {
                break;
            }
        }
        modules.push(Listed {
            name: String::from(name),
            reference: String::from(reference),
            size,
            sha256: String::from(sha256),
            attach,
        });
    }
    modules
}

/// Per core: whether the module's node runs there, its faults, the times
/// it was quarantined and rebuilt, and what it dropped.
fn push_core_state(out: &mut String, core: usize, counters: &CoreCounters, name: &str) {
    let loaded = counters.nodes.iter().any(|node| node.name == name);
    let faults = counters.node_events(name, "fuel-exhausted")
        + counters.node_events(name, "trap")
        + counters.node_events(name, "bad-descriptor");
    let quarantined = counters.node_events(name, "quarantined");
    let restarts = counters.node_events(name, "restarts");
    let state = if !loaded {
        "absent"
    } else if quarantined > restarts {
        "quarantined"
    } else {
        "running"
    };
    let _ = write!(
        out,
        "{{\"core\":{core},\"state\":\"{state}\",\"faults\":{faults},\"quarantined\":{quarantined},\"restarts\":{restarts},\"droppedByModule\":{},\"faultDropped\":{}}}",
        counters.node_drops(name, "dropped-by-module"),
        counters.node_drops(name, "fault-dropped"),
    );
}

/// `GET /api/v1/modules`: `{"generation":G,"observedGeneration":O,
/// "modules":[{"name","size","sha256","module","attach","cores":[...]}]}`.
pub fn render(out: &mut String, text: &str, board: &CountersBoard, generation: u64, observed: u64) {
    let _ = write!(
        out,
        "{{\"generation\":{generation},\"observedGeneration\":{observed},\"modules\":["
    );
    for (index, module) in listed(text).iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        push_string(out, &module.name);
        let _ = write!(out, ",\"size\":{},\"sha256\":", module.size);
        push_string(out, &module.sha256);
        out.push_str(",\"module\":");
        push_string(out, &module.reference);
        out.push_str(",\"attach\":");
        push_string(out, &module.attach);
        out.push_str(",\"cores\":[");
        for (position, (core, counters)) in board.cores().enumerate() {
            if position > 0 {
                out.push(',');
            }
            push_core_state(out, core, &counters, &module.name);
        }
        out.push_str("]}");
    }
    out.push_str("]}");
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: [u8; 32] = [0xab; 32];

    #[test]
    fn query_becomes_table_lines() {
        let settings = ModuleSettings::parse(
            b"attach=ipv4:proto:17&config=9+19&cores=0,1&fuel=5000&on_fault=pass",
        )
        .unwrap();
        assert_eq!(settings.attach, "ipv4:proto:17");
        let text = block("acl", "upload:acl:abababababababab", 10, &DIGEST, &settings);
        assert!(text.contains("\nconfig = \"9 19\"\n"), "{text}");
        assert!(text.contains("\ncores = [0, 1]\n"), "{text}");
        assert!(text.contains("\nfuel = 5000\n"), "{text}");
        assert!(text.contains("\non_fault = \"pass\"\n"), "{text}");
        assert!(text.contains("\nattach = \"ipv4:proto:17\"\n"), "{text}");
    }

    #[test]
    fn bad_queries_say_why() {
        let unknown = ModuleSettings::parse(b"colour=red").unwrap_err();
        assert!(unknown.contains("unknown parameter `colour`"), "{unknown}");
        let twice = ModuleSettings::parse(b"fuel=1&fuel=2").unwrap_err();
        assert!(twice.contains("twice"), "{twice}");
        let number = ModuleSettings::parse(b"fuel=-1").unwrap_err();
        assert!(number.contains("whole number"), "{number}");
        let cores = ModuleSettings::parse(b"cores=a").unwrap_err();
        assert!(cores.contains("cores"), "{cores}");
        assert!(ModuleSettings::parse(b"config=%zz").is_err());
    }

    #[test]
    fn quotes_cannot_escape_the_string() {
        let settings = ModuleSettings::parse(b"config=%22%0A%5Bmanagement%5D").unwrap();
        let text = block("acl", "upload:acl:ab", 1, &DIGEST, &settings);
        assert!(
            text.contains("config = \"\\\"\\n[management]\"\n"),
            "{text}"
        );
    }

    #[test]
    fn blocks_go_in_come_out_and_are_listed() {
        let base = "[management]\nlisten = \"10.0.0.2:8080\"";
        let settings = ModuleSettings::parse(b"attach=udp:9").unwrap();
        let first = block(
            "acl",
            "upload:acl:abababababababab",
            321,
            &DIGEST,
            &settings,
        );
        let text = with_block(base, &first);
        let second = block("counter", "upload:counter:ab", 7, &DIGEST, &settings);
        let text = with_block(&text, &second);
        let modules = listed(&text);
        assert_eq!(modules.len(), 2);
        assert_eq!(modules[0].name, "acl");
        assert_eq!(modules[0].size, 321);
        assert_eq!(modules[0].attach, "udp:9");
        assert_eq!(modules[0].sha256.len(), 64);
        let without = without_block(&text, "acl").unwrap();
        assert_eq!(listed(&without).len(), 1);
        assert!(without.starts_with(base), "{without}");
        assert!(!without.contains("upload:acl"), "{without}");
        assert!(without_block(&without, "acl").is_none());
        // A name that is a prefix of another's is not confused with it.
        assert!(without_block(&text, "coun").is_none());
    }

    #[test]
    fn names_are_the_specs() {
        assert!(valid_name("acl-1"));
        assert!(!valid_name(""));
        assert!(!valid_name("ACL"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(&"a".repeat(33)));
    }
}
