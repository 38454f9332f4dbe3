//! `faultline cluster up|status|down`: a cluster of `faultline-node`
//! daemons, one per network namespace on this machine, that outlives the
//! command and is found again through its state file.
//!
//! `up` checks the preconditions, records the plan in the state file, builds
//! the network (see [`crate::hosts::network`]), checks that the control side
//! reaches every namespace, writes each node's `server.properties`, starts
//! the nodes as daemons and waits until every one is registered with an
//! elected controller. Any failure, Ctrl-C or SIGTERM on the way tears down
//! what was created. `down` removes processes, namespaces, links and our
//! iptables chain using the state file; it is idempotent and works after a
//! crashed `up`. `list` shows every cluster of a store and whether the
//! harness that owns it is still alive ([`owner`]); `down --all` removes
//! the stale ones. Clusters live where `faultline run` puts its own:
//! `<store>/clusters/<name>/`. Exit codes: 0 ok, 254 bad arguments, 255
//! harness failure.

pub(crate) mod describe;
pub(crate) mod inventory;
pub(crate) mod owner;
pub(crate) mod state;
mod status;

pub(crate) use state::{ClusterState, Phase};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use faultline_nemesis::{DaemonSpec, Host, Signal};

use crate::exit::{Failure, report};
use crate::hosts::exec::{self, CONTROL_HOST};
use crate::hosts::netns::read_proc;
use crate::hosts::network::{self, NODES_MAX};
use crate::hosts::{ClusterNet, NetnsHost, Subnet};
use state::{NodeState, STATE_VERSION, state_path};

/// The port every node listens on, on its namespace's address.
const NODE_PORT: u16 = 9092;
/// Settings for short test runs, unless `--broker-config` overrides them: failures
/// are detected within seconds instead of Kafka's tens of seconds.
const SHORT_RUN_DEFAULTS: &[(&str, &str)] = &[
    ("broker.session.timeout.ms", "3000"),
    ("broker.heartbeat.interval.ms", "300"),
    ("controller.quorum.election.timeout.ms", "500"),
    ("replica.lag.time.max.ms", "3000"),
];
/// Keys the harness derives from the plan; `--broker-config` may not change them.
const HARNESS_KEYS: &[&str] = &["node.id", "listeners", "log.dirs", "controller.quorum.voters"];
/// How long a connect to a fresh namespace may take before it counts as
/// unreachable (the first packet waits for ARP).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Timeout of one health or cluster request while waiting for the nodes.
pub(crate) const HEALTH_REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between two rounds of health checks.
const HEALTH_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long a SIGTERM'd node may take to shut down before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(3);
/// How long a SIGKILL'd process may take to disappear.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// Pause between two checks whether processes are gone.
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How much of a node's log is shown when it fails to come up.
const LOG_TAIL_BYTES: u64 = 4096;

#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Build the network, start the nodes, wait until they are healthy.
    Up(UpArgs),
    /// Show the nodes: pids, liveness, health.
    Status(status::StatusArgs),
    /// Every partition's leader, epoch, replicas, ISR, HW and LEO, as `kafka-topics --describe`.
    Describe(describe::DescribeArgs),
    /// Every cluster of a store, and whether the harness that owns it is alive.
    List(StoreArg),
    /// Stop every node and remove every namespace, link and iptables rule.
    Down(DownArgs),
}

/// Which cluster: `<store>/clusters/<name>/state.json`, where `faultline
/// run --store` puts its own.
#[derive(Args, Debug, Clone)]
pub(crate) struct Where {
    /// Cluster name: 1 to 8 of a-z, 0-9; names every resource (a run's is
    /// its `--cluster-name`, `run` by default).
    #[arg(long, default_value = "main")]
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) store: StoreArg,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct StoreArg {
    /// The store, as `faultline run --store`: clusters live in `<store>/clusters/<name>`.
    #[arg(long, default_value = "store")]
    pub(crate) store: PathBuf,
}

#[derive(Args, Debug)]
struct DownArgs {
    #[command(flatten)]
    at: Where,
    /// Every stale cluster of the store instead of one: those whose harness
    /// is gone (a killed `faultline run`, a crashed `cluster up`).
    #[arg(long, conflicts_with = "name")]
    all: bool,
}

