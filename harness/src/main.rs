//! `faultline`: the command-line front end of the harness.
//!
//! This file only parses the command line and dispatches to one module of
//! the `faultline_harness` library per subcommand; each subcommand owns
//! its options and its exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use faultline_harness::{
    app, bench_history, campaign, check, cluster, demo, gen_history, hosts_cmd, lazyfs_cmd, logging, nemesis_cmd,
    report, run, serve,
};

/// Jepsen-style fault injection for a Kafka-like replicated log.
#[derive(Parser, Debug)]
#[command(name = "faultline", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: logging::LogArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start one broker, create a topic, produce and fetch a few records.
    Demo(demo::DemoArgs),
    /// Check a history (file or store directory) and print the verdict.
    Check(check::CheckArgs),
    /// Write a run's report.html: verdict, charts with fault windows, anomalies, timeline.
    Report(report::ReportArgs),
    /// Browse a store over HTTP (read-only, 127.0.0.1): runs, campaigns, reports, zips.
    Serve(serve::ServeArgs),
    /// Write a synthetic history, optionally with injected anomalies.
    GenHistory(gen_history::GenHistoryArgs),
    /// Start, inspect and remove a cluster of nodes in network namespaces.
    Cluster(cluster::ClusterArgs),
    /// Write a hosts.toml (the machines of `--hosts`): from-vagrant.
    Hosts(hosts_cmd::HostsArgs),
    /// Inject one fault into a running cluster, or heal: partition, kill, start, pause, resume.
    Nemesis(nemesis_cmd::NemesisArgs),
    /// The power-loss filesystem: serve a mount, or send it a command (lose-unsynced, …).
    Lazyfs(lazyfs_cmd::LazyfsArgs),
    /// Measure the history writer's events per second (benchmark).
    #[command(hide = true)]
    BenchHistory(bench_history::BenchHistoryArgs),
    /// Run a test: cluster, workload, final drain, check, store.
    Run(Box<run::RunCli>),
    /// Run a campaign: many runs with expectations, one table (see docs/campaigns.md).
    Campaign(Box<campaign::CampaignArgs>),
    /// A client application process of a run (started by `faultline run`).
    #[command(hide = true)]
    Client(app::ClientArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help and version to stdout with success; real usage
            // errors exit 254, the harness's "bad arguments" code.
            let code = if err.use_stderr() { 254 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    cli.log.init();
    if cli.command.only_prints() {
        restore_default_sigpipe();
    }
    match cli.command {
        Command::Demo(args) => demo::main(args),
        Command::Check(args) => check::main(args),
        Command::Report(args) => report::main(args),
        Command::Serve(args) => serve::main(args),
        Command::GenHistory(args) => gen_history::main(args),
        Command::Cluster(args) => cluster::main(args),
        Command::Run(args) => run::main(*args),
        Command::Campaign(args) => campaign::main(*args),
        Command::Client(args) => app::main(args),
        Command::Nemesis(args) => nemesis_cmd::main(args),
        Command::Hosts(args) => hosts_cmd::main(args),
        Command::Lazyfs(args) => lazyfs_cmd::main(args),
        Command::BenchHistory(args) => bench_history::main(args),
    }
}

impl Command {
    /// Whether the command only reads files and writes output, owning no
    /// process, namespace or mount that a sudden exit would leak.
    fn only_prints(&self) -> bool {
        match self {
            Command::Check(_) | Command::Report(_) | Command::GenHistory(_) | Command::BenchHistory(_) => true,
            Command::Campaign(args) => args.only_prints(),
            _ => false,
        }
    }
}

/// Rust ignores SIGPIPE, so `faultline check … | head` would panic on the
/// closed pipe. A command that only prints ends as Unix filters do instead:
/// quietly, by the signal. Commands that own processes keep ignoring it, so
/// a closed pipe can never skip their teardown.
fn restore_default_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: installs the default disposition, not a handler, so no code
    // runs in signal context.
    if let Err(e) = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) } {
        eprintln!("faultline: could not restore SIGPIPE: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every visible option of every subcommand says what it does (clap
    /// adds the default after the text).
    #[test]
    fn every_option_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "faultline", &mut missing);
        assert!(missing.is_empty(), "options without help: {missing:?}");
    }
}
