//! `faultline campaign FILE | --builtin NAME`: a whole study in one
//! command. A campaign is a list (or matrix) of cells; each cell is a
//! `faultline run` with its settings and faults, and an expectation. Every
//! cell runs through the same code path as `faultline run`
//! ([`crate::run::execute`]), one after the other, into the same store;
//! then the campaign prints one table (cell, settings, faults, expected,
//! observed, verdict, time to detection, time), writes it with a JSON
//! summary and a JUnit file into `store/campaigns/<name>/<timestamp>/`,
//! and exits with the first code that applies: 255 a cell hit a harness
//! error (or the campaign was interrupted), 1 a cell missed its
//! expectation, 2 a cell was undecided, 0 all met theirs; 254 for a bad
//! file or bad arguments, before anything runs.
//!
//! - [`file`]: the TOML format, its checks and matrix expansion;
//! - [`expect`]: expectations and how a run meets them;
//! - [`observe`]: what a run showed (results, history errors, detection time);
//! - [`outcome`]: a cell over its seeds, and the exit code;
//! - [`table`] and [`junit`]: the reports;
//! - [`claims`]: what the campaign sets out to show, and whether it held;
//! - [`flake`]: `--repeat N`, the flake bar of every cell;
//! - [`shard`]: `--shard I/N`, one runner's slice of the cells, and
//!   [`merge`]: `faultline campaign merge`, the shards joined again;
//! - [`builtin`]: `seed-claims` and `bug-hunt`, embedded from `campaigns/`.

pub mod builtin;
pub mod claims;
mod expand;
pub mod expect;
pub mod file;
pub mod flake;
pub mod junit;
pub mod merge;
pub mod observe;
pub mod outcome;
pub mod shard;
pub mod table;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use anyhow::Context;
use clap::Args;

use self::builtin::Builtin;
use self::expect::Met;
use self::file::{Campaign, Cell, Overrides, Source};
use self::outcome::{CellResult, SeedRun, Verdict};
use crate::app::library::ClientLibrary;
use crate::exit::{EXIT_BAD_ARGS, EXIT_HARNESS};
use crate::run::{HarnessArgs, RunSettings};
use crate::store;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CampaignArgs {
    #[command(subcommand)]
    command: Option<CampaignCommand>,
    /// A campaign file (TOML; see docs/campaigns.md).
    #[arg(required_unless_present = "builtin", conflicts_with = "builtin")]
    file: Option<PathBuf>,
    /// A built-in campaign instead of a file.
    #[arg(long, value_enum)]
    builtin: Option<Builtin>,
    /// Where runs are stored (as `faultline run --store`); the campaign's
    /// table, summary and JUnit file go to `<store>/campaigns/<name>/<timestamp>/`.
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// Only these cells: a comma list of cell names (a matrix cell's base
    /// name selects all its combinations), or `headline` for the cells
    /// marked `headline = true`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Seeds per cell, for every cell (1 to 100). Cells that hunt for an
    /// anomaly stop at the first seed that shows it.
    #[arg(long)]
    seeds: Option<u32>,
    /// The flake bar: run every cell on N seeds without stopping early, and
    /// pass only when each hunting cell detects on at least 9 in 10 of them
    /// and every other cell holds on all (a benchmark, not for CI).
    #[arg(long, value_name = "N", conflicts_with = "seeds", value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: Option<u32>,
    /// Seconds of workload for every cell (as `faultline run --time-limit`).
    #[arg(long)]
    time_limit: Option<f64>,
    /// Only this slice of the cells (after --only): cell k of the campaign
    /// goes to shard k mod N + 1, so N runners share a campaign exactly.
    #[arg(long, value_name = "I/N")]
    shard: Option<shard::Shard>,
    /// Only the client-side cells (those with `clients = [...]`), each run
    /// with this client library.
    #[arg(long, value_enum)]
    client: Option<ClientLibrary>,
    /// Also write the JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Also write the campaign's report.html here (it is always written
    /// into the campaign's directory; links to the runs' reports are
    /// relative to where it is written).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Check the campaign and print each cell's run command; run nothing.
    #[arg(long)]
    list: bool,
    /// Print the built-in campaign's TOML (to copy and edit); run nothing.
    #[arg(long, requires = "builtin", conflicts_with = "list")]
    print: bool,
    /// Tear down the store's stale clusters before the first run (as
    /// `faultline run --cleanup-stale`).
    #[arg(long)]
    cleanup_stale: bool,
    /// The runs' cluster name (as `faultline run --cluster-name`).
    #[arg(long, hide = true)]
    cluster_name: Option<String>,
    /// The runs' /24 (as `faultline run --subnet`).
    #[arg(long, hide = true)]
    subnet: Option<String>,
    /// Run every cell's nodes on the machines of this `hosts.toml` over SSH
    /// (as `faultline run --hosts`); it needs as many hosts as the largest cell.
    #[arg(long, value_name = "FILE", conflicts_with = "subnet")]
    hosts: Option<PathBuf>,
    /// Test the Kafka-protocol cluster this `system.toml` describes on the
    /// `--hosts` machines (as `faultline run --system`); every cell must
    /// then run on librdkafka (`--client librdkafka` selects such cells).
    #[arg(long, value_name = "FILE", requires = "hosts")]
    system: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
enum CampaignCommand {
    /// Join the directories of one campaign's shards (`--shard I/N`) into one campaign.json, JUnit file,
    /// report and exit code.
    Merge(merge::MergeArgs),
}

impl CampaignArgs {
    /// Whether this invocation only prints (`--list`, `--print`) and starts
    /// no cluster.
    pub fn only_prints(&self) -> bool {
        self.command.is_none() && (self.list || self.print)
    }
}

pub fn main(args: CampaignArgs) -> ExitCode {
    if let Some(CampaignCommand::Merge(m)) = args.command {
        return merge::main(m);
    }
    if args.print {
        let builtin = args.builtin.expect("clap requires --builtin with --print");
        print!("{}", builtin.source().0);
        return ExitCode::SUCCESS;
    }
    let campaign = match prepare(&args) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("faultline campaign: {msg}");
            return ExitCode::from(EXIT_BAD_ARGS);
        }
    };
    if args.list {
        print_plan(&campaign, &args);
        return ExitCode::SUCCESS;
    }
    match execute(&campaign, &args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("faultline campaign: {e:#}");
            ExitCode::from(EXIT_HARNESS)
        }
    }
}

