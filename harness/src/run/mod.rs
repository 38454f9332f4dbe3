//! `faultline run`: one test run, as Jepsen's core runs a test. Brings a
//! cluster up in network namespaces (through [`crate::cluster`]'s Rust API),
//! creates the topic, runs producer and consumer client processes
//! (`faultline client SPEC`, see [`crate::app`]) for the time limit,
//! then the final phase (stop producers, wait until every partition is
//! settled, stop consumers, a fresh reader drains every partition, dump
//! every replica's log), checks the history with the checker library, and
//! stores everything under `store/<name>/<timestamp>/` (see
//! [`crate::store`]). Teardown always happens, also on errors, Ctrl-C and
//! SIGTERM, unless `--leave-running`.
//!
//! The harness is the single history writer ([`HistoryWriter`]). Each
//! client slot is supervised: when its process dies, every op it left open
//! becomes `info` and a replacement starts under a new process id. The
//! nemesis ([`crate::nemesis_run`]) fires the seeded or scripted faults, and
//! [`execute`] is also how campaigns run each cell.
//!
//! Exit codes: 0 valid, 1 invalid, 2 unknown, 254 bad arguments, 255
//! harness failure.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use faultline_checker::modes::{
    Acks as GAcks, CommitStrategy, OffsetReset, OnSinkError, Processing, ProducerMode, SinkMode,
};
use faultline_checker::op::{Op, OpType, Process};
use faultline_checker::{Guarantees, Replicas, Validity};
use faultline_client::api::{CreateTopicRequest, ErrorCode};
use faultline_client::{Client, ProducerConfig};
use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::app::spec::{ClientSpec, ConsumerSpec, DrainSpec, ProducerSpec, RoleSpec};
use crate::cluster::{self, ClusterState};
use crate::exit::{EXIT_BAD_ARGS, EXIT_HARNESS};
use crate::history::{HistoryWriter, monotonic_ns};
use crate::nemesis_run::Nemesis;
use crate::store::{self, RunLog};
use faultline_nemesis::schedule::{self, Action, ScheduledFault};

/// The seed of a run that names none: the one place it is written.
pub const DEFAULT_SEED: u64 = 42;
/// The workload's topic.
const TOPIC: &str = "events";
/// The consumers' group.
const GROUP: &str = "faultline";
/// The nodes' `broker.session.timeout.ms`: short, so failovers happen
/// within a short run; faults that must outlast it last twice as long.
const SESSION_TIMEOUT_MS: u64 = 3_000;
/// How long the cluster may take to become healthy.
const CLUSTER_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a new topic may take to have a leader for every partition.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the final phase waits for leaders, full ISRs and HW = LEO.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the final phase lets consumers catch up with the end offsets
/// (beyond one auto-commit interval).
const CONSUMER_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two metadata checks while waiting.
const METADATA_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Per-request timeout of client processes and of the harness's own requests.
const REQUEST_TIMEOUT_MS: u64 = 3_000;
/// A send's bound, retries included (the producer's `delivery.timeout.ms`).
const DELIVERY_TIMEOUT_MS: u64 = 10_000;
/// How long a stopped client may take to settle its op and exit before
/// SIGKILL: a send may take its whole delivery timeout.
const CLIENT_STOP_GRACE: Duration = Duration::from_millis(DELIVERY_TIMEOUT_MS + 5_000);
/// Process ids of the final reader: its drain op and its polls.
const DRAIN_PROCESSES: u64 = 2;
/// Bound on the final drain reader.
const DRAIN_DEADLINE_MS: u64 = 20_000;
/// Replacement processes one client slot may start; a slot that keeps
/// dying fails the run instead of looping.
const RESTARTS_PER_SLOT_MAX: u32 = 50;
/// Pause before starting a replacement process.
const RESTART_PAUSE: Duration = Duration::from_millis(200);
/// Highest accepted total send rate, sends per second.
const RATE_MAX_PER_S: f64 = 50_000.0;
/// Longest accepted `--process-time-ms`: a stopping consumer must drain a
/// full queue (32 batches) within its 10 s drain bound, inside the client
/// stop grace.
const PROCESS_TIME_MAX_MS: u64 = 300;
/// Highest accepted `--max-in-flight`: each slot is a logical process.
const MAX_IN_FLIGHT_MAX: usize = 64;
/// Longest accepted `--time-limit`, seconds.
const TIME_LIMIT_MAX_S: f64 = 86_400.0;

