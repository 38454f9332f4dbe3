//! The store's index: every run (`<store>/<name>/<timestamp>/`) and every
//! campaign (`<store>/campaigns/<name>/<timestamp>/`), newest first, with
//! its verdict, filterable by name and verdict.

use std::path::Path;

use serde::Serialize;

use super::paths::link;

/// Entries listed at most, newest first: the page stays small.
pub const ENTRIES_MAX: usize = 2_000;
/// Bytes of `results.json` read for its verdict: `valid` comes first.
const VERDICT_PREFIX_BYTES: usize = 4_096;

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// `run` or `campaign`.
    pub kind: &'static str,
    pub name: String,
    pub stamp: String,
    /// `valid`, `invalid`, `unknown` or `no results` for runs; `ok`,
    /// `mismatch`, `undecided`, `error` or `no results` for campaigns.
    pub verdict: String,
    /// The CSS class of the verdict's colour.
    pub class: &'static str,
    /// The directory, as a link path under `/files/`.
    pub dir: String,
    pub has_report: bool,
}

/// Every run and campaign of the store, newest first.
pub fn scan(store: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    for (name, dir) in subdirs(store) {
        match name.as_str() {
            "clusters" | "reports" => {}
            "campaigns" => {
                for (cname, cdir) in subdirs(&dir) {
                    for (stamp, d) in subdirs(&cdir) {
                        if d.join("campaign.json").exists() {
                            out.push(campaign(store, &cname, stamp, &d));
                        }
                    }
                }
            }
            _ => {
                for (stamp, d) in subdirs(&dir) {
                    if d.join(faultline_checker::HISTORY_FILE).exists() || d.join(faultline_checker::TEST_FILE).exists()
                    {
                        out.push(run(store, &name, stamp, &d));
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| b.stamp.cmp(&a.stamp).then_with(|| a.name.cmp(&b.name)));
    out.truncate(ENTRIES_MAX);
    out
}

/// The real subdirectories of `dir` (no symlinks such as `latest`, no
/// dot-directories), by name.
fn subdirs(dir: &Path) -> Vec<(String, std::path::PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    rd.flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .filter(|(n, _)| !n.starts_with('.'))
        .collect()
}

fn run(store: &Path, name: &str, stamp: String, dir: &Path) -> Entry {
    let verdict = run_verdict(dir);
    let class = match verdict.as_str() {
        "valid" => "valid",
        "invalid" => "invalid",
        _ => "unknown",
    };
    Entry {
        kind: "run",
        name: name.to_owned(),
        stamp,
        verdict,
        class,
        dir: link(store, dir),
        has_report: dir.join(crate::report::REPORT_FILE).exists(),
    }
}

/// `results.json`'s `valid`, from the start of the file.
fn run_verdict(dir: &Path) -> String {
    use std::io::Read;
    let Ok(f) = std::fs::File::open(dir.join(faultline_checker::RESULTS_FILE)) else { return "no results".into() };
    let mut bytes = Vec::new();
    let _ = f.take(VERDICT_PREFIX_BYTES as u64).read_to_end(&mut bytes);
    // The cut may split a character: decode what is whole.
    let head = String::from_utf8_lossy(&bytes);
    let value = head.split_once("\"valid\":").map(|(_, rest)| rest.trim_start());
    match value {
        Some(v) if v.starts_with("true") => "valid".into(),
        Some(v) if v.starts_with("false") => "invalid".into(),
        Some(v) if v.starts_with("\"unknown\"") => "unknown".into(),
        _ => "no results".into(),
    }
}

fn campaign(store: &Path, name: &str, stamp: String, dir: &Path) -> Entry {
    let code = std::fs::read_to_string(dir.join("campaign.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["exit_code"].as_i64());
    let (verdict, class) = match code {
        Some(0) => ("ok", "valid"),
        Some(1) => ("mismatch", "invalid"),
        Some(2) => ("undecided", "unknown"),
        Some(_) => ("error", "invalid"),
        None => ("no results", "unknown"),
    };
    Entry {
        kind: "campaign",
        name: name.to_owned(),
        stamp,
        verdict: verdict.to_owned(),
        class,
        dir: link(store, dir),
        has_report: dir.join(crate::report::REPORT_FILE).exists(),
    }
}

/// The entries a filter keeps: `name` as a substring, `verdict` exactly.
pub fn filter(entries: Vec<Entry>, name: Option<&str>, verdict: Option<&str>) -> Vec<Entry> {
    entries
        .into_iter()
        .filter(|e| name.is_none_or(|n| n.is_empty() || e.name.contains(n)))
        .filter(|e| verdict.is_none_or(|v| v.is_empty() || e.verdict == v))
        .collect()
}
