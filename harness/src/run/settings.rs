//! A run's settings as data: [`RunSettings`] is the one type behind
//! `faultline run`'s options (clap flattens it), a campaign cell's `run`
//! table (serde reads it straight from TOML), and `test.json`'s
//! `settings` (serde writes it). Defaults are written once, in
//! [`DEFAULTS`]. What only steers the harness (where to store, the
//! cluster's name, test hooks) is kept apart in [`HarnessArgs`], as
//! low-level arguments are kept apart from what a run means.
//!
//! [`RunSettings::to_flags`] renders settings back into flags, which is how
//! every reproduce command is written; a test parses them back.

use std::path::PathBuf;

use clap::Args;
use faultline_checker::modes::{Acks, CommitStrategy, OffsetReset, OnSinkError, Processing, ProducerMode, SinkMode};
use faultline_nemesis::fault::{Fault, FaultList};
use serde::{Deserialize, Serialize};

use crate::app::library::ClientLibrary;
use crate::cluster::Disk;

/// The downstream database consumers write into.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkKind {
    Sqlite,
    None,
}

/// The seed of a run that names none.
pub const DEFAULT_SEED: u64 = 42;

/// Every setting's default: the one place they are written.
pub const DEFAULTS: RunSettings = RunSettings {
    nodes: 3,
    disk: Disk::Plain,
    time_limit: 15.0,
    rate: 1000.0,
    producers: 2,
    consumers: 2,
    client: ClientLibrary::Faultline,
    records_per_send: 1,
    producer_mode: ProducerMode::Sync,
    linger_ms: 5,
    batch_size: 16_384,
    buffer_memory: 33_554_432,
    max_block_ms: 60_000,
    max_in_flight: 5,
    retries: i32::MAX as u32,
    commit: CommitStrategy::AfterProcess,
    auto_commit_interval_ms: 5_000,
    subscribe: false,
    session_timeout_ms: 45_000,
    max_poll_interval_ms: 300_000,
    processing: Processing::Inline,
    sink: SinkKind::None,
    sink_mode: SinkMode::Plain,
    on_sink_error: OnSinkError::Retry,
    auto_offset_reset: OffsetReset::Earliest,
    process_time_ms: 0,
    topic_partitions: 3,
    replication_factor: 3,
    min_insync_replicas: 2,
    acks: Acks::All,
    unclean_leader_election: false,
    idempotence: None,
    bugs: Vec::new(),
    seed: DEFAULT_SEED,
    nemesis: None,
    nemesis_interval: 10.0,
    nemesis_timeline: None,
    broker_config: Vec::new(),
    producer_config: Vec::new(),
    consumer_config: Vec::new(),
    admin_hooks: false,
};