#[derive(Args, Debug, Clone, serde::Serialize)]
pub struct RunArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u32,
    /// Seconds of workload before the final phase.
    #[arg(long, default_value_t = 15.0)]
    time_limit: f64,
    /// Total target rate of sends per second over all producers.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Producer processes (one send in flight each).
    #[arg(long, default_value_t = 2)]
    producers: u32,
    /// Consumer processes (assign mode; partitions shared round-robin).
    #[arg(long, default_value_t = 2)]
    consumers: u32,
    /// Values per send in `sync` mode (one produce request each).
    #[arg(long, default_value_t = 1)]
    records_per_send: u32,
    /// How the producer application sends: `sync` awaits each send;
    /// `callback` enqueues and records the outcome when the callback fires;
    /// `fire-and-forget` counts a record as sent once it is enqueued.
    #[arg(long, value_enum, default_value_t = ProducerMode::Sync)]
    producer_mode: ProducerMode,
    /// The producer's `linger.ms` (callback and fire-and-forget modes).
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// The producer's `batch.size`, bytes per partition batch.
    #[arg(long, default_value_t = 16_384)]
    batch_size: u64,
    /// The producer's `buffer.memory`, bytes.
    #[arg(long, default_value_t = 33_554_432)]
    buffer_memory: u64,
    /// The producer's `max.block.ms`: how long a send waits for buffer space.
    #[arg(long, default_value_t = 60_000)]
    max_block_ms: u64,
    /// The producer's `max.in.flight.requests.per.connection` (per partition
    /// here) in callback and fire-and-forget modes; a sync application has
    /// one send in flight.
    #[arg(long, default_value_t = 5)]
    max_in_flight: usize,
    /// The producer's `retries` (attempts after the first); Kafka's default.
    #[arg(long, default_value_t = i32::MAX as u32)]
    retries: u32,
    /// When consumers commit: `auto` (Kafka's auto-commit), `after-process`
    /// or `before-process` (manual commits).
    #[arg(long, value_enum, default_value_t = CommitStrategy::AfterProcess)]
    commit: CommitStrategy,
    /// The consumers' `auto.commit.interval.ms` (with `--commit auto`).
    #[arg(long, default_value_t = 5_000)]
    auto_commit_interval_ms: u64,
    /// How consumers process: `inline` (every record of a poll before the
    /// next poll) or `queue` (an in-memory queue drained by a worker task).
    #[arg(long, value_enum, default_value_t = Processing::Inline)]
    processing: Processing,
    /// The downstream sink consumers write each record into.
    #[arg(long, value_enum, default_value_t = SinkKind::None)]
    sink: SinkKind,
    /// `plain` inserts every record; `idempotent` has a unique key on
    /// (partition, value), so redelivered records are absorbed.
    #[arg(long, value_enum, default_value_t = SinkMode::Plain)]
    sink_mode: SinkMode,
    /// A consumer's reaction to a sink write that fails: `skip` the record
    /// and go on, or `retry` until it succeeds.
    #[arg(long, value_enum, default_value_t = OnSinkError::Retry)]
    on_sink_error: OnSinkError,
    /// The consumers' `auto.offset.reset`: where a consumer starts in a
    /// partition its group has no committed offset for. `earliest` reads
    /// everything (the harness's default); `latest` is Kafka's default and
    /// skips what was written before.
    #[arg(long, value_enum, default_value_t = OffsetReset::Earliest)]
    auto_offset_reset: OffsetReset,
    /// Milliseconds the consumer application spends on each batch before
    /// writing it to the sink (its own work, e.g. a downstream call): with
    /// `--processing queue`, the queue then fills while polls go on.
    #[arg(long, default_value_t = 0)]
    process_time_ms: u64,
    #[arg(long, default_value_t = 3)]
    topic_partitions: u32,
    #[arg(long, default_value_t = 3)]
    replication_factor: u32,
    #[arg(long, default_value_t = 2)]
    min_insync_replicas: u32,
    /// The producers' acks: 0, 1 or all.
    #[arg(long, value_enum, default_value_t = GAcks::All)]
    acks: GAcks,
    #[arg(long)]
    unclean_leader_election: bool,
    /// Idempotent producers; default as Kafka: on with acks=all.
    #[arg(long)]
    idempotence: Option<bool>,
    /// A bug switch to turn on in every node (repeatable).
    #[arg(long = "bug", value_name = "NAME")]
    bugs: Vec<String>,
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// The run's name: `store/<name>/<timestamp>/`.
    #[arg(long, default_value = "faultline")]
    name: String,
    /// Do not tear the cluster down at the end.
    #[arg(long)]
    leave_running: bool,
    /// Faults to inject, a comma list: kill, pause, partition (a random
    /// standard shape), a shape's own name (isolate-leader,
    /// leader-from-followers, halves, majorities-ring, bridge, one),
    /// kill-producer, kill-consumer.
    #[arg(long)]
    nemesis: Option<String>,
    /// Mean seconds between a fault family's faults: waits are random in 0–2× this.
    #[arg(long, default_value_t = 10.0)]
    nemesis_interval: f64,
    /// A scripted fault timeline (TOML `[[timeline]]` entries) instead of a random mix.
    #[arg(long)]
    nemesis_timeline: Option<PathBuf>,
    /// A broker setting for every node, `key=value` with Kafka's key names
    /// (repeatable); it wins over the run's own settings, e.g.
    /// `--broker-config replica.lag.time.max.ms=60000`.
    #[arg(long = "broker-config", value_name = "KEY=VALUE")]
    broker_config: Vec<String>,
    /// Enable the nodes' admin hooks (needed by timelines that pause fetchers).
    #[arg(long)]
    admin_hooks: bool,
    /// The cluster's name (1 to 8 of a-z, 0-9).
    #[arg(long, default_value = "run", hide = true)]
    cluster_name: String,
    /// The cluster's /24; by default a free one.
    #[arg(long, hide = true)]
    subnet: Option<String>,
    /// Test hook: `producer:SECONDS` or `consumer:SECONDS` SIGKILLs the
    /// first process of that role at that time into the workload.
    #[arg(long = "kill-client", hide = true)]
    kill_client: Vec<String>,
}

/// The downstream database consumers write into.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkKind {
    Sqlite,
    None,
}

/// The options after validation.
#[derive(Debug, Clone)]
struct Plan {
    args: RunArgs,
    idempotence: bool,
    time_limit: Duration,
    kills: Vec<(Role, Duration)>,
    /// The nemesis's schedule, fixed by the seed before the run starts.
    faults: Vec<ScheduledFault>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Producer,
    Consumer,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        }
    }
}

/// Sends in flight per partition of one producer process: one for a sync
/// application, `--max-in-flight` through the accumulator.
fn in_flight(a: &RunArgs) -> usize {
    if a.producer_mode == ProducerMode::Sync { 1 } else { a.max_in_flight }
}

