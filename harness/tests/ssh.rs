//! The SSH host backend against real sshds, one per namespace of a test
//! network: every `Host` operation goes over SSH to an address of a
//! namespace this test created, and what it did is checked on the machine.

mod support;

use std::sync::Arc;
use std::time::Duration;

use faultline_harness::hosts::SshHost;
use faultline_harness::hosts::netns::read_proc;
use faultline_nemesis::{DaemonSpec, Host, HostError, ProcState, Signal};
use support::faultline;
use support::sshd::SshNet;

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Every live process on this machine whose command line is `argv`.
fn processes_running(argv: &[String]) -> Vec<u32> {
    let entries = std::fs::read_dir("/proc").unwrap();
    let pids = entries.flatten().filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok());
    pids.filter(|&p| read_proc(p).is_some_and(|i| i.argv == argv)).collect()
}

#[test]
fn every_host_operation_works_over_ssh_inside_the_hosts_namespace() {
    let net = SshNet::start("ss", 0, 2, 2);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let n1 = SshHost::connect(&net.target(1), &net.control_dir(), &net.known_hosts()).await.unwrap();
        // Commands run inside n1's namespace: it has n1's address, not n2's.
        let out = n1.run(&argv(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]), Duration::from_secs(10)).await;
        let addrs = String::from_utf8_lossy(&out.unwrap().stdout).into_owned();
        assert!(addrs.contains(&format!("{}/24", net.net.nodes[0].ip)), "{addrs}");
        assert!(!addrs.contains(&format!("{}/24", net.net.nodes[1].ip)), "{addrs}");
        // A non-zero exit is an outcome, with its stderr.
        let out = n1.run(&argv(&["sh", "-c", "echo oops >&2; exit 7"]), Duration::from_secs(10)).await.unwrap();
        assert_eq!((out.code, String::from_utf8_lossy(&out.stderr).trim()), (Some(7), "oops"));

        // Files: copied with their mode, read back by their tail.
        let base = net.target(1).base_dir;
        let local = net.dir.join("payload");
        std::fs::write(&local, "0123456789".repeat(1000)).unwrap();
        std::fs::set_permissions(&local, std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
        let remote = base.join("bin/payload");
        n1.copy_to(&local, &remote).await.unwrap();
        assert_eq!(std::fs::read(&remote).unwrap(), std::fs::read(&local).unwrap());
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&remote).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o750);
        assert_eq!(n1.read_file(&remote, 4).await.unwrap().as_deref(), Some(&b"6789"[..]));
        assert_eq!(n1.read_file(&base.join("missing"), 4).await.unwrap(), None);

        daemons(&n1, &base).await;
        timeouts_and_concurrency(&n1).await;
    });
}

