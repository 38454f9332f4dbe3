//! Start-up, background tasks and clean shutdown of one node.
//!
//! Start-up opens and recovers the data directory before it binds, so no
//! request is served from a half-recovered log. SIGTERM (or SIGINT) stops
//! accepting, lets in-flight requests finish, drains the acks=0 queue,
//! fsyncs every log, checkpoints recovery points, and writes the
//! clean-shutdown marker last.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::{mpsc, watch};

use std::collections::BTreeMap;

use crate::broker::{Acks0Batch, Broker};
use crate::config::BrokerConfig;
use crate::controller::metadata::Command;
use crate::controller::{Controller, ControllerConfig};
use crate::groups::Groups;
use crate::http::{AppState, Metrics, router};
use crate::log::checkpoint;
use crate::replica::manager::ReplicaManager;

/// How often partitions are checked for `flush.ms`.
const FLUSH_CHECK_INTERVAL_MS: u64 = 50;

/// How long start-up keeps trying to register this broker with the
/// controller quorum before giving up loudly. Generous: the quorum forms
/// only once a majority of voters is up.
const REGISTER_TIMEOUT_MS: u64 = 300_000;

/// Runs the node until SIGTERM or SIGINT.
pub async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    let listener_addr = config.listener;
    let checkpoint_interval =
        Duration::from_millis(config.recovery_checkpoint_interval_ms.min(config.hw_checkpoint_interval_ms));
    let broker = Arc::new(
        tokio::task::spawn_blocking(move || Broker::open(config))
            .await
            .context("start-up task panicked")?
            .context("opening the data directory")?,
    );
    let listener =
        tokio::net::TcpListener::bind(listener_addr).await.with_context(|| format!("binding {listener_addr}"))?;
    let bound = listener.local_addr()?;
    let (kafka_listener, kafka_address) = bind_kafka(&broker.config).await?;
    let advertised = broker.config.advertised.clone().unwrap_or_else(|| format!("http://{bound}"));
    let c = &broker.config;
    let voters = if c.voters.is_empty() { BTreeMap::from([(c.node_id, advertised.clone())]) } else { c.voters.clone() };
    let controller = Controller::start(ControllerConfig {
        node_id: c.node_id,
        voters,
        kafka_address: kafka_address.clone(),
        dir: c.log_dir.join("__controller"),
        election_timeout_ms: c.election_timeout_ms,
        heartbeat_interval_ms: c.heartbeat_interval_ms,
        session_timeout_ms: c.session_timeout_ms,
    })
    .await
    .context("starting the controller")?;
    broker.attach_control(controller.clone());

    let (stop_tx, stop_rx) = watch::channel(false);
    let replicas = ReplicaManager::new(broker.clone(), stop_rx.clone());
    let state = AppState {
        broker: broker.clone(),
        groups: Arc::new(Groups::default()),
        metrics: Arc::new(Metrics::default()),
        replicas: replicas.clone(),
        advertised: advertised.clone(),
    };
    let acks0 = tokio::spawn(drain_acks0(broker.take_acks0_receiver().expect("taken once"), stop_rx.clone()));
    let flusher = tokio::spawn(flush_loop(broker.clone(), checkpoint_interval, stop_rx.clone()));
    let reconcile = tokio::spawn(replicas.clone().run());
    let expiration = tokio::spawn(replicas.clone().run_isr_expiration());
    let group_ticks = tokio::spawn(tick_groups(state.groups.clone(), broker.clone(), stop_rx.clone()));
    if broker.config.admin_hooks {
        tracing::warn!("ADMIN HOOKS ON: /v1/admin endpoints can pause replication");
    }
    let registration = tokio::spawn(register(controller.clone(), broker.clone(), advertised.clone()));

    tracing::info!(node_id = broker.config.node_id, address = %bound, clean_start = broker.clean_start(), "serving");
    // The one line on stdout: tests and the harness read the bound address here.
    println!("faultline-node {} listening on http://{bound}", broker.config.node_id);
    let _ = std::io::stdout().flush();

    let kafka_node = Arc::new(crate::kafka::Node { broker: broker.clone(), groups: state.groups.clone() });
    let kafka = kafka_listener.map(|l| tokio::spawn(crate::kafka::serve(l, kafka_node, stop_rx.clone())));
    let app = router(state).merge(controller.router());
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.context("serving HTTP")?;

    tracing::info!("stopped accepting; finishing shutdown");
    let _ = stop_tx.send(true);
    registration.abort();
    if let Some(k) = kafka {
        k.await.context("kafka listener panicked")?;
    }
    acks0.await.context("acks=0 task panicked")?;
    flusher.await.context("flush task panicked")?;
    reconcile.await.context("replica manager panicked")?;
    expiration.await.context("ISR expiration task panicked")?;
    group_ticks.await.context("group tick task panicked")?;
    controller.shutdown().await;
    let b = broker.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        b.checkpoint(true).context("writing the recovery-point checkpoint")?;
        checkpoint::write_clean_shutdown_marker(&b.config.log_dir).context("writing the clean-shutdown marker")
    })
    .await
    .context("shutdown task panicked")??;
    tracing::info!("clean shutdown complete");
    Ok(())
}

