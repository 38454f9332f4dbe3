//! `faultline campaign merge DIR…`: joins the directories of one
//! campaign's shards (`--shard 1/N` … `N/N`, run on N machines) into one
//! campaign directory with one `campaign.json`, one JUnit file, one
//! `report.html` and one exit code, as if the campaign had run on one
//! machine: the cells in the campaign's order (shard I held cells I-1,
//! I-1+N, …), each claim judged over all its cells.
//!
//! It reads only the shards' `campaign.json` and `junit.xml`; run links in
//! the report resolve under `--store` when the shards' stores are copied
//! there (their recorded paths are the runners').

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::claims::held_of;
use super::flake::{self, FlakeRow};
use super::junit::{self, Case};
use super::outcome::{Verdict, exit_code_of};
use super::shard::Shard;
use crate::exit::{EXIT_BAD_ARGS, EXIT_HARNESS};
use crate::store;

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The shards' campaign directories (`<store>/campaigns/<name>/<stamp>`), all N of them.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where the merged campaign directory goes (`<store>/campaigns/<name>/<stamp>`); put the
    /// shards' runs here too, so the report links them.
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// Also write the merged JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Also write the merged report.html here.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// One shard's files.
struct ShardDir {
    dir: PathBuf,
    shard: Shard,
    summary: Value,
    junit: String,
}

pub fn main(args: MergeArgs) -> ExitCode {
    let shards = match read_all(&args.dirs) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("faultline campaign merge: {msg}");
            return ExitCode::from(EXIT_BAD_ARGS);
        }
    };
    match merge(&shards, &args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("faultline campaign merge: {e:#}");
            ExitCode::from(EXIT_HARNESS)
        }
    }
}

/// Every shard's files, checked to be the N shards of one campaign, by index.
fn read_all(dirs: &[PathBuf]) -> Result<Vec<ShardDir>, String> {
    let mut shards = dirs.iter().map(|d| read(d)).collect::<Result<Vec<_>, _>>()?;
    shards.sort_by_key(|s| s.shard.index());
    let name = &shards[0].summary["campaign"];
    let count = shards[0].shard.count();
    for s in &shards {
        if &s.summary["campaign"] != name || s.shard.count() != count {
            return Err(format!(
                "{}: shard {} of campaign {}, not of {name} in {count} shards",
                s.dir.display(),
                s.shard,
                s.summary["campaign"]
            ));
        }
    }
    for w in shards.windows(2) {
        if w[0].shard == w[1].shard {
            return Err(format!("{} and {} are both shard {}", w[0].dir.display(), w[1].dir.display(), w[0].shard));
        }
    }
    let missing: Vec<String> =
        (1..=count).filter(|i| !shards.iter().any(|s| s.shard.index() == *i)).map(|i| format!("{i}/{count}")).collect();
    if !missing.is_empty() {
        return Err(format!("missing shards {}: a merge needs all {count}", missing.join(", ")));
    }
    Ok(shards)
}

fn read(dir: &Path) -> Result<ShardDir, String> {
    let at = |f: &str| dir.join(f);
    let text =
        std::fs::read_to_string(at("campaign.json")).map_err(|e| format!("{}: {e}", at("campaign.json").display()))?;
    let summary: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", at("campaign.json").display()))?;
    let shard = summary["shard"]
        .as_str()
        .ok_or_else(|| format!("{}: not a shard's campaign (run with --shard I/N)", at("campaign.json").display()))?
        .parse::<Shard>()
        .map_err(|e| format!("{}: shard {e}", at("campaign.json").display()))?;
    let junit = std::fs::read_to_string(at("junit.xml")).map_err(|e| format!("{}: {e}", at("junit.xml").display()))?;
    Ok(ShardDir { dir: dir.to_path_buf(), shard, summary, junit })
}

/// The campaign's cells in its own order: shard I's j-th cell was cell
/// (I-1) + j·N.
fn interleave(shards: &[ShardDir]) -> Vec<Value> {
    let lists: Vec<&Vec<Value>> = shards.iter().filter_map(|s| s.summary["cells"].as_array()).collect();
    let longest = lists.iter().map(|l| l.len()).max().unwrap_or(0);
    (0..longest).flat_map(|j| lists.iter().filter_map(move |l| l.get(j).cloned())).collect()
}

fn verdict_of(cell: &Value) -> Verdict {
    cell["verdict"].as_str().and_then(Verdict::from_label).unwrap_or(Verdict::Error)
}

