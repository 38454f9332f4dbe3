//! Real SSH hosts for tests: a test network of namespaces (the harness's own
//! bridge and namespaces), one `sshd` inside each, listening only on its
//! namespace's address, with a host key, a client key and an authorized-keys
//! file made for this test. Dropping it stops the sshds and removes the
//! network, so a failing test leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faultline_harness::hosts::hosts_file::SshTarget;
use faultline_harness::hosts::network::{ClusterNet, Subnet};

use super::{require_root, test_subnet, unique_name};

/// Where Debian's openssh-server puts the daemon.
const SSHD: &str = "/usr/sbin/sshd";
/// How long an sshd may take to listen.
const LISTEN_WAIT: Duration = Duration::from_secs(10);

pub struct SshNet {
    pub net: ClusterNet,
    pub dir: PathBuf,
    /// The client's private key, authorised on every host.
    pub key: PathBuf,
    sshds: Vec<Child>,
    runtime: tokio::runtime::Runtime,
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "faultline-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen runs (Debian package openssh-client; scripts/setup.sh installs it)");
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
}

impl SshNet {
    /// `nodes` namespaces on test subnet `k`, with an sshd in each of the
    /// first `with_sshd`.
    pub fn start(tag: &str, k: u32, nodes: u32, with_sshd: u32) -> SshNet {
        require_root();
        assert!(Path::new(SSHD).exists(), "{SSHD} is missing: install openssh-server (scripts/setup.sh does)");
        let name = unique_name(tag);
        let dir = std::env::temp_dir().join(format!("faultline-ssh-test-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let net = ClusterNet::plan(&name, Subnet::parse(&test_subnet(k)).unwrap(), nodes);
        let mut this = SshNet { net, key: dir.join("client_key"), dir, sshds: Vec::new(), runtime };
        this.build(with_sshd);
        this
    }

    fn build(&mut self, with_sshd: u32) {
        let net = self.net.clone();
        self.runtime.block_on(async {
            net.create_bridge().await.unwrap();
            net.create_chain().await.unwrap();
            for node in &net.nodes {
                net.create_node(node).await.unwrap();
            }
        });
        keygen(&self.key);
        keygen(&self.dir.join("host_key"));
        std::fs::copy(self.dir.join("client_key.pub"), self.dir.join("authorized_keys")).unwrap();
        // sshd refuses to start without its privilege-separation directory,
        // which the openssh-server package only creates when its service runs.
        std::fs::create_dir_all("/run/sshd").unwrap();
        for node in net.nodes.iter().take(with_sshd as usize) {
            let config = self.dir.join(format!("sshd_config-{}", node.id));
            std::fs::write(&config, self.sshd_config(node.ip, node.id)).unwrap();
            let child = Command::new("ip")
                .args(["netns", "exec", &node.netns, SSHD, "-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(self.dir.join(format!("sshd-{}.log", node.id))).unwrap())
                .spawn()
                .expect("starts sshd in the namespace");
            self.sshds.push(child);
            self.wait_listening(&node.netns);
        }
    }

    fn sshd_config(&self, ip: std::net::Ipv4Addr, id: u32) -> String {
        let d = self.dir.display();
        format!(
            "ListenAddress {ip}:22\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
             PidFile {d}/sshd-{id}.pid\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nLogLevel ERROR\nMaxSessions 10\n"
        )
    }

    /// Waits (bounded) until the namespace has a socket listening on port 22.
    fn wait_listening(&self, netns: &str) {
        let deadline = Instant::now() + LISTEN_WAIT;
        loop {
            let out =
                Command::new("ip").args(["netns", "exec", netns, "ss", "-Htln", "sport", "= :22"]).output().unwrap();
            if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "sshd in {netns} did not listen within {LISTEN_WAIT:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `hosts.toml` entry of node `id` (1-based), root with our key.
    pub fn target(&self, id: u32) -> SshTarget {
        let node = &self.net.nodes[id as usize - 1];
        SshTarget {
            name: format!("n{id}"),
            address: node.ip,
            client_address: node.ip,
            ssh_address: node.ip,
            user: "root".into(),
            port: 22,
            key: Some(self.key.clone()),
            base_dir: self.dir.join(format!("hosts/n{id}")),
            iptables: None,
            sudo: false,
        }
    }

    /// A `hosts.toml` for nodes `1..=n`, each with its own base directory
    /// (the namespace hosts share this machine's file system); `extra`
    /// adds lines to one host's entry.
    pub fn hosts_toml(&self, n: u32, extra: Option<(u32, &str)>) -> PathBuf {
        let mut text = format!("[defaults]\nuser = \"root\"\nkey = \"{}\"\n", self.key.display());
        for id in 1..=n {
            let t = self.target(id);
            text.push_str(&format!(
                "\n[[host]]\nname = \"{}\"\naddress = \"{}\"\nbase-dir = \"{}\"\n",
                t.name,
                t.address,
                t.base_dir.display()
            ));
            if let Some((_, line)) = extra.filter(|(which, _)| *which == id) {
                text.push_str(line);
                text.push('\n');
            }
        }
        let path = self.dir.join("hosts.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Files and directories left under the hosts' base directories.
    pub fn left_on_hosts(&self) -> Vec<PathBuf> {
        let Ok(hosts) = std::fs::read_dir(self.dir.join("hosts")) else { return Vec::new() };
        hosts
            .flatten()
            .flat_map(|h| std::fs::read_dir(h.path()).into_iter().flatten().flatten().map(|e| e.path()))
            .collect()
    }

    /// Whether the namespace of node `id` has the nemesis's chain.
    pub fn has_chain(&self, id: u32) -> bool {
        let ns = &self.net.nodes[id as usize - 1].netns;
        Command::new("ip")
            .args(["netns", "exec", ns, "iptables", "-w", "-S", "FAULTLINE"])
            .output()
            .unwrap()
            .status
            .success()
    }

    /// A short directory for SSH control sockets (their paths are limited to
    /// 108 bytes).
    pub fn control_dir(&self) -> PathBuf {
        let d = self.dir.join("ctl");
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }
}

impl Drop for SshNet {
    fn drop(&mut self) {
        // A failed test may leave a cluster up: take it down over SSH while
        // the sshds still run, then kill whatever still runs from our
        // directory (the hosts' base directories are in it).
        let store = self.dir.join("store");
        if store.join("clusters").join(&self.net.name).join("state.json").exists() {
            let _ = Command::new(env!("CARGO_BIN_EXE_faultline"))
                .args(["cluster", "down", "--name", &self.net.name, "--store"])
                .arg(&store)
                .output();
        }
        for line in super::live_processes_mentioning(&self.dir) {
            let pid = line.split_whitespace().next().unwrap_or_default().to_string();
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
        for child in &mut self.sshds {
            let _ = child.kill();
            let _ = child.wait();
        }
        let net = self.net.clone();
        let failures = self.runtime.block_on(async { net.destroy().await });
        let _ = std::fs::remove_dir_all(&self.dir);
        if !failures.is_empty() && !std::thread::panicking() {
            panic!("removing the test network: {failures:?}");
        }
    }
}