/// Registers this broker (a new broker epoch) and declares its bug
/// switches. A node whose quorum never forms cannot serve: it exits loudly.
/// The Kafka-protocol listener, if configured, and the `host:port` the
/// broker registers for it (advertised, or the bound address). Logged, not
/// printed: stdout's one line is what readers parse.
async fn bind_kafka(config: &BrokerConfig) -> anyhow::Result<(Option<tokio::net::TcpListener>, Option<String>)> {
    let Some(addr) = config.kafka_listener else { return Ok((None, None)) };
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(address = %bound, "kafka protocol listener");
    Ok((Some(listener), Some(config.kafka_advertised.clone().unwrap_or_else(|| bound.to_string()))))
}

async fn register(controller: Arc<Controller>, broker: Arc<Broker>, address: String) {
    let registered =
        tokio::time::timeout(Duration::from_millis(REGISTER_TIMEOUT_MS), controller.register_broker(address)).await;
    match registered {
        Ok(Ok(epoch)) => tracing::info!(broker_epoch = epoch, "registered with the controller"),
        Ok(Err(e)) => fatal(&format!("registering with the controller failed: {e}")),
        Err(_) => {
            fatal(&format!("no controller quorum within {REGISTER_TIMEOUT_MS} ms; check controller.quorum.voters"))
        }
    }
    let bugs: Vec<String> = broker.config.bugs.active().iter().map(|b| b.name().to_string()).collect();
    if !bugs.is_empty()
        && let Err(e) = controller.propose(Command::DeclareBugs { broker: broker.config.node_id, bugs }).await
    {
        tracing::error!(error = %e, "declaring bug switches to the controller failed");
    }
}

fn fatal(message: &str) {
    tracing::error!("{message}");
    eprintln!("faultline-node: {message}");
    std::process::exit(1);
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

/// Appends acks=0 batches in arrival order. At shutdown, drains what was
/// already queued (it was accepted) before returning.
async fn drain_acks0(mut rx: mpsc::Receiver<Acks0Batch>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            item = rx.recv() => match item {
                Some(b) => append_acks0(b),
                None => return,
            },
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    rx.close();
    while let Some(b) = rx.recv().await {
        append_acks0(b);
    }
}

fn append_acks0(mut b: Acks0Batch) {
    if let Err(e) = b.partition.append(&mut b.batch, false) {
        // acks=0 has no one to tell; Kafka would close the connection.
        tracing::warn!(
            topic = %b.partition.topic,
            partition = b.partition.index,
            error = %e.message,
            "acks=0 append failed"
        );
    }
}

/// Expires group members' sessions and ends rebalances on time.
async fn tick_groups(groups: Arc<Groups>, broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(crate::groups::TICK_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => groups.tick(&broker),
            _ = stop.changed() => return,
        }
    }
}

/// Applies `flush.ms` and checkpoints recovery points periodically.
async fn flush_loop(broker: Arc<Broker>, checkpoint_interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(FLUSH_CHECK_INTERVAL_MS));
    let mut last_checkpoint = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let b = broker.clone();
        let checkpoint_due = last_checkpoint.elapsed() >= checkpoint_interval;
        if checkpoint_due {
            last_checkpoint = Instant::now();
        }
        let result = tokio::task::spawn_blocking(move || {
            let now = Instant::now();
            for p in b.all_partitions() {
                p.flush_if_due(now);
            }
            if checkpoint_due { b.checkpoint(false) } else { Ok(()) }
        })
        .await;
        if let Ok(Err(e)) = result {
            tracing::warn!(error = %e, "writing the recovery-point checkpoint failed; will retry");
        }
    }
}
