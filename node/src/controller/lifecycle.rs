//! This node's broker lifecycle (register, heartbeat, re-register when
//! fenced) and the active controller's side of it (record heartbeats,
//! fence silent brokers, add non-voter nodes as raft learners).

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use openraft::{BasicNode, ServerState};

use super::metadata::{Command, CommandResult, MetadataImage};
use super::raft::types::to_raft_id;
use super::wire::{HEARTBEAT_PATH, HeartbeatReply, HeartbeatRequest, ProposeReply};
use super::{
    Controller, ControllerError, PROPOSE_BACKOFF_MIN_MS, PROPOSE_TIMEOUT_MS, REGISTER_ATTEMPTS_MAX,
    REGISTER_BACKOFF_MAX_MS, ms,
};

impl Controller {
    /// Registers this node's broker (retrying with backoff until the quorum
    /// answers), publishes the epoch on [`Controller::broker_epoch`], and
    /// starts heartbeating to the active controller. Callers bound the wait
    /// with a timeout or by dropping the future.
    pub async fn register_broker(self: &Arc<Self>, address: String) -> Result<i64, ControllerError> {
        let kafka = self.config.kafka_address.clone();
        let cmd = Command::RegisterBroker { id: self.config.node_id, address: address.clone(), kafka };
        let mut backoff = ms(PROPOSE_BACKOFF_MIN_MS);
        let mut last = None;
        for attempt in 0..REGISTER_ATTEMPTS_MAX {
            match self.commit(cmd.clone(), Instant::now() + ms(PROPOSE_TIMEOUT_MS)).await {
                Ok((index, CommandResult::BrokerRegistered { epoch })) => {
                    // Committed: never register again for a slow local apply
                    // (a learner applies only once the leader has added it).
                    let apply_wait = Instant::now() + ms(self.config.session_timeout_ms.max(PROPOSE_TIMEOUT_MS));
                    if let Err(e) = self.wait_applied(index, apply_wait).await {
                        tracing::warn!(
                            node = self.config.node_id,
                            epoch,
                            error = %e,
                            "controller: registration not yet applied here"
                        );
                    }
                    self.broker_epoch_tx.send_replace(Some(epoch));
                    let task = tokio::spawn(heartbeat_loop(Arc::downgrade(self), address));
                    if let Some(old) = self.heartbeat_task.lock().replace(task) {
                        old.abort();
                    }
                    tracing::info!(node = self.config.node_id, epoch, "controller: broker registered");
                    return Ok(epoch);
                }
                Ok((_, other)) => return Err(ControllerError::Unexpected(format!("{other:?}"))),
                Err(ControllerError::Shutdown) => return Err(ControllerError::Shutdown),
                Err(e) => {
                    tracing::warn!(
                        node = self.config.node_id,
                        attempt,
                        error = %e,
                        "controller: broker registration failed; retrying"
                    );
                    last = Some(e);
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(ms(REGISTER_BACKOFF_MAX_MS));
        }
        Err(last.unwrap_or(ControllerError::NoQuorum("no registration attempt".into())))
    }

    /// Answers a broker heartbeat: recorded if this node is the active
    /// controller, else refused with the leader's id.
    pub(super) fn handle_heartbeat(&self, req: HeartbeatRequest) -> HeartbeatReply {
        if !self.is_leader() {
            return HeartbeatReply::NotLeader { leader: self.leader() };
        }
        let image = self.image();
        let registered = self.liveness.lock().record(&image, req.broker_id, req.broker_epoch, Instant::now());
        HeartbeatReply::Ok { registered }
    }

    /// One round of this node's broker lifecycle: re-register if the image
    /// shows our incarnation fenced, else heartbeat the active controller.
    async fn heartbeat_once(&self, address: &str) {
        let Some(epoch) = *self.broker_epoch_tx.borrow() else { return };
        let me = self.config.node_id;
        if self.image().brokers.get(&me).is_some_and(|b| b.epoch == epoch && b.fenced) {
            tracing::warn!(node = me, epoch, "controller: this broker was fenced; re-registering");
            let kafka = self.config.kafka_address.clone();
            match self.propose(Command::RegisterBroker { id: me, address: address.to_string(), kafka }).await {
                Ok(CommandResult::BrokerRegistered { epoch }) => {
                    self.broker_epoch_tx.send_replace(Some(epoch));
                }
                other => tracing::warn!(node = me, result = ?other, "controller: re-registration failed; will retry"),
            }
            return;
        }
        let req = HeartbeatRequest { broker_id: me, broker_epoch: epoch };
        let mut target = self.leader().or_else(|| self.config.voters.keys().copied().find(|v| *v != me));
        // At most one redirect per round: the next round asks again.
        for _ in 0..2 {
            let reply = match target {
                None => return,
                Some(l) if l == me => self.handle_heartbeat(req),
                Some(l) => match self.send_heartbeat(l, req).await {
                    Some(reply) => reply,
                    None => return,
                },
            };
            match reply {
                HeartbeatReply::Ok { .. } => return,
                HeartbeatReply::NotLeader { leader } if leader != target => target = leader,
                HeartbeatReply::NotLeader { .. } => return,
            }
        }
    }

    async fn send_heartbeat(&self, leader: i32, req: HeartbeatRequest) -> Option<HeartbeatReply> {
        let base = self.config.voters.get(&leader)?;
        let url = format!("{}{HEARTBEAT_PATH}", base.trim_end_matches('/'));
        let timeout = ms(self.config.heartbeat_interval_ms.max(50));
        let result =
            async { self.http.post(&url).timeout(timeout).json(&req).send().await?.error_for_status()?.json().await };
        match result.await {
            Ok(reply) => Some(reply),
            Err(e) => {
                tracing::debug!(url, error = %e, "controller: heartbeat not delivered");
                None
            }
        }
    }

    /// On the leader: fences every incarnation silent for longer than the
    /// session timeout. Elsewhere: forgets the heartbeat table.
    async fn check_liveness(&self) {
        let (leading, term) = {
            let m = self.metrics.borrow();
            (m.state == ServerState::Leader, m.current_term)
        };
        if !leading {
            self.liveness.lock().step_down();
            return;
        }
        let image = self.image();
        self.add_learners(&image).await;
        let expired = self.liveness.lock().expired(&image, term, Instant::now());
        for (id, epoch) in expired {
            tracing::warn!(
                broker = id,
                epoch,
                session_timeout_ms = self.config.session_timeout_ms,
                "controller: no heartbeat; fencing"
            );
            let reply = self.propose_here(Command::FenceBroker { id, epoch }, ms(self.config.session_timeout_ms)).await;
            if !matches!(reply, ProposeReply::Applied { .. }) {
                tracing::warn!(broker = id, epoch, ?reply, "controller: fencing did not commit; will retry");
            }
        }
    }

    /// On the leader: adds every live registered broker that is neither a
    /// voter nor in the raft membership as a learner, at its registered
    /// address, so nodes outside the voters replicate the metadata too.
    async fn add_learners(&self, image: &MetadataImage) {
        let membership = self.metrics.borrow().membership_config.clone();
        let joining: Vec<(i32, String)> = image
            .brokers
            .values()
            .filter(|b| !b.fenced && !self.config.voters.contains_key(&b.id))
            .filter(|b| membership.membership().get_node(&to_raft_id(b.id)).is_none())
            .map(|b| (b.id, b.address.clone()))
            .collect();
        for (id, address) in joining {
            let added = tokio::time::timeout(
                ms(PROPOSE_TIMEOUT_MS),
                self.raft.add_learner(to_raft_id(id), BasicNode::new(&address), false),
            );
            match added.await {
                Ok(Ok(_)) => tracing::info!(node = id, address, "controller: added a non-voter node as a raft learner"),
                Ok(Err(e)) => tracing::warn!(node = id, error = %e, "controller: adding a learner failed; will retry"),
                Err(_) => tracing::warn!(node = id, "controller: adding a learner timed out; will retry"),
            }
        }
    }
}

/// Runs [`Controller::check_liveness`] every `period` until the controller
/// stops or is dropped.
pub(super) async fn liveness_loop(controller: Weak<Controller>, period: Duration) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(c) = controller.upgrade() else { return };
        if c.stopped() {
            return;
        }
        c.check_liveness().await;
    }
}

/// Runs [`Controller::heartbeat_once`] every heartbeat interval until the
/// controller stops or is dropped.
async fn heartbeat_loop(controller: Weak<Controller>, address: String) {
    let period = match controller.upgrade() {
        Some(c) => ms(c.config.heartbeat_interval_ms),
        None => return,
    };
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(c) = controller.upgrade() else { return };
        if c.stopped() {
            return;
        }
        c.heartbeat_once(&address).await;
    }
}
