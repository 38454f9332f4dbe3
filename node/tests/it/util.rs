//! Test support: a kill-on-drop handle on a real `faultline-node` process,
//! which also dies with the test process however that ends.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use faultline_client::Client;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a node may take to recover and bind; generous for debug builds
/// on a loaded 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd node may take to shut down cleanly.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running node. Dropping it SIGKILLs the process, so no test leaks one.
pub struct Node {
    child: Option<Child>,
    pub url: String,
    pub dir: PathBuf,
}

impl Node {
    /// Starts a node with data in `dir/data`, stderr in `dir/node.log`, on an
    /// ephemeral loopback port, with extra `key=value` overrides.
    pub fn start(dir: &Path, overrides: &[&str]) -> Node {
        match Node::try_start(dir, overrides) {
            Ok(n) => n,
            Err(why) => panic!(
                "node did not start: {why}\n--- node.log ---\n{}",
                std::fs::read_to_string(dir.join("node.log")).unwrap_or_default()
            ),
        }
    }

    pub fn try_start(dir: &Path, overrides: &[&str]) -> Result<Node, String> {
        let mut all = vec!["node.id=1".to_string(), "listeners=http://127.0.0.1:0".to_string()];
        all.extend(overrides.iter().map(|o| o.to_string()));
        let node = Node::spawn(dir, &all)?;
        node.wait_healthy()?;
        Ok(node)
    }

    /// Starts a node with exactly these overrides (plus `log.dirs`).
    pub fn spawn(dir: &Path, overrides: &[String]) -> Result<Node, String> {
        Node::spawn_logging(dir, overrides, Some("info,faultline_node::controller=info"))
    }

    /// As [`Node::spawn`], with this `RUST_LOG` (`None`: the node's default).
    pub fn spawn_logging(dir: &Path, overrides: &[String], rust_log: Option<&str>) -> Result<Node, String> {
        std::fs::create_dir_all(dir).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("node.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline-node"));
        // Drop kills the node; this covers a test process killed outright.
        faultline_nemesis::process::die_with_parent(&mut cmd);
        cmd.arg("--override").arg(format!("log.dirs={}", dir.join("data").display()));
        for o in overrides {
            cmd.arg("--override").arg(o);
        }
        match rust_log {
            Some(filter) => cmd.env("RUST_LOG", filter),
            None => cmd.env_remove("RUST_LOG"),
        };
        let mut child =
            cmd.stdout(Stdio::piped()).stderr(log).stdin(Stdio::null()).spawn().map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut node = Node { child: Some(child), url: String::new(), dir: dir.to_path_buf() };
        let line = rx.recv_timeout(START_TIMEOUT).map_err(|_| {
            let status = node.child.as_mut().unwrap().try_wait().ok().flatten();
            format!("no listening line within {START_TIMEOUT:?} (exit status {status:?})")
        })?;
        node.url = line.rsplit(' ').next().unwrap().to_string();
        assert!(node.url.starts_with("http://127.0.0."), "unexpected line {line}");
        Ok(node)
    }

    /// Waits until `/health` answers 200: registered with the controller.
    pub fn wait_healthy(&self) -> Result<(), String> {
        if faultline_client::wait_healthy_blocking(&self.url, START_TIMEOUT) {
            Ok(())
        } else {
            Err(format!("{}/health not 200 within {START_TIMEOUT:?}", self.url))
        }
    }

    pub fn pid(&self) -> Option<Pid> {
        self.child.as_ref().map(|c| Pid::from_raw(c.id() as i32))
    }

    /// SIGSTOP: the process stays but does nothing, like a long GC pause.
    pub fn pause(&self) {
        kill(self.pid().expect("running"), Signal::SIGSTOP).unwrap();
        // The signal is delivered asynchronously; the state follows within milliseconds.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid().unwrap())).unwrap();
            let state = stat.rsplit(')').next().unwrap().split_whitespace().next().unwrap().to_string();
            if state == "T" || state == "t" {
                return;
            }
            assert!(Instant::now() < deadline, "the process is not stopped: state {state}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn resume(&self) {
        kill(self.pid().expect("running"), Signal::SIGCONT).unwrap();
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn client(&self) -> Client {
        Client::with_timeout(&self.url, Duration::from_secs(10))
    }

    /// SIGKILLs the node and reaps it; proves it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let status = child.wait().unwrap();
            assert!(status.code().is_none(), "the node exited by itself before the kill: {status}");
            assert!(kill(Pid::from_raw(child.id() as i32), None).is_err(), "pid still exists after SIGKILL");
        }
    }

    /// SIGTERMs the node and waits for it to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("node did not stop within {STOP_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the node binary to completion with `args` and returns (exit code, stderr).
pub fn run_node_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline-node")).args(args).stdin(Stdio::null()).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Waits (bounded) until `topic/partition` is served by this node: right
/// after a restart a node is healthy (registered) a moment before the
/// controller re-elects it and it takes leadership.
pub async fn wait_serving(client: &faultline_client::Client, topic: &str, partition: u32) {
    let req =
        faultline_client::api::FetchRequest { offset: 0, max_records: Some(1), max_bytes: None, max_wait_ms: None };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.fetch(topic, partition, &req).await {
            Err(e)
                if e.code() == Some(faultline_client::api::ErrorCode::NotLeaderOrFollower)
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => return,
        }
    }
}