/// Each claim over the cells of every shard.
fn claims(shards: &[ShardDir], cells: &[Value]) -> Value {
    let Some(list) = shards[0].summary["claims"].as_array() else { return Value::Array(Vec::new()) };
    let verdicts: Vec<(&str, Verdict)> =
        cells.iter().map(|c| (c["name"].as_str().unwrap_or_default(), verdict_of(c))).collect();
    let merged = list.iter().map(|c| {
        let expanded: Vec<String> = c["expanded"]
            .as_array()
            .map(|a| a.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let mine: Vec<(&str, Verdict)> =
            expanded.iter().filter_map(|n| verdicts.iter().find(|(m, _)| m == n).copied()).collect();
        let ran: Vec<&str> = mine.iter().map(|(n, _)| *n).collect();
        serde_json::json!({"id": c["id"], "text": c["text"], "cells": ran, "expanded": expanded,
                           "held": held_of(&expanded, &mine).label()})
    });
    Value::Array(merged.collect())
}

/// The shards' `<testcase>` elements, by cell name.
fn testcases(shards: &[ShardDir]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in shards {
        let mut rest = s.junit.as_str();
        while let Some(start) = rest.find("    <testcase name=\"") {
            let end = rest[start..].find("    </testcase>\n").map(|e| start + e + "    </testcase>\n".len());
            let Some(end) = end else { break };
            let xml = &rest[start..end];
            let name = xml["    <testcase name=\"".len()..].split('"').next().unwrap_or_default().to_owned();
            out.push((name, xml.to_owned()));
            rest = &rest[end..];
        }
    }
    out
}

/// The shards' flake bars (`flake.json`, from `--repeat`) as one, in the
/// campaign's cell order; `None` when a shard ran without `--repeat`.
fn flake_rows(shards: &[ShardDir], cells: &[Value]) -> anyhow::Result<Option<Vec<FlakeRow>>> {
    let mut rows = Vec::new();
    for s in shards {
        let path = s.dir.join("flake.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let mine: Vec<FlakeRow> = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        rows.extend(mine);
    }
    let order = |cell: &str| cells.iter().position(|c| c["name"].as_str() == Some(cell)).unwrap_or(usize::MAX);
    rows.sort_by_key(|r| order(&r.cell));
    Ok(Some(rows))
}

/// Writes the merged flake bar next to the merged campaign and prints it.
/// Under `--repeat` the bar decides the exit code, as in one campaign.
fn write_flake(dir: &Path, rows: &[FlakeRow], code: u8) -> anyhow::Result<u8> {
    let text = flake::render(rows);
    println!("Flake bar:\n{text}");
    std::fs::write(dir.join("flake.txt"), &text).context("writing flake.txt")?;
    store::write_json(&dir.join("flake.json"), &rows)?;
    Ok(if code == EXIT_HARNESS { code } else { u8::from(rows.iter().any(|r| !r.passes)) })
}

fn create_parent(path: &Path) -> anyhow::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display())),
        None => Ok(()),
    }
}

fn merge(shards: &[ShardDir], args: &MergeArgs) -> anyhow::Result<u8> {
    let name = shards[0].summary["campaign"].as_str().unwrap_or("campaign").to_owned();
    let cells = interleave(shards);
    let verdicts: Vec<Verdict> = cells.iter().map(verdict_of).collect();
    let code = exit_code_of(&verdicts, false);
    let dir = store::create_run_dir(&args.store.join("campaigns"), &name).context("creating the merged directory")?;
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let summary = serde_json::json!({
        "campaign": name,
        "description": shards[0].summary["description"],
        "merged_from": shards.iter().map(|s| s.dir.display().to_string()).collect::<Vec<_>>(),
        "exit_code": code,
        "claims": claims(shards, &cells),
        "cells": cells,
    });
    store::write_json(&dir.join("campaign.json"), &summary)?;
    let cases = testcases(shards);
    let ordered: Vec<Case> = summary["cells"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let xml = cases.iter().find(|(n, _)| Some(n.as_str()) == c["name"].as_str())?.1.clone();
            Some(Case { xml, verdict: verdict_of(c), elapsed_s: c["elapsed_s"].as_f64().unwrap_or(0.0) })
        })
        .collect();
    let stamp = dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let xml = junit::assemble(&name, &junit::iso_timestamp(&stamp), &ordered);
    std::fs::write(dir.join("junit.xml"), &xml).context("writing junit.xml")?;
    if let Some(path) = &args.junit {
        create_parent(path)?;
        std::fs::write(path, &xml).with_context(|| format!("writing {}", path.display()))?;
    }
    let page = dir.join(crate::report::REPORT_FILE);
    crate::report::campaign_page::write(&dir, &page)?;
    if let Some(path) = &args.report {
        create_parent(path)?;
        crate::report::campaign_page::write(&dir, path)?;
    }
    let code = match flake_rows(shards, &cells)? {
        Some(rows) => write_flake(&dir, &rows, code)?,
        None => code,
    };
    let counts: Vec<String> =
        Verdict::ALL.iter().map(|v| format!("{} {}", verdicts.iter().filter(|x| *x == v).count(), v.label())).collect();
    println!("Campaign {name}: {} shards merged, {} cells: {}", shards.len(), verdicts.len(), counts.join(", "));
    println!("Merged: {}", dir.display());
    println!("Campaign report: {}", args.report.as_deref().unwrap_or(&page).display());
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cell: &str, met: usize, passes: bool) -> FlakeRow {
        FlakeRow { cell: cell.into(), hunts: true, runs: 10, met, median_detection_s: Some(1.0), passes }
    }

    /// The shards' flake rows come back in the campaign's order; a shard
    /// run without `--repeat` means there is no merged bar.
    #[test]
    fn flake_rows_merge_in_campaign_order() {
        let base = std::env::temp_dir().join(format!("faultline-merge-flake-{}", std::process::id()));
        let shard = |i: u32, rows: Option<Vec<FlakeRow>>| {
            let dir = base.join(format!("{i}-{}", rows.is_some()));
            std::fs::create_dir_all(&dir).unwrap();
            if let Some(rows) = rows {
                std::fs::write(dir.join("flake.json"), serde_json::to_string(&rows).unwrap()).unwrap();
            }
            ShardDir { dir, shard: format!("{i}/2").parse().unwrap(), summary: Value::Null, junit: String::new() }
        };
        let cells: Vec<Value> = ["a", "b", "c"].iter().map(|n| serde_json::json!({ "name": n })).collect();
        let both =
            [shard(1, Some(vec![row("a", 10, true), row("c", 8, false)])), shard(2, Some(vec![row("b", 9, true)]))];
        let merged = flake_rows(&both, &cells).unwrap().unwrap();
        let without = [shard(1, Some(vec![row("a", 10, true)])), shard(2, None)];
        let none = flake_rows(&without, &cells).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(merged.iter().map(|r| r.cell.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(none.is_none());
    }
}
