//! End-to-end tests of `faultline check` and `faultline gen-history`: the
//! real binary, its files and its exit codes (0 valid, 1 invalid, 2 unknown,
//! 254 bad input), and how commands that only print end on a closed pipe.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh directory per test, removed on drop. (No `tempfile` dependency,
/// to keep this crate's manifest untouched.)
struct TestDir(PathBuf);

impl TestDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> TestDir {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("faultline-checker-cli-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creates a test directory");
    TestDir(dir)
}

fn faultline(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline")).args(args).current_dir(dir).output().expect("runs faultline")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

fn gen_to(dir: &Path, extra: &[&str]) {
    let mut args = vec!["gen-history", "--ops", "3000", "--partitions", "3", "--seed", "4", "--out", "history.jsonl"];
    args.extend_from_slice(extra);
    let o = faultline(&args, dir);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
}

/// `check` writes nothing unless asked; with `--write`, results.json.
#[test]
fn clean_history_is_valid_and_writes_results_only_with_write() {
    let dir = tempdir();
    gen_to(dir.path(), &[]);
    let o = faultline(&["check", "history.jsonl"], dir.path());
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(code(&o), 0, "{out}");
    assert!(out.contains("Verdict: valid"), "{out}");
    assert!(!dir.path().join("results.json").exists(), "check wrote without --write");
    let o = faultline(&["check", "--write", "history.jsonl"], dir.path());
    assert!(String::from_utf8_lossy(&o.stdout).contains("Results: "));
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap()).unwrap();
    assert_eq!(results["valid"], true);
}

