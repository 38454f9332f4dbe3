//! `faultline gen-history`: writes a synthetic history, clean or with exactly
//! the requested anomalies injected, for tests and benchmarks.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use faultline_checker::generator::{self, GenConfig};
use faultline_checker::{AnomalyKind, Error as CheckError, REPLICAS_FILE, SINK_FILE};

use crate::check::{EXIT_INTERNAL, HistoryFormat, exit_code_of};

#[derive(clap::Args, Debug)]
pub struct GenHistoryArgs {
    /// History lines of the main phase; the final drain adds a few more.
    #[arg(long, default_value_t = 10_000)]
    ops: u64,
    /// Partitions of topic `events`.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// PRNG seed: the same seed gives the same history.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Anomalies to inject, as type:count,... e.g. lost-write:3,duplicate:2.
    #[arg(long)]
    inject: Option<String>,
    /// Write the history to this file, and replicas.json and sink.jsonl next to it, instead
    /// of the history to stdout.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// `jepsen` writes the history as Jepsen's EDN (sends, polls, assigns
    /// and faults only; no replicas.json or sink.jsonl), for `faultline
    /// check --format jepsen`.
    #[arg(long, value_enum, default_value_t)]
    format: HistoryFormat,
}

pub fn main(args: GenHistoryArgs) -> ExitCode {
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline gen-history: {e:#}");
            let code = match e.downcast_ref::<std::io::Error>() {
                Some(_) => EXIT_INTERNAL,
                None => exit_code_of(&e),
            };
            ExitCode::from(code)
        }
    }
}

fn run(args: &GenHistoryArgs) -> anyhow::Result<()> {
    let inject = match &args.inject {
        Some(s) => generator::parse_inject(s)?,
        None => Vec::new(),
    };
    if args.out.is_none() && inject.iter().any(|i| i.0 == AnomalyKind::ReplicaDivergence && i.1 > 0) {
        return Err(CheckError::Generate("replica-divergence lives in replicas.json: use --out".into()).into());
    }
    if args.out.is_none()
        && inject
            .iter()
            .any(|i| matches!(i.0, AnomalyKind::LostProcessing | AnomalyKind::DuplicateProcessing) && i.1 > 0)
    {
        return Err(CheckError::Generate(
            "lost-processing and duplicate-processing live in sink.jsonl: use --out".into(),
        )
        .into());
    }
    let cfg = GenConfig { ops: args.ops, partitions: args.partitions, seed: args.seed, inject };
    let sink: Box<dyn Write> = match &args.out {
        // The user's to fix (254), unlike a failing disk.
        Some(p) if p.is_dir() => {
            return Err(CheckError::Generate(format!("-o {}: a directory; give a file path", p.display())).into());
        }
        Some(p) => Box::new(File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = BufWriter::with_capacity(1 << 20, sink);
    let mut io_error: Option<std::io::Error> = None;
    let mut written = 0u64;
    let jepsen = args.format == HistoryFormat::Jepsen;
    let (replicas, sink_rows) = generator::generate_with_sink(&cfg, &mut |op| {
        let r = if jepsen {
            match faultline_checker::history::jepsen::edn_line(op, written) {
                Some(line) => {
                    written += 1;
                    w.write_all(line.as_bytes()).and_then(|()| w.write_all(b"\n"))
                }
                None => Ok(()),
            }
        } else {
            serde_json::to_writer(&mut w, op).map_err(std::io::Error::from).and_then(|()| w.write_all(b"\n"))
        };
        if let Err(e) = r {
            io_error.get_or_insert(e);
        }
        Ok(())
    })?;
    if let Some(e) = io_error {
        return Err(e).context("writing the history");
    }
    w.flush().context("writing the history")?;
    if let Some(p) = args.out.as_ref().filter(|_| !jepsen) {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let path = dir.join(REPLICAS_FILE);
        let f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = BufWriter::new(f);
        serde_json::to_writer(&mut w, &replicas).context("writing replicas")?;
        w.flush().context("writing replicas")?;
        let path = dir.join(SINK_FILE);
        let f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        sink_rows.write_jsonl(BufWriter::new(f)).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
