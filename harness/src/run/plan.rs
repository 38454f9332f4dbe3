//! The plan: everything a run decides before it starts anything, from its
//! settings and seed. [`Plan::new`] checks the settings (every error names
//! its option), fixes the fault schedule and the client kills, and derives
//! what the checker may expect ([`Plan::guarantees`]) and what every node
//! is configured with ([`Plan::node_config`]).

use std::path::PathBuf;
use std::time::Duration;

use faultline_checker::Guarantees;
use faultline_client::ProducerConfig;
use faultline_nemesis::schedule::{self, Action, ScheduledFault};

use super::client_config::{ConsumerSettings, ProducerSettings};
use super::settings::{HarnessArgs, RunSettings, SinkKind};
use super::supervisor::ClientSignal;
use crate::app::library::ClientLibrary;
use crate::app::spec::{ConsumerSpec, ProducerSpec, SubscribeSpec};
use crate::cluster::Disk;
use crate::hosts::hosts_file::HostsFile;
use crate::system::file::SystemFile;
use faultline_checker::modes::ProducerMode;

/// The workload's topic.
pub const TOPIC: &str = "events";
/// The consumers' group.
pub const GROUP: &str = "faultline";
/// The nodes' `broker.session.timeout.ms`: short, so failovers happen
/// within a short run; faults that must outlast it last twice as long.
pub const SESSION_TIMEOUT_MS: u64 = 3_000;
/// How long the cluster may take to become healthy.
pub const CLUSTER_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a new topic may take to have a leader for every partition.
pub const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the final phase waits for leaders, full ISRs and HW = LEO.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the final phase lets consumers catch up with the end offsets
/// (beyond one auto-commit interval).
pub const CONSUMER_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two metadata checks while waiting.
pub const METADATA_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Per-request timeout of the harness's own requests (clients have theirs,
/// see [`super::client_config`]).
pub const REQUEST_TIMEOUT_MS: u64 = 3_000;
/// What a stopped client may take beyond its longest op (a send's whole
/// delivery timeout) to settle and exit before SIGKILL.
const CLIENT_STOP_SLACK: Duration = Duration::from_millis(5_000);
/// Process ids of the final reader: its drain op and its polls.
pub const DRAIN_PROCESSES: u64 = 2;
/// Bound on the final drain reader.
pub const DRAIN_DEADLINE_MS: u64 = 20_000;
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

/// A client application's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Producer,
    Consumer,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        }
    }
}

/// A scripted timeline: where it came from (for errors) and its text.
pub struct TimelineText<'a> {
    pub label: &'a str,
    pub text: &'a str,
}

/// The settings after their checks, and what they came to.
#[derive(Debug, Clone)]
pub struct Plan {
    pub settings: RunSettings,
    pub harness: HarnessArgs,
    /// Every producer and consumer setting, as Kafka names them.
    pub producer: ProducerSettings,
    pub consumer: ConsumerSettings,
    /// Whether the producers are idempotent (Kafka's default rule applied).
    pub idempotence: bool,
    pub time_limit: Duration,
    /// SIGKILLs of client processes: the test hook's and the schedule's.
    pub kills: Vec<(Role, Duration, ClientSignal)>,
    /// The nemesis's schedule, fixed by the seed before the run starts.
    pub faults: Vec<ScheduledFault>,
    /// The SSH hosts the nodes run on (the first `nodes` of `--hosts`), or
    /// `None` for namespaces on this machine.
    pub hosts: Option<HostsFile>,
    /// The external system under test (`--system`), or `None` for faultline-node.
    pub system: Option<SystemFile>,
    /// The workload's topic and the consumers' group: [`TOPIC`] and
    /// [`GROUP`] on a cluster of our own; on an external cluster, which
    /// outlives runs, names of this run's own.
    pub topic: String,
    pub group: String,
}