/// What a run is: cluster, topic, workload, client settings, faults and
/// seed. Keys are `faultline run`'s option names without the dashes.
#[derive(Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RunSettings {
    /// Number of nodes.
    #[arg(long, default_value_t = DEFAULTS.nodes)]
    pub nodes: u32,
    /// What the nodes' data directories live on: `plain`, or `lazyfs`, a
    /// FUSE filesystem that forgets unsynced writes at `power-loss`.
    #[arg(long, value_enum, default_value_t = DEFAULTS.disk)]
    pub disk: Disk,
    /// Seconds of workload before the final phase.
    #[arg(long, default_value_t = DEFAULTS.time_limit)]
    pub time_limit: f64,
    /// Total target rate of sends per second over all producers.
    #[arg(long, default_value_t = DEFAULTS.rate)]
    pub rate: f64,
    /// Producer processes (one send in flight each).
    #[arg(long, default_value_t = DEFAULTS.producers)]
    pub producers: u32,
    /// Consumer processes (assign mode; partitions shared round-robin).
    #[arg(long, default_value_t = DEFAULTS.consumers)]
    pub consumers: u32,
    /// The client library the producer and consumer applications run on:
    /// `faultline` (the Rust model, over HTTP) or `librdkafka` (over Kafka's
    /// protocol; `--producer-config`/`--consumer-config` then also take
    /// librdkafka's own keys).
    #[arg(long, value_enum, default_value_t = DEFAULTS.client)]
    pub client: ClientLibrary,
    /// Values per send in `sync` mode (one produce request each).
    #[arg(long, default_value_t = DEFAULTS.records_per_send)]
    pub records_per_send: u32,
    /// How the producer application sends: `sync` awaits each send;
    /// `callback` enqueues and records the outcome when the callback fires;
    /// `fire-and-forget` counts a record as sent once it is enqueued.
    #[arg(long, value_enum, default_value_t = DEFAULTS.producer_mode)]
    pub producer_mode: ProducerMode,
    /// The producer's `linger.ms` (callback and fire-and-forget modes).
    #[arg(long, default_value_t = DEFAULTS.linger_ms)]
    pub linger_ms: u64,
    /// The producer's `batch.size`, bytes per partition batch.
    #[arg(long, default_value_t = DEFAULTS.batch_size)]
    pub batch_size: u64,
    /// The producer's `buffer.memory`, bytes.
    #[arg(long, default_value_t = DEFAULTS.buffer_memory)]
    pub buffer_memory: u64,
    /// The producer's `max.block.ms`: how long a send waits for buffer space.
    #[arg(long, default_value_t = DEFAULTS.max_block_ms)]
    pub max_block_ms: u64,
    /// The producer's `max.in.flight.requests.per.connection` (per partition
    /// here) in callback and fire-and-forget modes; a sync application has
    /// one send in flight.
    #[arg(long, default_value_t = DEFAULTS.max_in_flight)]
    pub max_in_flight: usize,
    /// The producer's `retries` (attempts after the first); Kafka's default.
    #[arg(long, default_value_t = DEFAULTS.retries)]
    pub retries: u32,
    /// When consumers commit: `auto` (Kafka's auto-commit), `after-process`
    /// or `before-process` (manual commits).
    #[arg(long, value_enum, default_value_t = DEFAULTS.commit)]
    pub commit: CommitStrategy,
    /// The consumers' `auto.commit.interval.ms` (with `--commit auto`).
    #[arg(long, default_value_t = DEFAULTS.auto_commit_interval_ms)]
    pub auto_commit_interval_ms: u64,
    /// Consumers subscribe to the topic and the group shares its
    /// partitions out (Kafka's classic group protocol, range assignor),
    /// instead of each assigning itself a fixed share.
    #[arg(long)]
    pub subscribe: bool,
    /// The consumers' `session.timeout.ms` (with `--subscribe`): a member
    /// without a heartbeat for this long is removed and its partitions move.
    #[arg(long, default_value_t = DEFAULTS.session_timeout_ms)]
    pub session_timeout_ms: u64,
    /// The consumers' `max.poll.interval.ms` (with `--subscribe`): a member
    /// that does not poll for this long leaves the group.
    #[arg(long, default_value_t = DEFAULTS.max_poll_interval_ms)]
    pub max_poll_interval_ms: u64,
    /// How consumers process: `inline` (every record of a poll before the
    /// next poll) or `queue` (an in-memory queue drained by a worker task).
    #[arg(long, value_enum, default_value_t = DEFAULTS.processing)]
    pub processing: Processing,
    /// The downstream sink consumers write each record into.
    #[arg(long, value_enum, default_value_t = DEFAULTS.sink)]
    pub sink: SinkKind,
    /// `plain` inserts every record; `idempotent` has a unique key on
    /// (partition, value), so redelivered records are absorbed.
    #[arg(long, value_enum, default_value_t = DEFAULTS.sink_mode)]
    pub sink_mode: SinkMode,
    /// A consumer's reaction to a sink write that fails: `skip` the record
    /// and go on, or `retry` until it succeeds.
    #[arg(long, value_enum, default_value_t = DEFAULTS.on_sink_error)]
    pub on_sink_error: OnSinkError,
    /// The consumers' `auto.offset.reset`: where a consumer starts in a
    /// partition its group has no committed offset for. `earliest` reads
    /// everything (the harness's default); `latest` is Kafka's default and
    /// skips what was written before.
    #[arg(long, value_enum, default_value_t = DEFAULTS.auto_offset_reset)]
    pub auto_offset_reset: OffsetReset,
    /// Milliseconds the consumer application spends on each batch before
    /// writing it to the sink (its own work, e.g. a downstream call): with
    /// `--processing queue`, the queue then fills while polls go on.
    #[arg(long, default_value_t = DEFAULTS.process_time_ms)]
    pub process_time_ms: u64,
    /// Partitions of the workload's topic.
    #[arg(long, default_value_t = DEFAULTS.topic_partitions)]
    pub topic_partitions: u32,
    /// Replicas per partition.
    #[arg(long, default_value_t = DEFAULTS.replication_factor)]
    pub replication_factor: u32,
    /// The topic's `min.insync.replicas`.
    #[arg(long, default_value_t = DEFAULTS.min_insync_replicas)]
    pub min_insync_replicas: u32,
    /// The producers' acks: 0, 1 or all.
    #[arg(long, value_enum, default_value_t = DEFAULTS.acks)]
    pub acks: Acks,
    /// The topic's `unclean.leader.election.enable`.
    #[arg(long)]
    pub unclean_leader_election: bool,
    /// Idempotent producers; default as Kafka: on with acks=all.
    #[arg(long)]
    pub idempotence: Option<bool>,
    /// A bug switch to turn on in every node (repeatable).
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
    /// The seed of the fault schedule and the workload's choices.
    #[arg(long, default_value_t = DEFAULTS.seed)]
    pub seed: u64,
    #[arg(long, value_name = "FAULTS", help = nemesis_help(), long_help = nemesis_long_help())]
    pub nemesis: Option<FaultList>,
    /// Mean seconds between a fault family's faults: waits are random in 0–2× this.
    #[arg(long, default_value_t = DEFAULTS.nemesis_interval)]
    pub nemesis_interval: f64,
    #[arg(long, value_name = "FILE", help = timeline_help(), long_help = timeline_long_help())]
    pub nemesis_timeline: Option<PathBuf>,
    /// A broker setting for every node, `key=value` with Kafka's key names
    /// (repeatable); it wins over the run's own settings, e.g.
    /// `--broker-config replica.lag.time.max.ms=60000`.
    #[arg(long = "broker-config", value_name = "KEY=VALUE")]
    pub broker_config: Vec<String>,
    /// A producer setting, `key=value` with Kafka's key names (repeatable):
    /// acks, retries, delivery.timeout.ms (10000 here, Kafka 120000),
    /// request.timeout.ms (3000 here, Kafka 30000), retry.backoff.ms,
    /// linger.ms, batch.size, buffer.memory, max.block.ms,
    /// max.in.flight.requests.per.connection, enable.idempotence; it wins
    /// over the dedicated option of the same setting.
    #[arg(long = "producer-config", value_name = "KEY=VALUE")]
    pub producer_config: Vec<String>,
    /// A consumer setting, `key=value` with Kafka's key names (repeatable):
    /// enable.auto.commit, auto.commit.interval.ms, auto.offset.reset,
    /// max.poll.records (1000 here), fetch.max.wait.ms (100 here),
    /// request.timeout.ms (3000 here); it wins over the dedicated option.
    #[arg(long = "consumer-config", value_name = "KEY=VALUE")]
    pub consumer_config: Vec<String>,
    /// Enable the nodes' admin hooks (needed by timelines that pause fetchers).
    #[arg(long)]
    pub admin_hooks: bool,
}

