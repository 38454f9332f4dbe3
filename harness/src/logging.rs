//! The harness's own log on stderr, through `tracing`: what a run is doing
//! (cluster up, faults, final phase, teardown) and what went wrong on the
//! way. Results (verdicts, tables, `cluster status`) are output, not log,
//! and go to stdout whatever the level.
//!
//! The level comes from `RUST_LOG` when it is set, otherwise from `-v`/`-q`;
//! `--log-format json` writes one JSON object per line for CI.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use clap::ValueEnum;
use parking_lot::Mutex;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// The crates whose events `-v`/`-q` turn up or down; everything else (HTTP
/// and runtime libraries) logs warnings only unless `RUST_LOG` says more.
const OWN_TARGETS: &[&str] = &["faultline", "faultline_harness", "faultline_nemesis", "faultline_client"];

/// Log options every subcommand takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LogArgs {
    /// More log detail on stderr: -v debug, -vv trace (RUST_LOG, when set, wins).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less log on stderr: -q warnings and errors only, -qq errors only; also hides the progress bar.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Log line format on stderr: text for people, json for one object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogArgs {
    /// The level of the harness's own targets: info, raised by `-v`, lowered by `-q`.
    pub fn level(&self) -> tracing::Level {
        match (self.verbose, self.quiet) {
            (0, 0) => tracing::Level::INFO,
            (1, _) => tracing::Level::DEBUG,
            (v, _) if v >= 2 => tracing::Level::TRACE,
            (_, 1) => tracing::Level::WARN,
            _ => tracing::Level::ERROR,
        }
    }

    /// The filter directives without `RUST_LOG`: `warn,faultline=info,…`.
    pub fn directives(&self) -> String {
        let level = self.level().as_str().to_ascii_lowercase();
        let base = if self.level() < tracing::Level::WARN { "error" } else { "warn" };
        std::iter::once(base.to_string())
            .chain(OWN_TARGETS.iter().map(|t| format!("{t}={level}")))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Installs the subscriber; later calls (tests) keep the first one.
    pub fn init(&self) {
        let filter = std::env::var("RUST_LOG")
            .ok()
            .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
            .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(self.directives()));
        let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
        let installed = match self.log_format {
            LogFormat::Text => builder
                .with_timer(RunClock)
                .with_target(false)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .try_init(),
            LogFormat::Json => builder.json().flatten_event(true).try_init(),
        };
        let interactive = self.log_format == LogFormat::Text && self.quiet == 0;
        if installed.is_ok() {
            INTERACTIVE.store(interactive, Ordering::Relaxed);
        }
    }
}

/// Whether live displays (the progress bar) may draw on stderr: not with
/// `-q`, and not between JSON lines.
static INTERACTIVE: AtomicBool = AtomicBool::new(true);

pub fn interactive() -> bool {
    INTERACTIVE.load(Ordering::Relaxed)
}

/// When the current run started; text log lines show seconds since then, the
/// clock a run's history and `run.log` use too.
fn run_epoch() -> &'static Mutex<Instant> {
    static EPOCH: OnceLock<Mutex<Instant>> = OnceLock::new();
    EPOCH.get_or_init(|| Mutex::new(Instant::now()))
}

/// Restarts the text log's clock (a campaign runs many runs in one process).
pub fn restart_clock(at: Instant) {
    *run_epoch().lock() = at;
}

/// `[   1.234 s]`: seconds since the run started.
struct RunClock;

impl FormatTime for RunClock {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        write!(w, "[{:8.3} s]", run_epoch().lock().elapsed().as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn args(verbose: u8, quiet: u8) -> LogArgs {
        LogArgs { verbose, quiet, log_format: LogFormat::Text }
    }

    #[test]
    fn verbosity_moves_the_harness_level_and_leaves_libraries_at_warn() {
        let cases = [((0, 0), Level::INFO), ((1, 0), Level::DEBUG), ((3, 0), Level::TRACE)];
        let cases = cases.into_iter().chain([((0, 1), Level::WARN), ((0, 2), Level::ERROR)]);
        for ((v, q), level) in cases {
            assert_eq!(args(v, q).level(), level, "-v x{v} -q x{q}");
        }
        assert_eq!(
            args(1, 0).directives(),
            "warn,faultline=debug,faultline_harness=debug,faultline_nemesis=debug,faultline_client=debug"
        );
        assert!(args(0, 2).directives().starts_with("error,faultline=error"));
        for d in [args(0, 0), args(2, 0), args(0, 1)].map(|a| a.directives()) {
            tracing_subscriber::EnvFilter::try_new(&d).unwrap_or_else(|e| panic!("{d}: {e}"));
        }
    }
}
