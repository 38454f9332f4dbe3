//! `faultline run`: one test run, as Jepsen's core runs a test. Data flows
//! one way through the modules:
//!
//! - [`settings`]: what the run is ([`RunSettings`], one serde type for the
//!   CLI, campaign cells and `test.json`) and how the harness runs it
//!   ([`HarnessArgs`]);
//! - [`plan`]: the checks, and everything decided up front from the seed
//!   (the fault schedule, client kills, the checker's guarantees, the nodes'
//!   config);
//! - [`workload`] and [`supervisor`]: the topic, and producer and consumer
//!   client processes (`faultline client SPEC`, see [`crate::app`]), each
//!   slot supervised: a dead process's open ops become `info` and a
//!   replacement starts under a new process id; the nemesis
//!   ([`crate::nemesis_run`]) fires the planned faults meanwhile;
//! - [`final_phase`]: stop producers, heal, wait until every partition is
//!   settled, let consumers catch up and stop them, a fresh reader drains
//!   every partition, every replica's log is dumped;
//! - then the check with the checker library, [`teardown`] and the
//!   [`report`].
//!
//! Everything is stored under `store/<name>/<timestamp>/` (see
//! [`crate::store`]); the harness is the single history writer
//! ([`HistoryWriter`]). Teardown always happens, also on errors, Ctrl-C and
//! SIGTERM, unless `--leave-running`. [`execute`] is also how campaigns
//! run each cell; it returns a [`RunReport`] and never prints.
//!
//! Exit codes: 0 valid, 1 invalid, 2 unknown, 254 bad arguments, 255
//! harness failure.

pub mod client_config;
pub mod control;
pub mod elections;
pub mod final_phase;
pub mod kafka_phase;
pub mod plan;
pub mod report;
pub mod settings;
pub mod supervisor;
pub mod teardown;
pub mod workload;

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use faultline_checker::Replicas;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::cluster::{self, ClusterState};
use crate::exit::Failure;
use crate::history::{HistoryWriter, monotonic_ns};
use crate::nemesis_run::Nemesis;
use crate::store::{self, RunLog};
use crate::system::kafka_admin::KafkaAdmin;
pub use plan::Plan;
use plan::{CLUSTER_UP_TIMEOUT, DRAIN_PROCESSES, Role};
use report::Outcome;
pub use report::RunReport;
pub use settings::{DEFAULT_SEED, DEFAULTS, HarnessArgs, RunCli, RunSettings, reproduce_command};
use supervisor::Shared;

pub fn main(cli: RunCli) -> ExitCode {
    let report = execute(cli.settings, cli.harness);
    report.print();
    ExitCode::from(report.code)
}

