//! The public history format: one [`Op`] per JSON line.
//!
//! These types are the contract documented in `docs/history-format.md`. The
//! harness writes histories with them and the checker reads them back, so they
//! serialize both ways and round-trip exactly. An op's `value` is typed by its
//! `f` and `type` (see [`OpValue`]); values of `f`s this crate does not know
//! are kept as raw JSON so that nothing a recorder wrote is lost.
//!
//! # Layout
//! - this module: the envelope ([`Op`], [`OpType`], [`Process`], [`F`]).
//! - `value`: the typed values ([`OpValue`] and what it holds).
//! - `decode`: reading a line's `value` once its `f` and `type` are known.

mod decode;
#[cfg(test)]
mod tests;
mod value;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

pub(crate) use decode::RawOp;
pub use value::{
    AssignValue, CommitValue, DrainComplete, DrainTargets, OpValue, PartMap, PollValue, RecordValue, RevokeValue, Seek,
    SendRecord, SendValue,
};

/// What kind of history line this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    /// Definitely done.
    Ok,
    /// Definitely not done.
    Fail,
    /// Unknown outcome.
    Info,
}

impl OpType {
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }
}

/// Who performed an op: a logical client thread or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Process;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer or \"nemesis\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Process, E> {
                Ok(Process::Client(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Process, E> {
                u64::try_from(v).map(Process::Client).map_err(|_| E::custom("process must not be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Process, E> {
                if v == "nemesis" { Ok(Process::Nemesis) } else { Err(E::custom(format!("unknown process {v:?}"))) }
            }
        }
        d.deserialize_any(V)
    }
}

/// What an op does: its `f`. Client ops have a variant each; ops of the
/// nemesis process are [`F::Fault`] under the nemesis's own fault names;
/// any other `f` is kept as [`F::Other`], so that a history from a newer
/// recorder still reads. Serialized as the plain string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum F {
    Send,
    Poll,
    Commit,
    Assign,
    /// A subscribing consumer gave up partitions in a rebalance.
    Revoke,
    Enqueue,
    Process,
    Drain,
    /// A nemesis op: `start-<fault>` when it fires, `<fault>` when it took effect.
    Fault(String),
    Other(String),
}

impl F {
    /// The `f` string of the history format.
    pub fn name(&self) -> &str {
        match self {
            F::Send => "send",
            F::Poll => "poll",
            F::Commit => "commit",
            F::Assign => "assign",
            F::Revoke => "revoke",
            F::Enqueue => "enqueue",
            F::Process => "process",
            F::Drain => "drain",
            F::Fault(name) | F::Other(name) => name,
        }
    }

    /// Reads an `f` written by `process`: the nemesis's ops are faults.
    pub fn parse(name: &str, process: Process) -> F {
        if process == Process::Nemesis {
            return F::Fault(name.to_owned());
        }
        match name {
            "send" => F::Send,
            "poll" => F::Poll,
            "commit" => F::Commit,
            "assign" => F::Assign,
            "revoke" => F::Revoke,
            "enqueue" => F::Enqueue,
            "process" => F::Process,
            "drain" => F::Drain,
            other => F::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for F {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for F {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One line of a history.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// Dense from 0 in file order.
    pub index: u64,
    /// `CLOCK_MONOTONIC` of the performing host, nanoseconds since test start.
    pub time_ns: u64,
    pub process: Process,
    /// On completions: the `index` of the invoke they complete.
    pub invoke_index: Option<u64>,
    pub op_type: OpType,
    pub f: F,
    pub value: OpValue,
    /// Free text for people.
    pub error: Option<String>,
    /// The error's machine-readable name next to [`Op::error`]: Kafka's
    /// error name (`NOT_ENOUGH_REPLICAS`), or `timeout`, `disconnected`, ….
    /// Campaigns match on it, never on the text.
    pub error_code: Option<String>,
    pub node: Option<String>,
    /// True on ops of the final drain phase.
    pub is_final: bool,
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("index", &self.index)?;
        m.serialize_entry("time", &self.time_ns)?;
        m.serialize_entry("process", &self.process)?;
        if let Some(i) = self.invoke_index {
            m.serialize_entry("invoke_index", &i)?;
        }
        m.serialize_entry("type", &self.op_type)?;
        m.serialize_entry("f", &self.f)?;
        if !matches!(self.value, OpValue::Other(serde_json::Value::Null)) {
            m.serialize_entry("value", &self.value)?;
        }
        if let Some(e) = &self.error {
            m.serialize_entry("error", e)?;
        }
        if let Some(c) = &self.error_code {
            m.serialize_entry("error_code", c)?;
        }
        if let Some(n) = &self.node {
            m.serialize_entry("node", n)?;
        }
        if self.is_final {
            m.serialize_entry("final", &true)?;
        }
        m.end()
    }
}

/// The `error_code`s a recorder uses besides Kafka's error names, with
/// what each means (`docs/history-format.md` lists the same).
pub const ERROR_CODES: &[(&str, &str)] = &[
    ("timeout", "no answer within the request or delivery timeout"),
    ("disconnected", "the connection failed or broke"),
    ("undecodable-response", "the broker answered something that is not the documented body"),
    ("crashed", "the process died with the op open"),
    ("sink-error", "the downstream sink refused a `process`"),
    ("max.block.ms", "the producer's buffer stayed full for max.block.ms"),
    ("buffer.memory", "the batch is larger than the producer's buffer.memory"),
    ("no-ack", "acks=0: the send is never acknowledged"),
    ("no-base-offset", "acknowledged without a base offset"),
];

impl Op {
    /// An op as a recorder makes it: index and time are the history
    /// writer's to set, and it is not part of the final phase.
    pub fn new(op_type: OpType, process: Process, f: F, value: OpValue) -> Op {
        Op {
            index: 0,
            time_ns: 0,
            process,
            invoke_index: None,
            op_type,
            f,
            value,
            error: None,
            error_code: None,
            node: None,
            is_final: false,
        }
    }

    /// A client's invoke.
    pub fn invoke(process: u64, f: F, value: OpValue) -> Op {
        Op::new(OpType::Invoke, Process::Client(process), f, value)
    }

    /// A client's completion of type `op_type`.
    pub fn complete(op_type: OpType, process: u64, f: F, value: OpValue) -> Op {
        Op::new(op_type, Process::Client(process), f, value)
    }

    /// The same op with an error: `code` is its machine-readable name.
    pub fn with_error(mut self, code: Option<&str>, text: impl Into<String>) -> Op {
        self.error = Some(text.into());
        self.error_code = code.map(str::to_owned);
        self
    }

    /// The same op, stamped at `time_ns`.
    pub fn at(mut self, time_ns: u64) -> Op {
        self.time_ns = time_ns;
        self
    }

    /// The same op, marked as part of the final drain phase.
    pub fn in_final_phase(mut self) -> Op {
        self.is_final = true;
        self
    }
}