impl Default for RunSettings {
    fn default() -> RunSettings {
        DEFAULTS
    }
}

fn nemesis_help() -> String {
    format!("Faults to inject at random, a comma list: {}", Fault::names(Fault::in_mix))
}

fn nemesis_long_help() -> String {
    format!(
        "Faults to inject at random, a comma list (`partition` picks a standard shape each time; \
         every fault is stopped again after a while):\n{}",
        Fault::help(Fault::in_mix)
    )
}

fn timeline_help() -> String {
    format!("A scripted fault timeline (TOML [[timeline]] entries); faults: {}", Fault::names(|_| true))
}

fn timeline_long_help() -> String {
    format!(
        "A scripted fault timeline instead of a random mix: TOML [[timeline]] entries with t, fault, \
         target and (for partition) shape. Faults:\n{}",
        Fault::help(|_| true)
    )
}

impl RunSettings {
    /// Every key a settings table may hold.
    pub fn keys() -> Vec<String> {
        match serde_json::to_value(DEFAULTS) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => unreachable!("RunSettings serialises to an object"),
        }
    }

    /// `faultline run` flags that give these settings: every setting that
    /// differs from its default, and the seed always (a reproduce command
    /// must not depend on a default that may change).
    pub fn to_flags(&self) -> Vec<String> {
        changed_flags(self, &DEFAULTS, &["seed"])
    }
}