/// `-` reads the history from standard input and writes nothing anywhere.
#[test]
fn a_history_on_standard_input_is_checked() {
    let dir = tempdir();
    gen_to(dir.path(), &["--inject", "lost-write:1"]);
    let history = std::fs::File::open(dir.path().join("history.jsonl")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["check", "-", "--guarantees", "acks=1"])
        .current_dir(dir.path())
        .stdin(history)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "acks=1 permits the loss: {}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stdout).contains("lost-write: 1 (permitted"));
    assert!(!dir.path().join("results.json").exists());
    assert_eq!(code(&faultline(&["check", "--write", "-"], dir.path())), 254);
}

/// A missing file says why once; a directory without a history says it is
/// not a run directory; both are the user's to fix (254).
#[test]
fn input_errors_say_their_reason_once() {
    let dir = tempdir();
    let o = faultline(&["check", "nope.jsonl"], dir.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 254);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    let o = faultline(&["check", "."], dir.path());
    assert_eq!(code(&o), 254);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a run directory"));
}

#[test]
fn injected_lost_write_is_invalid_with_an_explained_example() {
    let dir = tempdir();
    gen_to(dir.path(), &["--inject", "lost-write:2"]);
    // A store directory works as PATH too.
    let o = faultline(&["check", "."], dir.path());
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(code(&o), 1, "{out}");
    assert!(out.contains("lost-write: 2 (violation)"), "{out}");
    assert!(out.contains("did not return it"), "{out}");
}

#[test]
fn guarantees_from_flag_and_test_json_permit_loss() {
    let dir = tempdir();
    gen_to(dir.path(), &["--inject", "lost-write:1"]);
    let o = faultline(&["check", "history.jsonl", "--guarantees", "acks=1"], dir.path());
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    std::fs::write(dir.path().join("test.json"), r#"{"guarantees": {"acks": "1"}}"#).unwrap();
    let o = faultline(&["check", "history.jsonl", "--json"], dir.path());
    assert_eq!(code(&o), 0);
    let results: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(results["anomalies"]["lost-write"]["status"], "permitted");
}

#[test]
fn unseen_without_drain_is_unknown() {
    let dir = tempdir();
    gen_to(dir.path(), &["--inject", "unseen:2"]);
    let o = faultline(&["check", "history.jsonl"], dir.path());
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn malformed_line_exits_254_naming_line_and_column() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("h.jsonl"),
        "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"poll\",\"value\":{}}\n\
         {\"index\":1 \"time\":2}\n",
    )
    .unwrap();
    let o = faultline(&["check", "h.jsonl"], dir.path());
    assert_eq!(code(&o), 254);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 2, column 12"), "{err}");
}

#[test]
fn missing_file_and_bad_flags_exit_254() {
    let dir = tempdir();
    assert_eq!(code(&faultline(&["check", "nope.jsonl"], dir.path())), 254);
    assert_eq!(code(&faultline(&["check"], dir.path())), 254);
    std::fs::write(dir.path().join("h.jsonl"), "").unwrap();
    assert_eq!(code(&faultline(&["check", "h.jsonl", "--guarantees", "acks=7"], dir.path())), 254);
    assert_eq!(code(&faultline(&["gen-history", "--inject", "nonsense:1"], dir.path())), 254);
    let o = faultline(&["gen-history", "--inject", "lost-write"], dir.path());
    assert_eq!(code(&o), 254, "an injection without a count is refused, not taken as 1");
    assert!(String::from_utf8_lossy(&o.stderr).contains("lost-write:1"));
    assert_eq!(code(&faultline(&["gen-history", "-o", "."], dir.path())), 254, "-o DIR is the user's mistake");
}

#[test]
fn empty_history_is_unknown_not_a_crash() {
    let dir = tempdir();
    std::fs::write(dir.path().join("h.jsonl"), "").unwrap();
    let o = faultline(&["check", "h.jsonl"], dir.path());
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
}

/// `check --format jepsen`: a Jepsen EDN history (here the generator's,
/// written as EDN), valid when clean, invalid with an injected duplicate;
/// the verdict says which rule lost-write followed; a bad line exits 254
/// naming it.
#[test]
fn jepsen_histories_are_checked_and_bad_lines_named() {
    let dir = tempdir();
    let generate = |inject: &[&str]| {
        let mut args =
            vec!["gen-history", "--ops", "3000", "--seed", "2", "--format", "jepsen", "--out", "history.edn"];
        args.extend_from_slice(inject);
        let o = faultline(&args, dir.path());
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    };
    generate(&[]);
    let o = faultline(&["check", "--format", "jepsen", "history.edn"], dir.path());
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(code(&o), 0, "{out}");
    assert!(out.contains("lost-write follows Jepsen's rule"), "{out}");
    // A Jepsen store directory holds history.edn.
    assert_eq!(code(&faultline(&["check", "--format", "jepsen", "."], dir.path())), 0);
    generate(&["--inject", "duplicate:2"]);
    let o = faultline(&["check", "--format", "jepsen", "--json", "history.edn"], dir.path());
    assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stdout));
    let results: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(results["anomalies"]["duplicate"]["count"], 2);
    std::fs::write(dir.path().join("bad.edn"), "{:type :invoke, :process 0, :f :send, :value [[:send 1 2]]}\n{:type\n")
        .unwrap();
    let o = faultline(&["check", "--format", "jepsen", "bad.edn"], dir.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 254, "{err}");
    assert!(err.contains("line 2"), "{err}");
}

/// A reader that goes away (`faultline … | head`) ends a command that only
/// prints the way Unix filters end: by SIGPIPE, without a panic message.
#[test]
fn a_closed_pipe_ends_a_printing_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempdir();
    for args in [&["gen-history", "--ops", "1000"][..], &["campaign", "--builtin", "seed-claims", "--list"][..]] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let o = Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(args)
            .current_dir(dir.path())
            .stdout(writer)
            .output()
            .expect("runs faultline");
        let stderr = String::from_utf8_lossy(&o.stderr);
        let sigpipe = nix::sys::signal::Signal::SIGPIPE as i32;
        assert_eq!(o.status.signal(), Some(sigpipe), "{args:?}: {:?} {stderr}", o.status);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
