//! [`AnyHost`]: a host of either backend, so that cluster, nemesis and run
//! code handle namespace and SSH clusters alike. Each method delegates.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use faultline_nemesis::{CommandOutput, DaemonSpec, Host, HostError, ProcessInfo, Signal};

use super::{NetnsHost, SshHost};

#[derive(Debug, Clone)]
pub enum AnyHost {
    Netns(NetnsHost),
    Ssh(Arc<SshHost>),
}

impl Host for AnyHost {
    fn name(&self) -> &str {
        match self {
            AnyHost::Netns(h) => h.name(),
            AnyHost::Ssh(h) => h.name(),
        }
    }

    fn ip(&self) -> Ipv4Addr {
        match self {
            AnyHost::Netns(h) => h.ip(),
            AnyHost::Ssh(h) => h.ip(),
        }
    }

    fn iptables(&self) -> String {
        match self {
            AnyHost::Netns(h) => h.iptables(),
            AnyHost::Ssh(h) => h.iptables(),
        }
    }

    fn management_port(&self) -> Option<u16> {
        match self {
            AnyHost::Netns(h) => h.management_port(),
            AnyHost::Ssh(h) => h.management_port(),
        }
    }

    async fn start_daemon(&self, spec: &DaemonSpec) -> Result<u32, HostError> {
        match self {
            AnyHost::Netns(h) => h.start_daemon(spec).await,
            AnyHost::Ssh(h) => h.start_daemon(spec).await,
        }
    }

    async fn signal(&self, pid: u32, signal: Signal) -> Result<bool, HostError> {
        match self {
            AnyHost::Netns(h) => h.signal(pid, signal).await,
            AnyHost::Ssh(h) => h.signal(pid, signal).await,
        }
    }

    async fn process(&self, pid: u32) -> Result<Option<ProcessInfo>, HostError> {
        match self {
            AnyHost::Netns(h) => h.process(pid).await,
            AnyHost::Ssh(h) => h.process(pid).await,
        }
    }

    async fn run(&self, argv: &[String], timeout: Duration) -> Result<CommandOutput, HostError> {
        match self {
            AnyHost::Netns(h) => h.run(argv, timeout).await,
            AnyHost::Ssh(h) => h.run(argv, timeout).await,
        }
    }

    async fn copy_to(&self, from: &Path, to: &Path) -> Result<(), HostError> {
        match self {
            AnyHost::Netns(h) => h.copy_to(from, to).await,
            AnyHost::Ssh(h) => h.copy_to(from, to).await,
        }
    }

    async fn read_file(&self, path: &Path, max_bytes: u64) -> Result<Option<Vec<u8>>, HostError> {
        match self {
            AnyHost::Netns(h) => h.read_file(path, max_bytes).await,
            AnyHost::Ssh(h) => h.read_file(path, max_bytes).await,
        }
    }
}
