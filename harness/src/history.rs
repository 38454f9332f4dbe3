//! The run's single history writer: every client process's events arrive
//! here, in arrival order, and leave as `history.jsonl` lines in the
//! checker's public format (`faultline_checker::op::Op`, so the format has
//! one definition).
//!
//! The writer assigns `index` densely in arrival order, subtracts the run's
//! start from each event's `CLOCK_MONOTONIC` stamp (stamps are never
//! otherwise adjusted), pairs each completion with its process's open
//! invoke (`invoke_index`), and turns the open invoke of a process that died
//! into an `info` op, as Jepsen does. Each line is flushed as written, so a
//! crashed harness leaves at most one torn last line, which the checker
//! skips.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, bail};
use faultline_checker::op::{F, Op, OpType, OpValue, Process};

/// `CLOCK_MONOTONIC` now, in nanoseconds: comparable across the processes
/// of this host, which is what the history's `time` requires.
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    (ts.tv_sec() as u64) * 1_000_000_000 + ts.tv_nsec() as u64
}

/// An invoke still waiting for its completion.
struct OpenInvoke {
    index: u64,
    f: F,
    /// Repeated on an `info` send, so the unknown records stay visible in
    /// the completion too (the checker reads them from the invoke anyway).
    value: OpValue,
}

pub struct HistoryWriter {
    out: BufWriter<File>,
    next_index: u64,
    /// The run's start on `CLOCK_MONOTONIC`; subtracted from every stamp.
    start_ns: u64,
    open: HashMap<Process, OpenInvoke>,
    /// `(f, type)` → count, for the run's summary.
    counts: BTreeMap<(String, OpType), u64>,
    /// Per partition: the highest offset an ok send acknowledged so far,
    /// for timeline preconditions.
    acked_max: HashMap<String, u64>,
}

