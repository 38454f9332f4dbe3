//! Claims: what a campaign sets out to show, each in a sentence, with the
//! cells that show it (typically the configuration that loses and its
//! control). A claim *held* when every one of its cells ran and met its
//! expectation (*held where run* when some did not run), *did not hold*
//! when one missed it, and is *undecided* otherwise (a cell unknown or
//! failed). The campaign report puts
//! each claim's cells side by side.

use serde::{Deserialize, Serialize};

use super::outcome::{CellResult, Verdict};

/// Most claims one campaign may state.
const CLAIMS_MAX: usize = 64;

/// One `[[claim]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Claim {
    /// Short and unique: `1`, `c7`, `fencing`.
    pub id: String,
    /// The claim, as a person would state it.
    pub text: String,
    /// The `[[cell]]` names that show it; their matrix combinations and
    /// client-library copies belong to it too.
    pub cells: Vec<String>,
    /// Every cell of the campaign (after expansion, before `--only`) that
    /// belongs to it, in the claim's order: all of them must run and meet
    /// their expectations for the claim to hold.
    #[serde(skip)]
    pub expanded: Vec<String>,
}

/// Checks the claims against the file's cell names.
pub fn check(claims: &[Claim], cell_names: &[&str]) -> Result<(), String> {
    if claims.len() > CLAIMS_MAX {
        return Err(format!("more than {CLAIMS_MAX} [[claim]]s"));
    }
    for (i, c) in claims.iter().enumerate() {
        let at = format!("claim `{}`", c.id);
        if c.id.is_empty() || c.text.trim().is_empty() {
            return Err(format!("claim {}: id and text must not be empty", i + 1));
        }
        if claims[..i].iter().any(|o| o.id == c.id) {
            return Err(format!("{at}: id: two claims are `{}`", c.id));
        }
        if c.cells.is_empty() {
            return Err(format!("{at}: cells: list the cells that show it"));
        }
        if let Some(unknown) = c.cells.iter().find(|n| !cell_names.contains(&n.as_str())) {
            return Err(format!("{at}: cells: no [[cell]] is named `{unknown}`"));
        }
    }
    Ok(())
}

/// Whether a claim held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Held {
    Held,
    /// Every cell that ran met its expectation, but some of the claim's
    /// cells did not run (`--only`, `--client`): half a claim is no claim.
    HeldWhereRun,
    NotHeld,
    Undecided,
    /// None of its cells ran (`--only`, `--client`).
    NotRun,
}

impl Held {
    pub fn label(self) -> &'static str {
        match self {
            Held::Held => "held",
            Held::HeldWhereRun => "held where run",
            Held::NotHeld => "did not hold",
            Held::Undecided => "undecided",
            Held::NotRun => "not run",
        }
    }
}

/// A claim's cells that the campaign ran, in the claim's order, with
/// their verdicts.
fn ran<'a>(claim: &'a Claim, results: &'a [CellResult]) -> Vec<(&'a str, Verdict)> {
    let verdict = |name: &str| results.iter().find(|r| r.cell.name == name).map(|r| r.verdict);
    claim.expanded.iter().filter_map(|n| Some((n.as_str(), verdict(n)?))).collect()
}

/// A claim's outcome from its cells' results.
pub fn held(claim: &Claim, results: &[CellResult]) -> Held {
    held_of(&claim.expanded, &ran(claim, results))
}

/// A claim's outcome from its cells' names and verdicts, given every cell
/// name that belongs to it (a merge of shards has only those).
pub fn held_of(expanded: &[String], cells: &[(&str, Verdict)]) -> Held {
    let ran: Vec<&(&str, Verdict)> = cells.iter().filter(|(_, v)| *v != Verdict::NotRun).collect();
    if ran.is_empty() {
        Held::NotRun
    } else if ran.iter().any(|(_, v)| *v == Verdict::Mismatch) {
        Held::NotHeld
    } else if ran.iter().all(|(_, v)| *v == Verdict::Met) {
        let all_ran = expanded.iter().all(|name| ran.iter().any(|(n, _)| n == name));
        if all_ran { Held::Held } else { Held::HeldWhereRun }
    } else {
        Held::Undecided
    }
}

/// `campaign.json`'s `claims`: each claim, its cells as run, and whether it held.
pub fn claims_json(claims: &[Claim], results: &[CellResult]) -> serde_json::Value {
    let list: Vec<serde_json::Value> = claims
        .iter()
        .map(|c| {
            let cells: Vec<&str> = ran(c, results).into_iter().map(|(n, _)| n).collect();
            let held = held(c, results).label();
            serde_json::json!({"id": c.id, "text": c.text, "cells": cells, "expanded": c.expanded, "held": held})
        })
        .collect();
    serde_json::Value::Array(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(id: &str, cells: &[&str]) -> Claim {
        let cells: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
        Claim { id: id.into(), text: "t".into(), expanded: cells.clone(), cells }
    }

    fn result(base: &str, verdict: Verdict) -> CellResult {
        let expect = crate::campaign::expect::Expectation::from_parts(Some("valid"), &[], &[], &[], &[]).unwrap();
        let mut r = CellResult::not_run(crate::campaign::outcome::tests::cell(base, expect, 1));
        r.verdict = verdict;
        r
    }

    /// Held needs every cell run and met; a miss anywhere is "did not
    /// hold"; a missing control makes it "held where run".
    #[test]
    fn a_claim_holds_only_when_all_its_cells_ran_and_met() {
        let c = claim("1", &["lose", "control"]);
        let both = [result("lose", Verdict::Met), result("control", Verdict::Met)];
        assert_eq!(held(&c, &both), Held::Held);
        assert_eq!(held(&c, &both[..1]), Held::HeldWhereRun);
        assert_eq!(held(&c, &[result("lose", Verdict::Met), result("control", Verdict::Mismatch)]), Held::NotHeld);
        assert_eq!(held(&c, &[result("lose", Verdict::Unknown), result("control", Verdict::Met)]), Held::Undecided);
        assert_eq!(held(&c, &[result("lose", Verdict::NotRun)]), Held::NotRun);
        assert_eq!(held(&c, &[]), Held::NotRun);
        // One matrix combination of a cell not run: only where run.
        let mut m = claim("2", &["kills"]);
        m.expanded = vec!["kills-min-isr-1".into(), "kills-min-isr-2".into()];
        let mut one = result("kills", Verdict::Met);
        one.cell.name = "kills-min-isr-1".into();
        assert_eq!(held(&m, &[one.clone()]), Held::HeldWhereRun);
        let mut two = one.clone();
        two.cell.name = "kills-min-isr-2".into();
        assert_eq!(held(&m, &[one, two]), Held::Held);
    }

    #[test]
    fn claims_name_existing_cells_once() {
        let names = ["a", "b"];
        assert_eq!(check(&[claim("1", &["a", "b"])], &names), Ok(()));
        assert_eq!(check(&[claim("1", &["a", "z"])], &names), Err("claim `1`: cells: no [[cell]] is named `z`".into()));
        assert!(check(&[claim("1", &["a"]), claim("1", &["b"])], &names).unwrap_err().contains("two claims"));
        assert!(check(&[claim("1", &[])], &names).unwrap_err().contains("list the cells"));
    }
}