impl Plan {
    /// Every producer slot's spec: the settings as the application takes them.
    pub fn producer_spec(&self) -> ProducerSpec {
        let (a, p) = (&self.settings, &self.producer);
        ProducerSpec {
            partitions: a.topic_partitions,
            rate: a.rate / f64::from(a.producers),
            records_per_send: a.records_per_send,
            acks: p.acks,
            idempotence: self.idempotence,
            delivery_timeout_ms: p.delivery_timeout_ms,
            retry_backoff_ms: p.retry_backoff_ms,
            seed: a.seed,
            mode: a.producer_mode,
            linger_ms: p.linger_ms,
            batch_size: p.batch_size as usize,
            buffer_memory: p.buffer_memory as usize,
            max_block_ms: p.max_block_ms,
            retries: p.retries,
            max_in_flight: self.in_flight(),
            library_config: p.library.clone(),
        }
    }

    /// A consumer slot's spec, for the partitions it owns and its sink.
    pub fn consumer_spec(&self, owned: Vec<u32>, sink_path: Option<PathBuf>) -> ConsumerSpec {
        let (a, c) = (&self.settings, &self.consumer);
        let subscribe = a.subscribe.then_some(SubscribeSpec {
            partitions: a.topic_partitions,
            session_timeout_ms: c.session_timeout_ms,
            max_poll_interval_ms: c.max_poll_interval_ms,
            heartbeat_interval_ms: c.heartbeat_interval_ms,
        });
        ConsumerSpec {
            owned,
            subscribe,
            group: self.group.clone(),
            commit: c.commit,
            auto_commit_interval_ms: c.auto_commit_interval_ms,
            processing: a.processing,
            sink_path,
            on_sink_error: a.on_sink_error,
            auto_offset_reset: c.auto_offset_reset,
            process_time_ms: a.process_time_ms,
            max_poll_records: c.max_poll_records,
            fetch_max_wait_ms: c.fetch_max_wait_ms,
            library_config: c.library.clone(),
        }
    }

    /// Checks everything and fixes the schedule; reads the timeline file
    /// the settings name.
    pub fn new(settings: RunSettings, harness: HarnessArgs) -> Result<Plan, String> {
        let text = match &settings.nemesis_timeline {
            Some(path) => {
                Some(std::fs::read_to_string(path).map_err(|e| format!("--nemesis-timeline {}: {e}", path.display()))?)
            }
            None => None,
        };
        let label = settings.nemesis_timeline.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        let timeline = text.as_deref().map(|text| TimelineText { label: &label, text });
        Plan::with_timeline(settings, harness, timeline)
    }

    /// As [`Plan::new`], with the timeline's text given (a campaign checks
    /// its cells before it writes their timelines anywhere).
    pub fn with_timeline(
        settings: RunSettings,
        harness: HarnessArgs,
        timeline: Option<TimelineText>,
    ) -> Result<Plan, String> {
        let producer = ProducerSettings::resolve(&settings)?;
        let consumer = ConsumerSettings::resolve(&settings)?;
        let idempotence = check_settings(&settings, &producer)?;
        check_subscribe(&settings, &consumer)?;
        check_harness(&harness)?;
        let hosts = ssh_hosts(&harness, settings.nodes)?;
        let mut kills = client_kills(&harness, settings.time_limit)?;
        let faults = fault_schedule(&settings, timeline)?;
        if !settings.subscribe && faults.iter().any(|f| f.action == Action::StallConsumer) {
            return Err("stall-consumer: needs --subscribe (max.poll.interval.ms binds only group members)".into());
        }
        // Client faults of the schedule go to the supervisor of the role's first slot.
        for f in &faults {
            let (role, signal) = match f.action {
                Action::KillProducer => (Role::Producer, ClientSignal::Kill),
                Action::KillConsumer => (Role::Consumer, ClientSignal::Kill),
                Action::PauseConsumer => (Role::Consumer, ClientSignal::Pause),
                Action::ResumeConsumer => (Role::Consumer, ClientSignal::Resume),
                Action::StallConsumer => (Role::Consumer, ClientSignal::Stall),
                _ => continue,
            };
            kills.push((role, Duration::from_secs_f64(f.at_s), signal));
        }
        check_disk(&settings, &harness, &faults)?;
        let time_limit = Duration::from_secs_f64(settings.time_limit);
        let system = check_system(&settings, &harness, &faults)?;
        let (topic, group) = match &system {
            None => (TOPIC.to_string(), GROUP.to_string()),
            Some(_) => {
                let stamp = std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap_or_default().as_millis();
                (format!("{TOPIC}-{stamp}"), format!("{GROUP}-{stamp}"))
            }
        };
        let plan = Plan {
            settings,
            harness,
            producer,
            consumer,
            idempotence,
            time_limit,
            kills,
            faults,
            hosts,
            system,
            topic,
            group,
        };
        if plan.settings.client == ClientLibrary::Librdkafka {
            crate::app::rdkafka::config::check(&plan)?;
        }
        Ok(plan)
    }

