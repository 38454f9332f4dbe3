//! `faultline-node`: runs one broker. See the library docs for the layout.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use faultline_node::config::BrokerConfig;

/// A Kafka-like broker with an HTTP/JSON API, the system faultline tests.
#[derive(Parser, Debug)]
#[command(
    name = "faultline-node",
    version,
    after_help = "Exit codes: 0 after a clean shutdown (SIGTERM or SIGINT), 1 on a fatal error while \
                  running (the log says which), 2 for bad arguments or configuration, before anything starts."
)]
struct Args {
    /// A Kafka-style server.properties file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// `key=value`, applied over the file; repeatable.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Turn on a bug switch (repeatable); see `faultline_node::bugs`.
    #[arg(long = "bug", value_name = "NAME")]
    bugs: Vec<String>,
    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// The log filter without `RUST_LOG`.
const DEFAULT_LOG_FILTER: &str = "info,openraft=warn";

/// Exit code of bad arguments or configuration (clap's own for usage errors).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let args = Args::parse();
    // A bug switch is named before anything else is checked: a mistyped
    // switch must not hide behind a missing file.
    if let Some(e) = args.bugs.iter().find_map(|b| b.parse::<faultline_node::bugs::Bug>().err()) {
        eprintln!("faultline-node: --bug: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    // openraft's own info lines are debug dumps (up to thousands of
    // characters); a node's log is for people unless RUST_LOG asks for more.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| DEFAULT_LOG_FILTER.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let mut overrides = args.overrides.clone();
    if !args.bugs.is_empty() {
        // `--bug` adds to any `faultline.bugs` from the file or overrides.
        let from_file = BrokerConfig::load(args.config.as_deref(), &args.overrides)
            .ok()
            .and_then(|c| c.settings.get("faultline.bugs").map(str::to_string));
        let mut all: Vec<String> = from_file.into_iter().collect();
        all.extend(args.bugs.iter().cloned());
        overrides.push(format!("faultline.bugs={}", all.join(",")));
    }
    let config = match BrokerConfig::load(args.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("faultline-node: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    for bug in config.bugs.active() {
        tracing::warn!(bug = %bug, "BUG SWITCH ON: this node reintroduces a known data-loss bug on purpose");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("building the tokio runtime");
    match runtime.block_on(faultline_node::server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "fatal");
            eprintln!("faultline-node: {e:#}");
            ExitCode::FAILURE
        }
    }
}
