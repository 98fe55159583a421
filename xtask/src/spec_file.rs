//! Everything xtask reads from or writes into spec files, in one place: the
//! examples, temporary variants of them, and each interface's MAC and
//! address (read by grepping lines, until xtask uses the real spec parser).

use crate::shell::host::workspace_root;
use anyhow::{Context, Result, ensure};
use std::path::{Path, PathBuf};

/// What xtask needs to know about one `[[interface]]` of a spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecInterface {
    /// Its `mac`, as written (`02:00:00:00:00:01`).
    pub mac: String,
    /// Its `address` in CIDR form (`10.0.0.2/24`), when it has one.
    pub address: Option<String>,
}

/// `examples/NAME` in the workspace.
pub fn example(name: &str) -> PathBuf {
    workspace_root().join("examples").join(name)
}

/// The interfaces of the spec file at `path`, in order.
pub fn interfaces(path: &Path) -> Result<Vec<SpecInterface>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    Ok(interfaces_in(&text))
}

/// The interfaces of spec `text`: the n-th `mac = "..."` line with the n-th
/// `address = "..."` line.
fn interfaces_in(text: &str) -> Vec<SpecInterface> {
    let values = |wanted: &str| -> Vec<String> {
        text.lines()
            .filter_map(|line| {
                let (key, value) = line.split_once('=')?;
                (key.trim() == wanted).then(|| value.trim().trim_matches('"').to_owned())
            })
            .collect()
    };
    let mut addresses = values("address").into_iter();
    values("mac")
        .into_iter()
        .map(|mac| SpecInterface {
            mac,
            address: addresses.next(),
        })
        .collect()
}

/// `text` (a spec whose interfaces say `queues = 1`) with `queues` queue
/// pairs per interface.
pub fn with_queues(text: &str, queues: u32) -> Result<String> {
    ensure!(
        text.contains("queues = 1"),
        "the spec has no `queues = 1` line to change"
    );
    Ok(text.replace("queues = 1", &format!("queues = {queues}")))
}

/// Writes `text` to a spec file unique to this process and `name`.
pub fn temporary(name: &str, text: &str) -> Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("warpcore-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_pair_macs_with_addresses() {
        let found = interfaces_in(
            "[[interface]]\nmac = \"02:00:00:00:01:01\"\naddress = \"10.0.1.1/24\"\n\
             [[interface]]\n mac=\"aa\"\n",
        );
        assert_eq!(
            found,
            [
                SpecInterface {
                    mac: "02:00:00:00:01:01".into(),
                    address: Some("10.0.1.1/24".into())
                },
                SpecInterface {
                    mac: "aa".into(),
                    address: None
                }
            ]
        );
    }

    #[test]
    fn the_examples_read_and_take_more_queues() {
        let echo = interfaces(&example("echo.toml")).unwrap();
        assert_eq!(echo.len(), 1);
        assert_eq!(echo[0].address.as_deref(), Some("10.0.0.2/24"));
        assert_eq!(interfaces(&example("router.toml")).unwrap().len(), 2);
        let text = std::fs::read_to_string(example("echo.toml")).unwrap();
        assert!(with_queues(&text, 2).unwrap().contains("queues = 2"));
        assert!(with_queues("queues = 3", 2).is_err());
    }
}
