//! The faultline harness as a library: everything `faultline` does, one
//! module per subcommand plus what they share. The binary (`main.rs`) only
//! parses the command line and dispatches here.
//!
//! Locks are `parking_lot`'s, which do not poison: a panic while one is
//! held already fails the run (a supervisor or the nemesis task returns
//! its panic as a harness failure), and poisoning would only turn every
//! later use of that lock into a second panic that hides the first.

pub mod app;
pub mod bench_history;
pub mod campaign;
pub mod check;
pub mod cluster;
pub mod demo;
pub mod exit;
pub mod gen_history;
pub mod history;
pub mod hosts;
pub mod hosts_cmd;
pub mod lazyfs_cmd;
pub mod logging;
pub mod nemesis_cmd;
pub mod nemesis_run;
pub mod node_process;
pub mod progress;
pub mod report;
pub mod run;
pub mod serve;
pub mod sink;
pub mod store;
pub mod system;