/// A daemon started over SSH runs detached, is paused, resumed and killed by
/// pid, and is gone afterwards.
async fn daemons(n1: &SshHost, base: &std::path::Path) {
    let spec = DaemonSpec {
        argv: argv(&["sleep", "1000.25"]),
        pid_file: base.join("run/sleep.pid"),
        log_file: base.join("logs/sleep.log"),
        cwd: Some(base.to_path_buf()),
    };
    let pid = n1.start_daemon(&spec).await.unwrap();
    assert_eq!(std::fs::read_to_string(&spec.pid_file).unwrap().trim(), pid.to_string());
    let info = n1.process(pid).await.unwrap().expect("the daemon runs");
    assert_eq!((info.state, info.argv.clone()), (ProcState::Running, spec.argv.clone()));
    assert_eq!(read_proc(pid).map(|p| p.argv), Some(spec.argv.clone()), "the same process, seen locally");
    assert!(n1.signal(pid, Signal::Stop).await.unwrap());
    assert_eq!(n1.process(pid).await.unwrap().map(|p| p.state), Some(ProcState::Stopped));
    assert!(n1.signal(pid, Signal::Cont).await.unwrap());
    assert_eq!(n1.process(pid).await.unwrap().map(|p| p.state), Some(ProcState::Running));
    assert!(n1.signal(pid, Signal::Kill).await.unwrap());
    for _ in 0..100 {
        if n1.process(pid).await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(n1.process(pid).await.unwrap(), None, "killed and reaped");
    assert!(!n1.signal(pid, Signal::Term).await.unwrap(), "a gone process is not an error");
}

/// A command over its bound is killed on the host and reported with the
/// host's name; more commands than sshd's MaxSessions at once all complete.
async fn timeouts_and_concurrency(n1: &Arc<SshHost>) {
    let slow = argv(&["sleep", "31.75"]);
    match n1.run(&slow, Duration::from_secs(1)).await {
        Err(HostError::Timeout { host, .. }) => assert_eq!(host, "n1"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    for _ in 0..100 {
        if processes_running(&slow).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(processes_running(&slow).is_empty(), "the timed-out command is killed on the host");
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let host = n1.clone();
            let cmd = argv(&["sh", "-c", &format!("sleep 0.2; echo {i}")]);
            tokio::spawn(async move { host.run(&cmd, Duration::from_secs(30)).await })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let out = task.await.unwrap().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), i.to_string());
    }
}

/// Connection failures name the host and what went wrong: no sshd at the
/// address (an address of our own namespace), and a key the host refuses.
#[test]
fn unreachable_hosts_and_refused_keys_name_the_host() {
    let net = SshNet::start("su", 1, 2, 1);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        match SshHost::connect(&net.target(2), &net.control_dir(), &net.known_hosts()).await {
            Err(HostError::Connect { host, address, .. }) => {
                assert_eq!(host, "n2");
                assert!(address.contains(&net.net.nodes[1].ip.to_string()), "{address}");
            }
            other => panic!("no sshd on n2, got {other:?}"),
        }
        let other_key = net.dir.join("other_key");
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&other_key)
            .output()
            .unwrap();
        assert!(out.status.success());
        let mut target = net.target(1);
        target.key = Some(other_key);
        match SshHost::connect(&target, &net.control_dir(), &net.known_hosts()).await {
            Err(e @ HostError::Connect { .. }) => assert!(e.to_string().contains("host n1"), "{e}"),
            other => panic!("a refused key, got {other:?}"),
        }
    });
}

/// Live processes on this machine whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let entries = std::fs::read_dir("/proc").unwrap();
    let pids = entries.flatten().filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok());
    pids.filter(|&p| read_proc(p).is_some_and(|i| i.argv.iter().any(|a| a.contains(needle)))).collect()
}

