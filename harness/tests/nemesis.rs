//! Each fault proves it took effect, then that its heal undid it, on a real
//! cluster in network namespaces: a partition really drops TCP between the
//! cut pairs while the control host still reaches every node; a pause
//! really stops the process; a kill really removes it and a start brings
//! the node back healthy. Needs root, as CI has.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

/// Whether node `from` (by namespace) can open a TCP connection to `to_ip`:9092
/// within two seconds. Traffic stays between namespaces this test created.
fn can_connect(netns: &str, to_ip: &str) -> bool {
    let probe = format!("exec 3<>/dev/tcp/{to_ip}/9092");
    let o = Command::new("ip")
        .args(["netns", "exec", netns, "timeout", "2", "bash", "-c", &probe])
        .output()
        .expect("runs ip netns exec");
    o.status.success()
}

/// Whether the control host gets any HTTP answer from `url` (health may
/// say 503 while a cut-off node is fenced; what matters is reachability).
fn control_reaches(url: &str) -> bool {
    let addr = url.trim_start_matches("http://");
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).is_ok()
}

fn nemesis(cluster: &TestCluster, args: &[&str]) -> serde_json::Value {
    // `--name/--store` belong to `nemesis`, before the fault's subcommand.
    let o = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("nemesis")
        .args(["--name", &cluster.name, "--store"])
        .arg(cluster.store())
        .args(args)
        .output()
        .expect("runs faultline");
    assert_eq!(o.status.code(), Some(0), "nemesis {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("one JSON line")
}

fn proc_state(pid: u64) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat.rsplit(')').next()?.split_whitespace().next()?.to_string())
}

