//! Subscribe mode: the consumer's partitions come from its group. Each new
//! generation's assignment is an `assign` op with the group and the
//! generation, its positions the committed offsets; before rejoining, the
//! consumer commits what its strategy commits on revocation (Kafka's
//! `onJoinPrepare` for auto-commit, `onPartitionsRevoked` for a manual
//! committer) and records a `revoke` op.

use std::sync::atomic::AtomicBool;

use faultline_checker::modes::CommitStrategy;
use faultline_checker::op::{AssignValue, F, Op, OpType, OpValue, RevokeValue, Seek};

use super::Consumer;
use crate::app::processing::RETRY_PAUSE;
use crate::app::record::emit;

impl Consumer<'_> {
    /// Joins the group until it assigns this member its partitions; the
    /// positions (every partition, owned ones from the committed offsets).
    /// `None` when stopped first.
    pub(super) async fn join_group(&mut self, stop: &AtomicBool) -> Option<Vec<i64>> {
        let member = self.member.as_mut().expect("subscribe mode");
        let assigned = member.rejoin(stop).await?;
        self.owned = assigned.partitions.iter().filter_map(|p| self.parts.iter().position(|x| x == p)).collect();
        self.generation = Some(assigned.generation);
        let mut value =
            AssignValue::manual(self.owned.iter().map(|&i| self.names[i].clone()).collect(), Seek::Committed);
        (value.group, value.generation) = (Some(self.spec.group.clone()), Some(assigned.generation));
        emit(Op::invoke(self.process, F::Assign, OpValue::Assign(value)));
        emit(Op::complete(OpType::Ok, self.process, F::Assign, OpValue::none()));
        // Bounded by the harness's stop.
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let offsets = match self.coordinator.committed().await {
                Ok(o) => o,
                Err(_) => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            match self.reset_offsets(&offsets).await {
                Ok(ends) => return Some(self.starting_positions(&offsets, &ends)),
                Err(_) => tokio::time::sleep(RETRY_PAUSE).await,
            }
        }
        None
    }

    /// Gives the owned partitions up before rejoining: commits what the
    /// strategy commits on revocation, if this member may still commit, and
    /// records the `revoke`.
    pub(super) async fn revoke(&mut self) {
        if self.owned.is_empty() {
            return;
        }
        let may_commit = self.member.as_ref().is_some_and(|m| m.may_commit().is_some());
        if may_commit {
            match self.spec.commit {
                CommitStrategy::Auto => {
                    self.commit_if_moved(self.positions.clone()).await;
                }
                CommitStrategy::AfterProcess => {
                    let at = self.downstream.processed();
                    self.commit_if_moved(at).await;
                }
                CommitStrategy::BeforeProcess => {}
            }
        }
        let value = RevokeValue {
            partitions: self.owned.iter().map(|&i| self.names[i].clone()).collect(),
            generation: self.generation,
        };
        emit(Op::invoke(self.process, F::Revoke, OpValue::Revoke(value)));
        emit(Op::complete(OpType::Ok, self.process, F::Revoke, OpValue::none()));
        self.owned.clear();
    }
}
