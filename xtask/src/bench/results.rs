//! The report's timestamp and the latest-report section of
//! `perf/RESULTS.md`.

use crate::shell::host::workspace_root;
use anyhow::{Context, Result};
use std::path::Path;

/// The current UTC time as `2026-11-22T00:21:09Z`.
pub fn utc_now() -> String {
    perf::report::utc_timestamp(std::time::SystemTime::now())
}

const BEGIN: &str = "<!-- latest bench report: begin -->";
const END: &str = "<!-- latest bench report: end -->";

/// Replaces the latest-report section of `perf/RESULTS.md` with `summary`.
pub fn update_results_md(path: &Path, summary: &str, dir: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let relative = dir.strip_prefix(workspace_root()).unwrap_or(dir);
    let body = summary
        .replacen(
            "# warpcore benchmark report",
            "## Latest `cargo xtask bench` report",
            1,
        )
        .replace("\n## ", "\n### ");
    let section = format!(
        "{BEGIN}\n{body}\nFull report (JSON, CSV, SVG plots): `{}`.\n{END}",
        relative.display()
    );
    let updated = match (text.find(BEGIN), text.find(END)) {
        (Some(begin), Some(end)) if end > begin => {
            format!("{}{section}{}", &text[..begin], &text[end + END.len()..])
        }
        _ => format!("{text}\n{section}\n"),
    };
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_are_civil() {
        assert!(utc_now().starts_with("20"));
        assert_eq!(utc_now().len(), 20);
    }

    #[test]
    fn results_md_section_is_replaced_not_appended() {
        let path = std::env::temp_dir().join(format!("xtask-results-{}.md", std::process::id()));
        std::fs::write(&path, "# results\n\nkeep me\n").unwrap();
        let dir = workspace_root().join("perf/reports/x");
        update_results_md(
            &path,
            "# warpcore benchmark report\n\n## udp\nfirst\n",
            &dir,
        )
        .unwrap();
        update_results_md(
            &path,
            "# warpcore benchmark report\n\n## udp\nsecond\n",
            &dir,
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(text.contains("keep me"));
        assert!(
            text.contains("### udp\nsecond") && !text.contains("first"),
            "{text}"
        );
        assert_eq!(text.matches(BEGIN).count(), 1);
        assert!(text.contains("`perf/reports/x`"));
    }
}
