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
pub(crate) mod external;
mod health;
pub(crate) mod inventory;
pub(crate) mod lazy_disk;
pub(crate) mod owner;
pub(crate) mod placement;
pub(crate) mod processes;
pub(crate) mod state;
mod status;

pub(crate) use processes::our_process;
pub(crate) use state::{ClusterState, Phase, Placement};

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use faultline_nemesis::{DaemonSpec, Host};

use crate::exit::{Failure, report};
use crate::hosts::exec;
use crate::hosts::hosts_file::HostsFile;
use crate::hosts::network::{self, NODES_MAX};
use crate::hosts::{AnyHost, ClusterNet, Subnet};
pub(crate) use lazy_disk::Disk;
use placement::NODE_PORT;
use state::{NodeState, STATE_VERSION, state_path};
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
pub(crate) use health::HEALTH_REQUEST_TIMEOUT;

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
    /// The cluster's `hosts.toml`: lets `down` clean the hosts even when the
    /// cluster's state file is gone (a deleted store).
    #[arg(long, value_name = "FILE", conflicts_with = "all")]
    hosts: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct UpArgs {
    #[command(flatten)]
    at: Where,
    /// Number of nodes, each a controller voter and a broker.
    #[arg(long, default_value_t = 3, conflicts_with = "hosts")]
    nodes: u32,
    /// Run the nodes on the machines of this `hosts.toml`, over SSH, one
    /// node per host, instead of in network namespaces on this machine.
    #[arg(long, value_name = "FILE", conflicts_with = "subnet")]
    hosts: Option<PathBuf>,
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
    /// What the nodes' data directories live on: `lazyfs` mounts a
    /// filesystem that forgets unsynced writes at `power-loss`.
    #[arg(long, value_enum, default_value_t = Disk::Plain)]
    disk: Disk,
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
            ClusterCommand::Down(d) => down(d.at, d.hosts).await,
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
    let settings = parse_config(&args.config)?;
    let placement = match &args.hosts {
        Some(file) => placement::ssh_placement(&HostsFile::load(file).map_err(Failure::BadArgs)?),
        None => {
            if !(1..=NODES_MAX).contains(&args.nodes) {
                return Err(Failure::BadArgs(format!("--nodes {}: must be 1 to {NODES_MAX}", args.nodes)));
            }
            let subnet = args.subnet.as_deref().map(Subnet::parse).transpose().map_err(Failure::BadArgs)?;
            exec::check_preconditions().map_err(|e| anyhow!(e))?;
            Placement::Netns(plan_network(&args.at.name, subnet, args.nodes).await?)
        }
    };
    refuse_existing(&dir, &args.at.name)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let owner = Some(owner::Owner::current("faultline cluster up"));
    let mut state =
        plan_state(&dir, &args.at.name, placement, owner, args.disk).map_err(|e| Failure::BadArgs(format!("{e:#}")))?;
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
        return Err(match e.downcast::<HostsNotReady>() {
            // Found before anything was put on any host: nothing to undo.
            Ok(not_ready) => {
                state.phase = Phase::Down;
                state.owner = None;
                state.save()?;
                Failure::BadArgs(not_ready.to_string())
            }
            Err(e) => {
                tracing::error!("up failed: {e:#}; tearing down what was created");
                if let Err(t) = tear_down(&mut state).await {
                    tracing::error!("{t:#}");
                }
                e.into()
            }
        });
    }
    state.phase = Phase::Up;
    // The user keeps this cluster: no harness will tear it down.
    state.owner = None;
    state.save()?;
    println!(
        "cluster {} up in {} ms: {} nodes, {} (control {})",
        state.name,
        started.elapsed().as_millis(),
        state.nodes.len(),
        state.placement.describe(),
        state.placement.control_ip()
    );
    for n in &state.nodes {
        println!("  {} {} pid {} on {}", n.name, n.url, n.pid.unwrap_or(0), n.host);
    }
    println!("state: {}", state_path(&state.dir).display());
    Ok(())
}

/// The hosts are not ready for a cluster: unreachable, refusing the login,
/// or lacking something. The user's to fix, so `up` exits 254.
#[derive(Debug, thiserror::Error)]
#[error("the hosts are not ready:\n  {}", .0.join("\n  "))]
pub(crate) struct HostsNotReady(pub Vec<String>);

