//! The client side of the `stall-consumer` fault: the nemesis sends the
//! consumer process SIGUSR1, and the application's next batch then takes
//! twice `max.poll.interval.ms` to process while the process, and its
//! heartbeat, stay alive. Inline processing stops the poll loop at once; a
//! queue's worker stops, the queue fills and the poll loop waits on it.
//! Either way the client leaves its group for not polling, as Kafka's does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{SigSet, Signal};
use tokio::signal::unix::{SignalKind, signal};

/// How often a stalled batch looks at the harness's stop.
const STOP_CHECK: Duration = Duration::from_millis(100);

fn usr1_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGUSR1);
    set
}

/// Holds SIGUSR1 back from the start of a client process, whose default
/// action would end it: a stall the nemesis sends before [`Stall::listen`]
/// waits, blocked, until the handler is there (and forever in a process
/// that never listens). Call before any thread starts: they inherit it.
pub fn hold_signal() {
    if let Err(e) = usr1_set().thread_block() {
        tracing::warn!("blocking SIGUSR1: {e}");
    }
}

/// A pending stall, set by SIGUSR1 and taken by the next batch.
pub struct Stall {
    requested: Arc<AtomicBool>,
    length: Duration,
    stop: Arc<AtomicBool>,
}

impl Stall {
    /// Listens for SIGUSR1 for the rest of the process's life. A batch
    /// stalls for `2 × max_poll_interval` unless the harness stops first.
    pub fn listen(max_poll_interval: Duration, stop: Arc<AtomicBool>) -> anyhow::Result<Stall> {
        let mut usr1 = signal(SignalKind::user_defined1()).context("listening for SIGUSR1 (stall-consumer)")?;
        let requested = Arc::new(AtomicBool::new(false));
        let flag = requested.clone();
        // Bounded by the process: the stream ends only with the runtime.
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                flag.store(true, Ordering::SeqCst);
            }
        });
        // Handled now: a stall that came early is delivered.
        usr1_set().thread_unblock().context("unblocking SIGUSR1")?;
        Ok(Stall { requested, length: 2 * max_poll_interval, stop })
    }

    /// Stalls the current batch if a stall is pending.
    pub async fn take(&self) {
        if !self.requested.swap(false, Ordering::SeqCst) {
            return;
        }
        tracing::info!("stall-consumer: this batch takes {:?}", self.length);
        let until = Instant::now() + self.length;
        while Instant::now() < until && !self.stop.load(Ordering::SeqCst) {
            tokio::time::sleep(STOP_CHECK.min(until.saturating_duration_since(Instant::now()))).await;
        }
    }
}
