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

/// `kill,partition/3s`, `timeline:acks1-leader-kill bug:x`, or `none`.
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

/// The widest line the table prints, so that it reads in a 120-column
/// terminal and in CI logs without wrapping.
pub const WIDTH: usize = 120;

/// Indentation of a cell's detail lines (settings, faults, expected, observed).
const DETAIL_INDENT: usize = 4;

/// The table and the notes under it; `defaults` (the campaign's
/// `[defaults]`) are said once above the table, and a cell shows only the
/// settings that differ from them. Each cell is one short row (name,
/// verdict, detection, time and, when it fits, faults) followed by indented
/// detail lines, so that no line is wider than [`WIDTH`].
pub fn render(campaign: &str, defaults: &BTreeMap<String, toml::Value>, results: &[CellResult]) -> String {
    let mut out = format!("Campaign {campaign}: {}\n", count(results.len(), "cell"));
    let faultless: BTreeMap<String, toml::Value> = defaults
        .iter()
        .filter(|(k, _)| !FAULT_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !faultless.is_empty() {
        let text = settings_text(&faultless, &BTreeSet::new());
        out.push_str(&wrap("Settings of every cell unless it says otherwise: ", "  ", &text));
    }
    out.push_str(&rows(results));
    let count = |v: Verdict| results.iter().filter(|r| r.verdict == v).count();
    let total: f64 = results.iter().map(|r| r.elapsed.as_secs_f64()).sum();
    out.push_str(&format!(
        "{} ok, {} mismatch, {} unknown, {} error, {} not run; {:.0} s in all.\n\
         * = a violation under the run's settings; other anomalies are permitted by them.\n",
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
            out.push_str(&wrap("  ", "    ", reason));
        }
        if let Some(run) = r.shown() {
            if let Some(dir) = &run.dir {
                out.push_str(&format!("  store: {}\n", dir.display()));
            }
            out.push_str(&shell_wrap("  reproduce: ", &run.reproduce));
        }
    }
    out
}

/// The header, then per cell its row and its detail lines.
fn rows(results: &[CellResult]) -> String {
    let header = ["cell", "verdict", "detected", "time", "faults"];
    let main: Vec<[String; 5]> = results
        .iter()
        .map(|r| {
            let time = format!("{:.0} s", r.elapsed.as_secs_f64());
            [r.cell.name.clone(), r.verdict.label().to_string(), detection_text(r), time, faults_text(r)]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &main {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    // Faults stay in the row only when every row still fits.
    let faults_in_row = widths.iter().sum::<usize>() + 2 * (widths.len() - 1) <= WIDTH;
    let columns = if faults_in_row { 5 } else { 4 };
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> = cells[..columns].iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let text = parts.join("  ").trim_end().to_string();
        // Only a name wider than a line needs wrapping; padding must survive.
        if text.len() <= WIDTH { text + "\n" } else { wrap("", "  ", &text) }
    };
    let mut out = line(&header.map(String::from));
    out.push_str(&line(&widths.map(|w| "-".repeat(w))));
    for (r, row) in results.iter().zip(&main) {
        out.push_str(&line(row));
        let mut details = vec![("settings", settings_text(&r.cell.settings, &r.cell.from_defaults))];
        if !faults_in_row {
            details.push(("faults", row[4].clone()));
        }
        details.push(("expected", r.cell.expect.describe()));
        details.push(("observed", observed_text(r)));
        for (label, text) in details {
            let first = format!("{:DETAIL_INDENT$}{label:<9} ", "");
            out.push_str(&wrap(&first, &" ".repeat(first.len()), &text));
        }
    }
    out
}

/// `text` after `first`, broken at spaces (and inside words longer than a
/// line) into lines of at most [`WIDTH`] columns, continued after `rest`.
pub fn wrap(first: &str, rest: &str, text: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !empty && line.len() + 1 + word.len() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        let mut word = word;
        while line.len() + word.len() > WIDTH && line.len() < WIDTH {
            let (head, tail) = word.split_at(floor_char_boundary(word, WIDTH - line.len()));
            if head.is_empty() {
                break;
            }
            out.push_str(&line);
            out.push_str(head);
            out.push('\n');
            line = rest.to_string();
            word = tail;
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// The largest index at most `i` that starts a character of `s`.
fn floor_char_boundary(s: &str, i: usize) -> usize {
    (0..=i.min(s.len())).rev().find(|&j| s.is_char_boundary(j)).unwrap_or(0)
}

/// A shell command after `first`, broken between its words into lines of at
/// most [`WIDTH`] columns that end in ` \\`, so that it still pastes.
fn shell_wrap(first: &str, command: &str) -> String {
    let mut lines = vec![first.to_string()];
    for (i, word) in shell_words(command).into_iter().enumerate() {
        let last = lines.last_mut().expect("one line at least");
        if i > 0 && last.len() + 1 + word.len() + 2 > WIDTH {
            last.push_str(" \\");
            lines.push(format!("{:DETAIL_INDENT$}{word}", ""));
        } else {
            if i > 0 {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines.join("\n") + "\n"
}

/// The words of a command quoted as `reproduce_command` quotes them: split
/// at spaces outside single quotes, a backslash escaping the next character.
fn shell_words(command: &str) -> Vec<&str> {
    let (mut words, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in command.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if !quoted => escaped = true,
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                words.push(&command[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    words.push(&command[start..]);
    words.retain(|w| !w.is_empty());
    words
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
        assert_eq!(lines[1], "Settings of every cell unless it says otherwise: rate=300");
        assert!(lines[2].starts_with("cell") && lines[2].contains("verdict") && lines[2].ends_with("faults"), "{text}");
        let a = block(&text, "acks1-zombie");
        for part in ["ok", "4.5 s, seed 1/3", "33 s", "leader-from-followers/4s"] {
            assert!(a[0].contains(part), "{part} in {}", a[0]);
        }
        assert_eq!(
            a[1..],
            ["    settings  acks=1 rf=3", "    expected  +lost-write", "    observed  valid lost-write=12"]
        );
        let b = block(&text, "acks-all");
        assert!(b[0].contains("MISMATCH") && b[0].ends_with("none"), "{}", b[0]);
        assert_eq!(b[1..], ["    settings  defaults", "    expected  valid", "    observed  INVALID lost-write=2*"]);
        assert!(text.contains("1 ok, 1 mismatch, 0 unknown, 0 error, 0 not run"), "{text}");
        assert!(text.contains("MISMATCH acks-all:\n  seed 42: expected the run valid"), "{text}");
        assert!(text.contains("reproduce: faultline run --seed 42"), "{text}");
    }

    /// A cell's row and the detail lines under it.
    fn block<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        let mut lines = text.lines().skip_while(|l| !l.starts_with(name));
        let row = lines.next().unwrap_or_else(|| panic!("no row for {name} in {text}"));
        std::iter::once(row).chain(lines.take_while(|l| l.starts_with("    "))).collect()
    }

    /// Long settings, fault lists, expectations and reproduce commands are
    /// wrapped: no line is wider than `WIDTH`, and the reproduce command
    /// still reads back as the same words.
    #[test]
    fn every_line_fits_in_120_columns() {
        let expect = Expectation::from_parts(Some("valid"), &["lost-write".into(), "duplicate".into()], &[], &[], &[]);
        let mut c = cell("a-cell-with-a-rather-long-name-for-a-campaign-cell", expect.unwrap(), 1);
        for i in 0..30 {
            c.settings.insert(format!("setting-number-{i}"), toml::Value::Integer(i));
        }
        let faults = ["kill", "partition", "pause", "clock-skew", "kill-producer", "kill-consumer", "mute-leader"];
        let faults = faults.iter().map(|f| toml::Value::String(f.to_string())).collect();
        c.settings.insert("nemesis".into(), toml::Value::Array(faults));
        let mut miss = run(9, Some(Met::No(vec!["because ".repeat(40)])));
        miss.reproduce = format!("faultline run --seed 9 {} --name 'a b' --store /tmp/x", "--rate 300 ".repeat(20));
        miss.observation = Some(observed(&[("lost-write", 2, Status::Violation)], Validity::Invalid));
        let r = conclude(c, vec![miss.clone()], Duration::from_secs(20));
        let defaults = (0..40).map(|i| (format!("default-{i}"), toml::Value::Integer(i))).collect();
        let text = render("wide", &defaults, &[r]);
        for line in text.lines() {
            assert!(line.len() <= WIDTH, "{} columns: {line}", line.len());
        }
        assert!(block(&text, "a-cell-with").iter().any(|l| l.starts_with("    faults    kill,partition")), "{text}");
        let start = text.find("reproduce: ").unwrap() + "reproduce: ".len();
        let pasted = text[start..].lines().map(|l| l.trim().trim_end_matches('\\').trim()).collect::<Vec<_>>();
        let pasted = pasted.join(" ");
        assert_eq!(shell_words(&pasted), shell_words(&miss.reproduce));
        assert!(shell_words(&miss.reproduce).contains(&"'a b'"));
    }
}