impl HistoryWriter {
    pub fn create(path: &Path, start_ns: u64) -> anyhow::Result<HistoryWriter> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(HistoryWriter {
            out: BufWriter::new(file),
            next_index: 0,
            start_ns,
            open: HashMap::new(),
            counts: BTreeMap::new(),
            acked_max: HashMap::new(),
        })
    }

    /// Records one event of a client. `op.time_ns` is the absolute
    /// `CLOCK_MONOTONIC` stamp taken by the client; `index` and
    /// `invoke_index` are ignored and assigned here. An event that does not
    /// fit the process's open invoke is refused (the client is broken).
    pub fn record(&mut self, mut op: Op) -> anyhow::Result<()> {
        op.time_ns = op.time_ns.saturating_sub(self.start_ns);
        op.invoke_index = None;
        match op.op_type {
            OpType::Invoke => {
                if let Some(open) = self.open.get(&op.process) {
                    bail!("process {} invoked {} while op {} ({}) is still open", op.process, op.f, open.index, open.f);
                }
                self.open.insert(
                    op.process,
                    OpenInvoke { index: self.next_index, f: op.f.clone(), value: op.value.clone() },
                );
            }
            _ => {
                let Some(open) = self.open.remove(&op.process) else {
                    bail!("process {} completed {} without an open invoke", op.process, op.f);
                };
                if open.f != op.f {
                    bail!("process {} completed {} but its open invoke {} is {}", op.process, op.f, open.index, open.f);
                }
                op.invoke_index = Some(open.index);
            }
        }
        self.write(op)
    }

    /// Records a nemesis operation: `process: "nemesis"`, `type: "info"`,
    /// stamped now. Faults are recorded when they start and when they took
    /// effect; neither pairs with an invoke.
    /// The history time (ns since the run's start) of `instant`, a moment
    /// at or before now: how far back it was, taken from the time now.
    pub fn time_of(&self, instant: std::time::Instant) -> u64 {
        let ago = u64::try_from(instant.elapsed().as_nanos()).unwrap_or(u64::MAX);
        monotonic_ns().saturating_sub(self.start_ns).saturating_sub(ago)
    }

    pub fn nemesis(&mut self, f: &str, value: serde_json::Value) -> anyhow::Result<()> {
        let op = Op::new(OpType::Info, Process::Nemesis, F::Fault(f.to_string()), OpValue::Other(value));
        self.write(op.at(monotonic_ns().saturating_sub(self.start_ns)))
    }

    /// The process died (or was given up on): its open invoke, if any,
    /// becomes `info` with `error`, stamped now.
    pub fn crash(&mut self, process: Process, error: &str) -> anyhow::Result<bool> {
        let Some(open) = self.open.remove(&process) else { return Ok(false) };
        // Ops whose records matter keep them: the checker judges what may have happened.
        let value = if matches!(open.f, F::Send | F::Enqueue | F::Process) {
            open.value
        } else {
            OpValue::Other(serde_json::Value::Null)
        };
        let mut op = Op::new(OpType::Info, process, open.f, value)
            .with_error(Some("crashed"), error)
            .at(monotonic_ns().saturating_sub(self.start_ns));
        op.invoke_index = Some(open.index);
        self.write(op)?;
        Ok(true)
    }

    fn write(&mut self, mut op: Op) -> anyhow::Result<()> {
        op.index = self.next_index;
        self.next_index += 1;
        *self.counts.entry((op.f.name().to_owned(), op.op_type)).or_default() += 1;
        if let (OpType::Ok, OpValue::Send(v)) = (op.op_type, &op.value) {
            for (p, recs) in &v.records.0 {
                if let Some(o) = recs.iter().filter_map(|r| r.offset).max() {
                    let m = self.acked_max.entry(p.clone()).or_insert(o);
                    *m = (*m).max(o);
                }
            }
        }
        serde_json::to_writer(&mut self.out, &op).context("serializing an op")?;
        self.out.write_all(b"\n").context("writing history.jsonl")?;
        self.out.flush().context("writing history.jsonl")
    }

    /// The highest offset of `partition` (`topic/N`) acknowledged so far.
    pub fn acked_max(&self, partition: &str) -> Option<u64> {
        self.acked_max.get(partition).copied()
    }

    /// Ops written so far.
    pub fn len(&self) -> u64 {
        self.next_index
    }

    pub fn is_empty(&self) -> bool {
        self.next_index == 0
    }

    pub fn counts(&self) -> &BTreeMap<(String, OpType), u64> {
        &self.counts
    }

    pub fn finish(mut self) -> anyhow::Result<()> {
        self.out.flush().context("writing history.jsonl")?;
        self.out.get_ref().sync_all().context("syncing history.jsonl")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(process: u64, op_type: OpType, f: F, time_ns: u64) -> Op {
        Op::complete(op_type, process, f, OpValue::none()).at(time_ns)
    }

    #[test]
    fn indexes_pairs_and_crashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let mut w = HistoryWriter::create(&path, 1_000).unwrap();
        w.record(op(1, OpType::Invoke, F::Poll, 1_500)).unwrap();
        w.record(op(2, OpType::Invoke, F::Poll, 1_600)).unwrap();
        w.record(op(1, OpType::Ok, F::Poll, 1_700)).unwrap();
        assert!(w.record(op(1, OpType::Ok, F::Poll, 1_800)).is_err(), "no open invoke");
        assert!(w.record(op(2, OpType::Invoke, F::Poll, 1_800)).is_err(), "two open invokes");
        assert!(w.crash(Process::Client(2), "process crashed").unwrap());
        assert!(!w.crash(Process::Client(2), "process crashed").unwrap());
        w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let ops: Vec<Op> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(ops.iter().map(|o| o.index).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        assert_eq!(ops[0].time_ns, 500);
        assert_eq!(ops[2].invoke_index, Some(0));
        assert_eq!(
            (ops[3].op_type, ops[3].invoke_index, ops[3].error.as_deref()),
            (OpType::Info, Some(1), Some("process crashed"))
        );
        assert_eq!(ops[3].error_code.as_deref(), Some("crashed"), "a crash has a machine-readable code");
        assert_eq!(ops.iter().map(|o| &o.f).collect::<Vec<_>>(), [&F::Poll; 4], "typed ops read back as written");
        faultline_checker::History::parse(text.as_bytes()).expect("the checker reads it");
    }
}
