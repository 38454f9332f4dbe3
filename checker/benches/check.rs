//! The checker benchmark: wall time and peak memory of a check of the
//! generator's million-op histories, as `faultline check` runs it, with the
//! time to only read the file (a floor) and to only parse it beside.
//!
//! `cargo bench -p faultline-checker --bench check` prints the table;
//! `-- --write docs/checker-bench.md` also replaces the table between the
//! file's `bench:begin` and `bench:end` markers. Each measurement runs in a
//! fresh process (this binary again) so that its peak RSS is its own.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::Instant;

use faultline_checker::generator::{self, GenConfig};
use faultline_checker::{Guarantees, History, RunFiles};

/// The child's environment variable: `<mode>:<history path>`.
const CHILD: &str = "FAULTLINE_CHECKER_BENCH_CHILD";
/// Runs per measurement; the table shows the best and the worst.
const RUNS: usize = 3;
/// The goal for a million-op history.
const GOAL_S: f64 = 1.0;
const GOAL_RSS_MB: f64 = 300.0;

struct Case {
    name: &'static str,
    cfg: GenConfig,
    jepsen: bool,
}

fn cases() -> Vec<Case> {
    let cfg = |ops, partitions, seed| GenConfig { ops, partitions, seed, inject: Vec::new() };
    vec![
        Case { name: "`gen-history --ops 1000000`", cfg: cfg(1_000_000, 4, 1), jepsen: false },
        Case { name: "`gen-history --ops 1000000 --partitions 8 --seed 7`", cfg: cfg(1_000_000, 8, 7), jepsen: false },
        Case {
            name: "`gen-history --ops 1540000 --format jepsen` (1M EDN ops)",
            cfg: cfg(1_540_000, 4, 1),
            jepsen: true,
        },
    ]
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` runs in the package's directory: a relative path is the
    // workspace's. Checked before the minutes of measuring, not after.
    let write = args.iter().position(|a| a == "--write").and_then(|i| args.get(i + 1)).map(|p| {
        let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p);
        markers(&doc);
        doc
    });
    let dir = std::env::temp_dir().join(format!("faultline-checker-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut rows = Vec::new();
    for case in cases() {
        let path = dir.join(if case.jepsen { "history.edn" } else { "history.jsonl" });
        let (lines, bytes) = generate(&case, &path);
        let floor = measure("read", &path);
        let parse = measure(if case.jepsen { "parse-jepsen" } else { "parse" }, &path);
        let check = measure(if case.jepsen { "check-jepsen" } else { "check" }, &path);
        rows.push(row(&case, lines, bytes, &floor, &parse, &check));
        eprintln!("{}", rows.last().unwrap());
    }
    let _ = std::fs::remove_dir_all(&dir);
    let table = table(&rows);
    println!("{table}");
    if let Some(doc) = write {
        splice(&doc, &table);
        eprintln!("wrote the table into {}", doc.display());
    }
}

/// Writes the case's history as `gen-history` does; its lines and bytes.
fn generate(case: &Case, path: &Path) -> (u64, u64) {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("history file"));
    let mut lines = 0u64;
    generator::generate(&case.cfg, &mut |op| {
        if case.jepsen {
            if let Some(line) = faultline_checker::history::jepsen::edn_line(op, lines) {
                w.write_all(line.as_bytes()).and_then(|()| w.write_all(b"\n")).expect("write");
                lines += 1;
            }
        } else {
            serde_json::to_writer(&mut w, op).expect("write");
            w.write_all(b"\n").expect("write");
            lines += 1;
        }
        Ok(())
    })
    .expect("generate");
    w.flush().expect("flush");
    (lines, std::fs::metadata(path).expect("history file").len())
}

/// One child's report: seconds and peak RSS in MB.
#[derive(Clone, Copy)]
struct Sample {
    wall_s: f64,
    rss_mb: f64,
}

/// `RUNS` fresh processes of `mode` on `path`.
fn measure(mode: &str, path: &Path) -> Vec<Sample> {
    (0..RUNS)
        .map(|_| {
            let out = std::process::Command::new(std::env::current_exe().expect("own path"))
                .env(CHILD, format!("{mode}:{}", path.display()))
                .output()
                .expect("child");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{mode} failed: {}", String::from_utf8_lossy(&out.stderr));
            let mut f = text.split_whitespace().map(|x| x.parse::<f64>().expect("child output"));
            Sample { wall_s: f.next().expect("wall"), rss_mb: f.next().expect("rss") }
        })
        .collect()
}

/// In the child: one measurement, printed as "<seconds> <peak RSS MB>".
fn child(spec: &str) {
    let (mode, path) = spec.split_once(':').expect("mode:path");
    let path = Path::new(path);
    let start = Instant::now();
    match mode {
        "read" => {
            let mut f = BufReader::with_capacity(1 << 20, std::fs::File::open(path).expect("open"));
            let (mut n, mut buf) = (0usize, vec![0u8; 1 << 20]);
            loop {
                let got = f.read(&mut buf).expect("read");
                if got == 0 {
                    break;
                }
                n += buf[..got].iter().filter(|&&b| b == b'\n').count();
            }
            assert!(n > 0);
        }
        "parse" => drop(RunFiles::locate(path).read_history().expect("parse")),
        "check" => {
            drop(RunFiles::locate(path).check(&Guarantees::default()).expect("check"));
        }
        "parse-jepsen" | "check-jepsen" => {
            let h = History::parse_jepsen(BufReader::with_capacity(1 << 20, std::fs::File::open(path).expect("open")))
                .expect("parse");
            if mode == "check-jepsen" {
                drop(faultline_checker::check_with(&h, &Guarantees::default(), &Default::default()));
            }
        }
        other => panic!("unknown mode {other}"),
    }
    println!("{} {}", start.elapsed().as_secs_f64(), peak_rss_mb());
}

/// VmHWM from /proc/self/status.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .expect("VmHWM");
    kb / 1024.0
}

fn range(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> (f64, f64) {
    let v: Vec<f64> = samples.iter().map(f).collect();
    (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(0.0, f64::max))
}

fn row(case: &Case, lines: u64, bytes: u64, floor: &[Sample], parse: &[Sample], check: &[Sample]) -> String {
    let (fl, _) = range(floor, |s| s.wall_s);
    let (pl, ph) = range(parse, |s| s.wall_s);
    let (cl, ch) = range(check, |s| s.wall_s);
    let (_, rss) = range(check, |s| s.rss_mb);
    let goal = if case.jepsen { 3.0 } else { GOAL_S };
    let met = ch <= goal && rss <= GOAL_RSS_MB;
    format!(
        "| {} | {lines} | {:.0} MB | {fl:.2} s | {pl:.2}–{ph:.2} s | {cl:.2}–{ch:.2} s | {:.2} | {rss:.0} MB \
         | ≤ {goal:.1} s, ≤ {GOAL_RSS_MB:.0} MB: {} |",
        case.name,
        bytes as f64 / 1e6,
        (cl - pl).max(0.0) / pl,
        if met { "met" } else { "missed" },
    )
}

fn table(rows: &[String]) -> String {
    let mut t = String::from(
        "| history | lines | file | read only | parse only | check | analysis ÷ parse | peak RSS | goal |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        t.push_str(r);
        t.push('\n');
    }
    t
}

const BEGIN: &str = "<!-- bench:begin -->\n";
const END: &str = "<!-- bench:end -->";

/// `doc`'s text and where its table goes.
fn markers(doc: &Path) -> (String, usize, usize) {
    let text = std::fs::read_to_string(doc).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        panic!("{} has no {BEGIN:?} … {END:?} markers", doc.display());
    };
    (text, b, e)
}

/// Replaces the text between the markers in `doc` with `table`.
fn splice(doc: &Path, table: &str) {
    let (text, b, e) = markers(doc);
    let new = format!("{}{BEGIN}{table}{}", &text[..b], &text[e..]);
    std::fs::write(doc, new).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
}
