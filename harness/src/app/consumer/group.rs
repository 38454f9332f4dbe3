//! Subscribe mode: the consumer's partitions come from its group. Each new
//! generation's assignment is an `assign` op with the group and the
//! generation (recorded by the consumer's `assign`, positions from the
//! committed offsets as in assign mode); before rejoining, the
//! consumer commits what its strategy commits on revocation (Kafka's
//! `onJoinPrepare` for auto-commit, `onPartitionsRevoked` for a manual
//! committer) and records a `revoke` op.

use std::sync::atomic::AtomicBool;

use faultline_checker::modes::CommitStrategy;
use faultline_checker::op::{AssignValue, F, Op, OpType, OpValue, RevokeValue, Seek};

use super::Consumer;
use crate::app::member::Member;
use crate::app::record::emit;

impl Consumer<'_> {
    /// The group's assignment as an `assign` op's value: rejoins first if
    /// the group rebalanced (a new logical process after an unknown commit
    /// keeps its assignment, as Kafka's client does). `None` when stopped.
    pub(super) async fn group_assignment(&mut self, stop: &AtomicBool) -> Option<AssignValue> {
        let member = self.member.as_mut().expect("subscribe mode");
        if member.needs_rejoin() {
            let assigned = member.rejoin(stop).await?;
            self.owned = assigned.partitions.iter().filter_map(|p| self.parts.iter().position(|x| x == p)).collect();
        }
        let generation = self.member.as_ref().map(Member::generation);
        let mut value =
            AssignValue::manual(self.owned.iter().map(|&i| self.names[i].clone()).collect(), Seek::Committed);
        (value.group, value.generation) = (Some(self.spec.group.clone()), generation);
        Some(value)
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
            generation: self.member.as_ref().map(Member::generation),
        };
        self.downstream.revoke();
        emit(Op::invoke(self.process, F::Revoke, OpValue::Revoke(value)));
        emit(Op::complete(OpType::Ok, self.process, F::Revoke, OpValue::none()));
        self.owned.clear();
    }
}
