//! The campaign report: `report.html` in a campaign's directory, from its
//! `campaign.json` and each run's `results.json`. It answers the study's
//! question at a glance: the claims (held or not, the losing configuration
//! and its control side by side), then the matrix of cells with settings,
//! faults, expected, observed (anomalies as shares of what was
//! acknowledged), verdict, time to detection, availability, and a link to
//! every run's own report.

use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use faultline_checker::summary::percent;
use serde::Serialize;
use serde_json::Value;

/// The campaign summary a campaign directory holds.
pub const CAMPAIGN_FILE: &str = "campaign.json";

#[derive(Serialize)]
struct Page {
    name: String,
    description: String,
    exit_code: i64,
    verdict_class: &'static str,
    counts: Vec<(String, usize)>,
    claims: Vec<ClaimView>,
    cells: Vec<CellRow>,
    version: &'static str,
    style: &'static str,
}

#[derive(Serialize)]
struct ClaimView {
    id: String,
    text: String,
    held: String,
    held_class: &'static str,
    cells: Vec<CellRow>,
}

#[derive(Serialize, Clone)]
struct CellRow {
    name: String,
    about: String,
    settings: String,
    faults: String,
    expected: String,
    observed: Vec<String>,
    verdict: String,
    verdict_class: &'static str,
    reasons: Vec<String>,
    detection: String,
    availability: Vec<String>,
    runs: Vec<RunLink>,
}

#[derive(Serialize, Clone)]
struct RunLink {
    seed: String,
    valid: String,
    /// The run's report, relative to the page; `None` when it has none.
    href: Option<String>,
}

/// Renders the report of campaign directory `dir` into `out`.
pub fn write(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let path = dir.join(CAMPAIGN_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let summary: Value = serde_json::from_str(&text)
        .map_err(|e| faultline_checker::Error::BadFile { path: path.clone(), message: e.to_string() })?;
    let base = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let store = dir.ancestors().nth(3).unwrap_or(Path::new(".")).to_path_buf();
    let cells: Vec<CellRow> = summary["cells"]
        .as_array()
        .map(|cs| cs.iter().map(|c| cell_row(c, &store, base)).collect())
        .unwrap_or_default();
    let page = Page {
        name: text_of(&summary["campaign"]),
        description: text_of(&summary["description"]),
        exit_code: summary["exit_code"].as_i64().unwrap_or(-1),
        verdict_class: match summary["exit_code"].as_i64() {
            Some(0) => "valid",
            Some(1) => "invalid",
            _ => "unknown",
        },
        counts: counts(&cells),
        claims: claims(&summary, &cells),
        cells,
        version: env!("CARGO_PKG_VERSION"),
        style: include_str!("templates/style.css"),
    };
    let mut env = minijinja::Environment::new();
    env.add_template("campaign.html", include_str!("templates/campaign.html"))?;
    let html = env.get_template("campaign.html")?.render(&page)?;
    std::fs::write(out, html).with_context(|| format!("writing {}", out.display()))
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn verdict_class(label: &str) -> &'static str {
    match label {
        "ok" => "valid",
        "MISMATCH" | "ERROR" => "invalid",
        _ => "unknown",
    }
}

fn counts(cells: &[CellRow]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for c in cells {
        match out.iter_mut().find(|(v, _)| *v == c.verdict) {
            Some((_, n)) => *n += 1,
            None => out.push((c.verdict.clone(), 1)),
        }
    }
    out
}

fn claims(summary: &Value, cells: &[CellRow]) -> Vec<ClaimView> {
    let Some(list) = summary["claims"].as_array() else { return Vec::new() };
    list.iter()
        .map(|c| {
            let names: Vec<String> = c["cells"].as_array().map(|a| a.iter().map(text_of).collect()).unwrap_or_default();
            let held = text_of(&c["held"]);
            ClaimView {
                id: text_of(&c["id"]),
                text: text_of(&c["text"]),
                held_class: match held.as_str() {
                    "held" | "held where run" => "held",
                    "did not hold" => "not-held",
                    _ => "unknown",
                },
                held,
                cells: names.iter().filter_map(|n| cells.iter().find(|r| &r.name == n).cloned()).collect(),
            }
        })
        .collect()
}

fn cell_row(c: &Value, store: &Path, base: &Path) -> CellRow {
    let runs = c["runs"].as_array().cloned().unwrap_or_default();
    let run_dirs: Vec<Option<PathBuf>> = runs.iter().map(|r| run_dir(&r["store"], store)).collect();
    // The run that decided the cell is its last one.
    let last = run_dirs.iter().rev().flatten().next().and_then(|d| read_results(d));
    let verdict = text_of(&c["verdict"]);
    let detection = match (&c["detection"]["seed_number"], &c["detection"]["time_s"]) {
        (Value::Number(n), Value::Number(t)) => {
            format!("seed {n} of {}, {:.1} s in", c["detection"]["seeds"], t.as_f64().unwrap_or(0.0))
        }
        (Value::Number(n), _) => format!("seed {n} of {}", c["detection"]["seeds"]),
        _ => String::new(),
    };
    CellRow {
        name: text_of(&c["name"]),
        about: text_of(&c["about"]),
        settings: text_of(&c["settings"]),
        faults: text_of(&c["faults"]),
        expected: text_of(&c["expected"]),
        observed: last.as_ref().map(observed).unwrap_or_default(),
        verdict_class: verdict_class(&verdict),
        verdict,
        reasons: c["reasons"].as_array().map(|a| a.iter().map(text_of).collect()).unwrap_or_default(),
        detection,
        availability: last.as_ref().map(availability).unwrap_or_default(),
        runs: runs
            .iter()
            .zip(&run_dirs)
            .map(|(r, d)| RunLink {
                seed: text_of(&r["seed"]),
                valid: match &r["valid"] {
                    Value::Bool(true) => "valid".to_owned(),
                    Value::Bool(false) => "invalid".to_owned(),
                    other => text_of(other),
                },
                href: d.as_ref().map(|d| d.join(super::REPORT_FILE)).filter(|p| p.exists()).map(|p| relative(base, &p)),
            })
            .collect(),
    }
}

/// A run's directory as the campaign recorded it: as written, or under
/// this campaign's store (the store moved, or the path was relative to
/// another working directory).
fn run_dir(recorded: &Value, store: &Path) -> Option<PathBuf> {
    let p = PathBuf::from(recorded.as_str()?);
    if p.join(faultline_checker::HISTORY_FILE).exists() {
        return Some(p);
    }
    let tail: Vec<_> = p.components().rev().take(2).collect();
    let moved = tail.into_iter().rev().fold(store.to_path_buf(), |acc, c| acc.join(c));
    moved.join(faultline_checker::HISTORY_FILE).exists().then_some(moved)
}

fn read_results(dir: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(dir.join(faultline_checker::RESULTS_FILE)).ok()?).ok()
}

