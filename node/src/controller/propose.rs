//! Proposals from any node: [`Controller::propose`] finds the raft leader
//! (this node, or another voter over HTTP), retries only attempts that
//! certainly proposed nothing, and waits for the local apply so a caller
//! reads its own writes.

use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};

use super::metadata::{Command, CommandResult};
use super::raft::types::from_raft_id;
use super::wire::{PROPOSE_PATH, ProposeReply};
use super::{
    Controller, ControllerError, PROPOSE_ATTEMPTS_MAX, PROPOSE_BACKOFF_MAX_MS, PROPOSE_BACKOFF_MIN_MS,
    PROPOSE_TIMEOUT_MS, ms,
};

impl Controller {
    /// Proposes `cmd` from any node: locally on the leader, else forwarded
    /// to it. Resolves once the command is committed and applied on this
    /// node (read-your-writes), within [`PROPOSE_TIMEOUT_MS`].
    ///
    /// Only attempts known not to have proposed anything are retried (no
    /// leader, "not the leader", connection refused). `Timeout` and
    /// `Forward` errors leave the outcome unknown.
    pub async fn propose(&self, cmd: Command) -> Result<CommandResult, ControllerError> {
        let deadline = Instant::now() + ms(PROPOSE_TIMEOUT_MS);
        let (index, result) = self.commit(cmd, deadline).await?;
        // The leader applied it; give this node a moment beyond the deadline
        // to apply it too.
        self.wait_applied(index, deadline.max(Instant::now() + 2 * ms(self.config.election_timeout_ms))).await?;
        Ok(result)
    }

    /// Gets `cmd` committed and applied by the leader, by `deadline`;
    /// returns its log index and result. The retry rules of [`Self::propose`].
    pub(super) async fn commit(
        &self,
        cmd: Command,
        deadline: Instant,
    ) -> Result<(u64, CommandResult), ControllerError> {
        let mut backoff = ms(PROPOSE_BACKOFF_MIN_MS);
        let mut hint: Option<i32> = None;
        let mut last = String::from("no attempt finished in time");
        for attempt in 0..PROPOSE_ATTEMPTS_MAX {
            if self.stopped() {
                return Err(ControllerError::Shutdown);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            let target = hint.take().or_else(|| self.leader()).or_else(|| self.some_voter(attempt));
            // `Err(why)`: this attempt proposed nothing, so retrying is safe.
            let reply: Result<ProposeReply, String> = match target {
                Some(l) if l == self.config.node_id => Ok(self.propose_here(cmd.clone(), remaining).await),
                Some(l) => match self.forward(l, &cmd, remaining).await {
                    Ok(reply) => Ok(reply),
                    Err(Forwarded::NotSent(why)) => Err(why),
                    Err(Forwarded::Unknown(e)) => return Err(e),
                },
                None => Err("no leader known".into()),
            };
            match reply {
                Ok(ProposeReply::Applied { index, result }) => return Ok((index, result)),
                Ok(ProposeReply::Failed { message }) => return Err(ControllerError::Timeout(message)),
                Ok(ProposeReply::NotLeader { leader }) if leader.is_some() && leader != target => {
                    // Follow the redirect at once.
                    hint = leader;
                    last = format!("controller {target:?} is not the leader; it names {leader:?}");
                    continue;
                }
                Ok(ProposeReply::NotLeader { leader }) => {
                    last = format!("controller {target:?} is not the leader; leader {leader:?}")
                }
                Err(why) => last = why,
            }
            tokio::time::sleep(backoff.min(remaining)).await;
            backoff = (backoff * 2).min(ms(PROPOSE_BACKOFF_MAX_MS));
        }
        Err(ControllerError::NoQuorum(last))
    }

    /// A voter to ask when no leader is known (a learner before it hears
    /// from the leader): they take turns by attempt, and any of them
    /// answers with the leader's id.
    fn some_voter(&self, attempt: u32) -> Option<i32> {
        let n = self.config.voters.len();
        self.config.voters.keys().nth(attempt as usize % n.max(1)).copied()
    }

    /// Proposes on this node's raft, which refuses unless it leads.
    pub(super) async fn propose_here(&self, cmd: Command, timeout: Duration) -> ProposeReply {
        match tokio::time::timeout(timeout, self.raft.client_write(cmd)).await {
            Ok(Ok(resp)) => match resp.data.result {
                Some(result) => ProposeReply::Applied { index: resp.log_id.index, result },
                None => ProposeReply::Failed { message: format!("entry {} applied without a result", resp.log_id) },
            },
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                ProposeReply::NotLeader { leader: f.leader_id.map(from_raft_id) }
            }
            Ok(Err(e)) => ProposeReply::Failed { message: e.to_string() },
            Err(_) => ProposeReply::Failed { message: format!("not committed within {} ms", timeout.as_millis()) },
        }
    }

    async fn forward(&self, leader: i32, cmd: &Command, timeout: Duration) -> Result<ProposeReply, Forwarded> {
        let Some(base) = self.config.voters.get(&leader) else {
            return Err(Forwarded::NotSent(format!("leader {leader} is not a configured voter")));
        };
        let url = format!("{}{PROPOSE_PATH}", base.trim_end_matches('/'));
        let unknown = |message: String| Forwarded::Unknown(ControllerError::Forward { leader, message });
        let resp = match self.http.post(&url).timeout(timeout).json(cmd).send().await {
            Ok(resp) => resp,
            Err(e) if e.is_connect() => return Err(Forwarded::NotSent(format!("{url}: {e}"))),
            Err(e) if e.is_timeout() => {
                return Err(Forwarded::Unknown(ControllerError::Timeout(format!(
                    "no answer from {url} within {} ms",
                    timeout.as_millis()
                ))));
            }
            Err(e) => return Err(unknown(format!("{url}: {e}"))),
        };
        if !resp.status().is_success() {
            return Err(unknown(format!("{url}: HTTP {}", resp.status())));
        }
        resp.json::<ProposeReply>().await.map_err(|e| unknown(format!("{url}: {e}")))
    }

    /// Waits until this node's image has applied log `index`.
    pub(super) async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), ControllerError> {
        let mut rx = self.image_rx.clone();
        loop {
            if rx.borrow_and_update().offset >= index {
                return Ok(());
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(ControllerError::Shutdown),
                Err(_) => return Err(ControllerError::NotApplied { index }),
            }
        }
    }
}

/// How a forwarding attempt failed.
enum Forwarded {
    /// The request never reached the leader: safe to retry.
    NotSent(String),
    /// It may have been delivered: the outcome is unknown.
    Unknown(ControllerError),
}