/// Runs one test to the end, as `faultline run` does.
pub fn execute(settings: RunSettings, harness: HarnessArgs) -> RunReport {
    let reproduce = reproduce_command(&settings, &harness);
    let plan = match Plan::new(settings, harness) {
        Ok(p) => p,
        Err(msg) => return RunReport::bad_args(msg, reproduce),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    runtime.block_on(run(plan, reproduce))
}

/// Where one run keeps its files.
pub struct RunDirs {
    /// `store/<name>/<timestamp>/`.
    pub run: PathBuf,
    /// `store/clusters/<cluster name>/`: the nodes' state while it runs.
    pub cluster: PathBuf,
}

async fn run(plan: Plan, reproduce: String) -> RunReport {
    let fail = |dir: Option<PathBuf>, e: String| RunReport::failed(dir, e, reproduce.clone());
    match teardown::handle_stale(&plan).await {
        Ok(()) => {}
        Err(Failure::BadArgs(msg)) => return RunReport::bad_args(msg, reproduce),
        Err(Failure::Harness(e)) => return fail(None, format!("{e:#}")),
    }
    let dir = match store::create_run_dir(&plan.harness.store, &plan.harness.name) {
        Ok(d) => d,
        Err(e) => return fail(None, format!("{e:#}")),
    };
    let log = Arc::new(RunLog::new());
    if let Err(e) = log.open(&dir.join("faultline.log")) {
        return fail(Some(dir), format!("{e:#}"));
    }
    let cluster = plan.harness.store.join("clusters").join(&plan.harness.cluster_name);
    let dirs = RunDirs { run: dir.clone(), cluster: std::path::absolute(cluster).unwrap_or_default() };
    log.info(format!("run {} in {}", plan.harness.name, dir.display()));
    let mut sigterm = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            log.warn(format!("installing a SIGTERM handler: {e}"));
            return fail(Some(dir), format!("installing a SIGTERM handler: {e}"));
        }
    };
    let mut interrupted = false;
    let outcome = tokio::select! {
        r = run_test(&plan, &dirs, &log, &reproduce) => r,
        _ = tokio::signal::ctrl_c() => { interrupted = true; Err(anyhow!("interrupted (SIGINT)")) },
        _ = sigterm.recv() => { interrupted = true; Err(anyhow!("terminated (SIGTERM)")) },
    };
    let valid = outcome.as_ref().ok().map(|o| o.valid);
    let teardown = teardown::finish_cluster(&plan, &dirs, &log, valid).await;
    let mut report = match (outcome, teardown) {
        (Ok(o), Ok(())) => RunReport {
            code: o.valid.exit_code(),
            error: None,
            summary: Some(report::summary(&dir, &o)),
            results: Some(o.results),
            ..fail(Some(dir.clone()), String::new())
        },
        (Ok(o), Err(e)) => {
            log.error(format!("harness failure: {e:#}"));
            RunReport {
                summary: Some(report::summary(&dir, &o)),
                results: Some(o.results),
                ..fail(Some(dir.clone()), format!("teardown: {e:#}"))
            }
        }
        // Hosts that are not ready are the user's to fix (254), named.
        (Err(e), _) if e.is::<cluster::HostsNotReady>() => {
            log.error(format!("{e:#}"));
            RunReport { dir: Some(dir.clone()), ..RunReport::bad_args(format!("{e:#}"), reproduce.clone()) }
        }
        (Err(e), t) => {
            log.error(format!("harness failure: {e:#}"));
            if let Err(t) = t {
                log.error(format!("also: {t:#}"));
            }
            fail(Some(dir.clone()), format!("{e:#}"))
        }
    };
    report.interrupted = interrupted;
    if let Some(r) = &report.results {
        log.info(format!("verdict: {}", r.valid));
    }
    report
}

