//! What differs between a cluster of namespaces on this machine and one of
//! machines over SSH: the plan of each node's paths and address, reaching
//! the hosts, checking and preparing them before anything starts, and
//! removing what `up` put on them.
//!
//! On an SSH host everything of a cluster lives under `<base-dir>/<cluster>`:
//! `bin/faultline-node` (copied from this machine), and per node its
//! `server.properties`, data directory, log and pid file. `down` removes
//! that directory and the nemesis's iptables chain, so nothing of ours is
//! left on the machine.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use faultline_nemesis::{Host, HostError};

use super::state::{ClusterState, NodeState, Placement, SshPlacement};
use crate::hosts::hosts_file::{HostsFile, SshTarget};
use crate::hosts::{AnyHost, NetnsHost, SshHost};

/// The port every node's HTTP API listens on.
pub(crate) const NODE_PORT: u16 = 9092;
/// The port of every node's Kafka-protocol listener (`kcat -b <node>:9093`).
pub(crate) const KAFKA_PORT: u16 = 9093;
/// Free space a host needs under its base directory.
const DISK_FREE_MIN_KB: u64 = 512 * 1024;
/// Bound on the harness's own preparation commands on a host.
const PREPARE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The nodes of a cluster on `hosts`, each under `<base-dir>/<cluster>`.
pub(crate) fn plan_ssh_nodes(name: &str, hosts: &[SshTarget]) -> Vec<NodeState> {
    hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let base = h.base_dir.join(name);
            let dir = base.join(&h.name);
            NodeState {
                id: i as u32 + 1,
                name: h.name.clone(),
                host: format!("{}@{}:{}", h.user, h.ssh_address, h.port),
                url: format!("http://{}:{NODE_PORT}", h.client_address),
                binary: base.join("bin/faultline-node"),
                config_file: dir.join("server.properties"),
                data_dir: dir.join("data"),
                log_file: dir.join("node.log"),
                pid_file: dir.join("node.pid"),
                pid: None,
                external: None,
                disk: Default::default(),
            }
        })
        .collect()
}

/// The SSH placement of `file`; the control address is learnt at deploy.
pub(crate) fn ssh_placement(file: &HostsFile) -> Placement {
    Placement::Ssh(SshPlacement {
        hosts_file: file.path.clone(),
        hosts: file.hosts.clone(),
        control_ip: file.control_address.unwrap_or(Ipv4Addr::UNSPECIFIED),
    })
}

