//! One Jepsen op (an EDN map) to faultline's ops. Keys become partitions
//! named by the key's EDN text (`3`, `"k1"`), values stay values.
//!
//! - `:send`, its `[:send k v]` micro-ops: a `send` op; an ok completion's
//!   `[:send k [offset v]]` gives the acknowledged offsets (`nil`: unknown).
//! - `:poll`, its `[:poll]` micro-ops: a `poll` op; an ok completion's
//!   `[:poll {k [[offset v] ...]}]` gives what was read.
//! - `:txn`: its sends as a `send` op, then its polls as a `poll` op at the
//!   completion's time. The order inside the transaction is not checked.
//! - `:assign [k ...]`: an `assign` (`:seek-to-beginning? true` seeks to
//!   the beginning). `:subscribe [k ...]`: an `assign` too, and since the
//!   rebalances are not in the history, each later poll of that process
//!   starts a new assignment: a skip is checked inside one poll only.
//! - A `:nemesis` process's ops: faults, by their `:f`. Any other `:f`
//!   (`:crash`, `:debug-topic-partitions`, …): kept, and ignored with a count.

use std::collections::HashMap;

use super::edn::Edn;
use crate::op::{
    AssignValue, F, Op, OpType, OpValue, PartMap, PollValue, Process, RecordValue, Seek, SendRecord, SendValue,
};

/// Why a Jepsen op could not be read; the caller adds the line.
pub type Refusal = String;

/// State across ops: which processes subscribe, which invokes were
/// transactions, and what was noted for the verdict.
#[derive(Default)]
pub struct Converter {
    next_index: u64,
    last_time_ns: u64,
    /// Per process: the keys it subscribed to.
    subscribed: HashMap<u64, Vec<String>>,
    /// Per process: what its open `:txn` invoke held (sends, polls), which
    /// its completion's ops follow whatever the completion's own value says.
    open: HashMap<u64, (bool, bool)>,
    pub txns: u64,
    pub subscribes: u64,
}

/// A key's partition name: its EDN text, a string without quotes.
fn partition(k: &Edn<'_>) -> String {
    match k {
        Edn::Str(s) => s.to_string(),
        other => other.to_string(),
    }
}

fn record_value(v: &Edn<'_>) -> Result<RecordValue, Refusal> {
    match v {
        Edn::Int(i) => Ok(RecordValue::Int(*i)),
        Edn::Str(s) => Ok(RecordValue::Str(s.to_string())),
        other => Err(format!("a value must be an integer or a string, not {other}")),
    }
}

fn offset(v: &Edn<'_>) -> Result<Option<u64>, Refusal> {
    match v {
        Edn::Nil => Ok(None),
        Edn::Int(o) if *o >= 0 => Ok(Some(*o as u64)),
        other => Err(format!("an offset must be nil or a non-negative integer, not {other}")),
    }
}

fn push_to<V>(parts: &mut PartMap<Vec<V>>, name: String, item: V) {
    match parts.0.iter_mut().find(|(p, _)| *p == name) {
        Some((_, v)) => v.push(item),
        None => parts.0.push((name, vec![item])),
    }
}