/// The network namespace process `pid` runs in, as `ip netns identify` names it.
fn netns_of(pid: u32) -> String {
    let out = std::process::Command::new("ip").args(["netns", "identify", &pid.to_string()]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `cluster up --hosts` deploys and starts every node over SSH (each runs
/// the copied binary inside its host's namespace), `status` and the nemesis
/// work through the same connections, and `down` leaves nothing on any
/// host: no process, no chain, nothing under the base directories.
#[test]
fn a_cluster_over_ssh_comes_up_takes_faults_and_goes_down_without_a_trace() {
    let net = SshNet::start("sc", 2, 3, 3);
    let hosts = net.hosts_toml(3, None);
    let store = net.dir.join("store");
    let name = net.net.name.clone();
    let at = ["--name", name.as_str()];
    let (code, out, err) =
        faultline(&[&["cluster", "up", "--hosts", hosts.to_str().unwrap()][..], &at].concat(), &store);
    assert_eq!(code, Some(0), "cluster up --hosts:\n{out}\n{err}");
    for (i, node) in net.net.nodes.iter().enumerate() {
        let binary = net.target(i as u32 + 1).base_dir.join(&name).join("bin/faultline-node");
        let pids = processes_mentioning(&binary.display().to_string());
        assert_eq!(pids.len(), 1, "n{}: one node runs the copied binary {}", i + 1, binary.display());
        assert_eq!(netns_of(pids[0]), node.netns, "started over SSH inside the host's namespace");
    }
    let (code, out, err) = faultline(&[&["cluster", "status"][..], &at].concat(), &store);
    assert_eq!((code, out.matches("health ok").count()), (Some(0), 3), "status:\n{out}\n{err}");

    // The nemesis goes over SSH too: a partition installs the chain in the
    // host's own namespace; a kill stops the node, a start restarts it.
    let store_arg = store.display().to_string();
    let nemesis = |args: &[&str]| {
        let all = [&["nemesis", "--name", name.as_str(), "--store", store_arg.as_str()][..], args].concat();
        let o =
            std::process::Command::new(env!("CARGO_BIN_EXE_faultline")).args(&all).output().expect("runs faultline");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = nemesis(&["partition", "--shape", "one:n1"]);
    assert_eq!(code, Some(0), "partition: {out}{err}");
    assert!(net.has_chain(1), "the partition's chain is in n1's namespace");
    let n2_binary = net.target(2).base_dir.join(&name).join("bin/faultline-node").display().to_string();
    let (code, out, err) = nemesis(&["kill", "--node", "n2"]);
    assert_eq!((code, processes_mentioning(&n2_binary).len()), (Some(0), 0), "kill: {out}{err}");
    let (code, out, err) = nemesis(&["start", "--node", "n2"]);
    assert_eq!((code, processes_mentioning(&n2_binary).len()), (Some(0), 1), "start: {out}{err}");

    let (code, out, err) = faultline(&[&["cluster", "down"][..], &at].concat(), &store);
    assert_eq!(code, Some(0), "cluster down:\n{out}\n{err}");
    assert!(processes_mentioning(&net.dir.join("hosts").display().to_string()).is_empty(), "no node is left");
    assert!((1..=3).all(|id| !net.has_chain(id)), "no chain is left");
    assert_eq!(net.left_on_hosts(), Vec::<std::path::PathBuf>::new(), "nothing is left under the base directories");
}

/// A host that cannot be reached, a key it refuses, or an `iptables` that
/// is not there: `cluster up` exits 254 naming the host and the fix, and
/// nothing was started or left on the other hosts.
#[test]
fn hosts_that_are_not_ready_exit_254_naming_the_host_and_leave_nothing() {
    let net = SshNet::start("sn", 3, 3, 2);
    let store = net.dir.join("store");
    let name = net.net.name.clone();
    let up = |hosts: &std::path::Path| {
        faultline(&["cluster", "up", "--hosts", hosts.to_str().unwrap(), "--name", &name], &store)
    };
    // n3 has no sshd.
    let (code, _, err) = up(&net.hosts_toml(3, None));
    assert_eq!(code, Some(254), "{err}");
    assert!(err.contains("host n3") && err.contains(&net.net.nodes[2].ip.to_string()), "{err}");
    // n2 names an iptables that does not exist.
    let (code, _, err) = up(&net.hosts_toml(2, Some((2, "iptables = \"/nonexistent/iptables\""))));
    assert_eq!(code, Some(254), "{err}");
    assert!(err.contains("host n2") && err.contains("/nonexistent/iptables") && !err.contains("host n1"), "{err}");
    // n1 is given a key it does not authorise.
    let other = net.dir.join("other_key");
    let keygen =
        std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other).output();
    assert!(keygen.unwrap().status.success());
    let (code, _, err) = up(&net.hosts_toml(2, Some((1, &format!("key = \"{}\"", other.display())))));
    assert_eq!(code, Some(254), "{err}");
    assert!(err.contains("host n1"), "{err}");
    assert!(processes_mentioning(&net.dir.join("hosts").display().to_string()).is_empty(), "nothing was started");
    assert_eq!(net.left_on_hosts(), Vec::<std::path::PathBuf>::new(), "nothing is left under the base directories");
}

/// `faultline run --hosts` with the test's store and cluster name.
fn run_over_ssh(net: &SshNet, hosts: &std::path::Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let store = net.dir.join("store");
    let mut args = vec!["run", "--hosts", hosts.to_str().unwrap(), "--cluster-name", net.net.name.as_str()];
    args.extend_from_slice(extra);
    faultline(&args, &store)
}

fn results(net: &SshNet) -> serde_json::Value {
    let latest = std::fs::canonicalize(net.dir.join("store/latest")).expect("store/latest points at the run");
    serde_json::from_str(&std::fs::read_to_string(latest.join("results.json")).unwrap()).unwrap()
}

/// Nothing of the cluster is left on any host: no node, no chain, nothing
/// under the base directories.
fn assert_hosts_clean(net: &SshNet, n: u32) {
    assert!(processes_mentioning(&net.dir.join("hosts").display().to_string()).is_empty(), "no node is left");
    assert!((1..=n).all(|id| !net.has_chain(id)), "no chain is left");
    assert_eq!(net.left_on_hosts(), Vec::<std::path::PathBuf>::new(), "nothing is left under the base directories");
}

/// Runs over SSH: fault-free, and with kills and partitions at acks=all,
/// each valid, with the nodes' logs fetched into the store and the hosts
/// left clean.
#[test]
fn runs_over_ssh_are_valid_without_faults_and_with_kills_and_partitions_at_acks_all() {
    let net = SshNet::start("sr", 4, 3, 3);
    let hosts = net.hosts_toml(3, None);
    let (code, out, err) = run_over_ssh(&net, &hosts, &["--time-limit", "8", "--rate", "300"]);
    assert_eq!(code, Some(0), "a fault-free run over SSH is valid:\n{out}\n{err}");
    assert_eq!(results(&net)["valid"], serde_json::json!(true));
    let latest = std::fs::canonicalize(net.dir.join("store/latest")).unwrap();
    for n in ["n1", "n2", "n3"] {
        let log = std::fs::read_to_string(latest.join("nodes").join(n).join("node.log")).unwrap_or_default();
        assert!(log.contains("listening"), "{n}'s log was fetched over SSH: {log:.300}");
        let listing = std::fs::read_to_string(latest.join("nodes").join(n).join("data.txt")).unwrap_or_default();
        assert!(listing.contains("faultline.id"), "{n}'s data directory was listed: {listing:.300}");
    }
    assert_hosts_clean(&net, 3);

    let faults = ["--time-limit", "15", "--rate", "300", "--nemesis", "kill,partition", "--nemesis-interval", "3"];
    let (code, out, err) = run_over_ssh(&net, &hosts, &[&faults[..], &["--seed", "7"]].concat());
    assert_eq!(code, Some(0), "acks=all under kills and partitions over SSH stays valid:\n{out}\n{err}");
    let history = std::fs::read_to_string(latest_history(&net)).unwrap();
    for fault in ["\"kill\"", "\"partition-"] {
        assert!(history.contains(fault), "the nemesis injected {fault} over SSH");
    }
    assert_hosts_clean(&net, 3);
}

fn latest_history(net: &SshNet) -> std::path::PathBuf {
    std::fs::canonicalize(net.dir.join("store/latest")).unwrap().join("history.jsonl")
}

/// acks=1 over SSH under leader partitions loses acknowledged writes, the
/// anomaly the settings permit: the leader cut from its followers keeps
/// acknowledging its clients' writes, which the new leader never had.
/// The schedule also isolates the leader from the clients, which must not
/// cut the harness's own SSH. (Isolating the leader alone loses only what
/// was acknowledged in the milliseconds of replication lag before the cut,
/// which a run may or may not catch; it cannot carry the claim.)
#[test]
fn acks_1_under_leader_partitions_over_ssh_loses_writes_and_keeps_control() {
    let net = SshNet::start("sl", 5, 3, 3);
    let hosts = net.hosts_toml(3, None);
    let shapes = "isolate-leader,leader-from-followers";
    let args = ["--time-limit", "20", "--rate", "500", "--acks", "1", "--nemesis", shapes];
    let (code, out, err) =
        run_over_ssh(&net, &hosts, &[&args[..], &["--nemesis-interval", "3", "--seed", "42"]].concat());
    assert!(matches!(code, Some(0 | 1)), "the run completes:\n{out}\n{err}");
    let r = results(&net);
    let types: Vec<&str> = r["anomaly_types"].as_array().unwrap().iter().filter_map(|t| t.as_str()).collect();
    assert!(types.contains(&"lost-write"), "acks=1 loses acknowledged writes: {types:?}\n{out}");
    // The partition cut the clients but spared the harness's SSH: it kept
    // control, so the verdict is about the system, not unknown.
    assert!(r["valid"].is_boolean(), "the harness kept control over SSH: {}", r["valid"]);
    let history = std::fs::read_to_string(latest_history(&net)).unwrap();
    for shape in ["isolate-leader", "leader-from-followers"] {
        let installed =
            history.lines().any(|l| l.contains(&format!("\"partition-{shape}\"")) && l.contains("installed"));
        assert!(installed, "{shape} took effect over SSH");
    }
    assert_hosts_clean(&net, 3);
}

/// A SIGKILLed `faultline run --hosts` leaves its nodes running on the
/// hosts; `cluster down --hosts` then removes everything from every host,
/// even with the store's state file gone too.
#[test]
fn after_a_sigkilled_run_cluster_down_leaves_nothing_on_any_host() {
    let net = SshNet::start("sk", 6, 3, 3);
    let hosts = net.hosts_toml(3, None);
    let store = net.dir.join("store");
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["run", "--time-limit", "120", "--rate", "50", "--hosts", hosts.to_str().unwrap()])
        .args(["--cluster-name", &net.net.name, "--store"])
        .arg(&store)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = store.join("clusters").join(&net.net.name).join("state.json");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !std::fs::read_to_string(&state).is_ok_and(|s| s.contains("\"phase\": \"up\"")) {
        assert!(std::time::Instant::now() < deadline, "the run's cluster never came up");
        assert!(run.try_wait().unwrap().is_none(), "the run exited before its cluster was up");
        std::thread::sleep(Duration::from_millis(100));
    }
    run.kill().unwrap();
    run.wait().unwrap();
    let nodes = processes_mentioning(&net.dir.join("hosts").display().to_string());
    assert_eq!(nodes.len(), 3, "the nodes outlive the killed run");
    std::fs::remove_dir_all(store.join("clusters")).unwrap();
    let down = ["cluster", "down", "--name", &net.net.name, "--hosts", hosts.to_str().unwrap()];
    let (code, out, err) = faultline(&down, &store);
    assert_eq!(code, Some(0), "cluster down after a killed run:\n{out}\n{err}");
    assert_hosts_clean(&net, 3);
}

/// A campaign whose largest cell needs more nodes than `hosts.toml` has is
/// refused before anything runs, naming the cell.
#[test]
fn a_campaign_needing_more_hosts_than_the_file_has_exits_254() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "not used").unwrap();
    let hosts = dir.path().join("hosts.toml");
    let key = dir.path().join("key");
    let text = format!("[[host]]\nname = \"n1\"\naddress = \"10.214.0.11\"\nkey = \"{}\"\n", key.display());
    std::fs::write(&hosts, text).unwrap();
    let store = dir.path().join("store");
    let (code, _, err) =
        faultline(&["campaign", "--builtin", "seed-claims", "--hosts", hosts.to_str().unwrap()], &store);
    assert_eq!(code, Some(254), "{err}");
    assert!(err.contains("1 hosts") && err.contains("needs"), "{err}");
    assert!(!store.exists(), "nothing ran");
}

