//! Scripted episodes: each injects exactly one instance of one anomaly type
//! in the middle of the run, with fresh processes so that no actor's state
//! is disturbed.

use super::Sim;
use crate::anomaly::AnomalyKind;
use crate::error::Result;
use crate::generator::SCRIPT_SLOT;
use crate::op::{AssignValue, CommitValue, F, OpType, OpValue, PartMap, Seek};

impl Sim<'_> {
    /// One scripted episode producing one instance of `kind`.
    pub(super) fn script(&mut self, kind: AnomalyKind) -> Result<()> {
        // Drawn for every kind, even those that pick their own partition, so
        // that a seed keeps producing the same history.
        let mut p = self.rng.below(self.logs.len() as u64) as usize;
        if kind == AnomalyKind::InconsistentOffsets && self.unseen_injected && self.logs.len() > 1 {
            // Its lost write is provable only where the final drain runs:
            // the even partitions when unseen values live on the odd ones.
            p &= !1;
        }
        match kind {
            AnomalyKind::Duplicate => self.duplicate(p),
            AnomalyKind::AbortedRead => self.aborted_read(p),
            AnomalyKind::PhantomRead => {
                let v = self.fresh();
                self.append(p, v);
                Ok(())
            }
            AnomalyKind::PollSkip | AnomalyKind::NonmonotonicPoll => self.poll_misstep(kind),
            AnomalyKind::NonmonotonicSend | AnomalyKind::RealtimeCycle => self.sends_landing_reversed(kind, p),
            AnomalyKind::OrderCycle => self.batch_landing_reversed(p),
            AnomalyKind::InconsistentOffsets => self.inconsistent_offsets(p),
            AnomalyKind::LostEnqueued => self.lost_enqueued(p),
            AnomalyKind::DroppedEnqueued => {
                // Refused by the buffer and never sent again.
                let s = self.fresh_process();
                let v = self.fresh();
                self.enqueue(s, p, &[v], OpType::Fail)?;
                Ok(())
            }
            AnomalyKind::LostUnacknowledged | AnomalyKind::MetadataRegression => {
                unreachable!("refused by parse_inject and generate")
            }
            AnomalyKind::LostProcessing => self.lost_processing(p),
            AnomalyKind::DuplicateProcessing => self.duplicate_processing(p),
            AnomalyKind::ZombieCommit => self.zombie_commit(p),
            AnomalyKind::LostWrite | AnomalyKind::Unseen | AnomalyKind::ReplicaDivergence => {
                unreachable!("{kind} is injected at the end of the run")
            }
        }
    }

    /// One `duplicate`: a send whose retry was appended again.
    fn duplicate(&mut self, p: usize) -> Result<()> {
        let s = self.fresh_process();
        let v = self.fresh();
        let inv = self.send_invoke(s, p, &[v])?;
        let x = self.append(p, v);
        self.append(p, v); // the retry, appended again
        self.send_complete(s, inv, p, &[(Some(x), v)], OpType::Ok, None)?;
        Ok(())
    }

    /// One `zombie-commit`: in a group of its own, member `a` of generation
    /// 1 commits after `b` was assigned the partition in generation 2, and
    /// the commit is accepted. It commits offset 0, so no committed position
    /// moves.
    fn zombie_commit(&mut self, p: usize) -> Result<()> {
        let (a, b) = (self.fresh_process(), self.fresh_process());
        let group = format!("zombies-{a}");
        for (process, generation) in [(a, 1), (b, 2)] {
            let value = AssignValue {
                group: Some(group.clone()),
                generation: Some(generation),
                ..AssignValue::manual(vec![self.names[p].clone()], Seek::Committed)
            };
            let inv = self.emit(process, None, OpType::Invoke, F::Assign, OpValue::Assign(value), None, false)?;
            self.emit(process, Some(inv), OpType::Ok, F::Assign, OpValue::none(), None, false)?;
        }
        let value = CommitValue {
            generation: Some(1),
            member: Some(format!("member-{a}")),
            ..CommitValue::simple(group, PartMap(vec![(self.names[p].clone(), 0)]))
        };
        let inv = self.emit(a, None, OpType::Invoke, F::Commit, OpValue::Commit(value), None, false)?;
        self.emit(a, Some(inv), OpType::Ok, F::Commit, OpValue::none(), None, false)?;
        Ok(())
    }

    /// One `aborted-read`: a send that failed although it was appended.
    fn aborted_read(&mut self, p: usize) -> Result<()> {
        let s = self.fresh_process();
        let v = self.fresh();
        let inv = self.send_invoke(s, p, &[v])?;
        self.append(p, v);
        self.send_complete(s, inv, p, &[(None, v)], OpType::Fail, Some("not enough replicas"))?;
        Ok(())
    }

    /// One `poll-skip` or `nonmonotonic-poll`: a consumer's second poll does
    /// not continue where its first stopped.
    fn poll_misstep(&mut self, kind: AnomalyKind) -> Result<()> {
        let p = self.partition_with(4)?;
        let c = self.fresh_process();
        self.assign(c, &[p], Seek::Beginning, false)?;
        let inv = self.poll_invoke(c, false)?;
        self.poll_ok(c, inv, vec![(p, vec![0, 1])], false)?;
        let inv = self.poll_invoke(c, false)?;
        // A skip jumps from offset 1 over 2 to 3; a step back re-reads 1.
        let second = if kind == AnomalyKind::PollSkip { vec![3] } else { vec![1] };
        self.poll_ok(c, inv, vec![(p, second)], false)?;
        Ok(())
    }

    /// One `nonmonotonic-send` (one process) or `realtime-cycle` (two): a
    /// send acknowledged before a second one starts lands after it.
    fn sends_landing_reversed(&mut self, kind: AnomalyKind, p: usize) -> Result<()> {
        let s1 = self.fresh_process();
        let s2 = if kind == AnomalyKind::NonmonotonicSend { s1 } else { self.fresh_process() };
        let (a, b) = (self.fresh(), self.fresh());
        let x = self.logs[p].len() as u64;
        let inv = self.send_invoke(s1, p, &[a])?;
        self.send_complete(s1, inv, p, &[(Some(x + 1), a)], OpType::Ok, None)?;
        let inv = self.send_invoke(s2, p, &[b])?;
        self.append(p, b);
        self.append(p, a);
        self.send_complete(s2, inv, p, &[(Some(x), b)], OpType::Ok, None)?;
        Ok(())
    }

    /// One `order-cycle`: a batch of two acknowledged in an order its
    /// offsets contradict.
    fn batch_landing_reversed(&mut self, p: usize) -> Result<()> {
        let s = self.fresh_process();
        let (a, b) = (self.fresh(), self.fresh());
        let inv = self.send_invoke(s, p, &[a, b])?;
        let xb = self.append(p, b);
        let xa = self.append(p, a);
        self.send_complete(s, inv, p, &[(Some(xa), a), (Some(xb), b)], OpType::Ok, None)?;
        Ok(())
    }

    /// One `inconsistent-offsets`: a value read at an offset that an unclean
    /// election then hands to another value.
    fn inconsistent_offsets(&mut self, p: usize) -> Result<()> {
        let (s1, s2, c) = (self.fresh_process(), self.fresh_process(), self.fresh_process());
        let (u, v) = (self.fresh(), self.fresh());
        let inv_u = self.send_invoke(s1, p, &[u])?;
        let x = self.append(p, u);
        self.assign(c, &[p], Seek::Committed, false)?;
        let inv = self.poll_invoke(c, false)?;
        self.poll_ok(c, inv, vec![(p, vec![x])], false)?;
        self.logs[p].pop(); // an unclean election truncates u
        self.send_complete(s1, inv_u, p, &[(None, u)], OpType::Info, Some("timeout"))?;
        let inv = self.send_invoke(s2, p, &[v])?;
        let x2 = self.append(p, v);
        self.send_complete(s2, inv, p, &[(Some(x2), v)], OpType::Ok, None)?;
        Ok(())
    }

    /// One `lost-enqueued`: the producer dies with the record buffered, in
    /// flight, or after its batch expired: never appended.
    fn lost_enqueued(&mut self, p: usize) -> Result<()> {
        let s = self.fresh_process();
        let v = self.fresh();
        self.enqueue(s, p, &[v], OpType::Ok)?;
        let fate = self.rng.below(3);
        if fate > 0 {
            let inv = self.send_invoke(s, p, &[v])?;
            let (t, err) =
                if fate == 1 { (OpType::Info, "producer killed") } else { (OpType::Fail, "delivery.timeout.ms") };
            self.send_complete(s, inv, p, &[(None, v)], t, Some(err))?;
        }
        Ok(())
    }

    /// One `lost-processing`: a consumer resumes at the committed offset and
    /// polls up to a fresh record. Either it processes what it polled, the
    /// sink refuses the fresh record, and it skips it and commits past it;
    /// or it commits first and dies mid-transaction on the fresh record.
    /// Actor consumers never process that record either, and every record
    /// below its commit was processed: the earlier commits' prefixes were,
    /// and this consumer did the rest.
    fn lost_processing(&mut self, p: usize) -> Result<()> {
        let s = self.fresh_process();
        let v = self.ok_send(s, p, 1)?[0];
        let x = self.logs[p].len() as u64 - 1;
        self.unprocessable.insert((p, v));
        let c = self.fresh_process();
        self.assign(c, &[p], Seek::Committed, false)?;
        let from = self.committed[p];
        let inv = self.poll_invoke(c, false)?;
        self.poll_ok(c, inv, vec![(p, (from..=x).collect())], false)?;
        let rest: Vec<(usize, u64)> = (from..x)
            .map(|o| (p, o))
            .filter(|&(p, o)| !self.unprocessable.contains(&(p, self.logs[p][o as usize].0)))
            .collect();
        let skip = self.rng.chance(500);
        if !skip {
            self.commit_ok(c, p, x + 1)?;
        }
        if !rest.is_empty() {
            self.process_op(c, SCRIPT_SLOT, &rest, OpType::Ok, true)?;
        }
        let t = if skip { OpType::Fail } else { OpType::Info };
        self.process_op(c, SCRIPT_SLOT, &[(p, x)], t, true)?;
        if skip {
            self.commit_ok(c, p, x + 1)?;
        }
        Ok(())
    }

    /// One `duplicate-processing`: a record processed into a plain sink,
    /// then redelivered to a replacement that had no commit to resume from.
    fn duplicate_processing(&mut self, p: usize) -> Result<()> {
        let s = self.fresh_process();
        let v = self.ok_send(s, p, 1)?[0];
        let x = self.logs[p].len() as u64 - 1;
        for _ in 0..2 {
            let c = self.fresh_process();
            self.assign(c, &[p], Seek::Committed, false)?;
            let inv = self.poll_invoke(c, false)?;
            self.poll_ok(c, inv, vec![(p, vec![x])], false)?;
            self.process_op(c, SCRIPT_SLOT, &[(p, x)], OpType::Ok, false)?;
        }
        debug_assert!(self.in_sink.contains(&(p, v)));
        Ok(())
    }
}