/// Reads and checks the campaign and the options, and selects the cells:
/// everything that can be wrong before anything runs.
fn prepare(args: &CampaignArgs) -> Result<Campaign, String> {
    let seeds = args.repeat.or(args.seeds);
    let overrides = Overrides { seeds, time_limit: args.time_limit, client: args.client };
    let mut campaign = match (&args.file, args.builtin) {
        (Some(path), None) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            file::load(&text, &Source::File(path), &overrides).map_err(|e| format!("{}: {e}", path.display()))?
        }
        (None, Some(b)) => {
            let (text, files) = b.source();
            file::load(text, &Source::Builtin(files), &overrides)
                .map_err(|e| format!("{} (built in): {e}", b.repo_path()))?
        }
        _ => return Err("give a campaign file or --builtin NAME".into()),
    };
    if let Some(t) = args.time_limit
        && !(t > 0.0 && t.is_finite())
    {
        return Err(format!("--time-limit {t}: must be a positive number of seconds"));
    }
    if let Some(name) = &args.cluster_name {
        crate::hosts::network::validate_name(name).map_err(|e| format!("--cluster-name: {e}"))?;
    }
    if let Some(path) = &args.hosts {
        let file = crate::hosts::hosts_file::HostsFile::load(path).map_err(|e| format!("--hosts {e}"))?;
        if let Some(cell) = campaign.cells.iter().find(|c| c.run.nodes as usize > file.hosts.len()) {
            return Err(format!(
                "--hosts {}: {} hosts, but cell {} needs {} nodes; add hosts",
                path.display(),
                file.hosts.len(),
                cell.name,
                cell.run.nodes
            ));
        }
    }
    if args.system.is_some() {
        check_cells_on_system(&campaign, args)?;
    }
    if !args.only.is_empty() {
        for sel in &args.only {
            let known = sel == "headline" || campaign.cells.iter().any(|c| &c.name == sel || &c.base == sel);
            if !known {
                let names: Vec<&str> = campaign.cells.iter().map(|c| c.name.as_str()).collect();
                return Err(format!("--only {sel}: no such cell; cells: headline, {}", names.join(", ")));
            }
        }
        campaign.cells.retain(|c| {
            args.only.iter().any(|sel| (sel == "headline" && c.headline) || sel == &c.name || sel == &c.base)
        });
        if campaign.cells.is_empty() {
            return Err(format!("--only {}: selects no cell", args.only.join(",")));
        }
    }
    if let Some(s) = args.shard {
        campaign.cells = s.select(std::mem::take(&mut campaign.cells));
    }
    Ok(campaign)
}