fn validate(args: RunArgs) -> Result<Plan, String> {
    let acks = crate::app::producer::wire_acks(args.acks);
    let config = ProducerConfig {
        acks,
        retries: args.retries,
        enable_idempotence: args.idempotence,
        max_in_flight: in_flight(&args),
        request_timeout_ms: REQUEST_TIMEOUT_MS,
        delivery_timeout_ms: DELIVERY_TIMEOUT_MS,
        ..ProducerConfig::default()
    };
    let idempotence = config.idempotence().map_err(|e| format!("--idempotence: {e}"))?;
    if args.max_in_flight == 0 || args.max_in_flight > MAX_IN_FLIGHT_MAX {
        return Err(format!("--max-in-flight {}: must be 1 to {MAX_IN_FLIGHT_MAX}", args.max_in_flight));
    }
    if !(args.time_limit > 0.0 && args.time_limit <= TIME_LIMIT_MAX_S) {
        return Err(format!("--time-limit {}: must be in (0, {TIME_LIMIT_MAX_S}]", args.time_limit));
    }
    if !(args.rate > 0.0 && args.rate <= RATE_MAX_PER_S) {
        return Err(format!("--rate {}: must be in (0, {RATE_MAX_PER_S}]", args.rate));
    }
    if args.topic_partitions == 0 || args.records_per_send == 0 || args.batch_size == 0 || args.buffer_memory == 0 {
        return Err(
            "--topic-partitions, --records-per-send, --batch-size and --buffer-memory must be at least 1".into()
        );
    }
    if args.batch_size > args.buffer_memory {
        return Err(format!(
            "--batch-size {}: must not exceed --buffer-memory {}",
            args.batch_size, args.buffer_memory
        ));
    }
    if args.linger_ms + REQUEST_TIMEOUT_MS > DELIVERY_TIMEOUT_MS {
        return Err(format!(
            "--linger-ms {}: linger.ms + request.timeout.ms ({REQUEST_TIMEOUT_MS}) must not exceed delivery.timeout.ms ({DELIVERY_TIMEOUT_MS})",
            args.linger_ms
        ));
    }
    if args.process_time_ms > PROCESS_TIME_MAX_MS {
        return Err(format!("--process-time-ms {}: at most {PROCESS_TIME_MAX_MS}", args.process_time_ms));
    }
    if args.auto_commit_interval_ms == 0 {
        return Err("--auto-commit-interval-ms: must be at least 1".into());
    }
    if args.replication_factor == 0 || args.replication_factor > args.nodes {
        return Err(format!("--replication-factor {}: must be 1 to --nodes ({})", args.replication_factor, args.nodes));
    }
    if args.min_insync_replicas == 0 || args.min_insync_replicas > args.replication_factor {
        return Err(format!(
            "--min-insync-replicas {}: must be 1 to --replication-factor ({})",
            args.min_insync_replicas, args.replication_factor
        ));
    }
    if args.name.is_empty() || args.name.contains('/') || args.name == "latest" || args.name.starts_with('.') {
        return Err(format!("--name {:?}: must be a plain directory name other than \"latest\"", args.name));
    }
    if let Some(b) = args.bugs.iter().find(|b| b.is_empty() || b.contains(',') || b.contains('\n')) {
        return Err(format!("--bug {b:?}: one switch name per --bug"));
    }
    if let Some(e) = args.bugs.iter().find_map(|b| b.parse::<faultline_node::bugs::Bug>().err()) {
        return Err(format!("--bug: {e}"));
    }
    crate::hosts::network::validate_name(&args.cluster_name).map_err(|e| format!("--cluster-name: {e}"))?;
    for kv in &args.broker_config {
        let pairs = faultline_node::config::parse_properties("--broker-config", kv)
            .map_err(|e| format!("--broker-config {kv:?}: {e}"))?;
        if pairs.len() != 1 {
            return Err(format!("--broker-config {kv:?}: expected one key=value"));
        }
        faultline_node::config::Settings::broker(pairs).map_err(|e| format!("--broker-config {kv:?}: {e}"))?;
    }
    let mut kills = Vec::new();
    for k in &args.kill_client {
        let (role, at) = k
            .split_once(':')
            .ok_or_else(|| format!("--kill-client {k:?}: expected producer:SECONDS or consumer:SECONDS"))?;
        let role = match role {
            "producer" => Role::Producer,
            "consumer" => Role::Consumer,
            _ => return Err(format!("--kill-client {k:?}: role must be producer or consumer")),
        };
        let at: f64 = at.parse().map_err(|_| format!("--kill-client {k:?}: bad seconds"))?;
        if !(at >= 0.0 && at < args.time_limit) {
            return Err(format!("--kill-client {k:?}: must be within --time-limit"));
        }
        kills.push((role, Duration::from_secs_f64(at)));
    }
    let faults = match (&args.nemesis, &args.nemesis_timeline) {
        (Some(_), Some(_)) => return Err("--nemesis and --nemesis-timeline: give one or the other".into()),
        (Some(list), None) => {
            if !(args.nemesis_interval > 0.0 && args.nemesis_interval.is_finite()) {
                return Err(format!(
                    "--nemesis-interval {}: must be a positive number of seconds",
                    args.nemesis_interval
                ));
            }
            let families: Vec<String> =
                list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
            let session_s = session_timeout_ms(&args) as f64 / 1000.0;
            schedule::random_mix(&families, args.nemesis_interval, args.time_limit, session_s, args.seed)
                .map_err(|e| e.to_string())?
        }
        (None, Some(path)) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("--nemesis-timeline {}: {e}", path.display()))?;
            let ops =
                schedule::parse_timeline(&text).map_err(|e| format!("--nemesis-timeline {}: {e}", path.display()))?;
            if let Some(late) = ops.iter().find(|o| o.at_s >= args.time_limit) {
                return Err(format!(
                    "--nemesis-timeline: a fault at t = {} s is past --time-limit {}",
                    late.at_s, args.time_limit
                ));
            }
            if !args.admin_hooks
                && ops.iter().any(|o| matches!(o.action, Action::PauseFetchers | Action::ResumeFetchers))
            {
                return Err(format!(
                    "--nemesis-timeline {}: pauses fetchers, which needs --admin-hooks",
                    path.display()
                ));
            }
            ops
        }
        (None, None) => Vec::new(),
    };
    // Client kills of the schedule go to the supervisors, round robin over slots of a role.
    for f in &faults {
        let role = match f.action {
            Action::KillProducer => Role::Producer,
            Action::KillConsumer => Role::Consumer,
            _ => continue,
        };
        kills.push((role, Duration::from_secs_f64(f.at_s)));
    }
    let time_limit = Duration::from_secs_f64(args.time_limit);
    Ok(Plan { args, idempotence, time_limit, kills, faults })
}

