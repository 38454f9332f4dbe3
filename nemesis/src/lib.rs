//! Faults against a cluster: process kills, pauses, partitions (issue 7).
//!
//! # Layout
//!
//! - [`fault`]: the fault registry, the one place a fault's name is written.
//! - [`host`]: the [`Host`] trait, through which the harness and the nemesis
//!   start, signal and inspect processes and move files on one machine, be it
//!   a local network namespace or (later) an SSH host. It lives here rather
//!   than in the harness so that both crates can use it without a cycle.
//! - [`partition`]: partition shapes as grudges, installed as DROP rules in
//!   our own `FAULTLINE` chain inside each host, healed by flushing it.
//! - [`precondition`]: what a timeline step needs to be true when it
//!   fires (`require = "behind:n5:events/0"`), checked and recorded.
//! - [`process`]: child processes that die with their parent.
//! - [`schedule`]: seeded random fault mixes and scripted TOML timelines,
//!   with targets given as roles resolved when a fault fires.

pub mod fault;
pub mod host;
pub mod partition;
pub mod precondition;
pub mod process;
pub mod schedule;

pub use host::{CommandOutput, DaemonSpec, Host, HostError, ProcState, ProcessInfo, Signal};