/// What `faultline run` gets for one seed of a cell: its settings, with
/// the seed and the timeline's path, and the campaign's harness arguments.
fn cell_run(
    campaign: &Campaign,
    cell: &Cell,
    seed: u64,
    args: &CampaignArgs,
    timeline: Option<&Path>,
) -> (RunSettings, HarnessArgs) {
    let settings = RunSettings { seed, nemesis_timeline: timeline.map(Path::to_path_buf), ..cell.run.clone() };
    let defaults = HarnessArgs::default();
    let harness = HarnessArgs {
        store: args.store.clone(),
        name: format!("{}-{}", campaign.name, cell.name),
        cluster_name: args.cluster_name.clone().unwrap_or(defaults.cluster_name.clone()),
        subnet: args.subnet.clone(),
        hosts: args.hosts.clone(),
        system: args.system.clone(),
        cleanup_stale: args.cleanup_stale,
        ..defaults
    };
    (settings, harness)
}

/// Each cell checked by `faultline run`'s own plan against the external
/// system, so a cell it cannot run stops the campaign before anything runs.
fn check_cells_on_system(campaign: &Campaign, args: &CampaignArgs) -> Result<(), String> {
    let harness = HarnessArgs { hosts: args.hosts.clone(), system: args.system.clone(), ..HarnessArgs::default() };
    for cell in &campaign.cells {
        let text = cell.timeline.as_ref().map(|t| crate::run::plan::TimelineText { label: &t.label, text: &t.text });
        crate::run::plan::Plan::with_timeline(cell.run.clone(), harness.clone(), text)
            .map_err(|e| format!("cell `{}`: {e}", cell.name))?;
    }
    Ok(())
}

fn print_plan(campaign: &Campaign, args: &CampaignArgs) {
    println!("Campaign {}: {}", campaign.name, table::count(campaign.cells.len(), "cell"));
    if let Some(d) = &campaign.description {
        println!("{d}");
    }
    for cell in &campaign.cells {
        let timeline = cell
            .timeline
            .as_ref()
            .map(|t| PathBuf::from(format!("<campaign dir>/timelines/{}", file::timeline_file_name(&t.label))));
        let first = cell.run.seed;
        let seeds = if cell.seeds == 1 {
            format!("seed {first}")
        } else {
            format!("seeds {first}..{}", first + u64::from(cell.seeds) - 1)
        };
        println!(
            "\n{}{} ({seeds}): expect {}",
            cell.name,
            if cell.headline { " [headline]" } else { "" },
            cell.expect.describe()
        );
        if let Some(a) = &cell.about {
            println!("  {a}");
        }
        let (settings, harness) = cell_run(campaign, cell, cell.run.seed, args, timeline.as_deref());
        println!("  {}", crate::run::reproduce_command(&settings, &harness));
    }
}

/// Set by SIGINT or SIGTERM at any time during the campaign: runs notice
/// signals themselves, this catches the ones between runs.
fn watch_signals() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    let spawned = std::thread::Builder::new().name("campaign-signals".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            set.store(true, Ordering::SeqCst);
        });
    });
    if spawned.is_err() {
        tracing::warn!("could not watch for SIGINT/SIGTERM between runs");
    }
    flag
}