/// "lost-write 1481 (45.0% of acknowledged, permitted)", per type.
fn observed(r: &Value) -> Vec<String> {
    let Some(anomalies) = r["anomalies"].as_object() else { return Vec::new() };
    let parts = r["stats"]["partitions"].as_object();
    let sum = |key: &str| parts.map_or(0, |ps| ps.values().map(|p| p[key].as_u64().unwrap_or(0)).sum::<u64>());
    let acked = sum("acknowledged");
    anomalies
        .iter()
        .map(|(kind, t)| {
            let count = t["count"].as_u64().unwrap_or(0);
            let of = match kind.as_str() {
                "lost-write" => Some(sum("lost")),
                "duplicate" => Some(sum("duplicated")),
                _ => None,
            };
            let share = match of {
                Some(n) if acked > 0 => format!("{} of acknowledged, ", percent(n as f64 / acked as f64)),
                _ => String::new(),
            };
            format!("{kind} {count} ({share}{})", text_of(&t["status"]))
        })
        .collect()
}

/// Unavailability, send rate and latency, from `results.json`'s availability.
fn availability(r: &Value) -> Vec<String> {
    let a = &r["availability"];
    let mut out = Vec::new();
    if let Some(s) = a["ops"]["send"].as_object() {
        out.push(format!(
            "sends ok {} fail {} info {}",
            s["ok"].as_u64().unwrap_or(0),
            s["fail"].as_u64().unwrap_or(0),
            s["info"].as_u64().unwrap_or(0)
        ));
    }
    if let Some(p99) = a["latency"]["send"]["p99_ms"].as_f64() {
        out.push(format!("send p99 {p99:.1} ms"));
    }
    if let Some(u) = a["unavailable_s"].as_f64() {
        out.push(format!("unavailable {u:.1} s"));
    }
    out
}

/// `to` relative to directory `from`, with `/` separators, for a link.
fn relative(from: &Path, to: &Path) -> String {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (from, to) = (abs(from), abs(to));
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let ups = std::iter::repeat_n("..".to_owned(), f.len() - common);
    let downs = t[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned());
    ups.chain(downs).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_links_climb_then_descend() {
        let r = relative(Path::new("/s/campaigns/c/20260101"), Path::new("/s/c-cell/20260101/report.html"));
        assert_eq!(r, "../../../c-cell/20260101/report.html");
        assert_eq!(relative(Path::new("/a"), Path::new("/a/b.html")), "b.html");
    }

    #[test]
    fn observed_gives_shares_of_what_was_acknowledged() {
        let r = serde_json::json!({
            "anomalies": {
                "lost-write": {"count": 45, "status": "permitted"},
                "unseen": {"count": 2, "status": "violation"}
            },
            "stats": {"partitions": {"t/0": {"acknowledged": 60, "lost": 45}, "t/1": {"acknowledged": 40, "lost": 0}}}
        });
        assert_eq!(observed(&r), ["lost-write 45 (45% of acknowledged, permitted)", "unseen 2 (violation)"]);
    }
}
