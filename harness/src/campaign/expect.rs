//! A cell's expectation and how one run's observation meets it.
//!
//! An expectation is any mix of: the checker's verdict (`valid` or
//! `invalid`), anomaly types that must appear (permitted or not: acks=1
//! *may* lose acknowledged writes, and the claim is that it does), anomaly
//! types that must not appear, and Kafka error names that must or must not
//! appear on the history's `fail`/`info` ops. A run either meets it, misses
//! it (each failed check is a reason), or leaves it undecided: the checker
//! said `unknown` and a check depends on what it could not decide.
//!
//! A cell that expects something to appear *hunts*: its seeds run in turn
//! until one meets the expectation. Any other cell must meet it on every
//! seed.

use std::collections::BTreeMap;

use faultline_checker::Validity;
use faultline_checker::op::ERROR_CODES;
use faultline_checker::verdict::Status;
use faultline_client::api::ErrorCode;

/// What a cell expects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expectation {
    pub verdict: Option<Validity>,
    /// Each entry: alternatives, one of which must appear.
    pub anomalies: Vec<Vec<String>>,
    pub no_anomalies: Vec<String>,
    pub errors: Vec<String>,
    pub no_errors: Vec<String>,
}

/// What one run showed, as far as expectations look.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub validity: Validity,
    pub unknown_reasons: Vec<String>,
    /// Anomaly type → count and status.
    pub anomalies: BTreeMap<String, (u64, Status)>,
    /// Error name → fail/info ops whose `error` names it (only the names
    /// the expectation mentions are counted).
    pub errors: BTreeMap<String, u64>,
}

/// How one run met an expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Met {
    Yes,
    /// Each reason is one check that failed.
    No(Vec<String>),
    /// Nothing failed, but these checks depend on what the checker could
    /// not decide.
    Unknown(Vec<String>),
}

pub fn known_anomaly(name: &str) -> bool {
    faultline_checker::AnomalyKind::from_name(name).is_some()
}

/// A Kafka error name, or one of the history format's own error codes.
fn known_error(name: &str) -> bool {
    ErrorCode::ALL.iter().any(|c| c.name() == name) || ERROR_CODES.iter().any(|(c, _)| *c == name)
}

impl Expectation {
    /// From the cell's keys; errors name the key.
    pub fn from_parts(
        verdict: Option<&str>,
        anomalies: &[String],
        no_anomalies: &[String],
        errors: &[String],
        no_errors: &[String],
    ) -> Result<Expectation, String> {
        let verdict = match verdict {
            None => None,
            Some("valid") => Some(Validity::Valid),
            Some("invalid") => Some(Validity::Invalid),
            Some(other) => return Err(format!("expect = {other:?}: expected \"valid\" or \"invalid\"")),
        };
        let check_anomaly = |key: &str, name: &str| {
            if known_anomaly(name) {
                Ok(())
            } else {
                let known: Vec<&str> = faultline_checker::AnomalyKind::ALL.iter().map(|k| k.name()).collect();
                Err(format!("{key}: unknown anomaly type `{name}`; known: {}", known.join(", ")))
            }
        };
        let check_error = |key: &str, name: &str| {
            if known_error(name) {
                Ok(())
            } else {
                let kafka = ErrorCode::ALL.iter().map(|c| c.name());
                let known: Vec<&str> = kafka.chain(ERROR_CODES.iter().map(|(c, _)| *c)).collect();
                Err(format!("{key}: unknown error code `{name}`; known: {}", known.join(", ")))
            }
        };
        let mut alternatives = Vec::new();
        for entry in anomalies {
            let alts: Vec<String> = entry.split('|').map(|s| s.trim().to_string()).collect();
            for a in &alts {
                check_anomaly("expect-anomalies", a)?;
            }
            alternatives.push(alts);
        }
        for a in no_anomalies {
            check_anomaly("expect-no-anomalies", a)?;
            if alternatives.iter().any(|alts| alts.len() == 1 && alts[0] == *a) {
                return Err(format!("expect-no-anomalies: `{a}` is also in expect-anomalies"));
            }
        }
        for e in errors {
            check_error("expect-errors", e)?;
        }
        for e in no_errors {
            check_error("expect-no-errors", e)?;
            if errors.contains(e) {
                return Err(format!("expect-no-errors: `{e}` is also in expect-errors"));
            }
        }
        let x = Expectation {
            verdict,
            anomalies: alternatives,
            no_anomalies: no_anomalies.to_vec(),
            errors: errors.to_vec(),
            no_errors: no_errors.to_vec(),
        };
        if x == Expectation::default() {
            return Err(
                "no expectation: give expect, expect-anomalies, expect-no-anomalies, expect-errors or expect-no-errors"
                    .into(),
            );
        }
        Ok(x)
    }

