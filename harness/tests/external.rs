//! `--system`: a Kafka-protocol cluster faultline did not build, driven only
//! through a `system.toml` over SSH hosts. The system here is faultline-node
//! itself, started by the test's own shell commands with configurations the
//! test wrote, and reached only through its Kafka listener: the harness
//! knows nothing of it but the commands, the port and Kafka's protocol.
//! Needs root, as CI has.

mod support;

use std::path::{Path, PathBuf};

use support::sshd::SshNet;
use support::{faultline, live_processes_mentioning};

/// The node's HTTP port (its controller's too) and its Kafka listener's.
const HTTP_PORT: u16 = 9092;
const KAFKA_PORT: u16 = 9093;

/// Each host's `server.properties` under `<dir>/ext/<host>/`, as a user's
/// own installation would have them, and the `system.toml` that runs them.
fn install(net: &SshNet, n: u32) -> PathBuf {
    let ext = net.dir.join("ext");
    let ips: Vec<String> = net.net.nodes.iter().take(n as usize).map(|x| x.ip.to_string()).collect();
    let voters: Vec<String> = ips.iter().enumerate().map(|(i, ip)| format!("{}@{ip}:{HTTP_PORT}", i + 1)).collect();
    for (i, ip) in ips.iter().enumerate() {
        let dir = ext.join(format!("n{}", i + 1));
        std::fs::create_dir_all(&dir).unwrap();
        let props = format!(
            "node.id={}\nlisteners=http://{ip}:{HTTP_PORT},PLAINTEXT://{ip}:{KAFKA_PORT}\nlog.dirs={}\n\
             controller.quorum.voters={}\nbroker.session.timeout.ms=3000\n",
            i + 1,
            dir.join("data").display(),
            voters.join(",")
        );
        std::fs::write(dir.join("server.properties"), props).unwrap();
    }
    let node = Path::new(env!("CARGO_BIN_EXE_faultline")).with_file_name("faultline-node");
    let conf = format!("{}/{{host}}/server.properties", ext.display());
    // `[f]` keeps pgrep from matching the shell that runs it.
    let pattern = format!("[f]aultline-node --config {conf}");
    let system = format!(
        "kind = \"external-kafka\"\n\
         start = \"setsid nohup {} --config {conf} >{}/{{host}}/node.log 2>&1 </dev/null &\"\n\
         stop = \"pkill -TERM -f '{pattern}'\"\n\
         pid = \"pgrep -f '{pattern}'\"\n\
         kafka-port = {KAFKA_PORT}\n\
         logs = \"{}/{{host}}/node.log\"\n",
        node.display(),
        ext.display(),
        ext.display()
    );
    let path = net.dir.join("system.toml");
    std::fs::write(&path, system).unwrap();
    path
}

