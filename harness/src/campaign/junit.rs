//! JUnit XML for CI: one `<testsuite>` per campaign and one `<testcase>`
//! per cell. A cell that missed its expectation is a `<failure>` whose
//! message is the observed anomalies and whose text adds the reasons and
//! the reproduce command; an undecided cell is a `<failure type="unknown">`
//! (it is not a pass); a harness failure is an `<error>`; a cell the
//! campaign was interrupted before is `<skipped>`. The layout is the
//! common subset that Jenkins, GitLab and GitHub test reporters read.

use std::fmt::Write;

use super::outcome::{CellResult, Verdict};
use super::table::{faults_text, observed_text, settings_text};

/// XML text: the five entities escaped, and characters XML 1.0 forbids
/// (controls other than tab and newlines) dropped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The document. `timestamp` is ISO 8601 (`2026-11-26T08:15:50`).
pub fn render(campaign: &str, timestamp: &str, results: &[CellResult]) -> String {
    let cases: Vec<Case> = results
        .iter()
        .map(|r| Case { xml: testcase(campaign, r), verdict: r.verdict, elapsed_s: r.elapsed.as_secs_f64() })
        .collect();
    assemble(campaign, timestamp, &cases)
}

/// One `<testcase>` element, rendered, with what the suite's counts need.
pub struct Case {
    pub xml: String,
    pub verdict: Verdict,
    pub elapsed_s: f64,
}