/// The run itself, up to the check; the cluster is left to the teardown.
async fn run_test(plan: &Plan, dirs: &RunDirs, log: &Arc<RunLog>, reproduce: &str) -> anyhow::Result<Outcome> {
    write_test_json(plan, dirs, reproduce)?;
    teardown::clear_old_cluster(plan, dirs)?;
    log.info(format!("cluster up: {} nodes ({})", plan.settings.nodes, dirs.cluster.display()));
    let target = match (&plan.hosts, &plan.system) {
        (Some(file), Some(system)) => cluster::Target::External(file, system),
        (Some(file), None) => cluster::Target::Ssh(file),
        (None, _) => cluster::Target::Netns {
            nodes: plan.settings.nodes,
            subnet: plan.harness.subnet.as_deref(),
            disk: plan.settings.disk,
        },
    };
    let state =
        cluster::start(&plan.harness.cluster_name, &dirs.cluster, target, &plan.node_config(), CLUSTER_UP_TIMEOUT)
            .await?;
    let hosts = cluster::connect_hosts(&state).await?;
    let token = format!("{} {}", dirs.run.display(), std::process::id());
    let marks = control::Marks::mark(&state, &hosts, &token).await?;
    let urls: Vec<String> = state.nodes.iter().map(|n| n.url.clone()).collect();
    log.info(format!("cluster up: {}", urls.join(" ")));
    match kafka_admin(plan, &state) {
        Some(admin) => kafka_phase::create_topic(plan, log, &admin).await?,
        None => workload::create_topic(plan, log, &urls).await?,
    }
    let sinks = workload::create_sinks(plan, &dirs.run)?;
    let history = dirs.run.join(faultline_checker::HISTORY_FILE);
    let writer = Arc::new(Mutex::new(HistoryWriter::create(&history, monotonic_ns())?));
    let a = &plan.settings;
    let shared = Arc::new(Shared {
        writer: writer.clone(),
        stride: u64::from(a.producers + a.consumers) + DRAIN_PROCESSES,
        log: log.clone(),
        clients_log: dirs.run.join("clients.log"),
        urls: urls.clone(),
        kafka: state.nodes.iter().map(|n| n.kafka_address()).collect(),
        library: a.client,
        topic: plan.topic.clone(),
        kafka_only: plan.system.is_some(),
        started: Instant::now(),
        stop_grace: plan.client_stop_grace(),
    });
    let run = run_workload_and_final_phase(plan, dirs, &shared, &state, &sinks, &marks, hosts).await?;
    drop(shared);
    let writer = Arc::try_unwrap(writer).map_err(|_| anyhow!("history writer still shared"))?.into_inner();
    writer.finish()?;
    if let Some(reason) = &run.lost_control {
        log.warn(format!("the harness lost control of the cluster: {reason}; the verdict is unknown"));
        control::record(&dirs.run, reason)?;
    }
    log.info(format!("checking {} ops", run.ops));
    let results = check(&dirs.run, run.replicas.as_ref(), run.lost_control.as_deref(), log)?;
    let counts = run.counts;
    Ok(Outcome { valid: results.valid, results, counts })
}

type OpCounts = std::collections::BTreeMap<(String, faultline_checker::op::OpType), u64>;

/// What the workload and the final phase came to.
struct Finished {
    ops: u64,
    counts: OpCounts,
    /// `None` when the system does not expose its replicas' logs.
    replicas: Option<Replicas>,
    /// Why the harness lost control of the cluster, if it did.
    lost_control: Option<String>,
}

/// An error of the harness, unless the harness lost control of the
/// cluster, which explains it: then the reason.
async fn lost_or(marks: &control::Marks, e: anyhow::Error) -> anyhow::Result<String> {
    match marks.verify().await {
        Some(reason) => Ok(reason),
        None => Err(e),
    }
}

