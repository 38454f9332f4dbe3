//! End-to-end tests of `faultline cluster up|status|down`: the real binary
//! builds network namespaces, a bridge and an iptables chain, starts real
//! `faultline-node` daemons in them, and removes every trace again.
//!
//! These tests need root (CI runs as root); without it they fail with a
//! message saying so. Each test has its own cluster name (derived from the
//! test process id, so parallel suite runs do not collide), directory and
//! subnet, and a guard that runs `cluster down` even when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use faultline_client::api::{CreateTopicRequest, FetchRequest, ProduceRecord, ProduceRequest, RawAcks};

mod support;

use support::*;

/// A replicated topic, one acks=all record produced and fetched back.
async fn produce_and_fetch(urls: &[String], topic: &str) {
    let client = faultline_client::cluster::ClusterClient::new(urls.to_vec(), Duration::from_secs(5));
    let node = faultline_client::Client::with_timeout(urls[0].clone(), Duration::from_secs(5));
    let req = CreateTopicRequest {
        name: topic.into(),
        partitions: Some(1),
        replication_factor: Some(urls.len() as i64),
        ..Default::default()
    };
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
    let fetched = client
        .fetch(topic, 0, &FetchRequest { offset, max_records: Some(10), max_bytes: None, max_wait_ms: None })
        .await
        .expect("fetches");
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
    assert_eq!(
        String::from_utf8_lossy(&status.stdout).matches("running, health ok").count(),
        3,
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
    let status = c.run(&["cluster", "status", "--json"]);
    assert_ok(&status, "cluster status --json");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status is JSON");
    assert_eq!(status["state"], "up (kept)", "{status:#}");
    assert!(
        status["nodes"].as_array().unwrap().iter().all(|n| n["process"] == "running" && n["health"] == "health ok")
    );
    // Kafka's view: the topic `produce_and_fetch` made, led, with a full ISR
    // and the record below the high watermark.
    let describe = c.run(&["cluster", "describe", "--json"]);
    assert_ok(&describe, "cluster describe --json");
    let rows: serde_json::Value = serde_json::from_slice(&describe.stdout).expect("describe is JSON");
    let t = rows.as_array().unwrap().iter().find(|r| r["topic"] == "t").expect("topic t described");
    assert!(t["leader"].is_i64() && t["isr"].as_array().unwrap().len() == 3, "{t}");
    assert!(t["high_watermark"].as_i64().unwrap() >= 1 && t["high_watermark"] == t["log_end_offset"], "{t}");
    let under = c.run(&["cluster", "describe", "--under-replicated-partitions", "--json"]);
    let under: serde_json::Value = serde_json::from_slice(&under.stdout).unwrap();
    assert!(!under.as_array().unwrap().iter().any(|r| r["topic"] == "t"), "a healthy topic is not under-replicated");
    assert!(!c.leftovers().is_empty(), "the cluster's resources are visible while it is up");
    // A real Kafka client (kcat, librdkafka) sees the same cluster on 9093.
    let ip = urls[0].trim_start_matches("http://").split(':').next().unwrap().to_string();
    let kcat = Command::new("kcat").args(["-b", &format!("{ip}:9093"), "-L", "-t", "t", "-m", "10"]).output();
    let kcat = kcat.expect("kcat runs (Debian package kcat; scripts/setup.sh installs it)");
    let listing = String::from_utf8_lossy(&kcat.stdout);
    assert!(kcat.status.success() && listing.contains(" 3 brokers:"), "kcat -L: {listing}");
    assert!(listing.contains(&format!("leader {}", t["leader"])), "{listing}");

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
        .args(["cluster", "up", "--nodes", "3", "--name", &c.name, "--store"])
        .arg(c.store())
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
        .args(["cluster", "up", "--name", &c.name, "--store"])
        .arg(c.store())
        .env("PATH", &bin)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(255), "{stderr}");
    assert!(stderr.contains("`iptables` not found") && stderr.contains("install the `iptables` package"), "{stderr}");
    assert_eq!(c.leftovers(), Vec::<String>::new());

    for bad in [
        &["--nodes", "0"][..],
        &["--broker-config", "node.id=7"],
        &["--broker-config", "novalue"],
        &["--subnet", "10.1.0.0/16"],
    ] {
        let o = c.up(bad);
        assert_eq!(o.status.code(), Some(254), "{bad:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let o =
        Command::new(env!("CARGO_BIN_EXE_faultline")).args(["cluster", "up", "--name", "Bad_Name"]).output().unwrap();
    assert_eq!(o.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cluster name"));
    for sub in ["status", "down"] {
        let o = c.run(&["cluster", sub]);
        assert_eq!(o.status.code(), Some(254), "{sub} of a cluster that is not there is the user's mistake");
        assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
    }
}

fn tempfile_dir(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `faultline run` SIGKILLed with its cluster up leaves a stale cluster:
/// `cluster list` says so, the next run in that store refuses to start and
/// names the command, and `cluster down --all` removes everything, with no
/// process of the cluster left when it returns.
#[test]
fn a_killed_run_leaves_a_stale_cluster_that_list_names_and_down_all_removes() {
    let c = TestCluster::new("st");
    let faultline = env!("CARGO_BIN_EXE_faultline");
    let subnet = test_subnet(3);
    let mut run = Command::new(faultline)
        .args(["run", "--time-limit", "120", "--rate", "20", "--cluster-name", &c.name, "--store"])
        .arg(c.store())
        .args(["--subnet", &subnet])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts faultline run");
    wait_cluster_up(&mut run, &c.store(), &c.name);
    let deadline = Instant::now() + Duration::from_secs(60);
    // Clients are started once the cluster is up; wait for one.
    // Their spec names the nodes' URLs; nothing else's command line does.
    let urls = format!("http://{}", subnet.trim_end_matches("0/24"));
    let clients = Path::new(&urls);
    while live_processes_mentioning(clients).is_empty() {
        assert!(Instant::now() < deadline, "the run never started a client");
        std::thread::sleep(Duration::from_millis(50));
    }
    run.kill().unwrap();
    run.wait().unwrap();
    assert!(!live_processes_mentioning(&c.dir).is_empty(), "the nodes outlive the killed run");
    // Clients do not outlive their harness (PR_SET_PDEATHSIG, and their
    // next event meets a closed pipe).
    let gone = Instant::now() + Duration::from_secs(5);
    while !live_processes_mentioning(clients).is_empty() {
        assert!(Instant::now() < gone, "clients outlive their harness: {:?}", live_processes_mentioning(clients));
        std::thread::sleep(Duration::from_millis(20));
    }

    let list = Command::new(faultline).args(["cluster", "list", "--store"]).arg(c.store()).output().unwrap();
    assert_ok(&list, "cluster list");
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains(&c.name) && listed.contains("STALE"), "{listed}");

    let next = Command::new(faultline)
        .args(["run", "--time-limit", "1", "--cluster-name", "other", "--store"])
        .arg(c.store())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&next.stderr);
    assert_eq!(next.status.code(), Some(254), "{err}");
    assert!(err.contains(&c.name) && err.contains("faultline cluster down --all --store"), "{err}");

    let down = Command::new(faultline).args(["cluster", "down", "--all", "--store"]).arg(c.store()).output().unwrap();
    assert_ok(&down, "cluster down --all");
    assert!(String::from_utf8_lossy(&down.stdout).contains(&c.name));
    assert_eq!(c.leftovers(), Vec::<String>::new(), "nothing is left when down returns");
    let list = Command::new(faultline).args(["cluster", "list", "--store"]).arg(c.store()).output().unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains(&format!("{} down", c.name)));
}
