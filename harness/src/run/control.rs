//! Whether the harness still controls the cluster it tests. A verdict is
//! about the system, never about the harness: when the cluster was removed
//! or replaced under a run (a `cluster down` from outside, a data directory
//! wiped), what the run reads at the end describes nothing, and the verdict
//! must be unknown rather than "4,711 lost writes".
//!
//! At start each node's data directory gets an identity file with a token
//! of this run, written and fsynced together with its directory so a
//! power-loss fault cannot undo it. [`Marks::verify`] checks the tokens,
//! the state file and the namespaces. A final phase that does not converge
//! is *not* a loss of control: bugs cause exactly that.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use faultline_nemesis::Host;

use crate::cluster::{ClusterState, Phase};
use crate::hosts::{AnyHost, network};

/// The identity file in each node's data directory.
const ID_FILE: &str = "faultline.id";

/// What was marked at start.
pub struct Marks {
    state_path: PathBuf,
    /// Each node's host, name, data directory and token.
    nodes: Vec<(AnyHost, String, PathBuf, String)>,
    namespaces: Vec<String>,
}

impl Marks {
    /// Writes a token of this run into every node's data directory, on
    /// its host.
    pub async fn mark(state: &ClusterState, hosts: &[AnyHost], run_token: &str) -> anyhow::Result<Marks> {
        let mut nodes = Vec::new();
        for (node, host) in state.nodes.iter().zip(hosts) {
            let token = format!("{run_token} {}", node.name);
            match host {
                AnyHost::Netns(_) => write_synced(&node.data_dir, &token)?,
                AnyHost::Ssh(_) => write_synced_on(host, &node.data_dir, &token).await?,
            }
            nodes.push((host.clone(), node.name.clone(), node.data_dir.clone(), token));
        }
        let namespaces =
            state.placement.net().map(|net| net.nodes.iter().map(|n| n.netns.clone()).collect()).unwrap_or_default();
        Ok(Marks { state_path: crate::cluster::state::state_path(&state.dir), nodes, namespaces })
    }

    /// Why the harness no longer controls the cluster, if it does not.
    pub async fn verify(&self) -> Option<String> {
        match ClusterState::load(&self.state_path) {
            Ok(s) if s.phase == Phase::Down => return Some("the cluster was torn down from outside".into()),
            Ok(_) => {}
            Err(e) => return Some(format!("the cluster's state file is gone or unreadable: {e:#}")),
        }
        for (host, name, dir, token) in &self.nodes {
            match host.read_file(&dir.join(ID_FILE), TOKEN_BYTES_MAX).await {
                Ok(Some(t)) if String::from_utf8_lossy(&t).trim() == token => {}
                Ok(Some(_)) => return Some(format!("node {name}'s data directory belongs to another run")),
                Ok(None) => return Some(format!("node {name}'s data directory {} was replaced", dir.display())),
                Err(e) => return Some(format!("node {name}'s data directory cannot be read: {e}")),
            }
        }
        if self.namespaces.is_empty() {
            return None;
        }
        let live = match network::list_netns().await {
            Ok(l) => l,
            Err(e) => return Some(format!("cannot list network namespaces: {e}")),
        };
        self.namespaces.iter().find(|n| !live.contains(n)).map(|n| format!("network namespace {n} vanished"))
    }
}

/// Longest token read back.
const TOKEN_BYTES_MAX: u64 = 4096;
/// Bound on writing a token on an SSH host.
const TOKEN_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Writes `token` to `dir/faultline.id` and fsyncs the file and `dir`.
fn write_synced(dir: &std::path::Path, token: &str) -> anyhow::Result<()> {
    let path = dir.join(ID_FILE);
    let mut f = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("fsyncing {}", dir.display()))
}

/// [`write_synced`] on a remote host: `sync FILE DIR` fsyncs both.
async fn write_synced_on(host: &AnyHost, dir: &std::path::Path, token: &str) -> anyhow::Result<()> {
    let script = r#"printf '%s\n' "$1" >"$2/faultline.id" && sync "$2/faultline.id" "$2""#;
    let argv: Vec<String> =
        ["sh", "-c", script, "faultline", token, &dir.display().to_string()].iter().map(|s| s.to_string()).collect();
    let out = host.run(&argv, TOKEN_WRITE_TIMEOUT).await?;
    anyhow::ensure!(
        out.success(),
        "host {}: writing {}/{ID_FILE}: {}",
        host.name(),
        dir.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// Records a loss of control where `faultline check` finds it again.
pub fn record(run_dir: &std::path::Path, reason: &str) -> anyhow::Result<()> {
    let doc = serde_json::json!({ "lost_control": reason });
    crate::store::write_json(&run_dir.join(faultline_checker::CONTROL_FILE), &doc)
}
