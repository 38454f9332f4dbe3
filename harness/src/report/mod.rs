//! Reports people can look at: `report.html`, one self-contained page per
//! run (inline SVG charts, no scripts, no network), written at the end of
//! every run and by `faultline report DIR`, and one per campaign (the
//! claims and the matrix of cells, linking every run's page).
//!
//! # Layout
//! - `series`: the numbers behind the charts, bounded whatever the history.
//! - `charts`: `plotters` SVG charts with the fault windows shaded.
//! - `offsets`: the offset picture of an anomaly example.
//! - `timeline`: the ops of each process around the first anomaly.
//! - `page`: the template context and `templates/run.html`.
//! - `campaign_page`: a campaign's page, `templates/campaign.html`.

pub mod campaign_page;
mod charts;
mod offsets;
mod page;
mod series;
mod timeline;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use faultline_checker::{History, Replicas, Results, RunFiles};

use crate::check::{EXIT_INTERNAL, exit_code_of};

/// The report's file name inside a run directory.
pub const REPORT_FILE: &str = "report.html";

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// A run's store directory (or its history.jsonl), or a campaign's
    /// directory (with campaign.json). A run's history is checked again,
    /// with every input the run left, so an imported history gets a report
    /// too.
    path: PathBuf,
    /// Where to write the page (default: report.html in the run directory).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn main(args: ReportArgs) -> ExitCode {
    match report(&args) {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("faultline report: {e:#}");
            ExitCode::from(if e.downcast_ref::<faultline_checker::Error>().is_some() {
                exit_code_of(&e)
            } else {
                EXIT_INTERNAL
            })
        }
    }
}

fn report(args: &ReportArgs) -> anyhow::Result<PathBuf> {
    if args.path.join(campaign_page::CAMPAIGN_FILE).exists() {
        let out = args.out.clone().unwrap_or_else(|| args.path.join(REPORT_FILE));
        campaign_page::write(&args.path, &out)?;
        return Ok(out);
    }
    if args.path.is_dir() && !args.path.join(faultline_checker::HISTORY_FILE).exists() {
        let message = format!(
            "not a run or campaign directory: it has no {} or {}",
            faultline_checker::HISTORY_FILE,
            campaign_page::CAMPAIGN_FILE
        );
        return Err(faultline_checker::Error::BadFile { path: args.path.clone(), message }.into());
    }
    let files = RunFiles::locate(&args.path);
    let checked = files.check(&files.guarantees()?)?;
    let out = args.out.clone().unwrap_or_else(|| files.dir.join(REPORT_FILE));
    write(&out, &files.dir, &checked.history, &checked.results, checked.replicas.as_ref())?;
    Ok(out)
}

/// Renders the report of the run in `dir` (already checked) into `out`.
pub fn write(
    out: &Path,
    dir: &Path,
    history: &History,
    results: &Results,
    replicas: Option<&Replicas>,
) -> anyhow::Result<()> {
    let test = read_test_json(dir)?;
    let input = page::Input { title: title(dir), history, results, test: test.as_ref(), replicas };
    let html = page::render(&input)?;
    std::fs::write(out, html).with_context(|| format!("writing {}", out.display()))
}

/// `test.json`, or `None` for a history without one.
fn read_test_json(dir: &Path) -> anyhow::Result<Option<serde_json::Value>> {
    let path = dir.join(faultline_checker::TEST_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let v = serde_json::from_str(&text)
                .map_err(|e| faultline_checker::Error::BadFile { path: path.clone(), message: e.to_string() })?;
            Ok(Some(v))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// "<name>/<timestamp>": the run's last two path components.
fn title(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let parts: Vec<String> =
        dir.components().rev().take(2).map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}
