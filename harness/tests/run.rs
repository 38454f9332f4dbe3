//! End-to-end tests of `faultline run` on a real cluster in network
//! namespaces: a fault-free run is valid with thousands of acknowledged
//! sends all read back by the final drain, and SIGKILLed client processes
//! leave `info` ops and are replaced under new process ids while the
//! history stays well-formed; with a nemesis, acks=all survives kills and
//! partitions while acks=1 loses acknowledged writes to a zombie leader.
//! Needs root, as CI has. Each test has its own
//! cluster name, directory and subnet; the cluster guard tears down even a
//! failed run, and each test checks that nothing leaked.

mod support;

use std::process::Command;

use faultline_checker::op::{F, Op, OpType, OpValue, Process};
use support::runs::*;
use support::*;

#[test]
fn fault_free_run_is_valid_and_reads_every_acknowledged_send() {
    let cluster = TestCluster::new("rv");
    let subnet = test_subnet(0);
    // Kafka's client settings reach the clients: consumers' polls return
    // at most max.poll.records per partition.
    let settings = ["--consumer-config", "max.poll.records=7", "--producer-config", "delivery.timeout.ms=20000"];
    let o = run(
        &cluster,
        &subnet,
        &[&["--time-limit", "15", "--producers", "6", "--rate", "1000", "--log-format", "json"][..], &settings]
            .concat(),
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "a fault-free run is valid:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dir = run_dir(&cluster);
    assert!(stdout.contains("Verdict: valid") && stdout.contains(&dir.display().to_string()), "{stdout}");
    assert_json_log(&String::from_utf8_lossy(&o.stderr));

    let results = json(&dir.join("results.json"));
    assert_eq!(results["valid"], serde_json::json!(true), "{results:#}");
    let acked = results["stats"]["ops"]["send"]["ok"].as_u64().unwrap_or(0);
    // A volume floor, not a rate: the run sends for 15 s, and on a loaded
    // 2-core CI machine (other root tests run beside it) a debug build may
    // manage a tenth of the 1000/s asked for.
    assert!(acked >= 300, "hundreds of acknowledged sends, got {acked}");
    let partitions = results["stats"]["partitions"].as_object().expect("partition stats");
    assert_eq!(partitions.len(), 3);
    for (name, p) in partitions {
        assert_eq!(p["drained"], serde_json::json!(true), "{name} fully drained: {p}");
        assert_eq!((p["lost"].as_u64(), p["unseen"].as_u64()), (Some(0), Some(0)), "{name}: {p}");
    }

    // Every acknowledged value was read by the final drain.
    let ops = history(&dir);
    assert_well_formed(&ops);
    let mut acked_values = std::collections::HashSet::new();
    let mut drained = std::collections::HashSet::new();
    for op in &ops {
        match (&op.value, op.op_type) {
            (faultline_checker::op::OpValue::Send(s), OpType::Ok) => acked_values
                .extend(s.records.0.iter().flat_map(|(p, rs)| rs.iter().map(move |r| (p.clone(), r.value.clone())))),
            (faultline_checker::op::OpValue::Poll(v), OpType::Ok) if op.is_final => drained
                .extend(v.records.0.iter().flat_map(|(p, rs)| rs.iter().map(move |(_, v)| (p.clone(), v.clone())))),
            _ => {}
        }
    }
    assert_eq!(acked_values.len() as u64, acked);
    assert!(
        acked_values.is_subset(&drained),
        "{} acknowledged values not drained",
        acked_values.difference(&drained).count()
    );

    let replicas = json(&dir.join("replicas.json"));
    let replicas = replicas.as_object().expect("replicas.json is an object");
    assert_eq!(replicas.len(), 3, "every partition dumped");
    assert!(replicas.values().all(|nodes| nodes.as_object().map(|n| n.len()) == Some(3)), "every replica dumped: RF 3");
    let test = json(&dir.join("test.json"));
    assert_eq!(test["guarantees"]["acks"], "all", "{test:#}");
    assert_client_settings_took_effect(&test, &ops);
    assert_eq!(test["seed"], 42);
    for n in ["n1", "n2", "n3"] {
        assert!(dir.join("nodes").join(n).join("node.log").is_file(), "node log of {n} stored");
        let metrics = std::fs::read_to_string(dir.join("nodes").join(n).join("metrics.txt")).expect("metrics saved");
        assert!(metrics.contains("# TYPE"), "Prometheus text of {n}");
        assert!(!dir.join("nodes").join(n).join("data").exists(), "data dirs are kept only for invalid runs");
    }
    assert!(cluster.dir.join("store/t/latest/faultline.log").is_file());

    // `faultline check` re-checks the stored run to the same verdict.
    let check = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("check")
        .arg(cluster.dir.join("store/latest"))
        .output()
        .unwrap();
    assert_ok(&check, "faultline check store/latest");
    assert_no_leftovers(&cluster, &subnet);
}

/// The fault-free run's `--producer-config`/`--consumer-config`: recorded
/// in test.json, and in effect (polls return at most max.poll.records per
/// partition; the stop grace follows delivery.timeout.ms).
/// `--log-format json`: every stderr line is one JSON object with a level
/// and a message, and the run's steps are there.
fn assert_json_log(stderr: &str) {
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    for e in &events {
        assert!(e["level"].is_string() && e["message"].is_string(), "{e}");
    }
    let messages: Vec<&str> = events.iter().filter_map(|e| e["message"].as_str()).collect();
    for step in ["cluster up:", "workload:", "final phase:", "verdict: valid"] {
        assert!(messages.iter().any(|m| m.starts_with(step)), "{step} in {messages:?}");
    }
}

fn assert_client_settings_took_effect(test: &serde_json::Value, ops: &[Op]) {
    assert_eq!(test["producer"]["delivery.timeout.ms"], 20_000, "{test:#}");
    assert_eq!(test["consumer"]["max.poll.records"], 7);
    assert_eq!(test["timeouts"]["client_stop_grace_ms"], 25_000, "the stop grace follows delivery.timeout.ms");
    let polls = ops.iter().filter_map(|op| match (&op.value, op.op_type, op.is_final) {
        (faultline_checker::op::OpValue::Poll(v), OpType::Ok, false) => Some(v),
        _ => None,
    });
    let largest = polls.flat_map(|v| v.records.0.iter().map(|(_, rs)| rs.len())).max().unwrap_or(0);
    assert!((1..=7).contains(&largest), "consumer polls return at most max.poll.records per partition: {largest}");
}

#[test]
fn killed_clients_leave_info_ops_and_are_replaced_under_new_process_ids() {
    let cluster = TestCluster::new("rk");
    let subnet = test_subnet(1);
    let o = run(
        &cluster,
        &subnet,
        &[
            "--time-limit",
            "8",
            "--producers",
            "2",
            "--consumers",
            "2",
            "--kill-client",
            "producer:3",
            "--kill-client",
            "consumer:4",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        matches!(o.status.code(), Some(0..=2)),
        "the run completes with a verdict:\nstdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&o.stdout)
    );
    let dir = run_dir(&cluster);

    let ops = history(&dir);
    assert_well_formed(&ops);
    faultline_checker::History::parse(std::fs::read_to_string(dir.join("history.jsonl")).unwrap().as_bytes())
        .expect("the checker parses the history");
    let crashed: Vec<&Op> = ops
        .iter()
        .filter(|o| {
            o.op_type == OpType::Info && o.error.as_deref().is_some_and(|e| e.contains("client process exited"))
        })
        .collect();
    assert!(
        crashed.iter().any(|o| o.f == F::Send && o.process == Process::Client(0)),
        "the killed producer's send is info: {crashed:?}"
    );
    assert!(
        crashed.iter().any(|o| o.process == Process::Client(2) && matches!(o.f, F::Poll | F::Commit | F::Assign)),
        "the killed consumer's op is info: {crashed:?}"
    );
    // Producers 0-1 and consumers 2-3 are the first processes; replacements
    // and the drain reader come after, each id new.
    let late = |p: &Process| matches!(p, Process::Client(id) if *id >= 4);
    assert!(
        ops.iter().any(|o| late(&o.process) && o.f == F::Send && o.op_type == OpType::Ok),
        "a replacement producer under a new id sends"
    );
    assert!(ops.iter().any(|o| late(&o.process) && o.f == F::Assign), "a replacement consumer under a new id assigns");
    let killed_producer = crashed.iter().find(|o| o.process == Process::Client(0)).expect("found above");
    assert!(
        !ops.iter().any(|o| o.process == Process::Client(0) && o.index > killed_producer.index),
        "the killed producer's process id is never used again"
    );
    let log = std::fs::read_to_string(dir.join("faultline.log")).unwrap();
    assert!(log.contains("SIGKILL process 0 (") && log.contains("SIGKILL process 2 ("), "{log}");

    let results = json(&dir.join("results.json"));
    assert_eq!(results["valid"], serde_json::json!(true), "killing clients breaks no guarantee: {results:#}");
    assert!(results["stats"]["ops"]["send"]["info"].as_u64().unwrap_or(0) >= 1, "{results:#}");
    assert_no_leftovers(&cluster, &subnet);
}

#[test]
fn bad_or_conflicting_options_exit_254_before_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    for args in [
        &["--nemesis", "nap"][..],
        &["--nemesis", "kill", "--nemesis-timeline", "t.toml"],
        &["--nemesis", "kill", "--nemesis-interval", "0"],
        &["--nemesis-timeline", "/nonexistent/timeline.toml"],
        &["--acks", "1", "--idempotence", "true"],
        &["--acks", "2"],
        &["--replication-factor", "4"],
        &["--min-insync-replicas", "3", "--replication-factor", "2"],
        &["--rate", "0"],
        &["--bug", "no-such-switch"],
        &["--no-such-option"],
        &["--producer-mode", "yolo"],
        &["--linger-ms", "20000"],
        &["--batch-size", "4096", "--buffer-memory", "1024"],
        &["--retries", "0", "--idempotence", "true"],
        &["--commit", "sometimes"],
        &["--process-time-ms", "5000"],
        &["--sink-mode", "eventual"],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_faultline"))
            .arg("run")
            .args(args)
            .arg("--store")
            .arg(&store)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(254), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(!String::from_utf8_lossy(&o.stderr).trim().is_empty(), "{args:?} says why");
    }
    assert!(!store.exists(), "nothing was created");
}

#[test]
fn sigterm_mid_run_tears_everything_down_and_exits_255() {
    let cluster = TestCluster::new("rt");
    let subnet = test_subnet(2);
    let store = cluster.dir.join("store");
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["run", "--name", "t", "--time-limit", "60", "--store"])
        .arg(&store)
        .args(["--cluster-name", &cluster.name, "--subnet", &subnet])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_workload(&store);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = std::time::Instant::now() + MID_UP_WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("faultline run did not exit within {MID_UP_WAIT:?} of SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(255), "a terminated run is a harness failure");
    let dir = run_dir(&cluster);
    assert!(dir.join("nodes/n1/node.log").is_file(), "node logs are collected on the way out");
    assert!(std::fs::read_to_string(dir.join("faultline.log")).unwrap().contains("terminated (SIGTERM)"));
    assert_no_leftovers(&cluster, &subnet);
}

/// The nemesis's ops in a history: `f` of every `process: "nemesis"` op.
fn nemesis_fs(ops: &[Op]) -> Vec<String> {
    ops.iter().filter(|o| o.process == Process::Nemesis).map(|o| o.f.to_string()).collect()
}

#[test]
fn acks_all_with_kill_and_partition_faults_is_valid() {
    let cluster = TestCluster::new("rn");
    let subnet = test_subnet(4);
    let o = run(
        &cluster,
        &subnet,
        &[
            "--time-limit",
            "20",
            "--rate",
            "300",
            "--acks",
            "all",
            "--replication-factor",
            "3",
            "--min-insync-replicas",
            "2",
            "--nemesis",
            "kill,partition,kill-producer",
            "--nemesis-interval",
            "3",
            "--seed",
            "42",
        ],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "acks=all, RF=3, min ISR 2 loses nothing under kills and partitions:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dir = run_dir(&cluster);
    let ops = history(&dir);
    assert_well_formed(&ops);
    let faults = nemesis_fs(&ops);
    assert!(
        faults.iter().any(|f| f == "kill") && faults.iter().any(|f| f.starts_with("partition-")),
        "both fault families fired: {faults:?}"
    );
    assert!(faults.iter().any(|f| f == "final-heal"), "the final heal ran: {faults:?}");
    if faults.iter().any(|f| f == "kill-producer") {
        assert!(
            ops.iter().any(|o| o.op_type == OpType::Info
                && o.f == F::Send
                && o.error.as_deref().is_some_and(|e| e.contains("exited"))),
            "a killed producer's send became info"
        );
    }
    let test = json(&dir.join("test.json"));
    assert!(!test["fault_schedule"].as_array().unwrap().is_empty(), "the seeded schedule is recorded");
    assert_no_leftovers(&cluster, &subnet);
}

#[test]
fn acks_1_with_a_zombie_leader_loses_acknowledged_writes() {
    let cluster = TestCluster::new("rz");
    let subnet = test_subnet(5);
    let o = run(
        &cluster,
        &subnet,
        &[
            "--time-limit",
            "25",
            "--rate",
            "300",
            "--acks",
            "1",
            "--nemesis",
            "leader-from-followers",
            "--nemesis-interval",
            "4",
            "--seed",
            "42",
            "-q",
        ],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(matches!(o.status.code(), Some(0 | 1)), "the run completes:\nstdout: {stdout}\nstderr: {stderr}");
    // -q keeps the run's steps off stderr; the store's log has them all.
    assert!(!stderr.contains("cluster up:") && !stderr.contains("INFO"), "-q: {stderr}");
    let log = std::fs::read_to_string(run_dir(&cluster).join("faultline.log")).unwrap();
    assert!(log.contains("cluster up:") && log.contains("nemesis:"), "{log}");
    let results = json(&run_dir(&cluster).join("results.json"));
    let types: Vec<String> =
        results["anomaly_types"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    assert!(
        types.contains(&"lost-write".to_string()),
        "acks=1 acknowledged writes on the zombie leader are lost: {types:?}"
    );
    assert_no_leftovers(&cluster, &subnet);
}

#[test]
fn a_scripted_timeline_fires_its_faults_by_role_at_their_times() {
    let cluster = TestCluster::new("rs");
    let subnet = test_subnet(6);
    let timeline = cluster.dir.join("timeline.toml");
    std::fs::write(
        &timeline,
        "[[timeline]]\n\
         t = 2.0\n\
         fault = \"pause\"\n\
         target = \"follower-of:events/0\"\n\n\
         [[timeline]]\n\
         t = 6.0\n\
         fault = \"resume\"\n\
         target = \"all\"\n\n\
         [[timeline]]\n\
         t = 7.0\n\
         fault = \"isolate-controller\"\n\
         target = \"controller\"\n\n\
         [[timeline]]\n\
         t = 11.0\n\
         fault = \"heal\"\n",
    )
    .unwrap();
    let o = run(
        &cluster,
        &subnet,
        &["--time-limit", "14", "--rate", "200", "--nemesis-timeline", timeline.to_str().unwrap()],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let ops = history(&run_dir(&cluster));
    let nemesis: Vec<&Op> = ops.iter().filter(|o| o.process == Process::Nemesis).collect();
    let fs: Vec<&str> = nemesis.iter().map(|o| o.f.name()).collect();
    for f in [
        "start-pause",
        "pause",
        "start-resume",
        "resume",
        "start-partition-isolate-controller",
        "partition-isolate-controller",
        "start-heal",
        "heal",
    ] {
        assert!(fs.contains(&f), "{f} recorded: {fs:?}");
    }
    let pause = nemesis.iter().find(|o| o.f.name() == "pause").unwrap();
    assert!((2.0..4.0).contains(&(pause.time_ns as f64 / 1e9)), "the pause fired at t = 2 s: {pause:?}");
    let v = serde_json::to_value(&pause.value).unwrap();
    assert_eq!(v["outcome"], "installed", "{v}");
    assert_eq!(v["targets"].as_array().unwrap().len(), 1, "one follower of events/0: {v}");
    assert_no_leftovers(&cluster, &subnet);
}

/// A cluster torn down from outside in the middle of a run: the harness
/// lost control, so the verdict is unknown (exit 2) with that reason, never
/// the lost writes the empty final reads would suggest; `faultline check`
/// of the stored run agrees. The same run left alone is valid.
#[test]
fn a_cluster_removed_mid_run_makes_the_verdict_unknown() {
    let cluster = TestCluster::new("lc");
    let subnet = test_subnet(7);
    let store = cluster.dir.join("store");
    let faultline = env!("CARGO_BIN_EXE_faultline");
    let args = ["--time-limit", "8", "--rate", "200", "--cluster-name", &cluster.name, "--subnet", &subnet];
    let child = Command::new(faultline)
        .args(["run", "--name", "t", "--store"])
        .arg(&store)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_workload(&store);
    let down = cluster.run(&["cluster", "down"]);
    assert_ok(&down, "cluster down from outside");
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{text}");
    let dir = run_dir(&cluster);
    let results = json(&dir.join("results.json"));
    assert_eq!(results["valid"], "unknown", "{results:#}");
    let reasons = results["unknown_reasons"].to_string();
    assert!(reasons.contains("lost control") && reasons.contains("torn down"), "{reasons}");
    let check = Command::new(faultline).args(["check", "--json"]).arg(&dir).output().unwrap();
    assert_eq!(check.status.code(), Some(2), "faultline check reads control.json too");
    assert_no_leftovers(&cluster, &subnet);

    let control = run(&cluster, &subnet, &args[..4]);
    assert_eq!(control.status.code(), Some(0), "{}", String::from_utf8_lossy(&control.stdout));
    assert!(!run_dir(&cluster).join("control.json").exists());
    assert_no_leftovers(&cluster, &subnet);
}

/// Subscribing consumers share the partitions through the group; a killed
/// member's partitions move to the others at a new generation once its
/// session expires, and the history records each assignment and revocation.
#[test]
fn subscribing_consumers_rebalance_when_a_member_is_killed() {
    let cluster = TestCluster::new("sb");
    let subnet = test_subnet(3);
    let o = run(
        &cluster,
        &subnet,
        &[FAST_GROUP, &["--time-limit", "12", "--consumers", "2", "--sink", "sqlite", "--kill-client", "consumer:4"]]
            .concat(),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(matches!(o.status.code(), Some(0..=2)), "a verdict:\n{stderr}");
    let dir = run_dir(&cluster);
    let ops = history(&dir);
    assert_well_formed(&ops);
    let assigns: Vec<(i32, usize)> = ops
        .iter()
        .filter_map(|o| match &o.value {
            OpValue::Assign(a) if o.f == F::Assign => Some((a.generation?, a.partitions.len())),
            _ => None,
        })
        .collect();
    let first = assigns.iter().map(|a| a.0).min().expect("assign ops with a generation");
    let last = assigns.iter().map(|a| a.0).max().unwrap();
    assert!(last > first, "the kill made a new generation: {assigns:?}");
    let owned_last: usize = assigns.iter().filter(|a| a.0 == last).map(|a| a.1).sum();
    assert_eq!(owned_last, 3, "the last generation shares out all 3 partitions: {assigns:?}");
    assert!(ops.iter().any(|o| o.f == F::Revoke && o.op_type == OpType::Ok), "a survivor revoked before rejoining");
    let results = json(&dir.join("results.json"));
    assert_eq!(results["valid"], serde_json::json!(true), "{results:#}");
    assert_no_leftovers(&cluster, &subnet);
}