/// The workload for the time limit with the nemesis, then the final phase.
/// When the harness has lost control of the cluster, the final phase is
/// skipped: its reads would describe nothing.
async fn run_workload_and_final_phase(
    plan: &Plan,
    dirs: &RunDirs,
    shared: &Arc<Shared>,
    state: &ClusterState,
    sinks: &[(u32, PathBuf)],
    marks: &control::Marks,
    hosts: Vec<crate::hosts::AnyHost>,
) -> anyhow::Result<Finished> {
    let log = &shared.log;
    let a = &plan.settings;
    let mut producers = workload::start_producers(plan, shared);
    let mut consumers = workload::start_consumers(plan, shared, sinks);
    log.info(format!(
        "workload: {} producers at {} sends/s in total, {} consumers, for {} s",
        a.producers, a.rate, a.consumers, a.time_limit
    ));
    let (faults_tx, faults_rx) = watch::channel("none".to_string());
    let sink_paths = sinks.iter().map(|(_, p)| p.clone()).collect();
    let writer = shared.writer.clone();
    let nemesis = Arc::new(Nemesis::new(state, hosts, writer.clone(), log.clone(), faults_tx, plan, sink_paths));
    let (nemesis_stop, nemesis_stopped) = watch::channel(false);
    let nemesis_task = tokio::spawn(nemesis.clone().run(plan.faults.clone(), Instant::now(), nemesis_stopped));
    let (progress_stop, progress_stopped) = watch::channel(false);
    let elections_path = dirs.run.join(faultline_checker::ELECTIONS_FILE);
    // faultline-node only: an external system has no HTTP describe.
    let observer = match plan.system {
        None => Some(elections::Observer::start(state, &plan.topic, &elections_path, writer.clone())?),
        Some(_) => None,
    };
    let progress =
        tokio::spawn(crate::progress::show(writer, log.clone(), plan.time_limit, faults_rx, progress_stopped));

    // The workload: a supervisor that returns early has failed.
    let until = Instant::now() + plan.time_limit;
    // Bounded by the time limit.
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => break,
            Some(r) = producers.tasks.join_next() => r.context("producer supervisor panicked")??,
            Some(r) = consumers.tasks.join_next() => r.context("consumer supervisor panicked")??,
        }
    }
    let _ = nemesis_stop.send(true);
    let mut lost = match nemesis_task.await.context("nemesis task panicked")? {
        Ok(()) => marks.verify().await,
        Err(e) => Some(lost_or(marks, e).await?),
    };
    log.info("final phase: stopping producers");
    producers.stop(Role::Producer).await?;
    let _ = progress_stop.send(true);
    let _ = progress.await;
    let mut replicas = Some(Replicas::new());
    if lost.is_none() {
        let finals = async {
            log.info("final phase: healing every fault");
            nemesis.final_heal().await.context("the final heal")?;
            final_reads(plan, dirs, shared, state, sinks, &mut consumers).await
        };
        match finals.await {
            Ok(r) => (replicas, lost) = (r, marks.verify().await),
            Err(e) => lost = Some(lost_or(marks, e).await?),
        }
    }
    if lost.is_some() {
        // The final reads, which stop consumers in order, did not run (or
        // not to the end).
        consumers.stop(Role::Consumer).await?;
    }
    if let Some(o) = observer {
        let lines = o.stop().await?;
        log.info(format!("elections: {lines} leader/epoch changes seen by the nodes, in elections.jsonl"));
    }
    let w = shared.writer.lock();
    Ok(Finished { ops: w.len(), counts: w.counts().clone(), replicas, lost_control: lost })
}

/// The final phase after the heal: settle, let consumers catch up and stop
/// them, export the sinks, drain every partition, dump every replica.
async fn final_reads(
    plan: &Plan,
    dirs: &RunDirs,
    shared: &Arc<Shared>,
    state: &ClusterState,
    sinks: &[(u32, PathBuf)],
    consumers: &mut workload::Clients,
) -> anyhow::Result<Option<Replicas>> {
    let log = &shared.log;
    let admin = kafka_admin(plan, state);
    let targets = match &admin {
        Some(admin) => {
            log.info("final phase: waiting for leaders and full ISRs");
            let targets = kafka_phase::wait_settled(plan, log, admin).await;
            kafka_phase::wait_consumers_caught_up(plan, log, admin, &targets).await;
            targets
        }
        None => {
            log.info("final phase: waiting for leaders, full ISRs and HW = LEO");
            let targets = final_phase::wait_settled(plan, log, state).await;
            final_phase::wait_consumers_caught_up(plan, log, &shared.urls, &targets).await;
            targets
        }
    };
    log.info("final phase: stopping consumers");
    consumers.stop(Role::Consumer).await?;
    if !sinks.is_empty() {
        let rows = crate::sink::export(sinks, &dirs.run.join(faultline_checker::SINK_FILE))?;
        let file = faultline_checker::SINK_FILE;
        log.info(format!("final phase: {rows} sink rows from {} databases into {file}", sinks.len()));
    }
    log.info(format!("final phase: draining {} partitions to {:?}", targets.len(), targets));
    supervisor::run_drain(shared, &targets).await?;
    if admin.is_some() {
        log.info("final phase: the system does not expose its replicas' logs; replica-divergence is not checked");
        return Ok(None);
    }
    log.info("final phase: dumping every replica's log and saving every node's metrics");
    let replicas = final_phase::dump_replicas(plan, log, state).await;
    final_phase::save_metrics(log, state, &dirs.run).await?;
    store::write_json_compact(&dirs.run.join(faultline_checker::REPLICAS_FILE), &replicas)?;
    Ok(Some(replicas))
}

