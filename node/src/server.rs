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

use crate::broker::control::MemoryControlPlane;
use crate::broker::{Acks0Batch, Broker};
use crate::controller::metadata::Command;
use crate::replica::manager::ReplicaManager;
use crate::config::BrokerConfig;
use crate::groups::Groups;
use crate::http::{AppState, Metrics, router};
use crate::log::checkpoint;

/// How often partitions are checked for `flush.ms`.
const FLUSH_CHECK_INTERVAL_MS: u64 = 50;

/// Runs the node until SIGTERM or SIGINT.
pub async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    let listener_addr = config.listener;
    // Both checkpoints are written together, as often as the stricter asks.
    let checkpoint_interval = Duration::from_millis(config.recovery_checkpoint_interval_ms.min(config.hw_checkpoint_interval_ms));
    let broker = Arc::new(
        tokio::task::spawn_blocking(move || Broker::open(config)).await.context("start-up task panicked")?.context("opening the data directory")?,
    );
    let listener = tokio::net::TcpListener::bind(listener_addr).await.with_context(|| format!("binding {listener_addr}"))?;
    let bound = listener.local_addr()?;
    let advertised = broker.config.advertised.clone().unwrap_or_else(|| format!("http://{bound}"));

    let control = MemoryControlPlane::new(broker.config.node_id);
    broker.attach_control(control.clone());
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
    control.apply(&Command::RegisterBroker { id: broker.config.node_id, address: advertised.clone() });
    let bugs: Vec<String> = broker.config.bugs.active().iter().map(|b| b.name().to_string()).collect();
    if !bugs.is_empty() {
        control.apply(&Command::DeclareBugs { broker: broker.config.node_id, bugs });
    }
    if broker.config.admin_hooks {
        tracing::warn!("ADMIN HOOKS ON: /v1/admin endpoints can pause replication");
    }

    tracing::info!(node_id = broker.config.node_id, address = %bound, clean_start = broker.clean_start(), "serving");
    // The one line on stdout: tests and the harness read the bound address here.
    println!("faultline-node {} listening on http://{bound}", broker.config.node_id);
    let _ = std::io::stdout().flush();

    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown_signal()).await.context("serving HTTP")?;

    tracing::info!("stopped accepting; finishing shutdown");
    let _ = stop_tx.send(true);
    acks0.await.context("acks=0 task panicked")?;
    flusher.await.context("flush task panicked")?;
    reconcile.await.context("replica manager panicked")?;
    expiration.await.context("ISR expiration task panicked")?;
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
        tracing::warn!(topic = %b.partition.topic, partition = b.partition.index, error = %e.message, "acks=0 append failed");
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