/// Refuses to plan over a cluster of the same name that is not down.
fn refuse_existing(dir: &Path, name: &str) -> Result<(), Failure> {
    let path = state_path(dir);
    if path.exists() && ClusterState::load(&path).map(|s| s.phase != Phase::Down).unwrap_or(true) {
        return Err(anyhow!(
            "cluster {name:?} already exists ({}); run `faultline cluster down --name {name}` first",
            path.display()
        )
        .into());
    }
    Ok(())
}

/// A network plan on a free subnet, refusing leftovers under our names.
async fn plan_network(name: &str, subnet: Option<Subnet>, nodes: u32) -> anyhow::Result<ClusterNet> {
    let subnet = choose_subnet(name, subnet).await?;
    let net = ClusterNet::plan(name, subnet, nodes);
    if let Err(found) = net.check_absent().await {
        bail!("leftovers of cluster {name:?} exist ({found}); run `faultline cluster down --name {name}`");
    }
    Ok(net)
}

/// Where `start` puts the nodes.
pub(crate) enum Target<'a> {
    /// Namespaces on this machine, on this /24 or a free one.
    Netns { nodes: u32, subnet: Option<&'a str>, disk: Disk },
    /// These SSH hosts, one node each.
    Ssh(&'a HostsFile),
    /// These SSH hosts, each running a node of an external system.
    External(&'a HostsFile, &'a crate::system::file::SystemFile),
}

/// The Rust API of `up` for `faultline run`: builds a cluster in
/// `dir` (its own directory, holding the state file) and waits until it is
/// healthy; tears down what was created on failure. `config` holds
/// `key=value` broker settings as for `--broker-config`. Hosts that are
/// not ready fail with [`HostsNotReady`].
pub(crate) async fn start(
    name: &str,
    dir: &Path,
    target: Target<'_>,
    config: &[String],
    timeout: Duration,
) -> anyhow::Result<ClusterState> {
    network::validate_name(name).map_err(|e| anyhow!(e))?;
    let settings = parse_config(config).map_err(|f| match f {
        Failure::BadArgs(m) => anyhow!(m),
        Failure::Harness(e) => e,
    })?;
    let path = state_path(dir);
    if path.exists() && ClusterState::load(&path).map(|s| s.phase != Phase::Down).unwrap_or(true) {
        bail!("cluster {name:?} already exists ({}); run `faultline cluster down` on it first", path.display());
    }
    let placement = match target {
        Target::Netns { nodes, subnet, .. } => {
            anyhow::ensure!((1..=NODES_MAX).contains(&nodes), "--nodes {nodes}: must be 1 to {NODES_MAX}");
            let subnet = subnet.map(Subnet::parse).transpose().map_err(|e| anyhow!(e))?;
            exec::check_preconditions().map_err(|e| anyhow!(e))?;
            Placement::Netns(plan_network(name, subnet, nodes).await?)
        }
        Target::Ssh(file) | Target::External(file, _) => placement::ssh_placement(file),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let disk = match target {
        Target::Netns { disk, .. } => disk,
        _ => Disk::Plain,
    };
    let mut state = plan_state(dir, name, placement, Some(owner::Owner::current("faultline run")), disk)?;
    if let (Target::External(file, system), Placement::Ssh(_)) = (&target, &state.placement) {
        let nodes = system.resolve(&file.hosts, name).map_err(|e| anyhow!("{}: {e}", system.path.display()))?;
        state.nodes = external::plan_nodes(name, &file.hosts, &nodes);
    }
    state.save()?;
    if let Err(e) = build(&mut state, &settings, timeout).await {
        if e.is::<HostsNotReady>() {
            // Found before anything was put on any host: nothing to undo.
            state.phase = Phase::Down;
            state.owner = None;
            state.save()?;
        } else {
            let _ = tear_down(&mut state).await;
        }
        return Err(e);
    }
    state.phase = Phase::Up;
    state.save()?;
    Ok(state)
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

fn plan_state(
    dir: &Path,
    name: &str,
    placement: Placement,
    owner: Option<owner::Owner>,
    disk: Disk,
) -> anyhow::Result<ClusterState> {
    let (nodes, iptables_rules) = match &placement {
        Placement::Netns(net) => (netns_nodes(dir, net, disk)?, netns_rules(net)),
        Placement::Ssh(_) if disk == Disk::Lazyfs => bail!(
            "the lazyfs disk (and so power-loss) runs on namespace hosts only: SSH hosts would need the \
             filesystem on each host, which faultline does not install yet"
        ),
        Placement::Ssh(ssh) => (placement::plan_ssh_nodes(name, &ssh.hosts), Vec::new()),
    };
    Ok(ClusterState {
        version: STATE_VERSION,
        name: name.to_string(),
        phase: Phase::Creating,
        dir: dir.to_path_buf(),
        placement,
        iptables_rules,
        nodes,
        owner,
    })
}

fn netns_nodes(dir: &Path, net: &ClusterNet, disk: Disk) -> anyhow::Result<Vec<NodeState>> {
    let binary = crate::node_process::node_binary()?;
    Ok(net
        .nodes
        .iter()
        .map(|n| {
            let node_dir = dir.join(format!("n{}", n.id));
            NodeState {
                id: n.id,
                name: format!("n{}", n.id),
                host: n.netns.clone(),
                url: format!("http://{}:{NODE_PORT}", n.ip),
                binary: binary.clone(),
                config_file: node_dir.join("server.properties"),
                data_dir: node_dir.join("data"),
                log_file: node_dir.join("node.log"),
                pid_file: node_dir.join("node.pid"),
                pid: None,
                external: None,
                disk,
            }
        })
        .collect())
}

fn netns_rules(net: &ClusterNet) -> Vec<String> {
    vec![
        format!("-N {}", net.chain),
        format!("-A {} -i {} -j ACCEPT", net.chain, net.bridge),
        format!("-A {} -o {} -j ACCEPT", net.chain, net.bridge),
        format!("-A FORWARD -j {}", net.chain),
    ]
}

/// Every host of the cluster, reached (SSH) or named (namespaces).
pub(crate) async fn connect_hosts(state: &ClusterState) -> anyhow::Result<Vec<AnyHost>> {
    placement::connect(state)
        .await
        .map_err(|errors| anyhow!(HostsNotReady(errors.iter().map(|e| e.to_string()).collect())))
}

/// Everything `up` does after recording the plan.
async fn build(
    state: &mut ClusterState,
    settings: &[(String, String)],
    health_timeout: Duration,
) -> anyhow::Result<()> {
    if let Placement::Netns(net) = &state.placement {
        net.create_bridge().await?;
        net.create_chain().await?;
        for node in &net.nodes {
            net.create_node(node).await?;
        }
        check_connectivity(net).await?;
    }
    let hosts = connect_hosts(state).await?;
    placement::check_hosts(state, &hosts).await.map_err(HostsNotReady)?;
    if state.nodes.iter().any(|n| n.external.is_some()) {
        placement::learn_control_ip(state, &hosts).await?;
        return external::build(state, &hosts, health_timeout).await;
    }
    placement::deploy(state, &hosts, &crate::node_process::node_binary()?).await?;
    state.save()?;
    // Before any node starts: a node's mount namespace is copied when it starts.
    lazy_disk::mount_all(state).await?;
    // All hosts at once: over SSH each step is a round trip per host.
    let st: &ClusterState = state;
    let writes = hosts.iter().enumerate().map(|(i, host)| async move {
        placement::write_config(st, &st.nodes[i], host, &server_properties(st, i, settings)).await
    });
    futures_util::future::join_all(writes).await.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let specs: Vec<DaemonSpec> = state.nodes.iter().map(node_daemon).collect();
    let starts = hosts.iter().zip(&specs).map(|(host, spec)| host.start_daemon(spec));
    let pids = futures_util::future::join_all(starts).await;
    for (node, pid) in state.nodes.iter_mut().zip(&pids) {
        node.pid = pid.as_ref().ok().copied();
    }
    state.save()?;
    pids.into_iter().collect::<Result<Vec<u32>, _>>()?;
    health::wait_healthy(state, &hosts, health_timeout).await
}

/// How a node's daemon is started (and restarted by the nemesis).
pub(crate) fn node_daemon(node: &NodeState) -> DaemonSpec {
    DaemonSpec {
        argv: vec![node.binary.display().to_string(), "--config".into(), node.config_file.display().to_string()],
        pid_file: node.pid_file.clone(),
        log_file: node.log_file.clone(),
        cwd: node.config_file.parent().map(Path::to_path_buf),
    }
}

/// Node `i`'s `server.properties`: its id, where it listens and where
/// clients reach it, its data, the voters, and the settings.
fn server_properties(state: &ClusterState, i: usize, settings: &[(String, String)]) -> String {
    let node = &state.nodes[i];
    let ips = state.placement.node_ips();
    let voters: Vec<String> =
        state.nodes.iter().zip(&ips).map(|(n, ip)| format!("{}@{ip}:{NODE_PORT}", n.id)).collect();
    let listener = format!("http://{}:{NODE_PORT}", ips[i]);
    let kafka = format!("PLAINTEXT://{}:{}", ips[i], placement::KAFKA_PORT);
    let mut text = format!(
        "# Written by `faultline cluster up` for cluster {}.\n\
         node.id={}\n\
         listeners={listener},{kafka}\n\
         log.dirs={}\n\
         controller.quorum.voters={}\n",
        state.name,
        node.id,
        node.data_dir.display(),
        voters.join(",")
    );
    if node.url != listener {
        // Clients reach this node elsewhere (NAT): both listeners are there.
        text.push_str(&format!("advertised.listeners={},PLAINTEXT://{}\n", node.url, node.kafka_address()));
    }
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

async fn down(at: Where, hosts: Option<PathBuf>) -> Result<(), Failure> {
    let mut state = match hosts {
        Some(file) if !state_path(&cluster_dir(&at)?).exists() => state_from_hosts(&at, &file)?,
        _ => load_named(&at)?,
    };
    if state.placement.net().is_some() {
        exec::check_preconditions().map_err(|e| anyhow!(e))?;
    }
    let started = Instant::now();
    tear_down(&mut state).await?;
    println!("cluster {} down in {} ms", state.name, started.elapsed().as_millis());
    Ok(())
}

/// The state an SSH cluster named `at` would have on the hosts of `file`,
/// for a `down` whose state file is gone: its nodes are then found by
/// their config paths, and its directory and chain removed.
fn state_from_hosts(at: &Where, file: &Path) -> Result<ClusterState, Failure> {
    let hosts = HostsFile::load(file).map_err(Failure::BadArgs)?;
    let dir = cluster_dir(at)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(plan_state(&dir, &at.name, placement::ssh_placement(&hosts), None, Disk::Plain)?)
}

/// Stops every process of the cluster and removes what `up` created (the
/// network, or our chain and directory on each SSH host); marks the state
/// `down` when nothing failed.
pub(crate) async fn tear_down(state: &mut ClusterState) -> anyhow::Result<()> {
    let stopped = stop_nodes(state).await?;
    finish_tear_down(state, stopped).await
}

/// The first half of a teardown: every node process stopped. The nodes'
/// files are still on their hosts until [`finish_tear_down`].
pub(crate) struct Stopped {
    pub(crate) hosts: Vec<AnyHost>,
    failures: Vec<String>,
}

pub(crate) async fn stop_nodes(state: &ClusterState) -> anyhow::Result<Stopped> {
    let hosts = connect_hosts(state).await.context("tearing down")?;
    // An external system's nodes stop by their own command first.
    let mut failures = external::stop(state, &hosts).await;
    let pids = processes::cluster_pids(state, &hosts).await?;
    failures.extend(processes::stop(&hosts, &pids).await);
    Ok(Stopped { hosts, failures })
}

/// The second half: the network, or our chain and directory on each SSH
/// host, removed; the state marked `down` when nothing failed.
pub(crate) async fn finish_tear_down(state: &mut ClusterState, stopped: Stopped) -> anyhow::Result<()> {
    let Stopped { hosts, mut failures } = stopped;
    // The nodes are gone: nothing uses their disks.
    failures.extend(lazy_disk::unmount_all(state).await);
    if let Some(net) = state.placement.net() {
        failures.extend(net.destroy().await.into_iter().map(|e| e.to_string()));
    }
    failures.extend(placement::clean_hosts(state, &hosts).await);
    if !failures.is_empty() {
        bail!("teardown of cluster {} incomplete:\n  {}", state.name, failures.join("\n  "));
    }
    state.phase = Phase::Down;
    state.owner = None;
    state.save()
}