#[derive(Args, Debug)]
struct UpArgs {
    #[command(flatten)]
    at: Where,
    /// Number of nodes, each a controller voter and a broker.
    #[arg(long, default_value_t = 3)]
    nodes: u32,
    /// A broker setting `key=value` for every node, with Kafka's key names;
    /// repeatable (as `faultline run --broker-config`).
    #[arg(long = "broker-config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// The cluster's /24; by default a free one under 10.213/16 derived from the name.
    #[arg(long)]
    subnet: Option<String>,
    /// How long the nodes may take to become healthy.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
}

pub fn main(args: ClusterArgs) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    let result = runtime.block_on(async {
        match args.command {
            ClusterCommand::Up(a) => up(a).await,
            ClusterCommand::Status(s) => status::status(s).await,
            ClusterCommand::Describe(d) => describe::describe(d).await,
            ClusterCommand::List(s) => inventory::list(&s.store),
            ClusterCommand::Down(d) if d.all => inventory::down_all(&d.at.store.store).await,
            ClusterCommand::Down(d) => down(d.at).await,
        }
    });
    report("cluster", result, |()| {})
}

fn cluster_dir(at: &Where) -> Result<PathBuf, Failure> {
    cluster_dir_of(at).map_err(Failure::BadArgs)
}

/// `<store>/clusters/<name>`, or why the name or store is bad.
pub(crate) fn cluster_dir_of(at: &Where) -> Result<PathBuf, String> {
    network::validate_name(&at.name)?;
    Ok(clusters_dir(&at.store.store)?.join(&at.name))
}

/// The state of the cluster `at` names; naming one that is not there is
/// the user's mistake (254).
pub(crate) fn load_named(at: &Where) -> Result<ClusterState, Failure> {
    let path = state_path(&cluster_dir(at)?);
    if !path.exists() {
        return Err(Failure::BadArgs(format!("no cluster {:?}: {} does not exist", at.name, path.display())));
    }
    Ok(ClusterState::load(&path)?)
}

/// `<store>/clusters`, absolute.
pub(crate) fn clusters_dir(store: &Path) -> Result<PathBuf, String> {
    let store = std::path::absolute(store).map_err(|e| format!("--store {}: {e}", store.display()))?;
    Ok(store.join("clusters"))
}

/// Parses `--broker-config key=value` flags, refusing keys the harness sets.
fn parse_config(flags: &[String]) -> Result<Vec<(String, String)>, Failure> {
    let mut settings: Vec<(String, String)> =
        SHORT_RUN_DEFAULTS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for flag in flags {
        let (k, v) = flag
            .split_once('=')
            .ok_or_else(|| Failure::BadArgs(format!("--broker-config {flag:?}: expected key=value")))?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || HARNESS_KEYS.contains(&k) {
            return Err(Failure::BadArgs(format!(
                "--broker-config {flag:?}: {k:?} is set by the harness from the cluster plan"
            )));
        }
        settings.retain(|(key, _)| key != k);
        settings.push((k.to_string(), v.to_string()));
    }
    Ok(settings)
}

