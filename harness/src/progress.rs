//! Live progress of a run's workload: on a TTY an indicatif bar with the
//! elapsed time against the limit, ok/fail/info counts and the faults
//! active now; otherwise a plain log line every few seconds.

use std::io::IsTerminal;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use faultline_checker::op::OpType;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::history::HistoryWriter;
use crate::store::RunLog;

/// How often the bar redraws.
const TTY_TICK: Duration = Duration::from_millis(250);
/// How often a plain progress line is logged when not on a TTY.
const LOG_TICK: Duration = Duration::from_secs(5);

/// `ok N fail N info N | faults: ...` from the writer's counts.
fn status(writer: &Mutex<HistoryWriter>, faults: &str) -> String {
    let (mut ok, mut fail, mut info) = (0u64, 0u64, 0u64);
    for ((_, t), n) in writer.lock().counts() {
        match t {
            OpType::Ok => ok += n,
            OpType::Fail => fail += n,
            OpType::Info => info += n,
            OpType::Invoke => {}
        }
    }
    format!("ok {ok}  fail {fail}  info {info}  |  faults: {faults}")
}

/// Shows progress until `stop` is set. `faults` names the faults active
/// now ("none" while the run has no nemesis).
pub async fn show(
    writer: Arc<Mutex<HistoryWriter>>,
    log: Arc<RunLog>,
    limit: Duration,
    faults: watch::Receiver<String>,
    mut stop: watch::Receiver<bool>,
) {
    let started = Instant::now();
    if std::io::stderr().is_terminal() && crate::logging::interactive() {
        let bar = indicatif::ProgressBar::new(limit.as_secs().max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template("{elapsed:>4} / {len}s [{bar:30}] {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        // Bounded by `stop`, which the run sets when the workload ends.
        loop {
            bar.set_position(started.elapsed().as_secs().min(limit.as_secs()));
            bar.set_message(status(&writer, &faults.borrow()));
            tokio::select! {
                _ = tokio::time::sleep(TTY_TICK) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        bar.finish_and_clear();
    } else {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(LOG_TICK) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            log.info(format!(
                "progress {:.0}/{} s: {}",
                started.elapsed().as_secs_f64(),
                limit.as_secs(),
                status(&writer, &faults.borrow())
            ));
        }
    }
}