/// The flags that give `value` to clap, for every option that differs from
/// `defaults` or is listed in `always`. Driven by clap's own description of
/// the options and serde's of the values, so a new option needs no code
/// here; the round-trip test checks the two agree.
fn changed_flags<T: Args + Serialize>(value: &T, defaults: &T, always: &[&str]) -> Vec<String> {
    let mine = serde_json::to_value(value).expect("settings serialise");
    let defaults = serde_json::to_value(defaults).expect("settings serialise");
    let cmd = T::augment_args(clap::Command::new("run"));
    let mut out = Vec::new();
    for arg in cmd.get_arguments() {
        let (Some(long), key) = (arg.get_long(), arg.get_id().as_str().replace('_', "-")) else { continue };
        let value = &mine[&key];
        if !always.contains(&key.as_str()) && *value == defaults[&key] {
            continue;
        }
        let flag = format!("--{long}");
        match (arg.get_action(), value) {
            (_, serde_json::Value::Null) => {}
            (clap::ArgAction::SetTrue, v) => {
                if *v == serde_json::Value::Bool(true) {
                    out.push(flag)
                }
            }
            (clap::ArgAction::Append, serde_json::Value::Array(items)) => {
                out.extend(items.iter().flat_map(|x| [flag.clone(), flag_value(x)]))
            }
            // `--flag=value` only where the value could pass for a flag.
            (_, v) => match flag_value(v) {
                v if v.starts_with('-') => out.push(format!("{flag}={v}")),
                v => out.extend([flag, v]),
            },
        }
    }
    out
}

fn flag_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What steers the harness rather than the test: where the run is stored,
/// the cluster's name and subnet, and test hooks. Not part of a campaign
/// cell (the campaign sets these) nor of what `test.json` calls settings.
#[derive(Args, Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct HarnessArgs {
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// The run's name: `store/<name>/<timestamp>/`.
    #[arg(long, default_value = "faultline")]
    pub name: String,
    /// Do not tear the cluster down at the end.
    #[arg(long)]
    pub leave_running: bool,
    /// Tear down the store's stale clusters (left by a harness that was
    /// killed) before starting, instead of refusing to run.
    #[arg(long)]
    pub cleanup_stale: bool,
    /// The cluster's name (1 to 8 of a-z, 0-9).
    #[arg(long, default_value = "run", hide = true)]
    pub cluster_name: String,
    /// The cluster's /24; by default a free one.
    #[arg(long, hide = true)]
    pub subnet: Option<String>,
    /// Run the nodes on the machines of this `hosts.toml` over SSH (the
    /// first `--nodes` of them) instead of in network namespaces here.
    #[arg(long, value_name = "FILE", conflicts_with = "subnet")]
    pub hosts: Option<PathBuf>,
    /// Test the Kafka-protocol cluster this `system.toml` describes (its
    /// start, stop and pid commands per host), on the `--hosts` machines,
    /// instead of faultline-node. Needs `--client librdkafka`.
    #[arg(long, value_name = "FILE", requires = "hosts")]
    pub system: Option<PathBuf>,
    /// Test hook: `producer:SECONDS` or `consumer:SECONDS` SIGKILLs the
    /// first process of that role at that time into the workload.
    #[arg(long = "kill-client", hide = true)]
    pub kill_client: Vec<String>,
}

impl Default for HarnessArgs {
    /// The command line's defaults, from clap's own attributes.
    fn default() -> HarnessArgs {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            h: HarnessArgs,
        }
        <Only as clap::Parser>::parse_from(["run"]).h
    }
}

impl HarnessArgs {
    /// The flags that differ from the defaults.
    pub fn to_flags(&self) -> Vec<String> {
        changed_flags(self, &HarnessArgs::default(), &[])
    }
}

/// `faultline run`'s whole command line.
#[derive(Args, Debug, Clone)]
pub struct RunCli {
    #[command(flatten)]
    pub settings: RunSettings,
    #[command(flatten)]
    pub harness: HarnessArgs,
}