/// A Kafka-protocol client of the cluster, when the system has nothing else.
fn kafka_admin(plan: &Plan, state: &ClusterState) -> Option<KafkaAdmin> {
    plan.system.as_ref()?;
    let addrs = state.nodes.iter().map(|n| n.kafka_address()).collect();
    Some(KafkaAdmin::new(addrs, std::time::Duration::from_millis(plan::REQUEST_TIMEOUT_MS)))
}

/// Checks the stored run as `faultline check` would, from its files,
/// and writes `results.json` and `report.html`. A report
/// that cannot be drawn is a warning: the verdict stands without it.
fn check(
    dir: &std::path::Path,
    replicas: Option<&Replicas>,
    lost_control: Option<&str>,
    log: &RunLog,
) -> anyhow::Result<faultline_checker::Results> {
    let files = faultline_checker::RunFiles::locate(dir);
    let history = files.read_history().context("reading back history.jsonl")?;
    let g = files.guarantees().context("reading test.json's guarantees")?;
    let sink = files.read_sink().context("reading back sink.jsonl")?;
    let elections = files.elections().context("reading back elections.jsonl")?;
    let inputs =
        faultline_checker::Inputs { replicas, sink: sink.as_ref(), elections: elections.as_ref(), lost_control };
    let results = faultline_checker::check_with(&history, &g, &inputs);
    store::write_json(&dir.join(faultline_checker::RESULTS_FILE), &results)?;
    let report = dir.join(crate::report::REPORT_FILE);
    if let Err(e) = crate::report::write(&report, dir, &history, &results, replicas) {
        log.warn(format!("no report.html: {e:#}"));
    }
    Ok(results)
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

fn write_test_json(plan: &Plan, dirs: &RunDirs, reproduce: &str) -> anyhow::Result<()> {
    use plan::*;
    let a = &plan.settings;
    let faults: Vec<serde_json::Value> = plan
        .faults
        .iter()
        .map(|f| serde_json::json!({"t_s": f.at_s, "action": f.action.to_string(), "target": f.target.to_string()}))
        .collect();
    let timeouts = serde_json::json!({
        "harness_request_timeout_ms": REQUEST_TIMEOUT_MS,
        "request_timeout_ms": plan.producer.request_timeout_ms,
        "delivery_timeout_ms": plan.producer.delivery_timeout_ms,
        "client_stop_grace_ms": plan.client_stop_grace().as_millis() as u64,
        "settle_timeout_ms": SETTLE_TIMEOUT.as_millis() as u64,
        "drain_deadline_ms": DRAIN_DEADLINE_MS,
        "cluster_up_timeout_ms": CLUSTER_UP_TIMEOUT.as_millis() as u64,
        "broker_session_timeout_ms": session_timeout_ms(a),
    });
    let doc = serde_json::json!({
        "name": plan.harness.name,
        "seed": a.seed,
        "faultline_version": env!("CARGO_PKG_VERSION"),
        "git_commit": git_commit(),
        "argv": std::env::args().collect::<Vec<_>>(),
        "reproduce": reproduce,
        // Every setting, under the names `faultline run` and campaigns use.
        "settings": a,
        "harness": plan.harness,
        "effective": {
            "idempotence": plan.idempotence,
            "max_in_flight": plan.in_flight(),
            "topic": plan.topic,
            "group": plan.group,
            "system": plan.system.as_ref().map_or("faultline-node", |_| "external-kafka"),
        },
        // The library the applications ran on, and its version.
        "client": {"library": a.client, "version": a.client.version()},
        // Every client setting in effect, under Kafka's names.
        "producer": plan.producer,
        "consumer": plan.consumer,
        "fault_schedule": faults,
        "node_config": plan.node_config(),
        "timeouts": timeouts,
        "guarantees": plan.guarantees(),
    });
    store::write_json(&dirs.run.join(faultline_checker::TEST_FILE), &doc)
}
