//! Hosts of a cluster on this machine: Linux network namespaces on a bridge,
//! one per node, built by shelling out to `ip` and `iptables`.
//!
//! - [`exec`]: running a local command with a time bound, and the
//!   preconditions (root, `ip`, `iptables`) checked before anything else.
//! - [`network`]: one cluster's bridge, namespaces, veth pairs and iptables
//!   chain: their names, their creation and their idempotent removal.
//! - [`netns`]: [`NetnsHost`], the [`faultline_nemesis::Host`] backend that
//!   runs processes inside one namespace with `ip netns exec`.
//! - [`hosts_file`]: `hosts.toml`, the machines of a cluster reached over SSH.
//! - [`ssh`]: [`SshHost`], the backend over one SSH master connection per host.
//! - [`any`]: [`AnyHost`], either backend behind one type.
//! - [`vagrant`]: a `hosts.toml` from `vagrant ssh-config`.
//!
//! **Invariant:** the harness process never calls `setns`; only the child
//! processes it starts through `ip netns exec` enter a namespace.

pub mod any;
pub mod exec;
pub mod hosts_file;
pub mod netns;
pub mod network;
pub mod ssh;
pub mod ssh_shell;
pub mod vagrant;

pub use any::AnyHost;
pub use netns::NetnsHost;
pub use network::{ClusterNet, Subnet};
pub use ssh::SshHost;