/// The shell command that runs these settings again.
pub fn reproduce_command(settings: &RunSettings, harness: &HarnessArgs) -> String {
    let words = ["faultline".to_string(), "run".to_string()].into_iter();
    words.chain(settings.to_flags()).chain(harness.to_flags()).map(|w| shell_word(&w)).collect::<Vec<_>>().join(" ")
}

fn shell_word(a: &str) -> String {
    if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,".contains(c)) {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunCli,
    }

    fn parse(flags: &[String]) -> RunCli {
        Cli::try_parse_from(std::iter::once("run".to_string()).chain(flags.iter().cloned())).unwrap().run
    }

    /// clap's defaults are `DEFAULTS`, and so are serde's for an empty table.
    #[test]
    fn defaults_are_written_once() {
        assert_eq!(parse(&[]).settings, DEFAULTS);
        assert_eq!(toml::from_str::<RunSettings>("").unwrap(), DEFAULTS);
        assert_eq!(parse(&[]).harness, HarnessArgs::default());
    }

    /// Settings rendered into flags parse back to the same settings: what
    /// every reproduce command relies on.
    #[test]
    fn flags_round_trip() {
        let s = RunSettings {
            nodes: 5,
            time_limit: 7.5,
            producer_mode: ProducerMode::FireAndForget,
            client: ClientLibrary::Librdkafka,
            acks: Acks::One,
            idempotence: Some(false),
            unclean_leader_election: true,
            bugs: vec!["a".into(), "b".into()],
            seed: 7,
            nemesis: Some("kill,mute-leader".parse().unwrap()),
            nemesis_timeline: Some("t l.toml".into()),
            broker_config: vec!["replica.lag.time.max.ms=60000".into()],
            producer_config: vec!["delivery.timeout.ms=120000".into()],
            sink: SinkKind::Sqlite,
            ..DEFAULTS
        };
        let h = HarnessArgs {
            store: "s".into(),
            name: "n".into(),
            subnet: Some("10.1.2.0/24".into()),
            cleanup_stale: true,
            kill_client: vec!["producer:3".into()],
            ..Default::default()
        };
        let back = parse(&[s.to_flags(), h.to_flags()].concat());
        assert_eq!(back.settings, s);
        assert_eq!(back.harness, h);
        assert_eq!(DEFAULTS.to_flags(), ["--seed", "42"], "defaults give no flags but the seed");
        let cmd = reproduce_command(&s, &h);
        assert!(cmd.starts_with("faultline run --nodes 5 ") && cmd.contains("--nemesis-timeline 't l.toml'"), "{cmd}");
    }

    /// Every option of `faultline run` is a key of the settings or a
    /// harness argument, under the same name.
    #[test]
    fn every_option_is_a_setting_or_a_harness_argument() {
        let keys = RunSettings::keys();
        let cmd = <RunSettings as Args>::augment_args(clap::Command::new("run"));
        for arg in cmd.get_arguments() {
            let key = arg.get_id().as_str().replace('_', "-");
            assert!(keys.contains(&key), "--{:?} has no settings key {key}", arg.get_long());
        }
        assert_eq!(keys.len(), cmd.get_arguments().count());
    }

    #[test]
    fn a_table_names_its_bad_key() {
        let err = toml::from_str::<RunSettings>("acsk = 1").unwrap_err().to_string();
        assert!(err.contains("acsk"), "{err}");
        let s: RunSettings = toml::from_str("acks = 1\ntime-limit = 10\nnemesis = [\"kill\"]").unwrap();
        assert_eq!((s.acks, s.time_limit, s.nemesis.unwrap().to_string()), (Acks::One, 10.0, "kill".into()));
    }

    /// Every registered fault is in `run --help` and in the README.
    #[test]
    fn every_fault_is_documented() {
        let mut cmd = <RunCli as Args>::augment_args(clap::Command::new("run"));
        let help = cmd.render_long_help().to_string();
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        for f in Fault::all() {
            assert!(help.contains(&format!("{f}: ")), "run --help lacks {f}");
            assert!(readme.contains(&format!("`{f}`")), "README lacks `{f}`");
        }
    }
}