    /// Whether the cell looks for something that must appear: then a seed
    /// that meets the expectation ends the cell.
    pub fn hunts(&self) -> bool {
        !self.anomalies.is_empty() || !self.errors.is_empty()
    }

    /// Every error name the expectation mentions: the history scan counts these.
    pub fn error_names(&self) -> Vec<String> {
        self.errors.iter().chain(&self.no_errors).cloned().collect()
    }

    /// Anomaly types whose witnesses date a detection.
    pub fn wanted_anomalies(&self) -> Vec<String> {
        self.anomalies.iter().flatten().cloned().collect()
    }

    /// One line: `valid +lost-write -duplicate +err:NOT_ENOUGH_REPLICAS`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.verdict {
            Some(Validity::Valid) => parts.push("valid".to_string()),
            Some(Validity::Invalid) => parts.push("invalid".to_string()),
            _ => {}
        }
        parts.extend(self.anomalies.iter().map(|alts| format!("+{}", alts.join("|"))));
        parts.extend(self.no_anomalies.iter().map(|a| format!("-{a}")));
        parts.extend(self.errors.iter().map(|e| format!("+err:{e}")));
        parts.extend(self.no_errors.iter().map(|e| format!("-err:{e}")));
        parts.join(" ")
    }

    /// Whether `o` meets this expectation.
    pub fn evaluate(&self, o: &Observation) -> Met {
        let undecided = o.validity == Validity::Unknown;
        let why_unknown = || {
            if o.unknown_reasons.is_empty() {
                "the checker could not decide".to_string()
            } else {
                o.unknown_reasons.join("; ")
            }
        };
        let (mut no, mut unknown) = (Vec::new(), Vec::new());
        if let Some(want) = self.verdict {
            let name = |v: Validity| match v {
                Validity::Valid => "valid",
                Validity::Invalid => "invalid",
                Validity::Unknown => "unknown",
            };
            if undecided {
                unknown.push(format!("expected {}, the checker said unknown: {}", name(want), why_unknown()));
            } else if o.validity != want {
                let violations: Vec<String> = o
                    .anomalies
                    .iter()
                    .filter(|(_, (_, s))| *s == Status::Violation)
                    .map(|(k, (n, _))| format!("{k} {n}"))
                    .collect();
                let detail =
                    if violations.is_empty() { String::new() } else { format!(" ({})", violations.join(", ")) };
                no.push(format!("expected the run {}, it was {}{detail}", name(want), name(o.validity)));
            }
        }
        let count = |k: &str| o.anomalies.get(k).map_or(0, |(n, _)| *n);
        for alts in &self.anomalies {
            if alts.iter().all(|a| count(a) == 0) {
                let what = alts.join(" or ");
                if undecided {
                    unknown.push(format!(
                        "expected {what}, not found, and the checker could not decide: {}",
                        why_unknown()
                    ));
                } else {
                    no.push(format!("expected {what}, none found"));
                }
            }
        }
        for a in &self.no_anomalies {
            match count(a) {
                0 if undecided => unknown
                    .push(format!("expected no {a}, none found, but the checker could not decide: {}", why_unknown())),
                0 => {}
                n => no.push(format!("expected no {a}, found {n}")),
            }
        }
        let errors = |e: &str| o.errors.get(e).copied().unwrap_or(0);
        for e in &self.errors {
            if errors(e) == 0 {
                no.push(format!("expected {e} errors, none in the history"));
            }
        }
        for e in &self.no_errors {
            if errors(e) > 0 {
                no.push(format!("expected no {e} errors, {} ops failed with it", errors(e)));
            }
        }
        if !no.is_empty() {
            Met::No(no)
        } else if !unknown.is_empty() {
            Met::Unknown(unknown)
        } else {
            Met::Yes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn expect(verdict: Option<&str>, any: &[&str], none: &[&str], errs: &[&str], no_errs: &[&str]) -> Expectation {
        Expectation::from_parts(verdict, &strings(any), &strings(none), &strings(errs), &strings(no_errs)).unwrap()
    }

    fn obs(validity: Validity, anomalies: &[(&str, u64, Status)], errors: &[(&str, u64)]) -> Observation {
        Observation {
            validity,
            unknown_reasons: if validity == Validity::Unknown {
                vec!["loss cannot be told from delay".into()]
            } else {
                vec![]
            },
            anomalies: anomalies.iter().map(|(k, n, s)| (k.to_string(), (*n, *s))).collect(),
            errors: errors.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        }
    }

    #[test]
    fn expect_valid_is_met_by_a_valid_run_even_with_permitted_anomalies() {
        let x = expect(Some("valid"), &[], &[], &[], &[]);
        assert_eq!(x.evaluate(&obs(Validity::Valid, &[("duplicate", 4, Status::Permitted)], &[])), Met::Yes);
        let Met::No(why) = x.evaluate(&obs(Validity::Invalid, &[("lost-write", 2, Status::Violation)], &[])) else {
            panic!()
        };
        assert!(why[0].contains("lost-write 2"), "{why:?}");
        assert!(matches!(x.evaluate(&obs(Validity::Unknown, &[], &[])), Met::Unknown(_)));
    }

    #[test]
    fn anomalies_that_must_appear_count_permitted_ones_and_accept_alternatives() {
        let x = expect(None, &["lost-write"], &[], &[], &[]);
        assert!(x.hunts());
        assert_eq!(x.evaluate(&obs(Validity::Valid, &[("lost-write", 3, Status::Permitted)], &[])), Met::Yes);
        assert_eq!(
            x.evaluate(&obs(Validity::Valid, &[], &[])),
            Met::No(vec!["expected lost-write, none found".into()])
        );
        assert!(matches!(x.evaluate(&obs(Validity::Unknown, &[], &[])), Met::Unknown(_)), "missing, but undecided");
        assert_eq!(
            x.evaluate(&obs(Validity::Unknown, &[("lost-write", 1, Status::Violation)], &[])),
            Met::Yes,
            "found is found"
        );
        let alt = expect(None, &["replica-divergence|inconsistent-offsets"], &[], &[], &[]);
        assert_eq!(
            alt.evaluate(&obs(Validity::Invalid, &[("inconsistent-offsets", 1, Status::Violation)], &[])),
            Met::Yes
        );
    }

    #[test]
    fn anomalies_that_must_not_appear_fail_on_any_count() {
        let x = expect(None, &[], &["lost-write", "inconsistent-offsets"], &[], &[]);
        assert!(!x.hunts());
        assert_eq!(x.evaluate(&obs(Validity::Valid, &[("duplicate", 1, Status::Permitted)], &[])), Met::Yes);
        assert_eq!(
            x.evaluate(&obs(Validity::Valid, &[("lost-write", 7, Status::Permitted)], &[])),
            Met::No(vec!["expected no lost-write, found 7".into()])
        );
        assert!(matches!(x.evaluate(&obs(Validity::Unknown, &[], &[])), Met::Unknown(_)));
    }

    #[test]
    fn error_kinds_must_or_must_not_appear() {
        let x = expect(Some("valid"), &[], &["lost-write"], &["NOT_ENOUGH_REPLICAS"], &[]);
        assert!(x.hunts());
        assert_eq!(x.evaluate(&obs(Validity::Valid, &[], &[("NOT_ENOUGH_REPLICAS", 12)])), Met::Yes);
        assert_eq!(
            x.evaluate(&obs(Validity::Valid, &[], &[])),
            Met::No(vec!["expected NOT_ENOUGH_REPLICAS errors, none in the history".into()])
        );
        let y = expect(None, &[], &[], &[], &["NOT_ENOUGH_REPLICAS"]);
        assert!(matches!(y.evaluate(&obs(Validity::Valid, &[], &[("NOT_ENOUGH_REPLICAS", 1)])), Met::No(_)));
        // Error checks are facts of the history: an undecided checker does not blur them.
        assert!(matches!(y.evaluate(&obs(Validity::Unknown, &[], &[("NOT_ENOUGH_REPLICAS", 1)])), Met::No(_)));
    }

    #[test]
    fn a_miss_outranks_an_undecided_check() {
        let x = expect(Some("valid"), &[], &["duplicate"], &[], &[]);
        assert!(matches!(x.evaluate(&obs(Validity::Unknown, &[("duplicate", 1, Status::Violation)], &[])), Met::No(_)));
    }

    #[test]
    fn contradictions_unknown_names_and_empty_expectations_are_refused() {
        assert!(
            Expectation::from_parts(None, &strings(&["lost-write"]), &strings(&["lost-write"]), &[], &[])
                .unwrap_err()
                .contains("expect-no-anomalies")
        );
        assert!(
            Expectation::from_parts(
                None,
                &[],
                &[],
                &strings(&["NOT_ENOUGH_REPLICAS"]),
                &strings(&["NOT_ENOUGH_REPLICAS"])
            )
            .is_err()
        );
        assert!(Expectation::from_parts(None, &[], &[], &[], &[]).unwrap_err().contains("no expectation"));
        assert!(Expectation::from_parts(Some("ok"), &[], &[], &[], &[]).is_err());
        assert!(
            Expectation::from_parts(None, &strings(&["lost-processing"]), &[], &[], &[]).is_ok(),
            "the application side's types are known"
        );
    }

    #[test]
    fn describe_is_one_line() {
        let x = expect(Some("valid"), &["lost-write|unseen"], &["duplicate"], &["NOT_ENOUGH_REPLICAS"], &[]);
        assert_eq!(x.describe(), "valid +lost-write|unseen -duplicate +err:NOT_ENOUGH_REPLICAS");
    }
}