/// Runs every cell, writes the reports, returns the exit code.
fn execute(campaign: &Campaign, args: &CampaignArgs) -> anyhow::Result<u8> {
    let interrupted = watch_signals();
    let started_at = SystemTime::now();
    let dir = store::create_run_dir(&args.store.join("campaigns"), &campaign.name)
        .context("creating the campaign's directory")?;
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let source = match (&args.file, args.builtin) {
        (Some(path), _) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        (None, Some(b)) => b.source().0.to_string(),
        (None, None) => unreachable!("checked by prepare"),
    };
    std::fs::write(dir.join("campaign.toml"), source).context("copying the campaign file")?;
    for cell in &campaign.cells {
        if let Some(t) = &cell.timeline {
            let path = file::timeline_path(&dir, &t.label);
            std::fs::create_dir_all(path.parent().expect("in timelines/")).context("creating timelines/")?;
            std::fs::write(&path, &t.text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    println!(
        "Campaign {}: {}; reports in {}",
        campaign.name,
        table::count(campaign.cells.len(), "cell"),
        dir.display()
    );
    let mut results: Vec<CellResult> = Vec::new();
    let mut stopped = false;
    for (i, cell) in campaign.cells.iter().enumerate() {
        if stopped || interrupted.load(Ordering::SeqCst) {
            stopped = true;
            results.push(CellResult::not_run(cell.clone()));
            continue;
        }
        let (result, was_interrupted) = run_cell(campaign, cell, i, args, &dir, &interrupted);
        stopped |= was_interrupted;
        results.push(result);
    }
    let mut code = outcome::exit_code(&results, stopped);
    if args.repeat.is_some() {
        let rows = flake::rows(&results);
        let text = flake::render(&rows);
        println!("\nFlake bar:\n{text}");
        std::fs::write(dir.join("flake.txt"), &text).context("writing flake.txt")?;
        store::write_json(&dir.join("flake.json"), &rows)?;
        // A harness error stays one; otherwise the bar decides.
        if code != EXIT_HARNESS {
            code = u8::from(rows.iter().any(|r| !r.passes));
        }
    }
    let text = table::render(&campaign.name, &campaign.defaults, &results);
    println!("\n{text}Reports: {}", dir.display());
    std::fs::write(dir.join("table.txt"), &text).context("writing table.txt")?;
    let stamp = store::utc_stamp(started_at);
    let xml = junit::render(&campaign.name, &junit::iso_timestamp(&stamp), &results);
    std::fs::write(dir.join("junit.xml"), &xml).context("writing junit.xml")?;
    if let Some(path) = &args.junit {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(path, &xml).with_context(|| format!("writing {}", path.display()))?;
    }
    store::write_json(&dir.join("campaign.json"), &summary_json(campaign, args.shard, &results, code))?;
    // The verdicts are in; a page that cannot be drawn does not change them.
    if let Err(e) = write_reports(&dir, args.report.as_deref(), &results) {
        tracing::warn!("no campaign report.html: {e:#}");
    }
    if stopped {
        tracing::warn!("interrupted; the table shows what ran");
    }
    Ok(code)
}

/// Writes the campaign's report.html (and a copy where `--report` says),
/// then prints where it and each run's report are.
fn write_reports(dir: &Path, also: Option<&Path>, results: &[CellResult]) -> anyhow::Result<()> {
    let page = dir.join(crate::report::REPORT_FILE);
    crate::report::campaign_page::write(dir, &page)?;
    if let Some(path) = also {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        crate::report::campaign_page::write(dir, path)?;
    }
    println!("Run reports:");
    for r in results {
        for run in &r.runs {
            if let Some(d) = run.dir.as_ref().map(|d| d.join(crate::report::REPORT_FILE)).filter(|p| p.exists()) {
                println!("  {} seed {}: {}", r.cell.name, run.seed, d.display());
            }
        }
    }
    println!("Campaign report: {}", also.unwrap_or(&page).display());
    Ok(())
}

/// Runs one cell's seeds until it is decided; also says whether the
/// campaign was interrupted meanwhile.
fn run_cell(
    campaign: &Campaign,
    cell: &Cell,
    index: usize,
    args: &CampaignArgs,
    dir: &Path,
    interrupted: &AtomicBool,
) -> (CellResult, bool) {
    let started = Instant::now();
    let timeline = cell.timeline.as_ref().map(|t| file::timeline_path(dir, &t.label));
    let mut runs: Vec<SeedRun> = Vec::new();
    // Bounded by the cell's seeds.
    for k in 0..cell.seeds {
        if interrupted.load(Ordering::SeqCst) {
            let mut r = outcome::conclude(cell.clone(), runs, started.elapsed());
            r.verdict = Verdict::Error;
            r.reasons.push("interrupted (SIGINT/SIGTERM)".into());
            return (r, true);
        }
        let seed = cell.run.seed + u64::from(k);
        let (settings, harness) = cell_run(campaign, cell, seed, args, timeline.as_deref());
        println!(
            "\n=== campaign {} [{}/{}] {}, seed {seed} ({} of {}): expect {} ===",
            campaign.name,
            index + 1,
            campaign.cells.len(),
            cell.name,
            k + 1,
            cell.seeds,
            cell.expect.describe()
        );
        let run = run_seed(cell, settings, harness);
        let was_interrupted = run.1;
        runs.push(run.0);
        if was_interrupted {
            let mut r = outcome::conclude(cell.clone(), runs, started.elapsed());
            r.verdict = Verdict::Error;
            r.reasons.push("interrupted (SIGINT/SIGTERM)".into());
            return (r, true);
        }
        // Under --repeat every seed runs: the rate is the point.
        if args.repeat.is_none() && outcome::decided(cell, &runs) {
            break;
        }
    }
    (outcome::conclude(cell.clone(), runs, started.elapsed()), false)
}

/// One `faultline run`, observed against the cell's expectation.
fn run_seed(cell: &Cell, settings: RunSettings, harness: HarnessArgs) -> (SeedRun, bool) {
    let started = Instant::now();
    let seed = settings.seed;
    let report = crate::run::execute(settings, harness);
    report.print();
    let (observation, met, first) = match (&report.results, report.code) {
        (Some(results), 0..=2) => {
            let history = report.dir.as_ref().map(|d| d.join(faultline_checker::HISTORY_FILE));
            let (o, first) = observe::observe(results, history.as_deref(), &cell.expect);
            let met = cell.expect.evaluate(&o);
            (Some(o), Some(met), first)
        }
        _ => (None, None, None),
    };
    let first = if matches!(met, Some(Met::Yes)) { first } else { None };
    let error = report.error.clone().or_else(|| met.is_none().then(|| format!("the run exited {}", report.code)));
    let run = SeedRun {
        seed,
        code: report.code,
        dir: report.dir,
        reproduce: report.reproduce,
        error,
        observation,
        met,
        first_anomalous_s: first,
        elapsed: started.elapsed(),
    };
    (run, report.interrupted)
}

fn summary_json(
    campaign: &Campaign,
    shard: Option<shard::Shard>,
    results: &[CellResult],
    code: u8,
) -> serde_json::Value {
    let cells: Vec<serde_json::Value> = results.iter().map(cell_json).collect();
    serde_json::json!({
        "campaign": campaign.name,
        "description": campaign.description,
        "shard": shard.map(|s| s.to_string()),
        "exit_code": code,
        "claims": claims::claims_json(&campaign.claims, results),
        "cells": cells,
    })
}

fn cell_json(r: &CellResult) -> serde_json::Value {
    let runs: Vec<serde_json::Value> = r.runs.iter().map(seed_run_json).collect();
    let detection =
        r.detection.map(|d| serde_json::json!({"seed_number": d.seed_number, "seeds": d.seeds, "time_s": d.time_s}));
    serde_json::json!({
        "name": r.cell.name,
        "about": r.cell.about,
        "headline": r.cell.headline,
        "settings": table::settings_text(&r.cell.settings, &Default::default()),
        "faults": table::faults_text(r),
        "expected": r.cell.expect.describe(),
        "verdict": r.verdict.label(),
        "reasons": r.reasons,
        "detection": detection,
        "elapsed_s": r.elapsed.as_secs_f64(),
        "runs": runs,
    })
}

fn seed_run_json(run: &SeedRun) -> serde_json::Value {
    let o = run.observation.as_ref();
    let anomalies = o.map(|o| {
        o.anomalies
            .iter()
            .map(|(k, (n, s))| (k.clone(), serde_json::json!({"count": n, "status": s})))
            .collect::<serde_json::Map<_, _>>()
    });
    let met = match &run.met {
        Some(Met::Yes) => serde_json::json!(true),
        Some(Met::No(_)) => serde_json::json!(false),
        Some(Met::Unknown(_)) => serde_json::json!("unknown"),
        None => serde_json::Value::Null,
    };
    serde_json::json!({
        "seed": run.seed,
        "exit_code": run.code,
        "store": run.dir.as_ref().map(|d| d.display().to_string()),
        "reproduce": run.reproduce,
        "error": run.error,
        "valid": o.map(|o| serde_json::to_value(o.validity).unwrap_or_default()),
        "anomalies": anomalies,
        "errors": o.map(|o| &o.errors),
        "met": met,
        "first_anomalous_s": run.first_anomalous_s,
        "elapsed_s": run.elapsed.as_secs_f64(),
    })
}