/// A run against the external system: the cluster starts by the system's
/// commands, takes a leader kill and restart, a leader pause and a
/// partition, is checked valid, and is stopped by its stop command, with
/// nothing left behind.
#[test]
fn an_external_system_is_run_faulted_checked_and_stopped_through_its_own_commands() {
    let net = SshNet::start("ex", 6, 3, 3);
    let hosts = net.hosts_toml(3, None);
    let system = install(&net, 3);
    let timeline = net.dir.join("timeline.toml");
    std::fs::write(
        &timeline,
        "[[timeline]]\nt = 2.0\nfault = \"kill\"\ntarget = \"leader-of:events/0\"\n\n\
         [[timeline]]\nt = 5.0\nfault = \"start\"\ntarget = \"killed\"\n\n\
         [[timeline]]\nt = 7.0\nfault = \"pause\"\ntarget = \"leader-of:events/1\"\n\n\
         [[timeline]]\nt = 8.0\nfault = \"resume\"\ntarget = \"all\"\n\n\
         [[timeline]]\nt = 9.0\nfault = \"partition\"\nshape = \"isolate-leader\"\ntarget = \"leader-of:events/2\"\n\n\
         [[timeline]]\nt = 11.0\nfault = \"heal\"\n",
    )
    .unwrap();
    let store = net.dir.join("store");
    let args = [
        "run",
        "--hosts",
        hosts.to_str().unwrap(),
        "--system",
        system.to_str().unwrap(),
        "--client",
        "librdkafka",
        "--cluster-name",
        &net.net.name,
        "--time-limit",
        "14",
        "--rate",
        "200",
        "--nemesis-timeline",
        timeline.to_str().unwrap(),
    ];
    let (code, out, err) = faultline(&args, &store);
    assert_eq!(code, Some(0), "a valid run against the external system:\n{out}\n{err}");
    let run = std::fs::canonicalize(store.join("latest")).unwrap();
    let read = |f: &str| std::fs::read_to_string(run.join(f)).unwrap();
    let results: serde_json::Value = serde_json::from_str(&read("results.json")).unwrap();
    assert_eq!(results["valid"], serde_json::json!(true), "{results}");
    let not_checked = results["not_checked"].to_string();
    assert!(not_checked.contains("replica-divergence"), "its replicas are not visible: {not_checked}");
    let test: serde_json::Value = serde_json::from_str(&read("test.json")).unwrap();
    assert_eq!(test["effective"]["system"], "external-kafka");
    let topic = test["effective"]["topic"].as_str().unwrap().to_string();
    assert!(topic.starts_with("events-"), "an external cluster outlives runs: each run has its own topic");
    // Every fault took effect, on a node found through Kafka's Metadata.
    let history = read("history.jsonl");
    for fault in ["\"f\":\"kill\"", "\"f\":\"start\"", "\"f\":\"pause\"", "\"f\":\"partition-isolate-leader\""] {
        let line = history.lines().find(|l| l.contains(fault)).unwrap_or_else(|| panic!("{fault} in the history"));
        assert!(line.contains("\"installed\""), "{line}");
    }
    let sends = history.lines().filter(|l| l.contains("\"f\":\"send\"") && l.contains("\"type\":\"ok\"")).count();
    assert!(sends > 10, "{sends} acknowledged sends: the workload ran (a floor, not a rate)");
    assert!(history.contains(&format!("\"{topic}/0\"")), "the history names the run's topic");
    // The nodes' logs came back over SSH, and the system was stopped by its
    // own command: no node runs, nothing of ours is left on the hosts.
    let log = std::fs::read_to_string(run.join("nodes/n1/node.log")).unwrap_or_default();
    assert!(log.contains("listening"), "n1's log was fetched: {log:.300}");
    let left = live_processes_mentioning(&net.dir.join("ext"));
    assert!(left.is_empty(), "the stop command stopped every node: {left:?}");
    assert!((1..=3).all(|id| !net.has_chain(id)), "no chain is left");
    assert_eq!(net.left_on_hosts(), Vec::<PathBuf>::new(), "nothing is left under the base directories");

    left_running_then_taken_down(&net, &store, &args[..7]);

    // Bad input names what is wrong before anything starts.
    let refused = [&args[..5], &["--cluster-name", &net.net.name]].concat();
    let (code, _, err) = faultline(&refused, &store);
    assert_eq!(code, Some(254), "{err}");
    assert!(err.contains("add --client librdkafka"), "{err}");
}

/// A cluster left running is the user's to inspect and take down: status
/// finds each node by its pid source, describe points at Kafka's own tools,
/// and `cluster down` stops the nodes by the stop command.
fn left_running_then_taken_down(net: &SshNet, store: &Path, run: &[&str]) {
    let short = [run, &["--cluster-name", &net.net.name, "--time-limit", "3", "--leave-running"]].concat();
    let (code, out, err) = faultline(&short, store);
    assert_eq!(code, Some(0), "a short run left running:\n{out}\n{err}");
    let at = ["--name", net.net.name.as_str()];
    let (code, status, err) = faultline(&[&["cluster", "status"][..], &at].concat(), store);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(status.matches("running, external, Kafka listener").count(), 3, "{status}");
    let (code, _, err) = faultline(&[&["cluster", "describe"][..], &at].concat(), store);
    assert!(code == Some(254) && err.contains("kafka-topics.sh"), "{err}");
    let (code, _, err) = faultline(&[&["cluster", "down"][..], &at].concat(), store);
    assert_eq!(code, Some(0), "{err}");
    let left = live_processes_mentioning(&net.dir.join("ext"));
    assert!(left.is_empty(), "cluster down stopped every node by its stop command: {left:?}");
    assert_eq!(net.left_on_hosts(), Vec::<PathBuf>::new());
}