/// The document around rendered test cases (a merge of shards joins the
/// shards' cases with this).
pub fn assemble(campaign: &str, timestamp: &str, cases: &[Case]) -> String {
    let count = |f: &dyn Fn(Verdict) -> bool| cases.iter().filter(|c| f(c.verdict)).count();
    let failures = count(&|v| matches!(v, Verdict::Mismatch | Verdict::Unknown));
    let errors = count(&|v| v == Verdict::Error);
    let skipped = count(&|v| v == Verdict::NotRun);
    let time: f64 = cases.iter().map(|c| c.elapsed_s).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let n = cases.len();
    let _ = writeln!(
        x,
        "<testsuites name=\"faultline campaign\" tests=\"{n}\" failures=\"{failures}\" errors=\"{errors}\" \
         skipped=\"{skipped}\" time=\"{time:.3}\">"
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{failures}\" errors=\"{errors}\" \
         skipped=\"{skipped}\" time=\"{time:.3}\" timestamp=\"{}\">",
        esc(campaign),
        esc(timestamp)
    );
    for c in cases {
        x.push_str(&c.xml);
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// The `<testcase>` element of one cell, from `    <testcase` to
/// `    </testcase>` and its newline.
fn testcase(campaign: &str, r: &CellResult) -> String {
    let mut x = String::new();
    let _ = write!(
        x,
        "    <testcase name=\"{}\" classname=\"faultline.campaign.{}\" time=\"{:.3}\"",
        esc(&r.cell.name),
        esc(campaign),
        r.elapsed.as_secs_f64()
    );
    let observed = format!("observed: {}", observed_text(r));
    let mut body = format!("expected: {}\n{observed}\n", r.cell.expect.describe());
    for reason in &r.reasons {
        body.push_str(&format!("{reason}\n"));
    }
    if let Some(run) = r.shown() {
        if let Some(dir) = &run.dir {
            body.push_str(&format!("store: {}\n", dir.display()));
        }
        body.push_str(&format!("reproduce: {}\n", run.reproduce));
    }
    let element = match r.verdict {
        Verdict::Met => None,
        Verdict::Mismatch => Some(("failure", "mismatch")),
        Verdict::Unknown => Some(("failure", "unknown")),
        Verdict::Error => Some(("error", "harness")),
        Verdict::NotRun => Some(("skipped", "interrupted")),
    };
    let reproduce = r.shown().map(|run| format!("; reproduce: {}", run.reproduce)).unwrap_or_default();
    x.push_str(">\n");
    if let Some((tag, kind)) = element {
        let message = if tag == "skipped" { r.reasons.join("; ") } else { format!("{observed}{reproduce}") };
        let _ = writeln!(x, "      <{tag} type=\"{kind}\" message=\"{}\">{}</{tag}>", esc(&message), esc(&body));
    }
    let about = r.cell.about.as_deref().map(|a| format!("about: {a}\n")).unwrap_or_default();
    let out = format!(
        "{about}settings: {}\nfaults: {}\n{body}",
        settings_text(&r.cell.settings, &Default::default()),
        faults_text(r)
    );
    let _ = writeln!(x, "      <system-out>{}</system-out>", esc(&out));
    x.push_str("    </testcase>\n");
    x
}

/// `20261126T081550Z` (the store's stamp) as `2026-11-26T08:15:50`.
pub fn iso_timestamp(stamp: &str) -> String {
    let b = stamp.as_bytes();
    if b.len() < 15 || !stamp.is_ascii() {
        return stamp.to_string();
    }
    format!(
        "{}-{}-{}T{}:{}:{}",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::campaign::expect::{Expectation, Met};
    use crate::campaign::outcome::tests::{cell, run};
    use crate::campaign::outcome::{CellResult, conclude};

    #[test]
    fn the_junit_document_parses_back_with_one_testcase_per_cell() {
        let valid = || Expectation::from_parts(Some("valid"), &[], &[], &[], &[]).unwrap();
        let mut ok = cell("fine", valid(), 1);
        ok.about = Some("claim <5> & \"quotes\"".into());
        let ok = conclude(ok, vec![run(1, Some(Met::Yes))], Duration::from_millis(1500));
        let miss = conclude(
            cell("miss", valid(), 1),
            vec![run(2, Some(Met::No(vec!["expected the run valid, it was invalid".into()])))],
            Duration::from_secs(3),
        );
        let unknown = conclude(
            cell("undecided", valid(), 1),
            vec![run(3, Some(Met::Unknown(vec!["?".into()])))],
            Duration::from_secs(1),
        );
        let error = conclude(cell("broken", valid(), 1), vec![run(4, None)], Duration::from_secs(1));
        let skipped = CellResult::not_run(cell("later", valid(), 1));
        let xml = render("demo", &iso_timestamp("20261126T081550Z"), &[ok, miss, unknown, error, skipped]);
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let suites = doc.root_element();
        assert_eq!(suites.tag_name().name(), "testsuites");
        let suite = suites.children().find(|n| n.has_tag_name("testsuite")).unwrap();
        assert_eq!(suite.attribute("name"), Some("demo"));
        assert_eq!(suite.attribute("timestamp"), Some("2026-11-26T08:15:50"));
        assert_eq!(
            (
                suite.attribute("tests"),
                suite.attribute("failures"),
                suite.attribute("errors"),
                suite.attribute("skipped")
            ),
            (Some("5"), Some("2"), Some("1"), Some("1"))
        );
        let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
        assert_eq!(
            cases.iter().map(|c| c.attribute("name").unwrap()).collect::<Vec<_>>(),
            ["fine", "miss", "undecided", "broken", "later"]
        );
        let child = |i: usize, tag: &str| cases[i].children().find(|n| n.has_tag_name(tag));
        assert!(child(0, "failure").is_none() && child(0, "error").is_none());
        assert_eq!(cases[0].attribute("time"), Some("1.500"));
        assert!(
            child(0, "system-out").unwrap().text().unwrap().contains("claim <5> & \"quotes\""),
            "escaped and read back"
        );
        let failure = child(1, "failure").unwrap();
        assert_eq!(failure.attribute("type"), Some("mismatch"));
        assert!(failure.attribute("message").unwrap().contains("reproduce: faultline run --seed 2"));
        assert!(failure.text().unwrap().contains("expected the run valid, it was invalid"));
        assert_eq!(child(2, "failure").unwrap().attribute("type"), Some("unknown"));
        assert!(child(3, "error").unwrap().text().unwrap().contains("cluster up failed"));
        assert!(child(4, "skipped").is_some());
    }

    #[test]
    fn control_characters_are_dropped_and_entities_escaped() {
        assert_eq!(esc("a<b>&\"c'\u{1}\td"), "a&lt;b&gt;&amp;&quot;c&apos;\td");
    }
}
