//! `faultline check PATH`: checks a history and reports the verdict.
//!
//! PATH is a history file or a run's store directory (then
//! `history.jsonl` inside it). Guarantees come from `test.json` next to the
//! history, overridden key by key by `--guarantees`; `replicas.json` and
//! `sink.jsonl` next to it are read when present; `-` reads a history from
//! standard input (guarantees from `--guarantees` only). Prints a short
//! summary, or the JSON with `--json`; writes `results.json` next to the
//! history only with `--write`, so checking never changes a stored run
//! unless asked. Exit codes follow Jepsen: 0 valid, 1 invalid, 2 unknown,
//! 254 bad arguments or unreadable input, 255 internal error.
//!
//! `--format jepsen` reads a Jepsen or Maelstrom Kafka history instead
//! (`history.edn`, or a Jepsen store directory holding one), with the
//! guarantees of `--guarantees` only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use faultline_checker::{Error as CheckError, RESULTS_FILE, RunFiles, Validity};

/// "Bad arguments or unreadable input" (Jepsen's 254).
pub const EXIT_BAD_INPUT: u8 = 254;
/// "Internal error" (Jepsen's 255).
pub const EXIT_INTERNAL: u8 = 255;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// A history file (JSON Lines), a run's store directory, or `-` for
    /// standard input.
    path: PathBuf,
    /// Write results.json next to the history (replacing the run's own).
    #[arg(long)]
    write: bool,
    /// Print results.json to stdout instead of the human summary.
    #[arg(long)]
    json: bool,
    /// The run's guarantees as key=value,... (acks, idempotence,
    /// max-in-flight, unclean-leader-election, commit, sink-mode,
    /// producer-mode, processing, on-sink-error, auto-offset-reset; booleans
    /// are true or false); they override test.json. Without either,
    /// everything is promised.
    #[arg(long)]
    guarantees: Option<String>,
    /// The history's format: faultline's JSON Lines, or `jepsen` for the
    /// EDN `history.edn` of Jepsen's and Maelstrom's Kafka workloads.
    #[arg(long, value_enum, default_value_t)]
    format: HistoryFormat,
}

/// What a history file is written in.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HistoryFormat {
    /// faultline's own JSON Lines (`docs/history-format.md`).
    #[default]
    Faultline,
    /// Jepsen's EDN, one op per line (`jepsen.tests.kafka`, Maelstrom).
    Jepsen,
}

/// Jepsen's history file in its store directory.
const JEPSEN_HISTORY_FILE: &str = "history.edn";

pub fn main(args: CheckArgs) -> ExitCode {
    match std::panic::catch_unwind(|| run(&args)) {
        Ok(Ok(v)) => ExitCode::from(v.exit_code()),
        Ok(Err(e)) => {
            eprintln!("faultline check: {e:#}");
            ExitCode::from(exit_code_of(&e))
        }
        Err(_) => ExitCode::from(EXIT_INTERNAL),
    }
}

/// Input the user can fix is 254; anything else is our fault, 255.
pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<CheckError>() {
        Some(
            CheckError::Malformed { .. }
            | CheckError::Io { .. }
            | CheckError::BadFile { .. }
            | CheckError::BadGuarantee { .. }
            | CheckError::Generate(_),
        ) => EXIT_BAD_INPUT,
        _ => EXIT_INTERNAL,
    }
}

