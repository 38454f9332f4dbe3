//! The campaign's table, the first thing a user reads: one row per cell
//! with its settings, faults, expectation, what was observed, the verdict,
//! time to detection (hunting cells) and wall time; then, for every cell
//! that did not meet its expectation, why, and the command that reproduces
//! its deciding run.

use std::collections::{BTreeMap, BTreeSet};

use faultline_checker::Validity;
use faultline_checker::verdict::Status;

use super::outcome::{CellResult, Verdict};

/// Settings shown in the faults column rather than the settings column.
const FAULT_KEYS: &[&str] = &["nemesis", "nemesis-interval", "nemesis-timeline", "bugs", "admin-hooks"];

/// Short names for wide setting keys.
const SHORT: &[(&str, &str)] = &[
    ("replication-factor", "rf"),
    ("min-insync-replicas", "min-isr"),
    ("unclean-leader-election", "unclean"),
    ("idempotence", "idem"),
    ("topic-partitions", "partitions"),
    ("producer-mode", "mode"),
    ("time-limit", "t"),
    ("auto-commit-interval-ms", "auto-commit-ms"),
    ("on-sink-error", "on-sink-err"),
];

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// `acks=1 rf=3 min-isr=2 t=20`, leaving out keys in `skip`.
pub fn settings_text(settings: &BTreeMap<String, toml::Value>, skip: &BTreeSet<String>) -> String {
    let parts: Vec<String> = settings
        .iter()
        .filter(|(k, _)| !FAULT_KEYS.contains(&k.as_str()) && !skip.contains(*k))
        .map(|(k, v)| {
            let k = SHORT.iter().find(|(long, _)| long == k).map_or(k.as_str(), |(_, s)| s);
            format!("{k}={}", value_text(v))
        })
        .collect();
    if parts.is_empty() { "defaults".into() } else { parts.join(" ") }
}

/// `kill,partition/3s`, `timeline:leader-kills bug:x`, or `none`.
pub fn faults_text(r: &CellResult) -> String {
    let s = &r.cell.settings;
    let mut parts = Vec::new();
    let stem =
        r.cell.timeline.as_ref().map(|t| {
            std::path::Path::new(&t.label).file_stem().and_then(|x| x.to_str()).unwrap_or(&t.label).to_string()
        });
    let bugs = s.get("bugs").map(value_text).unwrap_or_default();
    for b in bugs.split(',').filter(|b| !b.is_empty()) {
        // A bug's own recipe is the usual timeline: say so once.
        let recipe = if stem.as_deref() == Some(b) { "+recipe" } else { "" };
        parts.push(format!("bug:{b}{recipe}"));
    }
    if let Some(v) = s.get("nemesis") {
        let every = s.get("nemesis-interval").map(|i| format!("/{}s", value_text(i))).unwrap_or_default();
        parts.push(format!("{}{every}", value_text(v)));
    }
    if let Some(stem) = stem.filter(|st| !bugs.split(',').any(|b| b == st)) {
        parts.push(format!("timeline:{stem}"));
    }
    if parts.is_empty() { "none".into() } else { parts.join(" ") }
}

/// `INVALID lost-write=12* unseen=3`, `valid none`, or why there is nothing.
pub fn observed_text(r: &CellResult) -> String {
    let Some(run) = r.shown() else { return "-".into() };
    let Some(o) = &run.observation else {
        return match run.code {
            254 => "bad arguments".into(),
            _ if run.error.as_deref().is_some_and(|e| e.contains("interrupted") || e.contains("terminated")) => {
                "interrupted".into()
            }
            _ => "harness error".into(),
        };
    };
    let verdict = match o.validity {
        Validity::Valid => "valid",
        Validity::Invalid => "INVALID",
        Validity::Unknown => "unknown",
    };
    let mut parts = vec![verdict.to_string()];
    parts.extend(
        o.anomalies.iter().map(|(k, (n, s))| format!("{k}={n}{}", if *s == Status::Violation { "*" } else { "" })),
    );
    parts.extend(o.errors.iter().map(|(k, n)| format!("{k}={n}")));
    if parts.len() == 1 {
        parts.push("none".into());
    }
    parts.join(" ")
}

fn detection_text(r: &CellResult) -> String {
    match (&r.detection, r.cell.expect.hunts()) {
        (Some(d), _) => {
            let t = d.time_s.map_or("?".to_string(), |t| format!("{t:.1} s"));
            format!("{t}, seed {}/{}", d.seed_number, d.seeds)
        }
        (None, true) if matches!(r.verdict, Verdict::Mismatch | Verdict::Unknown) => {
            format!("not in {} seed{}", r.runs.len(), if r.runs.len() == 1 { "" } else { "s" })
        }
        _ => "-".into(),
    }
}