#[cfg(test)]
impl RunArgs {
    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// The checks `faultline run` makes before it starts anything, for a caller
/// (a campaign) that wants to refuse a bad run before running others.
pub fn check_args(args: RunArgs) -> Result<(), String> {
    validate(args).map(drop)
}

pub fn main(args: RunArgs) -> ExitCode {
    let report = execute(args, reproduce_command(std::env::args().collect()));
    ExitCode::from(report.code)
}

/// What one run came to, for `faultline run` and for campaigns.
pub struct RunReport {
    /// The run's exit code: 0 valid, 1 invalid, 2 unknown, 254 bad
    /// arguments, 255 harness failure.
    pub code: u8,
    /// The run's store directory, when one was created.
    pub dir: Option<PathBuf>,
    /// The checker's results, when the run got that far.
    pub results: Option<faultline_checker::Results>,
    /// The command that reproduces the run.
    pub reproduce: String,
    /// Why the run could not start or finish (bad arguments, harness failure).
    pub error: Option<String>,
    /// The run was stopped by SIGINT or SIGTERM: a campaign stops too.
    pub interrupted: bool,
}

/// Runs one test to the end, as `faultline run` does, and prints the same
/// summary; `reproduce` is printed when the run is not valid.
pub fn execute(args: RunArgs, reproduce: String) -> RunReport {
    let plan = match validate(args) {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("faultline run: {msg}");
            return RunReport {
                code: EXIT_BAD_ARGS,
                dir: None,
                results: None,
                reproduce,
                error: Some(msg),
                interrupted: false,
            };
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    let log = Arc::new(RunLog::new());
    let mut report = runtime.block_on(run(plan, log.clone()));
    if report.code != 0 {
        eprintln!("faultline run: reproduce with: {reproduce}");
    }
    report.reproduce = reproduce;
    report
}

/// A shell command line from `argv`, with the seed made explicit.
pub fn reproduce_command(mut args: Vec<String>) -> String {
    if !args.iter().any(|a| a == "--seed" || a.starts_with("--seed=")) {
        args.extend(["--seed".into(), DEFAULT_SEED.to_string()]);
    }
    args.iter()
        .map(|a| {
            if a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Everything one run shares between its tasks.
struct Ctx {
    plan: Plan,
    dir: PathBuf,
    cluster_dir: PathBuf,
    log: Arc<RunLog>,
}

async fn run(plan: Plan, log: Arc<RunLog>) -> RunReport {
    let fail = |dir: Option<PathBuf>, e: String| RunReport {
        code: EXIT_HARNESS,
        dir,
        results: None,
        reproduce: String::new(),
        error: Some(e),
        interrupted: false,
    };
    let dir = match store::create_run_dir(&plan.args.store, &plan.args.name) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("faultline run: {e:#}");
            return fail(None, format!("{e:#}"));
        }
    };
    if let Err(e) = log.open(&dir.join("faultline.log")) {
        eprintln!("faultline run: {e:#}");
        return fail(Some(dir), format!("{e:#}"));
    }
    let cluster_dir =
        std::path::absolute(plan.args.store.join("clusters").join(&plan.args.cluster_name)).unwrap_or_default();
    let ctx = Ctx { plan, dir: dir.clone(), cluster_dir, log: log.clone() };
    log.line(format!("run {} in {}", ctx.plan.args.name, dir.display()));
    let mut sigterm = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            log.line(format!("installing a SIGTERM handler: {e}"));
            return fail(Some(dir), format!("installing a SIGTERM handler: {e}"));
        }
    };
    let mut interrupted = false;
    let outcome = tokio::select! {
        r = run_test(&ctx) => r,
        _ = tokio::signal::ctrl_c() => { interrupted = true; Err(anyhow!("interrupted (SIGINT)")) },
        _ = sigterm.recv() => { interrupted = true; Err(anyhow!("terminated (SIGTERM)")) },
    };
    let valid = outcome.as_ref().ok().map(|o| o.valid);
    let teardown = finish_cluster(&ctx, valid).await;
    match (outcome, teardown) {
        (Ok(o), Ok(())) => {
            print_summary(&ctx, &o);
            RunReport {
                code: o.valid.exit_code(),
                dir: Some(dir),
                results: Some(o.results),
                reproduce: String::new(),
                error: None,
                interrupted,
            }
        }
        (Ok(o), Err(e)) => {
            print_summary(&ctx, &o);
            log.line(format!("harness failure: {e:#}"));
            RunReport { results: Some(o.results), ..fail(Some(dir), format!("teardown: {e:#}")) }
        }
        (Err(e), t) => {
            log.line(format!("harness failure: {e:#}"));
            if let Err(t) = t {
                log.line(format!("also: {t:#}"));
            }
            println!("Run failed (harness): {e:#}\nStore: {}", dir.display());
            RunReport { interrupted, ..fail(Some(dir), format!("{e:#}")) }
        }
    }
}

/// What a completed run found.
struct Outcome {
    valid: Validity,
    results: faultline_checker::Results,
    counts: BTreeMap<(String, faultline_checker::op::OpType), u64>,
}

fn guarantees(plan: &Plan) -> Guarantees {
    let a = &plan.args;
    Guarantees {
        acks: a.acks,
        idempotence: plan.idempotence,
        max_in_flight: in_flight(a) as u32,
        unclean_leader_election: a.unclean_leader_election,
        commit: (a.consumers > 0).then_some(a.commit),
        sink_mode: (a.sink == SinkKind::Sqlite).then_some(a.sink_mode),
        producer_mode: a.producer_mode,
        processing: a.processing,
        on_sink_error: a.on_sink_error,
        auto_offset_reset: a.auto_offset_reset,
    }
}

/// The nodes' `broker.session.timeout.ms`: the run's, or the user's
/// `--broker-config` (the last one wins).
fn session_timeout_ms(a: &RunArgs) -> u64 {
    a.broker_config
        .iter()
        .rev()
        .find_map(|kv| kv.strip_prefix("broker.session.timeout.ms="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(SESSION_TIMEOUT_MS)
}

/// Broker settings for every node, as `key=value`.
fn node_config(plan: &Plan) -> Vec<String> {
    let a = &plan.args;
    let mut c = vec![
        format!("broker.session.timeout.ms={SESSION_TIMEOUT_MS}"),
        format!("faultline.admin.hooks={}", a.admin_hooks),
        format!("min.insync.replicas={}", a.min_insync_replicas),
        format!("unclean.leader.election.enable={}", a.unclean_leader_election),
        format!("default.replication.factor={}", a.replication_factor),
    ];
    if !a.bugs.is_empty() {
        c.push(format!("faultline.bugs={}", a.bugs.join(",")));
    }
    // Later settings win (the node's rule), so the user's come last.
    c.extend(a.broker_config.iter().cloned());
    c
}

/// The commit of the checkout this binary was built in (dev builds live in
/// its `target/`), or of the working directory; `None` outside a checkout.
fn git_commit() -> Option<String> {
    let exe_dir = std::env::current_exe().ok()?.parent()?.to_path_buf();
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(exe_dir)
        .args(["rev-parse", "HEAD"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn write_test_json(ctx: &Ctx) -> anyhow::Result<()> {
    let a = &ctx.plan.args;
    let doc = serde_json::json!({
        "name": a.name,
        "seed": a.seed,
        "faultline_version": env!("CARGO_PKG_VERSION"),
        "git_commit": git_commit(),
        "argv": std::env::args().collect::<Vec<_>>(),
        // Every option as given (Kafka-style names in snake case), and what
        // they came to where that differs.
        "options": a,
        "effective": { "idempotence": ctx.plan.idempotence, "max_in_flight": in_flight(a), "topic": TOPIC, "group": GROUP },
        "fault_schedule": ctx.plan.faults.iter().map(|f| serde_json::json!({
            "t_s": f.at_s, "action": f.action.to_string(), "target": f.target.to_string(),
        })).collect::<Vec<_>>(),
        "node_config": node_config(&ctx.plan),
        "timeouts": {
            "request_timeout_ms": REQUEST_TIMEOUT_MS, "delivery_timeout_ms": DELIVERY_TIMEOUT_MS,
            "client_stop_grace_ms": CLIENT_STOP_GRACE.as_millis() as u64, "settle_timeout_ms": SETTLE_TIMEOUT.as_millis() as u64,
            "drain_deadline_ms": DRAIN_DEADLINE_MS, "cluster_up_timeout_ms": CLUSTER_UP_TIMEOUT.as_millis() as u64,
            "broker_session_timeout_ms": session_timeout_ms(&ctx.plan.args),
        },
        "guarantees": guarantees(&ctx.plan),
    });
    store::write_json(&ctx.dir.join(faultline_checker::TEST_FILE), &doc)
}

/// The run itself, up to the check; the cluster is left to [`finish_cluster`].
async fn run_test(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let plan = &ctx.plan;
    write_test_json(ctx)?;
    // A previous run's cluster directory (torn down) would hand its data to the new nodes.
    if ctx.cluster_dir.exists() {
        let state = ClusterState::load(&ctx.cluster_dir.join("state.json"));
        match state {
            Ok(s) if s.phase != crate::cluster::Phase::Down => bail!(
                "cluster {} from an earlier run is still up ({}); run `faultline cluster down` on it",
                plan.args.cluster_name,
                ctx.cluster_dir.display()
            ),
            _ => std::fs::remove_dir_all(&ctx.cluster_dir)
                .with_context(|| format!("removing the old {}", ctx.cluster_dir.display()))?,
        }
    }
    ctx.log.line(format!("cluster up: {} nodes ({})", plan.args.nodes, ctx.cluster_dir.display()));
    let state = cluster::start(
        &plan.args.cluster_name,
        &ctx.cluster_dir,
        plan.args.nodes,
        &node_config(plan),
        plan.args.subnet.as_deref(),
        CLUSTER_UP_TIMEOUT,
    )
    .await?;
    let urls: Vec<String> = state.nodes.iter().map(|n| n.url.clone()).collect();
    ctx.log.line(format!("cluster up: {}", urls.join(" ")));
    create_topic(ctx, &urls).await?;

    let sinks = create_sinks(ctx)?;
    let start_ns = monotonic_ns();
    let writer = Arc::new(Mutex::new(HistoryWriter::create(&ctx.dir.join(faultline_checker::HISTORY_FILE), start_ns)?));
    let shared = Arc::new(Shared {
        writer: writer.clone(),
        stride: u64::from(plan.args.producers + plan.args.consumers) + DRAIN_PROCESSES,
        log: ctx.log.clone(),
        clients_log: ctx.dir.join("clients.log"),
        urls: urls.clone(),
        started: Instant::now(),
    });
    let (stop_producers, producers_stopped) = watch::channel(false);
    let (stop_consumers, consumers_stopped) = watch::channel(false);
    let mut producers = tokio::task::JoinSet::new();
    let mut consumers = tokio::task::JoinSet::new();
    let a = &plan.args;
    let kill_at = |role: Role| plan.kills.iter().filter(|(r, _)| *r == role).map(|(_, t)| *t).collect::<Vec<_>>();
    for i in 0..a.producers {
        let role = RoleSpec::Producer(ProducerSpec {
            partitions: a.topic_partitions,
            rate: a.rate / f64::from(a.producers),
            records_per_send: a.records_per_send,
            acks: a.acks,
            idempotence: plan.idempotence,
            delivery_timeout_ms: DELIVERY_TIMEOUT_MS,
            seed: a.seed,
            mode: a.producer_mode,
            linger_ms: a.linger_ms,
            batch_size: a.batch_size as usize,
            buffer_memory: a.buffer_memory as usize,
            max_block_ms: a.max_block_ms,
            retries: a.retries,
            max_in_flight: in_flight(a),
        });
        let slot = Slot {
            role: Role::Producer,
            index: i,
            first_process: u64::from(i),
            spec: role,
            kills: if i == 0 { kill_at(Role::Producer) } else { vec![] },
        };
        producers.spawn(supervise(shared.clone(), slot, producers_stopped.clone()));
    }
    for j in 0..a.consumers {
        let owned: Vec<u32> = (0..a.topic_partitions).filter(|p| p % a.consumers == j).collect();
        if owned.is_empty() {
            ctx.log.line(format!(
                "consumer {j} owns no partition ({} partitions for {} consumers); not started",
                a.topic_partitions, a.consumers
            ));
            continue;
        }
        let role = RoleSpec::Consumer(ConsumerSpec {
            owned,
            group: GROUP.into(),
            commit: a.commit,
            auto_commit_interval_ms: a.auto_commit_interval_ms,
            processing: a.processing,
            sink_path: sinks.iter().find(|(slot, _)| *slot == j).map(|(_, path)| path.clone()),
            on_sink_error: a.on_sink_error,
            auto_offset_reset: a.auto_offset_reset,
            process_time_ms: a.process_time_ms,
        });
        let slot = Slot {
            role: Role::Consumer,
            index: j,
            first_process: u64::from(a.producers + j),
            spec: role,
            kills: if j == 0 { kill_at(Role::Consumer) } else { vec![] },
        };
        consumers.spawn(supervise(shared.clone(), slot, consumers_stopped.clone()));
    }
    ctx.log.line(format!(
        "workload: {} producers at {} sends/s in total, {} consumers, for {} s",
        a.producers, a.rate, a.consumers, a.time_limit
    ));
    let (faults_tx, faults_rx) = watch::channel("none".to_string());
    let sink_paths = sinks.iter().map(|(_, p)| p.clone()).collect();
    let nemesis = Arc::new(Nemesis::new(&state, writer.clone(), ctx.log.clone(), faults_tx, a.seed, sink_paths));
    let (nemesis_stop, nemesis_stopped) = watch::channel(false);
    let nemesis_task = tokio::spawn(nemesis.clone().run(plan.faults.clone(), Instant::now(), nemesis_stopped));
    let (progress_stop, progress_stopped) = watch::channel(false);
    let progress = tokio::spawn(crate::progress::show(
        writer.clone(),
        ctx.log.clone(),
        plan.time_limit,
        faults_rx,
        progress_stopped,
    ));

    // The workload: a supervisor that returns early has failed.
    let until = Instant::now() + plan.time_limit;
    // Bounded by the time limit.
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => break,
            Some(r) = producers.join_next() => r.context("producer supervisor panicked")??,
            Some(r) = consumers.join_next() => r.context("consumer supervisor panicked")??,
        }
    }

    let _ = nemesis_stop.send(true);
    nemesis_task.await.context("nemesis task panicked")??;
    ctx.log.line("final phase: stopping producers");
    let _ = stop_producers.send(true);
    while let Some(r) = producers.join_next().await {
        r.context("producer supervisor panicked")??;
    }
    ctx.log.line("final phase: healing every fault");
    nemesis.final_heal().await.context("the final heal")?;
    let _ = progress_stop.send(true);
    let _ = progress.await;
    ctx.log.line("final phase: waiting for leaders, full ISRs and HW = LEO");
    let targets = wait_settled(ctx, &state).await?;
    wait_consumers_caught_up(ctx, &urls, &targets).await;
    ctx.log.line("final phase: stopping consumers");
    let _ = stop_consumers.send(true);
    while let Some(r) = consumers.join_next().await {
        r.context("consumer supervisor panicked")??;
    }
    if !sinks.is_empty() {
        let rows = crate::sink::export(&sinks, &ctx.dir.join(faultline_checker::SINK_FILE))?;
        ctx.log.line(format!(
            "final phase: {rows} sink rows from {} databases into {}",
            sinks.len(),
            faultline_checker::SINK_FILE
        ));
    }
    ctx.log.line(format!("final phase: draining {} partitions to {:?}", targets.len(), targets));
    run_drain(&shared, &targets).await?;
    ctx.log.line("final phase: dumping every replica's log");
    let replicas = dump_replicas(ctx, &state).await?;
    store::write_json(&ctx.dir.join(faultline_checker::REPLICAS_FILE), &replicas)?;

    let (ops, counts) = {
        let w = writer.lock();
        (w.len(), w.counts().clone())
    };
    drop(shared);
    drop(nemesis);
    let writer = Arc::try_unwrap(writer).map_err(|_| anyhow!("history writer still shared"))?.into_inner();
    writer.finish()?;
    ctx.log.line(format!("checking {ops} ops"));
    let files = faultline_checker::RunFiles::locate(&ctx.dir);
    let history = files.read_history().context("reading back history.jsonl")?;
    let g = files.guarantees().context("reading test.json's guarantees")?;
    let sink = files.read_sink().context("reading back sink.jsonl")?;
    let results = faultline_checker::check_with(
        &history,
        &g,
        &faultline_checker::Inputs { replicas: Some(&replicas), sink: sink.as_ref() },
    );
    store::write_json(&ctx.dir.join(faultline_checker::RESULTS_FILE), &results)?;
    Ok(Outcome { valid: results.valid, results, counts })
}

/// Each consumer slot's sink database (`--sink sqlite`), created before the
/// workload so replacements reopen it and the nemesis can lock it.
fn create_sinks(ctx: &Ctx) -> anyhow::Result<Vec<(u32, PathBuf)>> {
    let a = &ctx.plan.args;
    if a.sink == SinkKind::None {
        return Ok(Vec::new());
    }
    let dir = ctx.dir.join("sink");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mode = a.sink_mode;
    let mut out = Vec::new();
    for j in 0..a.consumers.min(a.topic_partitions) {
        let path = std::path::absolute(dir.join(format!("slot-{j}.sqlite"))).context("the sink path")?;
        crate::sink::create(&path, mode)?;
        out.push((j, path));
    }
    Ok(out)
}

async fn create_topic(ctx: &Ctx, urls: &[String]) -> anyhow::Result<()> {
    let a = &ctx.plan.args;
    let mut configs = BTreeMap::new();
    configs.insert("min.insync.replicas".to_string(), serde_json::json!(a.min_insync_replicas.to_string()));
    configs
        .insert("unclean.leader.election.enable".to_string(), serde_json::json!(a.unclean_leader_election.to_string()));
    let req = CreateTopicRequest {
        name: TOPIC.into(),
        partitions: Some(i64::from(a.topic_partitions)),
        replication_factor: Some(i64::from(a.replication_factor)),
        configs,
    };
    let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
    let clients: Vec<Client> =
        urls.iter().map(|u| Client::with_timeout(u.clone(), Duration::from_millis(REQUEST_TIMEOUT_MS))).collect();
    let mut created = false;
    // Bounded by the deadline.
    for round in 0u64.. {
        let node = &clients[round as usize % clients.len()];
        if !created {
            match node.create_topic(&req).await {
                Ok(_) => created = true,
                Err(e) if e.code() == Some(ErrorCode::TopicAlreadyExists) => created = true,
                Err(e) if Instant::now() > deadline => bail!("creating topic {TOPIC}: {e}"),
                Err(e)
                    if e.code().is_some_and(|c| {
                        matches!(
                            c,
                            ErrorCode::InvalidConfig
                                | ErrorCode::InvalidReplicationFactor
                                | ErrorCode::InvalidPartitions
                                | ErrorCode::InvalidRequest
                        )
                    }) =>
                {
                    bail!("creating topic {TOPIC}: {e}")
                }
                Err(_) => {}
            }
        }
        if created
            && let Ok(d) = node.describe_topic(TOPIC).await
            && d.partitions.len() == a.topic_partitions as usize
            && d.partitions.iter().all(|p| p.leader.is_some())
        {
            ctx.log.line(format!(
                "topic {TOPIC}: {} partitions, RF {}, every partition has a leader",
                a.topic_partitions, a.replication_factor
            ));
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("topic {TOPIC} has no leader for every partition within {TOPIC_READY_TIMEOUT:?}");
        }
        tokio::time::sleep(METADATA_POLL_INTERVAL).await;
    }
    unreachable!("the loop returns or fails by the deadline")
}

/// Step 3 of the final phase: every partition has a leader, a full ISR and
/// HW = LEO (by its leader's own description), bounded by
/// [`SETTLE_TIMEOUT`]. Returns each partition's end offset (the leader's HW)
/// as the drain's target; when the bound passes, logs what is unsettled and
/// returns the best known targets.
async fn wait_settled(ctx: &Ctx, state: &ClusterState) -> anyhow::Result<Vec<(u32, i64)>> {
    let nodes: Vec<(i32, Client)> = state
        .nodes
        .iter()
        .map(|n| (n.id as i32, Client::with_timeout(n.url.clone(), Duration::from_millis(REQUEST_TIMEOUT_MS))))
        .collect();
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let partitions = ctx.plan.args.topic_partitions;
    let mut best: BTreeMap<u32, i64> = BTreeMap::new();
    // Bounded by SETTLE_TIMEOUT.
    loop {
        let mut views = BTreeMap::new();
        for (id, c) in &nodes {
            if let Ok(d) = c.describe_topic(TOPIC).await {
                views.insert(*id, d);
            }
        }
        let mut unsettled = Vec::new();
        for p in 0..partitions {
            // The leader according to any node, then the leader's own view.
            let leader =
                views.values().filter_map(|d| d.partitions.iter().find(|x| x.partition == p)).find_map(|x| x.leader);
            let own = leader.and_then(|l| views.get(&l)).and_then(|d| d.partitions.iter().find(|x| x.partition == p));
            match own {
                Some(x) if x.leader == leader => {
                    best.insert(p, x.high_watermark);
                    if x.isr.len() < x.replicas.len() || x.high_watermark != x.log_end_offset {
                        unsettled.push(format!(
                            "{TOPIC}/{p}: isr {:?} of {:?}, hw {} leo {}",
                            x.isr, x.replicas, x.high_watermark, x.log_end_offset
                        ));
                    }
                }
                _ => unsettled.push(format!("{TOPIC}/{p}: no leader")),
            }
        }
        if unsettled.is_empty() {
            ctx.log.line("final phase: every partition settled");
            return Ok(best.into_iter().collect());
        }
        if Instant::now() > deadline {
            ctx.log.line(format!("final phase: not settled within {SETTLE_TIMEOUT:?}: {}", unsettled.join("; ")));
            return Ok((0..partitions).map(|p| (p, best.get(&p).copied().unwrap_or(0))).collect());
        }
        tokio::time::sleep(METADATA_POLL_INTERVAL).await;
    }
}

/// Step 3b: lets the consumers read, process and commit up to the settled
/// end offsets before they are stopped, so that a fault-free run ends with
/// everything processed. Bounded by one auto-commit interval (at most
/// [`CONSUMER_CATCH_UP_TIMEOUT`]) plus [`CONSUMER_CATCH_UP_TIMEOUT`]; not catching up is logged, not an error
/// (the checker judges what happened).
async fn wait_consumers_caught_up(ctx: &Ctx, urls: &[String], targets: &[(u32, i64)]) {
    let a = &ctx.plan.args;
    if a.consumers == 0 {
        return;
    }
    // An auto-commit interval longer than the bound would only be waited
    // out in vain: such consumers commit when they close.
    let deadline = Instant::now()
        + CONSUMER_CATCH_UP_TIMEOUT
        + Duration::from_millis(a.auto_commit_interval_ms).min(CONSUMER_CATCH_UP_TIMEOUT);
    let clients: Vec<Client> =
        urls.iter().map(|u| Client::with_timeout(u.clone(), Duration::from_millis(REQUEST_TIMEOUT_MS))).collect();
    let mut last = String::new();
    // Bounded by the deadline.
    for round in 0usize.. {
        if let Ok(r) = clients[round % clients.len()].committed_offsets(GROUP).await {
            let at = |p: u32| r.offsets.iter().find(|o| o.topic == TOPIC && o.partition == p).map_or(0, |o| o.offset);
            let behind: Vec<String> = targets
                .iter()
                .filter(|(p, end)| at(*p) < *end)
                .map(|(p, end)| format!("{TOPIC}/{p} at {} of {end}", at(*p)))
                .collect();
            if behind.is_empty() {
                ctx.log.line("final phase: the consumers committed up to every end offset");
                return;
            }
            last = behind.join(", ");
        }
        if Instant::now() > deadline {
            ctx.log.line(format!("final phase: the consumers did not catch up within the bound: {last}"));
            return;
        }
        tokio::time::sleep(METADATA_POLL_INTERVAL * 2).await;
    }
}

/// Step 6: every replica's log, as `replicas.json` wants it.
async fn dump_replicas(ctx: &Ctx, state: &ClusterState) -> anyhow::Result<Replicas> {
    let mut out = Replicas::new();
    for node in &state.nodes {
        let client = Client::with_timeout(node.url.clone(), Duration::from_millis(REQUEST_TIMEOUT_MS));
        for p in 0..ctx.plan.args.topic_partitions {
            match client.replica_log(TOPIC, p).await {
                Ok(dump) => {
                    if dump.truncated {
                        ctx.log.line(format!(
                            "replica dump of {TOPIC}/{p} on {} is truncated at its record bound",
                            node.name
                        ));
                    }
                    let records = dump
                        .records
                        .iter()
                        .map(|(o, e, v)| {
                            ((*o).max(0) as u64, (*e).max(0) as u64, faultline_checker::op::RecordValue::from_text(v))
                        })
                        .collect();
                    let log = faultline_checker::replicas::ReplicaLog {
                        log_end_offset: dump.log_end_offset.max(0) as u64,
                        records,
                    };
                    out.entry(format!("{TOPIC}/{p}")).or_default().insert(node.name.clone(), log);
                }
                Err(e) if e.code() == Some(ErrorCode::UnknownTopicOrPartition) => {}
                Err(e) => ctx.log.line(format!("replica dump of {TOPIC}/{p} on {} failed: {e}", node.name)),
            }
        }
    }
    Ok(out)
}

/// Teardown (unless `--leave-running`), then the nodes' logs (and data
/// directories when the run was not valid) into the store.
async fn finish_cluster(ctx: &Ctx, valid: Option<Validity>) -> anyhow::Result<()> {
    let path = ctx.cluster_dir.join("state.json");
    let Ok(mut state) = ClusterState::load(&path) else { return Ok(()) };
    if state.dir != ctx.cluster_dir {
        return Ok(());
    }
    let keep_data = valid != Some(Validity::Valid);
    if ctx.plan.args.leave_running {
        let store = std::path::absolute(&ctx.plan.args.store).unwrap_or_default();
        let how = match (store.file_name().and_then(|n| n.to_str()), store.parent()) {
            (Some("store"), Some(base)) => {
                format!("`faultline cluster down --name {} --dir {}`", state.name, base.display())
            }
            _ => format!("`faultline cluster down` with the state file {}", path.display()),
        };
        ctx.log.line(format!("leaving cluster {} running (--leave-running); remove it with {how}", state.name));
        return Ok(());
    }
    // A cluster whose `up` failed was torn down by it; its logs still count.
    let torn = if state.phase == crate::cluster::Phase::Down {
        Ok(())
    } else {
        ctx.log.line(format!("teardown of cluster {}", state.name));
        cluster::stop(&mut state).await
    };
    for node in &state.nodes {
        let dest = ctx.dir.join("nodes").join(&node.name);
        std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
        if node.log_file.exists() {
            std::fs::copy(&node.log_file, dest.join("node.log"))
                .with_context(|| format!("copying {}", node.log_file.display()))?;
        }
        if keep_data && node.data_dir.exists() {
            store::copy_tree(&node.data_dir, &dest.join("data"))
                .with_context(|| format!("copying {}", node.data_dir.display()))?;
        }
    }
    torn?;
    std::fs::remove_dir_all(&ctx.cluster_dir).with_context(|| format!("removing {}", ctx.cluster_dir.display()))?;
    // `store/clusters` goes too once no cluster is left in it.
    if let Some(parent) = ctx.cluster_dir.parent() {
        let _ = std::fs::remove_dir(parent);
    }
    Ok(())
}

fn print_summary(ctx: &Ctx, o: &Outcome) {
    let mut fs: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for ((f, t), n) in &o.counts {
        fs.entry(f.as_str()).or_default().insert(t.as_str(), *n);
    }
    let mut text = String::from("Ops by f (invoke/ok/fail/info):\n");
    for (f, m) in &fs {
        let g = |k: &str| m.get(k).copied().unwrap_or(0);
        text.push_str(&format!("  {f:<8} {:>8} {:>8} {:>8} {:>8}\n", g("invoke"), g("ok"), g("fail"), g("info")));
    }
    text.push_str(&faultline_checker::verdict::summary(&o.results));
    text.push_str(&format!("Store: {}\n", ctx.dir.display()));
    ctx.log.line(format!("verdict {:?}", o.valid));
    print!("{text}");
}

/// What the supervisors share.
struct Shared {
    writer: Arc<Mutex<HistoryWriter>>,
    /// Process ids of slot `k` are `k, k + stride, k + 2 * stride, ...`
    /// (Jepsen's process + concurrency): a client goes on under the next
    /// one after an `info` op, a replacement process takes the next one
    /// after the last its slot used. Every id is used by one process only.
    /// The last [`DRAIN_PROCESSES`] slots are the drain reader's.
    stride: u64,
    log: Arc<RunLog>,
    clients_log: PathBuf,
    urls: Vec<String>,
    /// The workload's start, for `--kill-client` times.
    started: Instant,
}

/// One client slot: a role and its arguments; the process behind it is
/// replaced when it dies.
struct Slot {
    role: Role,
    index: u32,
    first_process: u64,
    /// What the slot's processes do.
    spec: RoleSpec,
    /// Test hook: SIGKILL the slot's process at these times into the workload.
    kills: Vec<Duration>,
}

/// A running client process: kill-on-drop, stdin held open until a
/// graceful stop, stdout read line by line.
struct ClientProc {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

fn spawn_client(shared: &Shared, role: &RoleSpec, process: u64, stride: u64) -> anyhow::Result<ClientProc> {
    let exe = std::env::current_exe().context("locating the faultline binary")?;
    let stderr = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&shared.clients_log)
        .with_context(|| format!("opening {}", shared.clients_log.display()))?;
    let spec = ClientSpec {
        process,
        process_stride: stride,
        bootstrap: shared.urls.clone(),
        topic: TOPIC.into(),
        request_timeout_ms: REQUEST_TIMEOUT_MS,
        role: role.clone(),
    };
    let mut child = tokio::process::Command::new(exe)
        .arg("client")
        .arg(spec.to_arg())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true)
        .spawn()
        .context("starting a client process")?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped");
    Ok(ClientProc { child, stdin, lines: tokio::io::BufReader::new(stdout).lines() })
}

/// Records one event line of a client whose ids must pass `allowed`, and
/// returns its type and process id; `Err` means the client broke the
/// protocol.
fn record_line(shared: &Shared, line: &str, allowed: impl Fn(u64) -> bool) -> anyhow::Result<(OpType, u64)> {
    let op: Op = serde_json::from_str(line).with_context(|| format!("client event {line:?}"))?;
    let Process::Client(p) = op.process else { bail!("client event for the nemesis: {line:?}") };
    anyhow::ensure!(allowed(p), "client event for process {p}, which is not this client's");
    let op_type = op.op_type;
    shared.writer.lock().record(op)?;
    Ok((op_type, p))
}

/// Runs one client slot until it is told to stop: starts its process,
/// records its events, replaces it with a new process id when it dies.
async fn supervise(shared: Arc<Shared>, slot: Slot, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut kills: Vec<Instant> = slot.kills.iter().map(|t| shared.started + *t).collect();
    kills.sort();
    let stride = shared.stride;
    let mut process = slot.first_process;
    for restart in 0..=RESTARTS_PER_SLOT_MAX {
        if restart > 0 {
            process += stride;
        }
        // A client uses several ids at once (an async producer's in-flight
        // slots, a consumer's queue worker), all of its slot: those seen,
        // and those with an op open.
        let first = process;
        let mut seen = std::collections::BTreeSet::new();
        let mut open = std::collections::BTreeSet::new();
        let mut proc = spawn_client(&shared, &slot.spec, process, stride)?;
        let pid = proc.child.id().unwrap_or(0);
        shared.log.line(format!("{} {}: process {process} started (pid {pid})", slot.role.name(), slot.index));
        let mut stop_deadline: Option<Instant> = None;
        let mut protocol_error = None;
        // The test hook kills while an op is open, so that the kill is
        // certain to leave one: whether the last event was an invoke, and
        // whether a kill waits for the next invoke.
        let (mut op_open, mut kill_pending) = (false, false);
        let kill = |child: &tokio::process::Child, process: u64| {
            shared.log.line(format!(
                "{} {}: test hook: SIGKILL process {process} (pid {pid}) with an op in flight",
                slot.role.name(),
                slot.index
            ));
            if let Some(pid) = child.id() {
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            }
        };
        if *stop.borrow() {
            proc.stdin = None;
            stop_deadline = Some(Instant::now() + CLIENT_STOP_GRACE);
        }
        // Bounded: ends at EOF, which a kill or the stop grace forces.
        loop {
            let next_kill = kills.first().copied();
            tokio::select! {
                line = proc.lines.next_line() => match line {
                    // The client's current id, or a later one of its slot.
                    Ok(Some(l)) => match record_line(&shared, &l, |p| p >= first && (p - first).is_multiple_of(stride)) {
                        Ok((t, p)) => {
                            seen.insert(p);
                            process = process.max(p);
                            if t == OpType::Invoke {
                                open.insert(p);
                            } else {
                                open.remove(&p);
                            }
                            op_open = !open.is_empty();
                            if op_open && kill_pending {
                                kill_pending = false;
                                kill(&proc.child, process);
                            }
                        }
                        Err(e) => {
                            shared.log.line(format!("{} {}: process {process}: {e:#}; killing it", slot.role.name(), slot.index));
                            protocol_error = Some(e);
                            let _ = proc.child.start_kill();
                        }
                    },
                    Ok(None) | Err(_) => break,
                },
                r = stop.changed(), if stop_deadline.is_none() => {
                    if r.is_err() || *stop.borrow() {
                        proc.stdin = None; // EOF on stdin: finish the current op and exit
                        stop_deadline = Some(Instant::now() + CLIENT_STOP_GRACE);
                    }
                }
                _ = tokio::time::sleep_until(stop_deadline.unwrap_or_else(Instant::now)), if stop_deadline.is_some() => {
                    shared.log.line(format!("{} {}: process {process} did not stop within {CLIENT_STOP_GRACE:?}; SIGKILL", slot.role.name(), slot.index));
                    let _ = proc.child.start_kill();
                    stop_deadline = Some(Instant::now() + CLIENT_STOP_GRACE);
                }
                _ = tokio::time::sleep_until(next_kill.unwrap_or_else(Instant::now)), if next_kill.is_some() && stop_deadline.is_none() => {
                    kills.remove(0);
                    if op_open {
                        kill(&proc.child, process);
                    } else {
                        kill_pending = true;
                    }
                }
            }
        }
        let (status, bad_args) = match tokio::time::timeout(CLIENT_STOP_GRACE, proc.child.wait()).await {
            Ok(Ok(s)) => (s.to_string(), s.code() == Some(i32::from(EXIT_BAD_ARGS))),
            _ => {
                let _ = proc.child.start_kill();
                ("did not exit".into(), false)
            }
        };
        let stopping = *stop.borrow();
        let mut crashed = false;
        for p in &seen {
            crashed |= shared
                .writer
                .lock()
                .crash(Process::Client(*p), &format!("client process exited ({status}) with the op in flight"))?;
        }
        shared.log.line(format!(
            "{} {}: process {process} exited ({status}){}",
            slot.role.name(),
            slot.index,
            if crashed { "; its open ops are info" } else { "" }
        ));
        if let Some(e) = protocol_error {
            return Err(e.context(format!("{} {} broke the event protocol", slot.role.name(), slot.index)));
        }
        if bad_args {
            bail!("{} {}: the client refused its arguments (see clients.log)", slot.role.name(), slot.index);
        }
        if stopping {
            return Ok(());
        }
        tokio::time::sleep(RESTART_PAUSE).await;
    }
    bail!("{} {} died {RESTARTS_PER_SLOT_MAX} times; giving up", slot.role.name(), slot.index)
}

/// Step 5: a fresh reader (two process ids never used before: the drain op
/// and its polls).
async fn run_drain(shared: &Arc<Shared>, targets: &[(u32, i64)]) -> anyhow::Result<()> {
    let process = shared.stride - DRAIN_PROCESSES;
    let role = RoleSpec::Drain(DrainSpec { targets: targets.to_vec(), deadline_ms: DRAIN_DEADLINE_MS });
    let mut proc = spawn_client(shared, &role, process, 0)?;
    proc.stdin = None;
    let bound = Duration::from_millis(DRAIN_DEADLINE_MS) + CLIENT_STOP_GRACE;
    let read = async {
        while let Some(l) = proc.lines.next_line().await.context("reading the drain reader")? {
            record_line(shared, &l, |p| p == process || p == process + 1)?;
        }
        anyhow::Ok(())
    };
    let r = tokio::time::timeout(bound, read).await;
    let _ = proc.child.start_kill();
    let _ = proc.child.wait().await;
    for p in [process, process + 1] {
        shared.writer.lock().crash(Process::Client(p), "drain reader exited with the op in flight")?;
    }
    match r {
        Ok(r) => r,
        Err(_) => bail!("the drain reader did not finish within {bound:?}"),
    }
}