    /// Sends in flight per partition of one producer process: one for a
    /// sync application, `max.in.flight.requests.per.connection` through
    /// the accumulator.
    pub fn in_flight(&self) -> usize {
        in_flight(&self.settings, &self.producer)
    }

    /// How long a stopped client may take to settle its op and exit.
    pub fn client_stop_grace(&self) -> Duration {
        Duration::from_millis(self.producer.delivery_timeout_ms) + CLIENT_STOP_SLACK
    }

    /// What the checker may expect of a run with these settings.
    pub fn guarantees(&self) -> Guarantees {
        let a = &self.settings;
        Guarantees {
            acks: self.producer.acks,
            idempotence: self.idempotence,
            max_in_flight: self.in_flight() as u32,
            unclean_leader_election: a.unclean_leader_election,
            commit: (a.consumers > 0).then_some(self.consumer.commit),
            sink_mode: (a.sink == SinkKind::Sqlite).then_some(a.sink_mode),
            producer_mode: a.producer_mode,
            processing: a.processing,
            on_sink_error: a.on_sink_error,
            auto_offset_reset: self.consumer.auto_offset_reset,
            flush_messages: self.flush_messages(),
        }
    }

    /// The nodes' `flush.messages` (or its broker name
    /// `log.flush.interval.messages`): the last one given, or Kafka's default.
    fn flush_messages(&self) -> u64 {
        let config = self.node_config();
        let given = config.iter().rev().find_map(|kv| match kv.split_once('=') {
            Some(("flush.messages" | "log.flush.interval.messages", v)) => v.trim().parse().ok(),
            _ => None,
        });
        given.unwrap_or(faultline_checker::guarantees::FLUSH_MESSAGES_DEFAULT)
    }

