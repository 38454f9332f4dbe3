//! `faultline bench-history` (hidden): how many events per second the run's
//! single history writer takes, measured on the path a real run uses:
//! parse a client's JSON event line into an op, pair it, serialize it, and
//! write and flush it to `history.jsonl`. Prints one line of figures.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use faultline_checker::op::Op;

use crate::history::HistoryWriter;

#[derive(Args, Debug)]
pub struct BenchHistoryArgs {
    /// Events to record (half invokes, half completions).
    #[arg(long, default_value_t = 1_000_000)]
    ops: u64,
    /// Values per send, as a run's `--batch-size`.
    #[arg(long, default_value_t = 10)]
    batch: u64,
    /// Concurrent client processes the events interleave over.
    #[arg(long, default_value_t = 8)]
    processes: u64,
}

/// A client's event line, as `faultline client` writes it.
fn line(process: u64, seq: u64, ok: bool, batch: u64) -> String {
    let values: Vec<u64> = (0..batch).map(|i| process * 1_000_000_000 + seq * batch + i).collect();
    let time = 1_000_000 + seq * 10;
    // An ack carries (offset, value) pairs, an invoke the bare values.
    let (op_type, records): (&str, Vec<String>) = if ok {
        ("ok", values.iter().enumerate().map(|(i, v)| format!("[{},{v}]", seq * batch + i as u64)).collect())
    } else {
        ("invoke", values.iter().map(u64::to_string).collect())
    };
    format!(
        concat!(
            r#"{{"index":0,"time":{time},"process":{process},"type":"{op_type}","f":"send","#,
            r#""value":{{"records":{{"events/0":[{records}]}}}}}}"#,
        ),
        time = time,
        process = process,
        op_type = op_type,
        records = records.join(","),
    )
}

pub fn main(args: BenchHistoryArgs) -> ExitCode {
    if args.ops == 0 || args.processes == 0 || args.batch == 0 {
        eprintln!("faultline bench-history: --ops, --batch and --processes must be positive");
        return ExitCode::from(254);
    }
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("faultline bench-history: {e}");
            return ExitCode::from(255);
        }
    };
    let pairs = args.ops / 2;
    // Lines are prepared first so only the writer's path is timed.
    let lines: Vec<String> = (0..pairs)
        .flat_map(|k| {
            let (p, seq) = (k % args.processes, k / args.processes);
            [line(p, seq, false, args.batch), line(p, seq, true, args.batch)]
        })
        .collect();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let path = dir.path().join("history.jsonl");
    let mut writer = match HistoryWriter::create(&path, 0) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("faultline bench-history: {e:#}");
            return ExitCode::from(255);
        }
    };
    let started = Instant::now();
    for l in &lines {
        let op: Op = match serde_json::from_str(l) {
            Ok(op) => op,
            Err(e) => {
                eprintln!("faultline bench-history: bad generated line: {e}");
                return ExitCode::from(255);
            }
        };
        if let Err(e) = writer.record(op) {
            eprintln!("faultline bench-history: {e:#}");
            return ExitCode::from(255);
        }
    }
    let elapsed = started.elapsed();
    let written = writer.len();
    if let Err(e) = writer.finish() {
        eprintln!("faultline bench-history: {e:#}");
        return ExitCode::from(255);
    }
    let secs = elapsed.as_secs_f64();
    println!(
        "history writer: {written} events ({} values per send, {} processes) in {:.3} s = {:.0} events/s, \
         {:.1} MB/s of client lines",
        args.batch,
        args.processes,
        secs,
        written as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    ExitCode::SUCCESS
}
