//! End-to-end tests of `faultline cluster up|status|down`: the real binary
//! builds network namespaces, a bridge and an iptables chain, starts real
//! `faultline-node` daemons in them, and removes every trace again.
//!
//! These tests need root (CI runs as root); without it they fail with a
//! message saying so. Each test has its own cluster name (derived from the
//! test process id, so parallel suite runs do not collide), directory and
//! subnet, and a guard that runs `cluster down` even when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use faultline_client::api::{CreateTopicRequest, FetchRequest, ProduceRecord, ProduceRequest, RawAcks};

/// Bound on waiting for a harness run we SIGKILL to reach the middle of `up`.
const MID_UP_WAIT: Duration = Duration::from_secs(20);
/// Bound on retrying a produce while a new topic's leader settles.
const PRODUCE_TRIES_MAX: u32 = 50;

fn require_root() {
    let euid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(u32::MAX);
    assert_eq!(euid, 0, "the cluster tests build network namespaces and need root; run them as root (CI does)");
}

/// A cluster name unique to this test process and test: `<tag><pid in base 36>`.
fn unique_name(tag: &str) -> String {
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
fn test_subnet(k: u32) -> String {
    format!("10.214.{}.0/24", (std::process::id() * 8 + k) % 256)
}

/// One test's cluster: its name and directory; `Drop` runs `cluster down`
/// (so a failing test cleans up too) and removes the directory.
struct TestCluster {
    name: String,
    dir: PathBuf,
}

impl TestCluster {
    fn new(tag: &str) -> TestCluster {
        require_root();
        let name = unique_name(tag);
        let dir = std::env::temp_dir().join(format!("faultline-cluster-test-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creates a test directory");
        TestCluster { name, dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--name", &self.name, "--dir"]);
        Command::new(env!("CARGO_BIN_EXE_faultline")).args(&all).arg(&self.dir).output().expect("runs faultline")
    }

    fn up(&self, extra: &[&str]) -> Output {
        let mut args = vec!["cluster", "up"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn down(&self) -> Output {
        self.run(&["cluster", "down"])
    }

    fn state(&self) -> serde_json::Value {
        let path = self.dir.join("store/clusters").join(&self.name).join("state.json");
        serde_json::from_str(&std::fs::read_to_string(&path).expect("state file")).expect("state is JSON")
    }

    fn urls(&self) -> Vec<String> {
        self.state()["nodes"].as_array().unwrap().iter().map(|n| n["url"].as_str().unwrap().to_string()).collect()
    }

    /// Everything of this cluster still on the machine: namespaces, links,
    /// iptables lines and live processes started from its directory.
    fn leftovers(&self) -> Vec<String> {
        let prefix = format!("fl-{}-", self.name);
        let chain = format!("FAULTLINE-FWD-{}", self.name);
        let mut left = Vec::new();
        left.extend(lines(&["ip", "netns", "list"]).into_iter().filter(|l| l.starts_with(&prefix)).map(|l| format!("netns {l}")));
        left.extend(lines(&["ip", "-br", "link"]).into_iter().filter(|l| l.starts_with(&prefix)).map(|l| format!("link {l}")));
        left.extend(lines(&["iptables", "-w", "-S"]).into_iter().filter(|l| l.contains(&chain)).map(|l| format!("iptables {l}")));
        left.extend(live_processes_mentioning(&self.dir).into_iter().map(|p| format!("process {p}")));
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

fn lines(argv: &[&str]) -> Vec<String> {
    let o = Command::new(argv[0]).args(&argv[1..]).output().expect("runs a system tool");
    assert!(o.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect()
}

/// Pids of live (not zombie) processes whose command line mentions `dir`.
fn live_processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let path = entry.path();
        let (Ok(cmdline), Ok(stat)) = (std::fs::read(path.join("cmdline")), std::fs::read_to_string(path.join("stat"))) else { continue };
        let zombie = stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !zombie && cmdline.contains(&needle) {
            found.push(format!("{} {cmdline}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

fn assert_ok(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(0), "{what} failed:\nstdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Every node answers /health with 200 from the control side and reports an
/// elected controller.
async fn assert_healthy(urls: &[String]) {
    for url in urls {
        let client = faultline_client::Client::with_timeout(url.clone(), Duration::from_secs(2));
        let health = client.health().await.unwrap_or_else(|e| panic!("{url} /health: {e}"));
        assert_eq!(health.status, "ok", "{url}");
        let info = client.cluster().await.unwrap_or_else(|e| panic!("{url} /v1/cluster: {e}"));
        assert!(info.controller.is_some(), "{url} reports no controller: {info:?}");
        assert_eq!(info.brokers.len(), urls.len(), "{url}: {info:?}");
    }
}

/// A replicated topic, one acks=all record produced and fetched back.
async fn produce_and_fetch(urls: &[String], topic: &str) {
    let client = faultline_client::cluster::ClusterClient::new(urls.to_vec(), Duration::from_secs(5));
    let node = faultline_client::Client::with_timeout(urls[0].clone(), Duration::from_secs(5));
    let req = CreateTopicRequest { name: topic.into(), partitions: Some(1), replication_factor: Some(urls.len() as i64), ..Default::default() };
    node.create_topic(&req).await.expect("creates a topic");
    let produce = ProduceRequest {
        acks: RawAcks::Text("all".into()),
        timeout_ms: Some(5000),
        producer_id: None,
        producer_epoch: None,
        base_sequence: None,
        records: vec![ProduceRecord { key: None, value: "hello".into(), timestamp: None }],
    };
    let mut tries = 0;
    let offset = loop {
        match client.produce(topic, 0, &produce).await {
            Ok(r) => break r.base_offset.expect("acks=all answers with an offset"),
            Err(e) if tries < PRODUCE_TRIES_MAX => {
                tries += 1;
                eprintln!("produce retry {tries}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("produce failed after {tries} retries: {e}"),
        }
    };
    let fetched = client.fetch(topic, 0, &FetchRequest { offset, max_records: Some(10), max_bytes: None, max_wait_ms: None }).await.expect("fetches");
    assert_eq!(fetched.records.len(), 1, "{fetched:?}");
    assert_eq!((fetched.records[0].offset, fetched.records[0].value.as_str()), (offset, "hello"));
}

/// `up` with three nodes: every node healthy from the control side with a
/// controller, a record goes through a node address; `status` sees them;
/// `down` leaves no namespace, link, iptables rule or process, and a second
/// `down` is fine.
#[test]
fn three_nodes_up_serve_a_record_and_down_leaves_nothing() {
    let c = TestCluster::new("up");
    assert_ok(&c.up(&["--nodes", "3", "--subnet", &test_subnet(0)]), "cluster up");
    let urls = c.urls();
    assert_eq!(urls.len(), 3);
    runtime().block_on(async {
        assert_healthy(&urls).await;
        produce_and_fetch(&urls, "t").await;
    });
    let status = c.run(&["cluster", "status"]);
    assert_ok(&status, "cluster status");
    assert_eq!(String::from_utf8_lossy(&status.stdout).matches("Running, health ok").count(), 3, "{}", String::from_utf8_lossy(&status.stdout));
    assert!(!c.leftovers().is_empty(), "the cluster's resources are visible while it is up");

    assert_ok(&c.down(), "cluster down");
    assert_eq!(c.leftovers(), Vec::<String>::new());
    assert_eq!(c.state()["phase"], "down");
    assert_ok(&c.down(), "a second cluster down");
}

/// The harness SIGKILLed in the middle of `up` (nodes already started) leaves
/// daemons and network behind; `down` removes all of it.
#[test]
fn down_after_sigkilled_up_leaves_nothing() {
    let c = TestCluster::new("kl");
    let mut up = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["cluster", "up", "--nodes", "3", "--name", &c.name, "--dir"])
        .arg(&c.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts faultline");
    let first_pid_file = c.dir.join("store/clusters").join(&c.name).join("n1/node.pid");
    let deadline = Instant::now() + MID_UP_WAIT;
    while !first_pid_file.exists() {
        assert!(Instant::now() < deadline, "cluster up never started a node");
        assert!(up.try_wait().unwrap().is_none(), "cluster up exited before starting a node");
        std::thread::sleep(Duration::from_millis(1));
    }
    up.kill().unwrap();
    up.wait().unwrap();
    assert_eq!(c.state()["phase"], "creating", "the kill landed in the middle of up");
    let node_pid: u32 = std::fs::read_to_string(&first_pid_file).unwrap().trim().parse().unwrap();
    assert!(Path::new(&format!("/proc/{node_pid}")).exists(), "the node outlives the killed harness");
    assert!(!c.leftovers().is_empty());

    assert_ok(&c.down(), "cluster down after a crash");
    assert_eq!(c.leftovers(), Vec::<String>::new());
}

/// Two clusters at once: both healthy, and `down` of one leaves the other
/// healthy and intact.
#[test]
fn two_clusters_run_side_by_side_and_down_only_their_own() {
    let a = TestCluster::new("pa");
    let b = TestCluster::new("pb");
    assert_ok(&a.up(&["--nodes", "2", "--subnet", &test_subnet(1)]), "cluster up a");
    assert_ok(&b.up(&["--nodes", "2", "--subnet", &test_subnet(2)]), "cluster up b");
    let (urls_a, urls_b) = (a.urls(), b.urls());
    runtime().block_on(async {
        assert_healthy(&urls_a).await;
        assert_healthy(&urls_b).await;
    });
    let b_before = b.leftovers();
    assert_ok(&a.down(), "cluster down a");
    assert_eq!(a.leftovers(), Vec::<String>::new());
    assert_eq!(b.leftovers(), b_before, "down of a touched b");
    runtime().block_on(assert_healthy(&urls_b));
    assert_ok(&b.down(), "cluster down b");
    assert_eq!(b.leftovers(), Vec::<String>::new());
}

/// A PATH without `iptables` stops `up` before it creates anything, with
/// exit 255 and a message naming the package to install; bad arguments
/// exit 254.
#[test]
fn missing_iptables_and_bad_arguments_are_named() {
    let c = TestCluster::new("pr");
    let bin = tempfile_dir(&c.dir, "bin");
    let ip = lines(&["sh", "-c", "command -v ip"]).pop().expect("ip is installed");
    std::os::unix::fs::symlink(&ip, bin.join("ip")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["cluster", "up", "--name", &c.name, "--dir"])
        .arg(&c.dir)
        .env("PATH", &bin)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(255), "{stderr}");
    assert!(stderr.contains("`iptables` not found") && stderr.contains("install the `iptables` package"), "{stderr}");
    assert_eq!(c.leftovers(), Vec::<String>::new());

    for bad in [&["--nodes", "0"][..], &["--config", "node.id=7"], &["--config", "novalue"], &["--subnet", "10.1.0.0/16"]] {
        let o = c.up(bad);
        assert_eq!(o.status.code(), Some(254), "{bad:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let o = Command::new(env!("CARGO_BIN_EXE_faultline")).args(["cluster", "up", "--name", "Bad_Name"]).output().unwrap();
    assert_eq!(o.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cluster name"));
}

fn tempfile_dir(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
