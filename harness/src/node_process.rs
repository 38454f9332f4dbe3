//! A `faultline-node` child process: started with overrides, its bound
//! address read from the one line it prints on stdout, killed on drop.
//!
//! The cluster manager (`crate::cluster`) runs nodes as daemons with pid
//! files; this handle is for commands whose nodes live exactly as long as
//! the command (`faultline demo`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a node may take to recover its logs and bind.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd node may take to shut down cleanly.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Finds `faultline-node` next to the running `faultline` binary, as cargo
/// and installs place them.
pub fn node_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the faultline binary")?;
    let path = exe.with_file_name("faultline-node");
    if !path.exists() {
        bail!("{} not found; build it with `cargo build --release -p faultline-node`", path.display());
    }
    Ok(path)
}

pub struct NodeProcess {
    child: Option<Child>,
    pub url: String,
    pub log_path: PathBuf,
}

impl NodeProcess {
    /// Starts a node whose data lives in `dir/data` and whose log goes to `dir/node.log`.
    pub fn start(dir: &Path, node_id: i32, overrides: &[String]) -> anyhow::Result<NodeProcess> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let log_path = dir.join("node.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
        let mut cmd = Command::new(node_binary()?);
        faultline_nemesis::process::die_with_parent(&mut cmd);
        cmd.arg("--override").arg(format!("node.id={node_id}"));
        cmd.arg("--override").arg("listeners=http://127.0.0.1:0");
        cmd.arg("--override").arg(format!("log.dirs={}", dir.join("data").display()));
        for o in overrides {
            cmd.arg("--override").arg(o);
        }
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log).spawn().context("spawning faultline-node")?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut node = NodeProcess { child: Some(child), url: String::new(), log_path };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => node.url = line.rsplit(' ').next().unwrap_or_default().to_string(),
            Err(_) => bail!("faultline-node did not start within {START_TIMEOUT:?}; see {}", node.log_path.display()),
        }
        node.wait_healthy()?;
        Ok(node)
    }

    /// Waits (bounded) until `/health` is 200: the broker registered with
    /// its controller and serves.
    fn wait_healthy(&self) -> anyhow::Result<()> {
        if !faultline_client::wait_healthy_blocking(&self.url, START_TIMEOUT) {
            bail!(
                "faultline-node at {} did not become healthy within {START_TIMEOUT:?}; see {}",
                self.url,
                self.log_path.display()
            );
        }
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, then reap: the process is gone when this returns.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("SIGKILL of faultline-node")?;
            child.wait().context("reaping faultline-node")?;
        }
        Ok(())
    }

    /// SIGTERM, then wait for the clean shutdown (SIGKILL after a bound).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).context("SIGTERM of faultline-node")?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("faultline-node ignored SIGTERM for {STOP_TIMEOUT:?} and was killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