/// Creates `events` (one partition, RF 3) and waits until it has a leader
/// and a full ISR; returns the leader's node id.
fn create_events_and_wait_for_its_leader(url: &str) -> i32 {
    runtime().block_on(async {
        let client = faultline_client::Client::new(url);
        let req = faultline_client::api::CreateTopicRequest {
            name: "events".into(),
            partitions: Some(1),
            replication_factor: Some(3),
            ..Default::default()
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        // Right after a heal the controller may still be re-electing: retry, bounded.
        loop {
            match client.create_topic(&req).await {
                Ok(_) => break,
                Err(e) if e.code() == Some(faultline_client::api::ErrorCode::TopicAlreadyExists) => break,
                Err(e) => assert!(Instant::now() < deadline, "creating events: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        loop {
            let d = client.describe_topic("events").await.expect("describes events");
            if let Some(l) = d.partitions[0].leader.filter(|_| d.partitions[0].isr.len() == 3) {
                break l;
            }
            assert!(Instant::now() < deadline, "events/0 never got a full ISR");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// Waits (up to 20 s) until `url` answers `GET /health` with 200. A raw
/// HTTP/1.1 request, so the check depends on nothing but a TCP connection.
fn wait_until_healthy(url: &str, never: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let addr = url.trim_start_matches("http://").to_string();
        let ok = std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1)).ok().and_then(
            |mut s| {
                use std::io::{Read, Write};
                write!(s, "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
                let mut head = [0u8; 12];
                s.read_exact(&mut head).ok()?;
                Some(&head[9..12] == b"200")
            },
        );
        if ok == Some(true) {
            break;
        }
        assert!(Instant::now() < deadline, "{never}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One end-to-end story on one real cluster: each fault in turn (partition
/// shapes, pause, kill) is checked to take effect and then to heal. It is
/// long because the steps depend on each other: each starts from the
/// healed cluster the previous one left, the by-role partition needs the
/// topic whose leader it isolates, and bringing up a cluster per fault
/// would multiply the test's run time.
#[test]
fn partition_pause_and_kill_take_effect_and_heal() {
    let cluster = TestCluster::new("nm");
    let up = cluster.up(&["--nodes", "3", "--subnet", &test_subnet(5)]);
    assert_eq!(up.status.code(), Some(0), "cluster up: {}", String::from_utf8_lossy(&up.stderr));
    let state = cluster.state();
    let nodes = state["nodes"].as_array().unwrap().clone();
    let ns = |i: usize| nodes[i]["host"].as_str().unwrap().to_string();
    let ip = |i: usize| {
        nodes[i]["url"].as_str().unwrap().trim_start_matches("http://").split(':').next().unwrap().to_string()
    };
    let url = |i: usize| nodes[i]["url"].as_str().unwrap().to_string();
    assert!(can_connect(&ns(1), &ip(0)) && can_connect(&ns(1), &ip(2)), "before the fault, nodes talk");

    // Partition: isolate n1 from the other nodes (clients still reach it).
    let done = nemesis(&cluster, &["partition", "--shape", "one:n1"]);
    assert_eq!(done["grudge"]["n1"], serde_json::json!(["n2", "n3"]));
    assert!(!can_connect(&ns(1), &ip(0)), "n2 -> n1 is dropped");
    assert!(!can_connect(&ns(0), &ip(2)), "n1 -> n3 is dropped");
    assert!(can_connect(&ns(1), &ip(2)), "n2 -> n3 still flows");
    for i in 0..3 {
        assert!(control_reaches(&url(i)), "the control host still reaches n{}", i + 1);
    }
    nemesis(&cluster, &["heal"]);
    assert!(can_connect(&ns(1), &ip(0)) && can_connect(&ns(0), &ip(2)), "after heal, traffic flows again");

    // Isolation with clients: the control host is cut off too.
    nemesis(&cluster, &["partition", "--shape", "isolate:n3"]);
    assert!(!control_reaches(&url(2)), "the control host no longer reaches n3");
    assert!(!can_connect(&ns(0), &ip(2)), "nor does n1");
    nemesis(&cluster, &["heal"]);
    assert!(control_reaches(&url(2)) && can_connect(&ns(0), &ip(2)));

    // Mute: n2's packets to the control host are dropped (so no connection
    // completes), while the nodes still reach it and it reaches them.
    let done = nemesis(&cluster, &["partition", "--shape", "mute:n2"]);
    assert_eq!(done["grudge"]["n2"], serde_json::json!(["to:control"]));
    assert!(!control_reaches(&url(1)), "n2's answers to the control host are dropped");
    assert!(can_connect(&ns(0), &ip(1)) && can_connect(&ns(1), &ip(2)), "node traffic flows both ways");
    assert!(control_reaches(&url(0)), "other nodes still answer the control host");
    nemesis(&cluster, &["heal"]);
    assert!(control_reaches(&url(1)), "after heal, n2 answers again");

    // By role: isolate the leader of events/0; it was the leader when the fault fired.
    let leader = create_events_and_wait_for_its_leader(&url(0));
    let done = nemesis(&cluster, &["partition", "--shape", "isolate-leader", "--partition", "events/0"]);
    assert_eq!(
        done["isolated"],
        serde_json::json!(format!("n{leader}")),
        "the isolated node is the leader of events/0"
    );
    let li = (leader - 1) as usize;
    let other = (li + 1) % 3;
    assert!(!control_reaches(&url(li)), "isolate-leader cuts the clients off too");
    assert!(!can_connect(&ns(other), &ip(li)), "and the other nodes");
    nemesis(&cluster, &["heal"]);
    assert!(control_reaches(&url(li)) && can_connect(&ns(other), &ip(li)));

    // Pause: the process is stopped, then running again.
    let paused = nemesis(&cluster, &["pause", "--node", "n2"]);
    let pid = paused["pid"].as_u64().unwrap();
    assert_eq!(paused["state"], "stopped");
    assert_eq!(proc_state(pid).as_deref(), Some("T"), "the kernel says stopped");
    let resumed = nemesis(&cluster, &["resume", "--node", "n2"]);
    assert_eq!(resumed["state"], "running");
    assert_ne!(proc_state(pid).as_deref(), Some("T"));

    // Kill: the pid is gone; start brings the node back healthy.
    let killed = nemesis(&cluster, &["kill", "--node", "n3"]);
    let pid = killed["pid"].as_u64().unwrap();
    assert_eq!(killed["state"], "gone");
    assert!(proc_state(pid).is_none_or(|s| s == "Z"), "pid {pid} is gone");
    let started = nemesis(&cluster, &["start", "--node", "n3"]);
    assert_ne!(started["pid"].as_u64().unwrap(), pid);
    wait_until_healthy(&url(2), "the restarted n3 never became healthy");
    let down = cluster.down();
    assert_eq!(down.status.code(), Some(0));
    assert!(cluster.leftovers().is_empty(), "{:?}", cluster.leftovers());
}

/// A timeline step's precondition is checked when it fires and recorded
/// with its op, and one that did not hold makes the verdict unknown. With
/// every fetcher paused an acks=1 leader of events/0 goes on acknowledging
/// records neither follower has, so `behind:N` holds for the two followers
/// and not for the leader, whichever node leads.
#[test]
fn a_step_whose_precondition_did_not_hold_makes_the_verdict_unknown() {
    use faultline_checker::op::Process;
    use support::runs::{assert_no_leftovers, history, run, run_dir};
    let cluster = TestCluster::new("pc");
    let subnet = test_subnet(6);
    let timeline = cluster.dir.join("timeline.toml");
    let mut steps = String::from("[[timeline]]\nt = 3.0\nfault = \"pause-fetchers\"\ntarget = \"all\"\n");
    for n in ["n1", "n2", "n3"] {
        steps.push_str(&format!(
            "\n[[timeline]]\nt = 4.0\nfault = \"resume-fetchers\"\ntarget = \"{n}\"\nrequire = \"behind:{n}:events/0\"\n"
        ));
    }
    std::fs::write(&timeline, steps).unwrap();
    let timeline = timeline.to_str().unwrap();
    let args = ["--time-limit", "8", "--rate", "200", "--acks", "1", "--admin-hooks", "--nemesis-timeline", timeline];
    let o = run(&cluster, &subnet, &args);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "unknown: {stdout}\nstderr: {}", String::from_utf8_lossy(&o.stderr));
    let ops = history(&run_dir(&cluster));
    let checked: Vec<serde_json::Value> = ops
        .iter()
        .filter(|o| o.process == Process::Nemesis && o.f.name() == "resume-fetchers")
        .map(|o| serde_json::to_value(&o.value).unwrap())
        .collect();
    assert_eq!(checked.len(), 3, "{checked:?}");
    let met = checked.iter().filter(|v| v["met"].is_string()).count();
    let unmet: Vec<&str> = checked.iter().filter_map(|v| v["unmet"].as_str()).collect();
    assert_eq!((met, unmet.len()), (2, 1), "two followers behind, the leader not: {checked:?}");
    assert!(unmet[0].ends_with("leads events/0"), "{unmet:?}");
    assert!(checked.iter().all(|v| v["require"].as_str().is_some_and(|r| r.starts_with("behind:n"))));
    assert!(stdout.contains("which did not hold") && stdout.contains("leads events/0"), "{stdout}");
    assert_no_leftovers(&cluster, &subnet);
}