fn run(args: &CheckArgs) -> anyhow::Result<Validity> {
    if args.format == HistoryFormat::Jepsen {
        return check_jepsen(args);
    }
    if args.path.as_os_str() == "-" {
        return check_stdin(args);
    }
    if args.path.is_dir() && !args.path.join(faultline_checker::HISTORY_FILE).exists() {
        return Err(CheckError::BadFile {
            path: args.path.clone(),
            message: format!("not a run directory: it has no {}", faultline_checker::HISTORY_FILE),
        }
        .into());
    }
    let files = RunFiles::locate(&args.path);
    let mut guarantees = files.guarantees()?;
    if let Some(list) = &args.guarantees {
        guarantees.apply_list(list)?;
    }
    let results = files.check(&guarantees)?.results;
    let json = serde_json::to_string_pretty(&results).context("serializing results")?;
    let written = if args.write {
        let out = files.dir.join(RESULTS_FILE);
        std::fs::write(&out, format!("{json}\n")).with_context(|| format!("writing {}", out.display()))?;
        Some(out)
    } else {
        None
    };
    print_results(args, &results, &json, written.as_deref());
    Ok(results.valid)
}

/// `faultline check -`: a history on standard input, nothing next to it.
fn check_stdin(args: &CheckArgs) -> anyhow::Result<Validity> {
    if args.write {
        let message = "--write needs a history file or a run directory to write next to".into();
        return Err(CheckError::BadFile { path: args.path.clone(), message }.into());
    }
    let mut guarantees = faultline_checker::Guarantees::default();
    if let Some(list) = &args.guarantees {
        guarantees.apply_list(list)?;
    }
    let history =
        faultline_checker::history::History::parse(std::io::BufReader::with_capacity(1 << 20, std::io::stdin()))?;
    let inputs = faultline_checker::Inputs::default();
    let results = faultline_checker::check_with(&history, &guarantees, &inputs);
    let json = serde_json::to_string_pretty(&results).context("serializing results")?;
    print_results(args, &results, &json, None);
    Ok(results.valid)
}

/// `faultline check --format jepsen`: an EDN history (a file, a Jepsen
/// store directory, or `-`), checked under `--guarantees` alone.
fn check_jepsen(args: &CheckArgs) -> anyhow::Result<Validity> {
    use faultline_checker::history::History;
    let mut guarantees = faultline_checker::Guarantees::default();
    if let Some(list) = &args.guarantees {
        guarantees.apply_list(list)?;
    }
    let stdin = args.path.as_os_str() == "-";
    let path = if args.path.is_dir() { args.path.join(JEPSEN_HISTORY_FILE) } else { args.path.clone() };
    if args.write && stdin {
        let message = "--write needs a history file or a directory to write next to".into();
        return Err(CheckError::BadFile { path: args.path.clone(), message }.into());
    }
    let history = if stdin {
        History::parse_jepsen(std::io::BufReader::with_capacity(1 << 20, std::io::stdin()))?
    } else {
        let file = std::fs::File::open(&path).map_err(|source| CheckError::Io { path: path.clone(), source })?;
        History::parse_jepsen(std::io::BufReader::with_capacity(1 << 20, file)).map_err(|e| match e {
            CheckError::Io { source, .. } => CheckError::Io { path: path.clone(), source },
            other => other,
        })?
    };
    let inputs = faultline_checker::Inputs::default();
    let results = faultline_checker::check_with(&history, &guarantees, &inputs);
    let json = serde_json::to_string_pretty(&results).context("serializing results")?;
    let written = match args.write {
        true => {
            let out = faultline_checker::RunFiles::locate(&path).dir.join(RESULTS_FILE);
            std::fs::write(&out, format!("{json}\n")).with_context(|| format!("writing {}", out.display()))?;
            Some(out)
        }
        false => None,
    };
    print_results(args, &results, &json, written.as_deref());
    Ok(results.valid)
}

fn print_results(args: &CheckArgs, results: &faultline_checker::Results, json: &str, written: Option<&Path>) {
    let mut stdout = std::io::stdout().lock();
    let text = if args.json { format!("{json}\n") } else { faultline_checker::summary::summary(results) };
    // A closed pipe (`| head`) is not an error of the check.
    let _ = stdout.write_all(text.as_bytes());
    if let (false, Some(out)) = (args.json, written) {
        let _ = writeln!(stdout, "Results: {}", out.display());
    }
}