/// The table and the notes under it; `defaults` (the campaign's
/// `[defaults]`) are said once above the table, and a row shows only the
/// settings that differ from them.
pub fn render(campaign: &str, defaults: &BTreeMap<String, toml::Value>, results: &[CellResult]) -> String {
    let header = ["cell", "settings", "faults", "expected", "observed", "verdict", "detected", "time"];
    let rows: Vec<[String; 8]> = results
        .iter()
        .map(|r| {
            [
                r.cell.name.clone(),
                settings_text(&r.cell.settings, &r.cell.from_defaults),
                faults_text(r),
                r.cell.expect.describe(),
                observed_text(r),
                r.verdict.label().to_string(),
                detection_text(r),
                format!("{:.0} s", r.elapsed.as_secs_f64()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(&format!("{c:>w$}"));
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = format!("Campaign {campaign}: {}\n", count(results.len(), "cell"));
    let faultless: BTreeMap<String, toml::Value> = defaults
        .iter()
        .filter(|(k, _)| !FAULT_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !faultless.is_empty() {
        out.push_str(&format!(
            "Settings of every cell unless its row says otherwise: {}\n",
            settings_text(&faultless, &BTreeSet::new())
        ));
    }
    out.push_str(&line(&header.map(String::from)));
    out.push_str(&line(&widths.map(|w| "-".repeat(w))));
    for row in &rows {
        out.push_str(&line(row));
    }
    let count = |v: Verdict| results.iter().filter(|r| r.verdict == v).count();
    let total: f64 = results.iter().map(|r| r.elapsed.as_secs_f64()).sum();
    out.push_str(&format!(
        "{} ok, {} mismatch, {} unknown, {} error, {} not run; {:.0} s in all. \
         (* = a violation under the run's settings; other anomalies are permitted by them)\n",
        count(Verdict::Met),
        count(Verdict::Mismatch),
        count(Verdict::Unknown),
        count(Verdict::Error),
        count(Verdict::NotRun),
        total
    ));
    for r in results.iter().filter(|r| !matches!(r.verdict, Verdict::Met | Verdict::NotRun)) {
        out.push_str(&format!("\n{} {}:\n", r.verdict.label(), r.cell.name));
        if let Some(about) = &r.cell.about {
            out.push_str(&format!("  about: {about}\n"));
        }
        for reason in &r.reasons {
            out.push_str(&format!("  {reason}\n"));
        }
        if let Some(run) = r.shown() {
            if let Some(dir) = &run.dir {
                out.push_str(&format!("  store: {}\n", dir.display()));
            }
            out.push_str(&format!("  reproduce: {}\n", run.reproduce));
        }
    }
    out
}

/// `1 cell`, `2 cells`.
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::campaign::expect::{Expectation, Met, Observation};
    use crate::campaign::outcome::conclude;
    use crate::campaign::outcome::tests::{cell, run};

    fn observed(anomalies: &[(&str, u64, Status)], validity: Validity) -> Observation {
        Observation {
            validity,
            unknown_reasons: vec![],
            anomalies: anomalies.iter().map(|(k, n, s)| (k.to_string(), (*n, *s))).collect(),
            errors: Default::default(),
        }
    }

    #[test]
    fn the_table_has_one_row_per_cell_and_explains_misses() {
        let mut a =
            cell("acks1-zombie", Expectation::from_parts(None, &["lost-write".into()], &[], &[], &[]).unwrap(), 3);
        a.settings.insert("acks".into(), toml::Value::Integer(1));
        a.settings.insert("replication-factor".into(), toml::Value::Integer(3));
        a.settings
            .insert("nemesis".into(), toml::Value::Array(vec![toml::Value::String("leader-from-followers".into())]));
        a.settings.insert("nemesis-interval".into(), toml::Value::Integer(4));
        let mut hit = run(7, Some(Met::Yes));
        hit.observation = Some(observed(&[("lost-write", 12, Status::Permitted)], Validity::Valid));
        let ra = conclude(a, vec![hit], Duration::from_secs(33));
        let b = cell("acks-all", Expectation::from_parts(Some("valid"), &[], &[], &[], &[]).unwrap(), 1);
        let mut miss = run(42, Some(Met::No(vec!["expected the run valid, it was invalid (lost-write 2)".into()])));
        miss.observation = Some(observed(&[("lost-write", 2, Status::Violation)], Validity::Invalid));
        let rb = conclude(b, vec![miss], Duration::from_secs(20));
        let defaults = BTreeMap::from([("rate".to_string(), toml::Value::Integer(300))]);
        let text = render("demo", &defaults, &[ra, rb]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "Settings of every cell unless its row says otherwise: rate=300");
        assert!(lines[2].starts_with("cell") && lines[2].contains("observed") && lines[2].ends_with("time"), "{text}");
        let row_a = lines.iter().find(|l| l.starts_with("acks1-zombie")).unwrap();
        for part in [
            "acks=1 rf=3",
            "leader-from-followers/4s",
            "+lost-write",
            "valid lost-write=12",
            "ok",
            "4.5 s, seed 1/3",
            "33 s",
        ] {
            assert!(row_a.contains(part), "{part} in {row_a}");
        }
        let row_b = lines.iter().find(|l| l.starts_with("acks-all")).unwrap();
        for part in ["defaults", "none", "valid", "INVALID lost-write=2*", "MISMATCH"] {
            assert!(row_b.contains(part), "{part} in {row_b}");
        }
        assert!(text.contains("1 ok, 1 mismatch, 0 unknown, 0 error, 0 not run"), "{text}");
        assert!(text.contains("MISMATCH acks-all:\n  seed 42: expected the run valid"), "{text}");
        assert!(text.contains("reproduce: faultline run --seed 42"), "{text}");
    }
}