/// The `[:send k v]` (or `[:send k [offset v]]`) micro-ops of `mops`.
fn sends(mops: &[Edn<'_>]) -> Result<PartMap<Vec<SendRecord>>, Refusal> {
    let mut parts = PartMap::default();
    for m in mops.iter().filter(|m| m.items().first().and_then(Edn::keyword) == Some("send")) {
        let [_, k, v] = m.items() else { return Err("a send micro-op is [:send key value]".into()) };
        let record = match v {
            Edn::Seq(pair) if pair.len() == 2 => {
                SendRecord { offset: offset(&pair[0])?, value: record_value(&pair[1])? }
            }
            v => SendRecord { offset: None, value: record_value(v)? },
        };
        push_to(&mut parts, partition(k), record);
    }
    Ok(parts)
}

/// What the `[:poll {k [[offset v] ...]}]` micro-ops of `mops` read.
fn polls(mops: &[Edn<'_>]) -> Result<PartMap<Vec<(u64, RecordValue)>>, Refusal> {
    let mut parts = PartMap::default();
    for m in mops.iter().filter(|m| m.items().first().and_then(Edn::keyword) == Some("poll")) {
        let Some(Edn::Map(read)) = m.items().get(1) else { continue };
        for (k, pairs) in read {
            for pair in pairs.items() {
                let [o, v] = pair.items() else { return Err("a polled record is [offset value]".into()) };
                let o = offset(o)?.ok_or("a polled record's offset is nil")?;
                push_to(&mut parts, partition(k), (o, record_value(v)?));
            }
        }
    }
    Ok(parts)
}

fn has(mops: &[Edn<'_>], name: &str) -> bool {
    mops.iter().any(|m| m.items().first().and_then(Edn::keyword) == Some(name))
}

impl Converter {
    /// Ops converted so far.
    pub fn ops_written(&self) -> u64 {
        self.next_index
    }

    fn op(&mut self, t: OpType, process: Process, time_ns: u64, f: F, value: OpValue) -> Op {
        let mut op = Op::new(t, process, f, value);
        op.index = self.next_index;
        op.time_ns = time_ns;
        self.next_index += 1;
        op
    }

    /// The faultline ops of one Jepsen op, in order.
    pub fn convert(&mut self, map: &Edn<'_>) -> Result<Vec<Op>, Refusal> {
        let t = match map.get("type").and_then(Edn::keyword) {
            Some("invoke") => OpType::Invoke,
            Some("ok") => OpType::Ok,
            Some("fail") => OpType::Fail,
            Some("info") => OpType::Info,
            _ => return Err(":type must be :invoke, :ok, :fail or :info".into()),
        };
        let f = map.get("f").and_then(Edn::keyword).ok_or(":f must be a keyword")?.to_owned();
        // Time never goes back, even where a history has none.
        let time_ns = match map.get("time") {
            Some(Edn::Int(t)) if *t >= 0 => (*t as u64).max(self.last_time_ns),
            _ => self.last_time_ns,
        };
        self.last_time_ns = time_ns;
        let error = map.get("error").map(|e| match e {
            Edn::Str(s) => s.to_string(),
            other => other.to_string(),
        });
        let process = match map.get("process") {
            Some(Edn::Int(p)) if *p >= 0 => *p as u64,
            Some(Edn::Keyword(k)) if k == "nemesis" => {
                let value = OpValue::Other(serde_json::Value::Null);
                return Ok(vec![self.op(t, Process::Nemesis, time_ns, F::Fault(f), value)]);
            }
            _ => return Err(":process must be a non-negative integer or :nemesis".into()),
        };
        let value = map.get("value").unwrap_or(&Edn::Nil);
        let mut ops = self.client_ops(t, process, time_ns, &f, value, map)?;
        if let Some(e) = error.filter(|_| t != OpType::Invoke) {
            for op in ops.iter_mut().filter(|o| o.op_type != OpType::Invoke) {
                op.error = Some(e.clone());
            }
        }
        Ok(ops)
    }

    fn client_ops(
        &mut self,
        t: OpType,
        p: u64,
        time_ns: u64,
        f: &str,
        value: &Edn<'_>,
        map: &Edn<'_>,
    ) -> Result<Vec<Op>, Refusal> {
        let client = Process::Client(p);
        let none = OpValue::none;
        Ok(match f {
            "send" | "poll" | "txn" => return self.mops(t, p, time_ns, f, value.items()),
            "assign" | "subscribe" => {
                let keys: Vec<String> = value.items().iter().map(partition).collect();
                if f == "subscribe" && t == OpType::Invoke {
                    self.subscribes += 1;
                    self.subscribed.insert(p, keys.clone());
                }
                if (f == "assign" && t == OpType::Invoke) || (f == "subscribe" && t == OpType::Fail) {
                    self.subscribed.remove(&p);
                }
                let beginning = map.get("seek-to-beginning?") == Some(&Edn::Bool(true));
                let seek = if beginning { Seek::Beginning } else { Seek::Committed };
                let v = if t == OpType::Invoke { OpValue::Assign(AssignValue::manual(keys, seek)) } else { none() };
                vec![self.op(t, client, time_ns, F::Assign, v)]
            }
            other => vec![self.op(t, client, time_ns, F::Other(other.to_owned()), none())],
        })
    }

    /// A `:send`, `:poll` or `:txn` op's micro-ops, as a send op, a poll
    /// op, or both in that order.
    fn mops(&mut self, t: OpType, p: u64, time_ns: u64, f: &str, mops: &[Edn<'_>]) -> Result<Vec<Op>, Refusal> {
        let client = Process::Client(p);
        let shape = match (f, t) {
            ("send", _) => (true, false),
            ("poll", _) => (false, true),
            (_, OpType::Invoke) => (has(mops, "send"), has(mops, "poll")),
            // A completion follows its invoke (its value may be nil).
            _ => self.open.get(&p).copied().unwrap_or((has(mops, "send"), has(mops, "poll"))),
        };
        let (with_send, with_poll) = shape;
        let mut out = Vec::new();
        if t == OpType::Invoke {
            if f == "txn" {
                self.txns += 1;
                self.open.insert(p, shape);
            }
            if with_send {
                out.push(self.op(
                    t,
                    client,
                    time_ns,
                    F::Send,
                    OpValue::Send(SendValue { records: sends(mops)?, atomic: None }),
                ));
                return Ok(out);
            }
            out.extend(self.resubscribe(p, time_ns));
            out.push(self.op(t, client, time_ns, F::Poll, OpValue::none()));
            return Ok(out);
        }
        if f == "txn" {
            self.open.remove(&p);
        }
        if with_send {
            let v = if t == OpType::Ok {
                OpValue::Send(SendValue { records: sends(mops)?, atomic: None })
            } else {
                OpValue::none()
            };
            out.push(self.op(t, client, time_ns, F::Send, v));
            if !with_poll {
                return Ok(out);
            }
            // The transaction's polls, as their own op after its sends.
            out.extend(self.resubscribe(p, time_ns));
            out.push(self.op(OpType::Invoke, client, time_ns, F::Poll, OpValue::none()));
        }
        let v = if t == OpType::Ok { OpValue::Poll(PollValue { records: polls(mops)? }) } else { OpValue::none() };
        out.push(self.op(t, client, time_ns, F::Poll, v));
        Ok(out)
    }

    /// A subscribing process's poll starts a new assignment of its keys.
    fn resubscribe(&mut self, p: u64, time_ns: u64) -> Vec<Op> {
        let Some(keys) = self.subscribed.get(&p).cloned() else { return Vec::new() };
        let client = Process::Client(p);
        let value = OpValue::Assign(AssignValue::manual(keys, Seek::Committed));
        vec![
            self.op(OpType::Invoke, client, time_ns, F::Assign, value),
            self.op(OpType::Ok, client, time_ns, F::Assign, OpValue::none()),
        ]
    }
}