    /// Broker settings for every node, as `key=value`.
    pub fn node_config(&self) -> Vec<String> {
        let a = &self.settings;
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

    /// The kills, pauses and resumes of one role, with their times.
    pub fn kills_of(&self, role: Role) -> Vec<(Duration, ClientSignal)> {
        self.kills.iter().filter(|(r, _, _)| *r == role).map(|(_, t, s)| (*t, *s)).collect()
    }
}

/// The nodes' `broker.session.timeout.ms`: the run's, or the user's
/// `--broker-config` (the last one wins).
pub fn session_timeout_ms(a: &RunSettings) -> u64 {
    a.broker_config
        .iter()
        .rev()
        .find_map(|kv| kv.strip_prefix("broker.session.timeout.ms="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(SESSION_TIMEOUT_MS)
}

fn in_flight(a: &RunSettings, p: &ProducerSettings) -> usize {
    if a.producer_mode == ProducerMode::Sync { 1 } else { p.max_in_flight }
}

/// The producer settings' own rules (Kafka's), then the numbers' ranges;
/// returns whether the producers are idempotent.
/// The external system, if `--system` names one, and what a run against it
/// cannot do: the faultline client (HTTP only), bug switches, broker
/// settings and admin hooks (the cluster is the user's), fetcher pauses.
fn check_system(a: &RunSettings, h: &HarnessArgs, faults: &[ScheduledFault]) -> Result<Option<SystemFile>, String> {
    let Some(path) = &h.system else { return Ok(None) };
    let file = SystemFile::load(path).map_err(|e| format!("--system {e}"))?;
    let refuse = |what: &str| Err(format!("--system {}: {what}", path.display()));
    if a.client != ClientLibrary::Librdkafka {
        return refuse("an external cluster speaks Kafka's protocol only: add --client librdkafka");
    }
    if !a.bugs.is_empty() || !a.broker_config.is_empty() || a.admin_hooks {
        return refuse(
            "bug switches, --broker-config and --admin-hooks are faultline-node's; configure your brokers yourself",
        );
    }
    if let Some(f) = faults.iter().find(|f| matches!(f.action, Action::PauseFetchers | Action::ResumeFetchers)) {
        return refuse(&format!("the fault {} needs faultline-node's admin hooks", f.action));
    }
    Ok(Some(file))
}

/// `power-loss` needs nodes on the lazyfs disk, which runs on namespace
/// hosts only: never silently a plain kill.
fn check_disk(a: &RunSettings, h: &HarnessArgs, faults: &[ScheduledFault]) -> Result<(), String> {
    let power_loss = faults.iter().any(|f| f.action == Action::PowerLoss);
    if a.disk == Disk::Lazyfs && (h.hosts.is_some() || h.system.is_some()) {
        return Err("--disk lazyfs: runs on namespace hosts only; SSH hosts would need the filesystem \
                    installed on each (not supported yet)"
            .into());
    }
    if power_loss && a.disk != Disk::Lazyfs {
        return Err("the fault power-loss needs --disk lazyfs: it drops what the nodes' disks never fsynced, \
                    and only the lazyfs disk keeps track of that"
            .into());
    }
    Ok(())
}

fn check_settings(a: &RunSettings, p: &ProducerSettings) -> Result<bool, String> {
    let config = ProducerConfig {
        acks: crate::app::producer::wire_acks(p.acks),
        retries: p.retries,
        enable_idempotence: p.enable_idempotence,
        max_in_flight: in_flight(a, p),
        request_timeout_ms: p.request_timeout_ms,
        delivery_timeout_ms: p.delivery_timeout_ms,
        ..ProducerConfig::default()
    };
    let idempotence = config.idempotence().map_err(|e| format!("--idempotence: {e}"))?;
    check_producer(p)?;
    check_workload(a)?;
    check_topic(a)?;
    check_node_settings(a)?;
    Ok(idempotence)
}

/// Subscribing consumers: faultline's own client (the node serves
/// librdkafka's subscribe, but the harness's librdkafka application is
/// assign-only so far), with a session the brokers accept.
fn check_subscribe(a: &RunSettings, c: &ConsumerSettings) -> Result<(), String> {
    if !a.subscribe {
        return Ok(());
    }
    if a.client != ClientLibrary::Faultline {
        return Err("--subscribe: only --client faultline's consumer application subscribes so far".into());
    }
    // The brokers' bounds: faultline-node's defaults unless --broker-config sets them.
    let (min_key, max_key) = ("group.min.session.timeout.ms", "group.max.session.timeout.ms");
    let (min_ms, max_ms) = (broker_ms(a, min_key, 6_000)?, broker_ms(a, max_key, 1_800_000)?);
    if c.session_timeout_ms < min_ms {
        return Err(format!(
            "--session-timeout-ms {}: below the brokers' {min_key} ({min_ms}); lower it with --broker-config {min_key}=N",
            c.session_timeout_ms
        ));
    }
    if c.session_timeout_ms.max(c.max_poll_interval_ms) > max_ms {
        return Err(format!(
            "--session-timeout-ms {} and --max-poll-interval-ms {} must not exceed the brokers' {max_key} ({max_ms})",
            c.session_timeout_ms, c.max_poll_interval_ms
        ));
    }
    Ok(())
}

/// A broker setting in milliseconds: the last `--broker-config key=N`, or
/// the node's default.
fn broker_ms(a: &RunSettings, key: &str, default_ms: u64) -> Result<u64, String> {
    match a.broker_config.iter().rev().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')) {
        Some(v) => v.parse().map_err(|_| format!("--broker-config {key}={v}: expected milliseconds")),
        None => Ok(default_ms),
    }
}

/// Kafka's rules between producer settings.
fn check_producer(p: &ProducerSettings) -> Result<(), String> {
    if p.max_in_flight == 0 || p.max_in_flight > MAX_IN_FLIGHT_MAX {
        return Err(format!("--max-in-flight {}: must be 1 to {MAX_IN_FLIGHT_MAX}", p.max_in_flight));
    }
    if p.batch_size == 0 || p.buffer_memory == 0 {
        return Err("--batch-size and --buffer-memory must be at least 1".into());
    }
    if p.batch_size > p.buffer_memory {
        return Err(format!("--batch-size {}: must not exceed --buffer-memory {}", p.batch_size, p.buffer_memory));
    }
    if p.linger_ms + p.request_timeout_ms > p.delivery_timeout_ms {
        return Err(format!(
            "--linger-ms {}: linger.ms + request.timeout.ms ({}) must not exceed delivery.timeout.ms ({})",
            p.linger_ms, p.request_timeout_ms, p.delivery_timeout_ms
        ));
    }
    Ok(())
}

fn check_workload(a: &RunSettings) -> Result<(), String> {
    if !(a.time_limit > 0.0 && a.time_limit <= TIME_LIMIT_MAX_S) {
        return Err(format!("--time-limit {}: must be in (0, {TIME_LIMIT_MAX_S}]", a.time_limit));
    }
    if !(a.rate > 0.0 && a.rate <= RATE_MAX_PER_S) {
        return Err(format!("--rate {}: must be in (0, {RATE_MAX_PER_S}]", a.rate));
    }
    if a.topic_partitions == 0 || a.records_per_send == 0 {
        return Err("--topic-partitions and --records-per-send must be at least 1".into());
    }
    if a.process_time_ms > PROCESS_TIME_MAX_MS {
        return Err(format!("--process-time-ms {}: at most {PROCESS_TIME_MAX_MS}", a.process_time_ms));
    }
    if a.auto_commit_interval_ms == 0 {
        return Err("--auto-commit-interval-ms: must be at least 1".into());
    }
    Ok(())
}

fn check_topic(a: &RunSettings) -> Result<(), String> {
    if a.replication_factor == 0 || a.replication_factor > a.nodes {
        return Err(format!("--replication-factor {}: must be 1 to --nodes ({})", a.replication_factor, a.nodes));
    }
    if a.min_insync_replicas == 0 || a.min_insync_replicas > a.replication_factor {
        return Err(format!(
            "--min-insync-replicas {}: must be 1 to --replication-factor ({})",
            a.min_insync_replicas, a.replication_factor
        ));
    }
    Ok(())
}

fn check_node_settings(a: &RunSettings) -> Result<(), String> {
    if let Some(b) = a.bugs.iter().find(|b| b.is_empty() || b.contains(',') || b.contains('\n')) {
        return Err(format!("--bug {b:?}: one switch name per --bug"));
    }
    if let Some(e) = a.bugs.iter().find_map(|b| b.parse::<faultline_node::bugs::Bug>().err()) {
        return Err(format!("--bug: {e}"));
    }
    for kv in &a.broker_config {
        let pairs = faultline_node::config::parse_properties("--broker-config", kv)
            .map_err(|e| format!("--broker-config {kv:?}: {e}"))?;
        if pairs.len() != 1 {
            return Err(format!("--broker-config {kv:?}: expected one key=value"));
        }
        faultline_node::config::Settings::broker(pairs).map_err(|e| format!("--broker-config {kv:?}: {e}"))?;
    }
    Ok(())
}

/// `--hosts`, read and checked, cut to the first `nodes` hosts.
fn ssh_hosts(h: &HarnessArgs, nodes: u32) -> Result<Option<HostsFile>, String> {
    let Some(path) = &h.hosts else { return Ok(None) };
    let mut file = HostsFile::load(path).map_err(|e| format!("--hosts {e}"))?;
    if file.hosts.len() < nodes as usize {
        return Err(format!(
            "--hosts {}: {} hosts, but the run needs {nodes} (--nodes); add hosts or lower --nodes",
            path.display(),
            file.hosts.len()
        ));
    }
    file.hosts.truncate(nodes as usize);
    Ok(Some(file))
}

fn check_harness(h: &HarnessArgs) -> Result<(), String> {
    if h.name.is_empty() || h.name.contains('/') || h.name == "latest" || h.name.starts_with('.') {
        return Err(format!("--name {:?}: must be a plain directory name other than \"latest\"", h.name));
    }
    crate::hosts::network::validate_name(&h.cluster_name).map_err(|e| format!("--cluster-name: {e}"))
}

/// The `--kill-client` test hook's kills.
fn client_kills(h: &HarnessArgs, time_limit_s: f64) -> Result<Vec<(Role, Duration, ClientSignal)>, String> {
    let mut kills = Vec::new();
    for k in &h.kill_client {
        let (role, at) = k
            .split_once(':')
            .ok_or_else(|| format!("--kill-client {k:?}: expected producer:SECONDS or consumer:SECONDS"))?;
        let role = match role {
            "producer" => Role::Producer,
            "consumer" => Role::Consumer,
            _ => return Err(format!("--kill-client {k:?}: role must be producer or consumer")),
        };
        let at: f64 = at.parse().map_err(|_| format!("--kill-client {k:?}: bad seconds"))?;
        if !(at >= 0.0 && at < time_limit_s) {
            return Err(format!("--kill-client {k:?}: must be within --time-limit"));
        }
        kills.push((role, Duration::from_secs_f64(at), ClientSignal::Kill));
    }
    Ok(kills)
}

/// The seeded random mix, the scripted timeline, or no faults.
fn fault_schedule(a: &RunSettings, timeline: Option<TimelineText>) -> Result<Vec<ScheduledFault>, String> {
    match (&a.nemesis, timeline) {
        (Some(_), Some(_)) => Err("--nemesis and --nemesis-timeline: give one or the other".into()),
        (Some(list), None) => {
            if !(a.nemesis_interval > 0.0 && a.nemesis_interval.is_finite()) {
                return Err(format!("--nemesis-interval {}: must be a positive number of seconds", a.nemesis_interval));
            }
            let session_s = session_timeout_ms(a) as f64 / 1000.0;
            schedule::random_mix(list, a.nemesis_interval, a.time_limit, session_s, a.seed)
                .map_err(|e| format!("--nemesis: {e}"))
        }
        (None, Some(t)) => timeline_schedule(a, t),
        (None, None) => Ok(Vec::new()),
    }
}

fn timeline_schedule(a: &RunSettings, t: TimelineText) -> Result<Vec<ScheduledFault>, String> {
    let ops = schedule::parse_timeline(t.text).map_err(|e| format!("--nemesis-timeline {}: {e}", t.label))?;
    if let Some(late) = ops.iter().find(|o| o.at_s >= a.time_limit) {
        return Err(format!(
            "--nemesis-timeline: a fault at t = {} s is past --time-limit {}",
            late.at_s, a.time_limit
        ));
    }
    if !a.admin_hooks && ops.iter().any(|o| matches!(o.action, Action::PauseFetchers | Action::ResumeFetchers)) {
        return Err(format!("--nemesis-timeline {}: pauses fetchers, which needs --admin-hooks", t.label));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::settings::DEFAULTS;

    fn plan(s: RunSettings) -> Result<Plan, String> {
        Plan::with_timeline(s, HarnessArgs::default(), None)
    }

    /// A subscribing run needs faultline's client and a session the brokers
    /// accept; the error names the broker key to change.
    #[test]
    fn subscribe_checks_the_client_and_the_brokers_session_bounds() {
        let short = RunSettings { subscribe: true, session_timeout_ms: 2_000, ..DEFAULTS };
        let refused = |s: RunSettings| plan(s).err().unwrap_or_else(|| panic!("the plan accepted bad settings"));
        let e = refused(short.clone());
        assert!(e.contains("group.min.session.timeout.ms"), "{e}");
        let lowered = RunSettings { broker_config: vec!["group.min.session.timeout.ms=500".into()], ..short };
        assert!(plan(lowered.clone()).is_ok());
        let e = refused(RunSettings { client: ClientLibrary::Librdkafka, ..lowered });
        assert!(e.contains("--subscribe"), "{e}");
        let long = RunSettings { subscribe: true, max_poll_interval_ms: 1_800_001, ..DEFAULTS };
        assert!(refused(long).contains("group.max.session.timeout.ms"));
    }

    #[test]
    fn the_defaults_make_a_plan_with_kafkas_idempotence_rule() {
        let p = plan(DEFAULTS).unwrap();
        assert!(p.idempotence, "acks=all turns idempotence on, as in Kafka");
        assert!(p.faults.is_empty() && p.kills.is_empty());
        let g = p.guarantees();
        assert_eq!((g.max_in_flight, g.sink_mode), (1, None));
        let p = plan(RunSettings { acks: faultline_checker::modes::Acks::One, ..DEFAULTS }).unwrap();
        assert!(!p.idempotence);
    }

    #[test]
    fn errors_name_the_option() {
        let bad = |s: RunSettings, needle: &str| {
            let e = plan(s).unwrap_err();
            assert!(e.contains(needle), "{e:?} should name {needle}");
        };
        bad(RunSettings { nodes: 1, ..DEFAULTS }, "--replication-factor");
        bad(RunSettings { rate: 0.0, ..DEFAULTS }, "--rate");
        bad(RunSettings { batch_size: 1 << 30, ..DEFAULTS }, "--batch-size");
        bad(RunSettings { bugs: vec!["nope".into()], ..DEFAULTS }, "--bug");
        bad(RunSettings { broker_config: vec!["x".into()], ..DEFAULTS }, "--broker-config");
        bad(RunSettings { nemesis_interval: 0.0, nemesis: Some("kill".parse().unwrap()), ..DEFAULTS }, "interval");
        let h = HarnessArgs { name: "latest".into(), ..HarnessArgs::default() };
        assert!(Plan::with_timeline(DEFAULTS, h, None).unwrap_err().contains("--name"));
    }

    /// The schedule is decided by the seed, and client kills of the
    /// schedule reach the plan's kills.
    #[test]
    fn the_seed_fixes_the_schedule() {
        let s = RunSettings { nemesis: Some("kill,kill-producer".parse().unwrap()), nemesis_interval: 2.0, ..DEFAULTS };
        let a = plan(s.clone()).unwrap();
        assert_eq!(a.faults, plan(s.clone()).unwrap().faults);
        assert_ne!(a.faults, plan(RunSettings { seed: 43, ..s }).unwrap().faults);
        let producer_kills = a.faults.iter().filter(|f| f.action == Action::KillProducer).count();
        assert_eq!(a.kills_of(Role::Producer).len(), producer_kills);
    }

    #[test]
    fn a_timeline_is_checked_against_the_settings() {
        let t = "[[timeline]]\nt = 20.0\nfault = \"kill\"\ntarget = \"n1\"\n";
        let e = Plan::with_timeline(DEFAULTS, HarnessArgs::default(), Some(TimelineText { label: "x", text: t }));
        assert!(e.unwrap_err().contains("past --time-limit"));
        let user = RunSettings { broker_config: vec!["broker.session.timeout.ms=9000".into()], ..DEFAULTS };
        assert_eq!(session_timeout_ms(&user), 9000);
        assert!(plan(user).unwrap().node_config().last().unwrap().ends_with("=9000"), "the user's setting wins");
    }
}
