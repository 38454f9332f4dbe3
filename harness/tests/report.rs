//! `report.html`, tested as a person would look at it: the real
//! `faultline report` on a history with anomalies and on a clean one,
//! rendered by headless Chromium (a screenshot proves it renders; the DOM
//! after layout proves the charts and tables are there and not empty).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::chromium::{self, element};

struct TestDir(PathBuf);

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir(tag: &str) -> TestDir {
    let dir = std::env::temp_dir().join(format!("faultline-report-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creates a test directory");
    TestDir(dir)
}

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline")).args(args).output().expect("runs faultline")
}

/// A generated history in `dir` with `inject`ed anomalies, and its report.
fn report_of(dir: &Path, inject: &str) -> PathBuf {
    let history = dir.join("history.jsonl");
    let mut args = vec!["gen-history", "--ops", "20000", "--seed", "5", "-o", history.to_str().unwrap()];
    if !inject.is_empty() {
        args.extend(["--inject", inject]);
    }
    let o = faultline(&args);
    assert!(o.status.success(), "gen-history: {}", String::from_utf8_lossy(&o.stderr));
    let o = faultline(&["report", dir.to_str().unwrap()]);
    assert!(o.status.success(), "report: {}", String::from_utf8_lossy(&o.stderr));
    let path = dir.join("report.html");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), path.display().to_string());
    path
}

/// Charts with lines, points and shaded fault windows; the tables filled.
fn assert_charts_and_tables(dom: &str) {
    let throughput = element(dom, "throughput");
    assert!(throughput.contains("<svg") && throughput.matches("<polyline").count() >= 2, "throughput has no lines");
    // plotters writes each SVG text on a line of its own.
    assert!(throughput.contains("\nF1\n</text>"), "throughput has no numbered fault window");
    let latency = element(dom, "latency");
    assert!(latency.matches("<circle").count() > 1_000, "latency has too few points");
    assert!(element(dom, "faults").matches("<tr").count() >= 3, "the fault table is empty");
    assert!(element(dom, "availability").matches("<tr").count() >= 5, "the partition table is empty");
    assert!(element(dom, "replicas").matches("<tr").count() >= 5, "the replica table is empty");
    assert!(dom.contains("class=\"partition-chart\"") || dom.contains("class=\"chart partition-chart\""));
    assert!(element(dom, "timeline").matches("class=\"op ok\"").count() > 20, "the timeline is empty");
}

/// A history with lost writes and duplicates: an invalid verdict, each
/// example with its offset picture (its value marked) and its witness ops.
#[test]
fn a_report_with_anomalies_renders_them_with_offset_pictures() {
    let dir = tempdir("anomalies");
    let path = report_of(&dir.0, "lost-write:3,duplicate:2");
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 5_000_000, "report is {size} bytes");
    let page = chromium::render(&format!("file://{}", path.display()), &dir.0, "report-invalid", 2400);
    let dom = &page.dom;
    assert!(element(dom, "verdict").contains(">invalid<"), "{}", element(dom, "verdict"));
    assert_charts_and_tables(dom);
    let lost = element(dom, "lost-write");
    assert!(lost.contains(">lost-write<") && lost.contains("3 (violation"), "{lost}");
    assert!(dom.matches("class=\"strip\"").count() >= 5, "an example lacks its offset picture");
    assert!(dom.matches("class=\"marked").count() >= 5, "an example's value is not marked");
    let witness = element(dom, "witness-ops");
    assert!(witness.matches("<tr id=\"w-").count() >= 10, "witness ops missing");
    assert!(element(dom, "summary").contains("% of acknowledged on events/"), "the summary gives no shares");
    assert!(page.png.exists());
}

/// A clean history: a valid verdict and no anomaly section, the charts
/// and tables all the same.
#[test]
fn a_valid_report_says_so_and_still_draws_everything() {
    let dir = tempdir("valid");
    let path = report_of(&dir.0, "");
    let page = chromium::render(&format!("file://{}", path.display()), &dir.0, "report-valid", 1600);
    let dom = &page.dom;
    assert!(element(dom, "verdict").contains(">valid<"), "{}", element(dom, "verdict"));
    assert!(element(dom, "no-anomalies").contains("No anomalies."));
    assert_charts_and_tables(dom);
}

/// Bad input gets a clear error and exit 254; nothing is written.
#[test]
fn report_of_a_directory_without_a_history_is_bad_input() {
    let dir = tempdir("bad");
    let o = faultline(&["report", dir.0.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(254));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not a run or campaign directory: it has no history.jsonl or campaign.json"), "{err}");
    std::fs::write(dir.0.join("history.jsonl"), "{\"index\":0,\"time\":1}\n{not json\n").unwrap();
    let o = faultline(&["report", dir.0.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 1"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!dir.0.join("report.html").exists());
}