/// `hosts from-vagrant` on a recorded `vagrant ssh-config` writes a
/// `hosts.toml` that the harness reads back; without a Vagrantfile it says so.
#[test]
fn hosts_from_vagrant_turns_recorded_ssh_config_into_a_hosts_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("private_key");
    std::fs::write(&key, "key").unwrap();
    let recorded = format!(
        "Host n1\n  HostName 127.0.0.1\n  User vagrant\n  Port 2222\n  IdentityFile \"{k}\"\n  IdentitiesOnly yes\n\n\
         Host n2\n  HostName 127.0.0.1\n  User vagrant\n  Port 2200\n  IdentityFile \"{k}\"\n",
        k = key.display()
    );
    let config = dir.path().join("ssh-config.txt");
    std::fs::write(&config, recorded).unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_faultline")).args(args).output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, toml, err) = run(&["hosts", "from-vagrant", "--ssh-config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let hosts = dir.path().join("hosts.toml");
    std::fs::write(&hosts, &toml).unwrap();
    let file = faultline_harness::hosts::hosts_file::HostsFile::load(&hosts).unwrap();
    let addresses: Vec<String> =
        file.hosts.iter().map(|h| format!("{} {}:{}", h.address, h.ssh_address, h.port)).collect();
    assert_eq!(addresses, ["192.168.56.11 127.0.0.1:2222", "192.168.56.12 127.0.0.1:2200"], "{toml}");
    let (code, _, err) = run(&["hosts", "from-vagrant", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(254), "{err}");
    assert!(err.contains("no Vagrantfile"), "{err}");
}