async fn up(args: UpArgs) -> Result<(), Failure> {
    let dir = cluster_dir(&args.at)?;
    if !(1..=NODES_MAX).contains(&args.nodes) {
        return Err(Failure::BadArgs(format!("--nodes {}: must be 1 to {NODES_MAX}", args.nodes)));
    }
    let settings = parse_config(&args.config)?;
    let subnet = args.subnet.as_deref().map(Subnet::parse).transpose().map_err(Failure::BadArgs)?;
    exec::check_preconditions().map_err(|e| anyhow!(e))?;
    let path = state_path(&dir);
    if path.exists() && ClusterState::load(&path).map(|s| s.phase != Phase::Down).unwrap_or(true) {
        return Err(anyhow!(
            "cluster {:?} already exists ({}); run `faultline cluster down --name {}` first",
            args.at.name,
            path.display(),
            args.at.name
        )
        .into());
    }
    let subnet = choose_subnet(&args.at.name, subnet).await?;
    let net = ClusterNet::plan(&args.at.name, subnet, args.nodes);
    if let Err(found) = net.check_absent().await {
        return Err(anyhow!(
            "leftovers of cluster {:?} exist ({found}); run `faultline cluster down --name {}`",
            args.at.name,
            args.at.name
        )
        .into());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut state = plan_state(&dir, net, Some(owner::Owner::current("faultline cluster up")));
    state.save()?;
    let started = Instant::now();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing a SIGTERM handler")?;
    let result = tokio::select! {
        r = build(&mut state, &settings, Duration::from_millis(args.timeout_ms)) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted (SIGINT)")),
        _ = sigterm.recv() => Err(anyhow!("terminated (SIGTERM)")),
    };
    if let Err(e) = result {
        tracing::error!("up failed: {e:#}; tearing down what was created");
        let _ = tear_down(&mut state).await;
        return Err(e.into());
    }
    state.phase = Phase::Up;
    // The user keeps this cluster: no harness will tear it down.
    state.owner = None;
    state.save()?;
    println!(
        "cluster {} up in {} ms: {} nodes on {} (control {})",
        state.name,
        started.elapsed().as_millis(),
        state.nodes.len(),
        state.net.subnet,
        state.net.control_ip
    );
    for n in &state.nodes {
        println!("  {} {} pid {} netns {}", n.name, n.url, n.pid.unwrap_or(0), n.netns);
    }
    println!("state: {}", state_path(&state.dir).display());
    Ok(())
}

/// The Rust API of `up` for `faultline run`: builds a cluster in
/// `dir` (its own directory, holding the state file) and waits until it is
/// healthy; tears down what was created on failure. `config` holds
/// `key=value` broker settings as for `--broker-config`.
pub(crate) async fn start(
    name: &str,
    dir: &Path,
    nodes: u32,
    config: &[String],
    subnet: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<ClusterState> {
    network::validate_name(name).map_err(|e| anyhow!(e))?;
    anyhow::ensure!((1..=NODES_MAX).contains(&nodes), "--nodes {nodes}: must be 1 to {NODES_MAX}");
    let settings = parse_config(config).map_err(|f| match f {
        Failure::BadArgs(m) => anyhow!(m),
        Failure::Harness(e) => e,
    })?;
    let subnet = subnet.map(Subnet::parse).transpose().map_err(|e| anyhow!(e))?;
    exec::check_preconditions().map_err(|e| anyhow!(e))?;
    let path = state_path(dir);
    if path.exists() && ClusterState::load(&path).map(|s| s.phase != Phase::Down).unwrap_or(true) {
        bail!("cluster {name:?} already exists ({}); run `faultline cluster down` on it first", path.display());
    }
    let subnet = choose_subnet(name, subnet).await?;
    let net = ClusterNet::plan(name, subnet, nodes);
    if let Err(found) = net.check_absent().await {
        bail!("leftovers of cluster {name:?} exist ({found})");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut state = plan_state(dir, net, Some(owner::Owner::current("faultline run")));
    state.save()?;
    if let Err(e) = build(&mut state, &settings, timeout).await {
        let _ = tear_down(&mut state).await;
        return Err(e);
    }
    state.phase = Phase::Up;
    state.save()?;
    Ok(state)
}

/// The Rust API of `down`: stops every process of the cluster and removes
/// its network.
pub(crate) async fn stop(state: &mut ClusterState) -> anyhow::Result<()> {
    tear_down(state).await
}

async fn choose_subnet(name: &str, requested: Option<Subnet>) -> anyhow::Result<Subnet> {
    if let Some(s) = requested {
        network::check_subnet_free(s).await.map_err(|e| anyhow!(e))?;
        return Ok(s);
    }
    for candidate in Subnet::defaults_for(name) {
        if network::check_subnet_free(candidate).await.is_ok() {
            return Ok(candidate);
        }
    }
    bail!("no free /24 under 10.213/16 for cluster {name:?}; pass --subnet")
}

fn plan_state(dir: &Path, net: ClusterNet, owner: Option<owner::Owner>) -> ClusterState {
    let nodes = net
        .nodes
        .iter()
        .map(|n| {
            let node_dir = dir.join(format!("n{}", n.id));
            NodeState {
                id: n.id,
                name: format!("n{}", n.id),
                netns: n.netns.clone(),
                url: format!("http://{}:{NODE_PORT}", n.ip),
                config_file: node_dir.join("server.properties"),
                data_dir: node_dir.join("data"),
                log_file: node_dir.join("node.log"),
                pid_file: node_dir.join("node.pid"),
                pid: None,
            }
        })
        .collect();
    let iptables_rules = vec![
        format!("-N {}", net.chain),
        format!("-A {} -i {} -j ACCEPT", net.chain, net.bridge),
        format!("-A {} -o {} -j ACCEPT", net.chain, net.bridge),
        format!("-A FORWARD -j {}", net.chain),
    ];
    ClusterState {
        version: STATE_VERSION,
        name: net.name.clone(),
        phase: Phase::Creating,
        dir: dir.to_path_buf(),
        net,
        iptables_rules,
        nodes,
        owner,
    }
}

pub(crate) fn hosts(state: &ClusterState) -> Vec<NetnsHost> {
    state.net.nodes.iter().map(|n| NetnsHost::new(format!("n{}", n.id), n.netns.clone(), n.ip)).collect()
}

/// Everything `up` does after recording the plan.
async fn build(
    state: &mut ClusterState,
    settings: &[(String, String)],
    health_timeout: Duration,
) -> anyhow::Result<()> {
    state.net.create_bridge().await?;
    state.net.create_chain().await?;
    for node in &state.net.nodes {
        state.net.create_node(node).await?;
    }
    check_connectivity(&state.net).await?;
    let node_bin = crate::node_process::node_binary()?;
    let hosts = hosts(state);
    for (node, host) in state.nodes.iter_mut().zip(&hosts) {
        std::fs::create_dir_all(&node.data_dir).with_context(|| format!("creating {}", node.data_dir.display()))?;
        std::fs::write(&node.config_file, server_properties(node, &state.net, settings))
            .with_context(|| format!("writing {}", node.config_file.display()))?;
        node.pid = Some(host.start_daemon(&node_daemon(node, &node_bin)).await?);
    }
    state.save()?;
    wait_healthy(state, &hosts, health_timeout).await
}

/// How a node's daemon is started (and restarted by the nemesis).
pub(crate) fn node_daemon(node: &NodeState, node_bin: &Path) -> DaemonSpec {
    DaemonSpec {
        argv: vec![node_bin.display().to_string(), "--config".into(), node.config_file.display().to_string()],
        pid_file: node.pid_file.clone(),
        log_file: node.log_file.clone(),
        cwd: node.config_file.parent().map(Path::to_path_buf),
    }
}

fn server_properties(node: &NodeState, net: &ClusterNet, settings: &[(String, String)]) -> String {
    let voters: Vec<String> = net.nodes.iter().map(|n| format!("{}@{}:{NODE_PORT}", n.id, n.ip)).collect();
    let mut text = format!(
        "# Written by `faultline cluster up` for cluster {}.\n\
         node.id={}\n\
         listeners={}\n\
         log.dirs={}\n\
         controller.quorum.voters={}\n",
        net.name,
        node.id,
        node.url,
        node.data_dir.display(),
        voters.join(",")
    );
    for (k, v) in settings {
        text.push_str(&format!("{k}={v}\n"));
    }
    text
}

/// From the control side, a TCP connect to every node's port before any
/// node runs: a refusal proves the namespace's kernel answered. Only
/// addresses of namespaces we just created are probed.
async fn check_connectivity(net: &ClusterNet) -> anyhow::Result<()> {
    for node in &net.nodes {
        anyhow::ensure!(net.can_reach(node).await?, "namespace {} or bridge {} vanished", node.netns, net.bridge);
        let addr = std::net::SocketAddr::from((node.ip, NODE_PORT));
        match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => bail!("{addr} in fresh namespace {} already accepts connections", node.netns),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Ok(Err(e)) => bail!("control side cannot reach namespace {} at {}: {e}", node.netns, node.ip),
            Err(_) => {
                bail!("control side cannot reach namespace {} at {} within {PROBE_TIMEOUT:?}", node.netns, node.ip)
            }
        }
    }
    Ok(())
}

/// Waits until every node answers `/health` with 200 and reports a
/// controller; fails early when a node exits, with its log tail.
async fn wait_healthy(state: &ClusterState, hosts: &[NetnsHost], timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let clients: Vec<_> = state
        .nodes
        .iter()
        .map(|n| faultline_client::Client::with_timeout(n.url.clone(), HEALTH_REQUEST_TIMEOUT))
        .collect();
    let mut pending: BTreeSet<usize> = (0..state.nodes.len()).collect();
    while !pending.is_empty() {
        for i in pending.clone() {
            let node = &state.nodes[i];
            if hosts[i].process(node.pid.expect("started")).await?.is_none() {
                bail!(
                    "node {} exited during start-up; log {}:\n{}",
                    node.name,
                    node.log_file.display(),
                    log_tail(&hosts[i], node).await
                );
            }
            let healthy = clients[i].health().await.is_ok();
            if healthy && clients[i].cluster().await.is_ok_and(|c| c.controller.is_some()) {
                pending.remove(&i);
            }
        }
        if !pending.is_empty() && Instant::now() > deadline {
            let mut msg = format!("nodes not healthy with a controller within {} ms:", timeout.as_millis());
            for &i in &pending {
                let node = &state.nodes[i];
                msg.push_str(&format!(
                    "\n--- {} ({}), log {}:\n{}",
                    node.name,
                    node.url,
                    node.log_file.display(),
                    log_tail(&hosts[i], node).await
                ));
            }
            bail!(msg);
        }
        tokio::time::sleep(HEALTH_POLL_INTERVAL).await;
    }
    Ok(())
}

async fn log_tail(host: &NetnsHost, node: &NodeState) -> String {
    match host.read_file(&node.log_file, LOG_TAIL_BYTES).await {
        Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(None) => "(no log)".into(),
        Err(e) => format!("(unreadable: {e})"),
    }
}

/// The process `pid` if it is still this node's (pids are reused): its
/// command line names the node's config file.
pub(crate) fn our_process(node: &NodeState, pid: u32) -> Option<faultline_nemesis::ProcessInfo> {
    let config = node.config_file.display().to_string();
    read_proc(pid).filter(|p| p.argv.contains(&config))
}

async fn down(at: Where) -> Result<(), Failure> {
    let mut state = load_named(&at)?;
    exec::check_preconditions().map_err(|e| anyhow!(e))?;
    let started = Instant::now();
    tear_down(&mut state).await?;
    println!("cluster {} down in {} ms", state.name, started.elapsed().as_millis());
    Ok(())
}

/// Stops every process of the cluster and removes its network; marks the
/// state `down` when nothing failed.
pub(crate) async fn tear_down(state: &mut ClusterState) -> anyhow::Result<()> {
    let pids = cluster_pids(state).await?;
    let mut failures: Vec<String> = stop_processes(&pids).await.into_iter().collect();
    failures.extend(state.net.destroy().await.into_iter().map(|e| e.to_string()));
    if !failures.is_empty() {
        bail!("teardown of cluster {} incomplete:\n  {}", state.name, failures.join("\n  "));
    }
    state.phase = Phase::Down;
    state.owner = None;
    state.save()
}

/// Every process of the cluster: recorded pids and pid files that still
/// name a node's config, and whatever runs in our namespaces (this also
/// finds a node whose pid `up` had no time to record).
async fn cluster_pids(state: &ClusterState) -> anyhow::Result<BTreeSet<u32>> {
    let mut pids = BTreeSet::new();
    for node in &state.nodes {
        let from_file = std::fs::read_to_string(&node.pid_file).ok().and_then(|s| s.trim().parse().ok());
        pids.extend(node.pid.into_iter().chain(from_file).filter(|&pid| our_process(node, pid).is_some()));
    }
    let namespaces = network::list_netns().await?;
    for node in state.net.nodes.iter().filter(|n| namespaces.contains(&n.netns)) {
        let out = exec::run_ok(CONTROL_HOST, &exec::argv(&["ip", "netns", "pids", &node.netns])).await?;
        pids.extend(String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    // A node whose pid was never recorded and whose namespace is already
    // gone is still found by its command line.
    pids.extend(node_processes(state));
    Ok(pids)
}

/// Every live process on this machine that runs one of the cluster's node
/// configs.
fn node_processes(state: &ClusterState) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let pids = entries.flatten().filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok());
    pids.filter(|&pid| state.nodes.iter().any(|n| our_process(n, pid).is_some())).collect()
}

/// SIGTERM, then SIGKILL after [`TERM_GRACE`]; a stopped process gets
/// SIGCONT so that it can act on the SIGTERM. Returns the failures.
async fn stop_processes(pids: &BTreeSet<u32>) -> Option<String> {
    let control = NetnsHost::new(CONTROL_HOST, "", std::net::Ipv4Addr::LOCALHOST);
    for &pid in pids {
        let _ = control.signal(pid, Signal::Term).await;
        let _ = control.signal(pid, Signal::Cont).await;
    }
    if wait_gone(pids, TERM_GRACE).await.is_empty() {
        return None;
    }
    for &pid in pids {
        let _ = control.signal(pid, Signal::Kill).await;
    }
    let left = wait_gone(pids, KILL_WAIT).await;
    (!left.is_empty()).then(|| format!("processes {left:?} survived SIGKILL for {KILL_WAIT:?}"))
}

/// Waits up to `timeout` for the processes to go; returns those left.
async fn wait_gone(pids: &BTreeSet<u32>, timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| read_proc(p).is_some()).collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(EXIT_POLL_INTERVAL).await;
    }
}
