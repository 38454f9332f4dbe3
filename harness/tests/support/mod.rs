//! Shared support for the harness's root tests: a test cluster with a
//! unique name, directory and subnet that is always torn down, leak checks,
//! and small helpers.

#![allow(dead_code)]

pub mod chromium;
pub mod runs;
pub mod sshd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Bound on waiting for a harness run we SIGKILL to reach the middle of `up`.
pub const MID_UP_WAIT: Duration = Duration::from_secs(20);
/// Bound on retrying a produce while a new topic's leader settles.
pub const PRODUCE_TRIES_MAX: u32 = 50;

pub fn require_root() {
    let euid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(u32::MAX);
    assert_eq!(euid, 0, "the cluster tests build network namespaces and need root; run them as root (CI does)");
}

/// A cluster name unique to this test process and test: `<tag><pid in base 36>`.
pub fn unique_name(tag: &str) -> String {
    let (mut pid, mut digits) = (std::process::id(), Vec::new());
    while pid > 0 {
        digits.push(char::from_digit(pid % 36, 36).unwrap());
        pid /= 36;
    }
    let name = format!("{tag}{}", digits.into_iter().rev().collect::<String>());
    assert!(name.len() <= 8, "{name}");
    name
}

/// A /24 for test number `k` of this process, away from the harness's
/// default range (10.213/16) so explicit and default subnets never meet.
pub fn test_subnet(k: u32) -> String {
    format!("10.214.{}.0/24", (std::process::id() * 8 + k) % 256)
}

/// One test's cluster: its name and directory; `Drop` runs `cluster down`
/// (so a failing test cleans up too) and removes the directory.
pub struct TestCluster {
    pub name: String,
    pub dir: PathBuf,
}

impl TestCluster {
    pub fn new(tag: &str) -> TestCluster {
        require_root();
        let name = unique_name(tag);
        let dir = std::env::temp_dir().join(format!("faultline-cluster-test-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creates a test directory");
        TestCluster { name, dir }
    }

    /// The test's store: `<dir>/store`, as `faultline run --store` takes it.
    pub fn store(&self) -> PathBuf {
        self.dir.join("store")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--name", &self.name, "--store"]);
        Command::new(env!("CARGO_BIN_EXE_faultline")).args(&all).arg(self.store()).output().expect("runs faultline")
    }

    pub fn up(&self, extra: &[&str]) -> Output {
        let mut args = vec!["cluster", "up"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    pub fn down(&self) -> Output {
        self.run(&["cluster", "down"])
    }

    pub fn state(&self) -> serde_json::Value {
        let path = self.dir.join("store/clusters").join(&self.name).join("state.json");
        serde_json::from_str(&std::fs::read_to_string(&path).expect("state file")).expect("state is JSON")
    }

    pub fn urls(&self) -> Vec<String> {
        self.state()["nodes"].as_array().unwrap().iter().map(|n| n["url"].as_str().unwrap().to_string()).collect()
    }

    /// Everything of this cluster still on the machine: namespaces, links,
    /// iptables lines and live processes started from its directory.
    pub fn leftovers(&self) -> Vec<String> {
        let prefix = format!("fl-{}-", self.name);
        let chain = format!("FAULTLINE-FWD-{}", self.name);
        let mut left = Vec::new();
        left.extend(
            lines(&["ip", "netns", "list"])
                .into_iter()
                .filter(|l| l.starts_with(&prefix))
                .map(|l| format!("netns {l}")),
        );
        left.extend(
            lines(&["ip", "-br", "link"]).into_iter().filter(|l| l.starts_with(&prefix)).map(|l| format!("link {l}")),
        );
        left.extend(
            lines(&["iptables", "-w", "-S"])
                .into_iter()
                .filter(|l| l.contains(&chain))
                .map(|l| format!("iptables {l}")),
        );
        left.extend(live_processes_mentioning(&self.dir).into_iter().map(|p| format!("process {p}")));
        left.extend(mounts_under(&self.dir).into_iter().map(|m| format!("mount {m}")));
        left
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if !self.dir.join("store/clusters").join(&self.name).join("state.json").exists() {
            let _ = std::fs::remove_dir_all(&self.dir);
            return;
        }
        let o = self.down();
        if !o.status.success() && !std::thread::panicking() {
            eprintln!("cleanup `cluster down` failed: {}", String::from_utf8_lossy(&o.stderr));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits (bounded) until the `faultline run` child `run` has its cluster
/// `name` up in `store`; fails if the run exits first.
pub fn wait_cluster_up(run: &mut std::process::Child, store: &Path, name: &str) {
    let state = store.join("clusters").join(name).join("state.json");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&state).is_ok_and(|s| s.contains("\"phase\": \"up\"")) {
        assert!(std::time::Instant::now() < deadline, "the run's cluster never came up");
        assert!(run.try_wait().unwrap().is_none(), "the run exited before its cluster was up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Mount points under `dir` (a lazyfs disk left mounted), from the mount table.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").expect("reads the mount table");
    let dir = dir.to_string_lossy().replace(' ', "\\040");
    table.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(&dir)).map(str::to_owned).collect()
}

pub fn lines(argv: &[&str]) -> Vec<String> {
    let o = Command::new(argv[0]).args(&argv[1..]).output().expect("runs a system tool");
    assert!(o.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect()
}

/// Pids of live (not zombie) processes whose command line mentions `dir`.
pub fn live_processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let path = entry.path();
        let (Ok(cmdline), Ok(stat)) = (std::fs::read(path.join("cmdline")), std::fs::read_to_string(path.join("stat")))
        else {
            continue;
        };
        let zombie = stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !zombie && cmdline.contains(&needle) {
            found.push(format!("{} {cmdline}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// `faultline ARGS --store STORE` without `RUST_LOG`: exit code, stdout, stderr.
pub fn faultline(args: &[&str], store: &Path) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .arg("--store")
        .arg(store)
        .env_remove("RUST_LOG")
        .output()
        .expect("runs faultline");
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

pub fn assert_ok(o: &Output, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Every node answers /health with 200 from the control side and reports an
/// elected controller.
pub async fn assert_healthy(urls: &[String]) {
    for url in urls {
        let client = faultline_client::Client::with_timeout(url.clone(), Duration::from_secs(2));
        let health = client.health().await.unwrap_or_else(|e| panic!("{url} /health: {e}"));
        assert_eq!(health.status, "ok", "{url}");
        let info = client.cluster().await.unwrap_or_else(|e| panic!("{url} /v1/cluster: {e}"));
        assert!(info.controller.is_some(), "{url} reports no controller: {info:?}");
        assert_eq!(info.brokers.len(), urls.len(), "{url}: {info:?}");
    }
}