/// Where SSH control sockets go: short, because a Unix socket path is
/// limited to 108 bytes, and private to this user.
fn control_dir() -> anyhow::Result<PathBuf> {
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self")?);
    let dir = std::env::temp_dir().join(format!("faultline-ssh-{uid}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    Ok(dir)
}

/// The known-hosts file of a store: host keys are pinned on first contact
/// and checked on every later one.
fn known_hosts(state: &ClusterState) -> PathBuf {
    state.dir.parent().map_or_else(|| state.dir.join("known_hosts"), |clusters| clusters.join("known_hosts"))
}

/// Reaches every host of the cluster. For SSH, connects to all of them at
/// once; the error lists every host that failed.
pub(crate) async fn connect(state: &ClusterState) -> Result<Vec<AnyHost>, Vec<HostError>> {
    match &state.placement {
        Placement::Netns(net) => Ok(state
            .nodes
            .iter()
            .zip(&net.nodes)
            .map(|(n, nn)| AnyHost::Netns(NetnsHost::new(n.name.clone(), nn.netns.clone(), nn.ip)))
            .collect()),
        Placement::Ssh(ssh) => {
            let ctl = control_dir().map_err(|e| vec![HostError::Privilege(format!("{e:#}"))])?;
            let known = known_hosts(state);
            let tasks: Vec<_> = ssh
                .hosts
                .iter()
                .map(|t| {
                    let (t, ctl, known) = (t.clone(), ctl.clone(), known.clone());
                    tokio::spawn(async move { SshHost::connect(&t, &ctl, &known).await })
                })
                .collect();
            let (mut hosts, mut errors) = (Vec::new(), Vec::new());
            for task in tasks {
                match task.await.expect("a connect task does not panic") {
                    Ok(h) => hosts.push(AnyHost::Ssh(h)),
                    Err(e) => errors.push(e),
                }
            }
            if errors.is_empty() { Ok(hosts) } else { Err(errors) }
        }
    }
}

/// Whether the harness may send to node `i`'s address now: for a namespace,
/// its namespace and our bridge exist (an address with nothing of ours
/// behind it would leave the machine); an SSH host is one the user named.
pub(crate) async fn can_reach(state: &ClusterState, i: usize) -> anyhow::Result<bool> {
    match &state.placement {
        Placement::Netns(net) => Ok(net.can_reach(&net.nodes[i]).await?),
        Placement::Ssh(_) => Ok(true),
    }
}

/// What a host lacks, each with its fix; empty when it is ready. Checks
/// root (or sudo), `iptables`, the node port, the base directory and its
/// free space, and that the host runs this machine's architecture.
async fn problems(host: &SshHost, ports: (u16, u16), arch: bool) -> Result<Vec<String>, HostError> {
    let t = host.target();
    let script = r#"base=$1; port=$2; ipt=$3; kafka_port=$4
[ "$(id -u)" = 0 ] || echo "not-root $(id -un)"
if [ -n "$ipt" ]; then [ -x "$ipt" ] || echo "no-iptables"; else command -v iptables >/dev/null 2>&1 || echo "no-iptables"; fi
if command -v ss >/dev/null 2>&1; then
  [ -z "$(ss -Htln "( sport = :$port or sport = :$kafka_port )")" ] || echo "port-busy"
else echo "no-ss"; fi
if mkdir -p "$base" 2>/dev/null; then
  avail=$(df -Pk "$base" | awk 'NR==2 {print $4}'); echo "free-kb ${avail:-0}"
else echo "no-base-dir"; fi
echo "arch $(uname -m)""#;
    let ipt = t.iptables.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let args = [t.base_dir.display().to_string(), ports.0.to_string(), ipt, ports.1.to_string()];
    let argv: Vec<String> = ["sh", "-c", script, "faultline"].iter().map(|s| s.to_string()).chain(args).collect();
    let out = host.run(&argv, PREPARE_TIMEOUT).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.success() || !text.lines().any(|l| l.starts_with("arch ")) {
        // The checks themselves did not run: most often `sudo -n` asking
        // for a password.
        let err = String::from_utf8_lossy(&out.stderr);
        let fix = if t.sudo { "; `sudo = true` needs passwordless sudo for this user" } else { "" };
        return Ok(vec![format!("host {} ({}): the checks did not run: {}{fix}", t.name, t.address, err.trim())]);
    }
    // Whose binary runs on the host: only faultline-node's must match ours.
    let lines = text.lines().filter(|l| arch || !l.starts_with("arch "));
    Ok(lines.filter_map(|line| problem(t, line, ports)).collect())
}

/// The problem one line of the check reports, with its fix.
fn problem(t: &SshTarget, line: &str, ports: (u16, u16)) -> Option<String> {
    let (what, value) = line.split_once(' ').unwrap_or((line, ""));
    let base = t.base_dir.display();
    let why = match what {
        "not-root" => {
            format!("logged in as {value}, not root: log in as root, or set `sudo = true` (passwordless sudo)")
        }
        "no-iptables" => match &t.iptables {
            Some(p) => format!("`iptables = \"{}\"` is not an executable on the host: fix the path", p.display()),
            None => "iptables is not installed: install the `iptables` package, or set `iptables = \"/path\"`".into(),
        },
        "port-busy" => format!("port {} or {} is already in use: stop what listens there", ports.0, ports.1),
        "no-ss" => "`ss` is missing: install the `iproute2` package".into(),
        "no-base-dir" => format!("cannot create base-dir {base}: fix its permissions or choose another `base-dir`"),
        "free-kb" => match value.parse::<u64>() {
            Ok(kb) if kb >= DISK_FREE_MIN_KB => return None,
            _ => format!("only {value} KiB free under {base}; {DISK_FREE_MIN_KB} KiB are needed"),
        },
        "arch" if value == std::env::consts::ARCH => return None,
        "arch" => format!(
            "runs {value}, but this faultline-node is built for {}: build for the host's target or use matching hosts",
            std::env::consts::ARCH
        ),
        _ => return None,
    };
    Some(format!("host {} ({}): {why}", t.name, t.address))
}

/// Checks every SSH host; the error lists every problem of every host.
pub(crate) async fn check_hosts(state: &ClusterState, hosts: &[AnyHost]) -> Result<(), Vec<String>> {
    // An external node's port must be free before its start; faultline-node
    // needs both of its own.
    let ports = |i: usize| match &state.nodes[i].external {
        Some(ext) => ((ext.kafka_port, ext.kafka_port), false),
        None => ((NODE_PORT, KAFKA_PORT), true),
    };
    let checks = hosts.iter().enumerate().filter_map(|(i, h)| match h {
        AnyHost::Ssh(s) => Some(problems(s, ports(i).0, ports(i).1)),
        _ => None,
    });
    let mut all = Vec::new();
    for result in futures_util::future::join_all(checks).await {
        match result {
            Ok(p) => all.extend(p),
            Err(e) => all.push(e.to_string()),
        }
    }
    if all.is_empty() { Ok(()) } else { Err(all) }
}

/// Copies this machine's `faultline-node` to every SSH host (once per
/// cluster) and records the harness's address as the hosts see it.
pub(crate) async fn deploy(state: &mut ClusterState, hosts: &[AnyHost], local_bin: &Path) -> anyhow::Result<()> {
    let Placement::Ssh(_) = &state.placement else { return Ok(()) };
    let copies = state.nodes.iter().zip(hosts).map(|(node, host)| host.copy_to(local_bin, &node.binary));
    futures_util::future::join_all(copies).await.into_iter().collect::<Result<Vec<()>, _>>()?;
    learn_control_ip(state, hosts).await
}

/// Records the harness's address as the SSH hosts see it, unless the hosts
/// file gave it.
pub(crate) async fn learn_control_ip(state: &mut ClusterState, hosts: &[AnyHost]) -> anyhow::Result<()> {
    let Placement::Ssh(ssh) = &mut state.placement else { return Ok(()) };
    if let (true, Some(AnyHost::Ssh(first))) = (ssh.control_ip.is_unspecified(), hosts.first()) {
        ssh.control_ip = first.client_ip().await?;
    }
    Ok(())
}

/// Writes a node's `server.properties`: in place for a namespace (its host
/// shares this file system), through a local copy for an SSH host.
pub(crate) async fn write_config(
    state: &ClusterState,
    node: &NodeState,
    host: &AnyHost,
    text: &str,
) -> anyhow::Result<()> {
    match &state.placement {
        Placement::Netns(_) => {
            std::fs::create_dir_all(&node.data_dir).with_context(|| format!("creating {}", node.data_dir.display()))?;
            std::fs::write(&node.config_file, text).with_context(|| format!("writing {}", node.config_file.display()))
        }
        Placement::Ssh(_) => {
            let local = state.dir.join(&node.name).join("server.properties");
            std::fs::create_dir_all(local.parent().expect("a file in a directory"))?;
            std::fs::write(&local, text).with_context(|| format!("writing {}", local.display()))?;
            host.copy_to(&local, &node.config_file).await?;
            let mkdir = ["mkdir", "-p"].iter().map(|s| s.to_string()).chain([node.data_dir.display().to_string()]);
            let out = host.run(&mkdir.collect::<Vec<_>>(), PREPARE_TIMEOUT).await?;
            anyhow::ensure!(
                out.success(),
                "host {}: mkdir {}: {}",
                node.name,
                node.data_dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            Ok(())
        }
    }
}

/// Removes what `up` put on SSH hosts: the nemesis's chain and the
/// cluster's directory. Returns the failures. (A namespace cluster's
/// network is removed by its own `destroy`.)
pub(crate) async fn clean_hosts(state: &ClusterState, hosts: &[AnyHost]) -> Vec<String> {
    let Placement::Ssh(ssh) = &state.placement else { return Vec::new() };
    let mut failures = Vec::new();
    if let Err(e) = faultline_nemesis::partition::remove_chain(hosts).await {
        failures.push(e.to_string());
    }
    let removals = hosts.iter().zip(&ssh.hosts).map(|(host, target)| async move {
        let dir = target.base_dir.join(&state.name);
        let rm = vec!["rm".to_string(), "-rf".into(), "--".into(), dir.display().to_string()];
        match host.run(&rm, PREPARE_TIMEOUT).await {
            Ok(out) if out.success() => None,
            Ok(out) => Some(format!(
                "host {}: rm -rf {}: {}",
                target.name,
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Some(e.to_string()),
        }
    });
    failures.extend(futures_util::future::join_all(removals).await.into_iter().flatten());
    failures
}
