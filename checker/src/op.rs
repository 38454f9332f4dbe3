//! The public history format: one [`Op`] per JSON line.
//!
//! These types are the contract documented in `docs/history-format.md`. The
//! harness writes histories with them and the checker reads them back, so they
//! serialize both ways and round-trip exactly. An op's `value` is typed by its
//! `f` and `type` (see [`OpValue`]); values of `f`s this crate does not know
//! are kept as raw JSON so that nothing a recorder wrote is lost.

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A record value. Values are unique per partition, which is what lets the
/// checker reason about values instead of offsets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordValue {
    Int(i64),
    Str(String),
}

impl RecordValue {
    /// A record value as the history knows it, from the text a broker
    /// stored: integers stay integers, anything else is a string.
    pub fn from_text(text: &str) -> RecordValue {
        text.parse().map(RecordValue::Int).unwrap_or_else(|_| RecordValue::Str(text.to_owned()))
    }
}

impl fmt::Display for RecordValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordValue::Int(i) => write!(f, "{i}"),
            RecordValue::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl Serialize for RecordValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RecordValue::Int(i) => s.serialize_i64(*i),
            RecordValue::Str(v) => s.serialize_str(v),
        }
    }
}

struct RecordValueVisitor;

impl<'de> Visitor<'de> for RecordValueVisitor {
    type Value = RecordValue;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record value (JSON integer or string)")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RecordValue, E> {
        Ok(RecordValue::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RecordValue, E> {
        i64::try_from(v).map(RecordValue::Int).map_err(|_| E::custom("integer record value does not fit in i64"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RecordValue, E> {
        Ok(RecordValue::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<RecordValue, E> {
        Ok(RecordValue::Str(v))
    }
}

impl<'de> Deserialize<'de> for RecordValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RecordValueVisitor)
    }
}

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

/// A JSON object keyed by partition name (`"<topic>/<partition>"`), kept in
/// file order. A `Vec` rather than a map: ops name one or a few partitions,
/// and a map per op would cost an allocation and hashing per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartMap<V>(pub Vec<(String, V)>);

impl<V> Default for PartMap<V> {
    fn default() -> Self {
        PartMap(Vec::new())
    }
}

impl<V: Serialize> Serialize for PartMap<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for PartMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct M<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for M<V> {
            type Value = PartMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object keyed by partition name")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<PartMap<V>, A::Error> {
                let mut out = Vec::with_capacity(a.size_hint().unwrap_or(1).min(64));
                while let Some((k, v)) = a.next_entry::<String, V>()? {
                    out.push((k, v));
                }
                Ok(PartMap(out))
            }
        }
        d.deserialize_map(M(std::marker::PhantomData))
    }
}

/// One record of a send. Invokes carry bare values (`offset: None`); an `ok`
/// completion carries `[offset, value]` pairs. `[null, value]` is accepted
/// and means "offset unknown", as in `fail`/`info` completions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRecord {
    pub offset: Option<u64>,
    pub value: RecordValue,
}

impl Serialize for SendRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.offset {
            None => self.value.serialize(s),
            Some(o) => {
                let mut q = s.serialize_seq(Some(2))?;
                q.serialize_element(&o)?;
                q.serialize_element(&self.value)?;
                q.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for SendRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SendRecord;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a record value or an [offset, value] pair")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SendRecord, E> {
                Ok(SendRecord { offset: None, value: RecordValueVisitor.visit_i64(v)? })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SendRecord, E> {
                Ok(SendRecord { offset: None, value: RecordValueVisitor.visit_u64(v)? })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SendRecord, E> {
                Ok(SendRecord { offset: None, value: RecordValue::Str(v.to_owned()) })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<SendRecord, A::Error> {
                let offset: Option<u64> = a.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let value: RecordValue = a.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if a.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(SendRecord { offset, value })
            }
        }
        d.deserialize_any(V)
    }
}

/// `f: "send"`, every type.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SendValue {
    pub records: PartMap<Vec<SendRecord>>,
    /// `Some(false)` on an invoke means the records of one partition may be
    /// split into several broker batches. Absent means one atomic batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atomic: Option<bool>,
}

/// `f: "poll"`, type `ok`, and `f: "process"`, every type: `[offset, value]`
/// pairs per partition, in the order the consumer received (or processed)
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PollValue {
    pub records: PartMap<Vec<(u64, RecordValue)>>,
}

/// Where an `assign` puts the consumer's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seek {
    Committed,
    Beginning,
}

/// `f: "assign"`, type `invoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignValue {
    pub partitions: Vec<String>,
    pub seek: Seek,
}

/// `f: "commit"`, type `invoke`: the next offset to consume per partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitValue {
    pub group: String,
    pub offsets: PartMap<u64>,
}

/// `f: "drain"`, type `invoke`: the final reader's end offset per partition.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DrainTargets {
    pub targets: PartMap<u64>,
}

/// `f: "drain"`, type `ok`: whether the final reader reached each target.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DrainComplete {
    pub complete: PartMap<bool>,
}

/// An op's `value`, typed by its `f` and `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum OpValue {
    Send(SendValue),
    /// `f: "enqueue"`, every type: bare values per partition, the shape of a
    /// send invoke. An ok enqueue means the records were accepted into the
    /// producer's in-memory buffer; a fail means they never were.
    Enqueue(SendValue),
    Poll(PollValue),
    /// `f: "process"`, every type: the records a consumer wrote into its
    /// downstream sink, in the shape of an ok poll. Ok means the sink's
    /// transaction committed.
    Process(PollValue),
    Assign(AssignValue),
    Commit(CommitValue),
    DrainTargets(DrainTargets),
    DrainComplete(DrainComplete),
    /// Anything else: values of nemesis ops, of unknown `f`s, of invokes that
    /// carry nothing (`poll`), and of completions whose value the checker does
    /// not read (`assign`, `commit`, failed drains). `Null` when absent.
    Other(serde_json::Value),
}

impl Serialize for OpValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OpValue::Send(v) | OpValue::Enqueue(v) => v.serialize(s),
            OpValue::Poll(v) | OpValue::Process(v) => v.serialize(s),
            OpValue::Assign(v) => v.serialize(s),
            OpValue::Commit(v) => v.serialize(s),
            OpValue::DrainTargets(v) => v.serialize(s),
            OpValue::DrainComplete(v) => v.serialize(s),
            OpValue::Other(v) => v.serialize(s),
        }
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

impl OpValue {
    /// No value: the `value` key is left out.
    pub fn none() -> OpValue {
        OpValue::Other(serde_json::Value::Null)
    }
}

/// The envelope of a line with its `value` still unparsed; generic over how
/// the value is held so that the streaming parser can borrow it from the line
/// while `Deserialize for Op` owns it.
#[derive(Deserialize)]
pub(crate) struct RawOp<'a, V> {
    pub index: u64,
    pub time: u64,
    pub process: Process,
    #[serde(default)]
    pub invoke_index: Option<u64>,
    #[serde(rename = "type")]
    pub op_type: OpType,
    #[serde(borrow)]
    pub f: std::borrow::Cow<'a, str>,
    pub value: Option<V>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(rename = "final", default)]
    pub is_final: bool,
}

/// Something an op's value can be parsed from: borrowed raw JSON text in the
/// streaming parser, or an owned `serde_json::Value` in `Deserialize for Op`.
pub(crate) trait ValueSource {
    fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error>;
    fn to_json(&self) -> Result<serde_json::Value, serde_json::Error>;
    fn is_null(&self) -> bool;
}

impl ValueSource for &serde_json::value::RawValue {
    fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.get())
    }
    fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(self.get())
    }
    fn is_null(&self) -> bool {
        self.get() == "null"
    }
}

impl ValueSource for serde_json::Value {
    fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(self)
    }
    fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        Ok(self.clone())
    }
    fn is_null(&self) -> bool {
        self.is_null()
    }
}

/// Types `value` by `f` and `type`. Fails only when a value the checker
/// relies on has the wrong shape.
pub(crate) fn decode_value<V: ValueSource>(
    f: &str,
    op_type: OpType,
    value: Option<&V>,
) -> Result<OpValue, serde_json::Error> {
    let Some(v) = value.filter(|v| !v.is_null()) else {
        return Ok(OpValue::Other(serde_json::Value::Null));
    };
    Ok(match (f, op_type) {
        ("send", _) => OpValue::Send(v.parse()?),
        ("enqueue", _) => OpValue::Enqueue(v.parse()?),
        ("process", _) => OpValue::Process(v.parse()?),
        ("poll", OpType::Ok) => OpValue::Poll(v.parse()?),
        ("assign", OpType::Invoke) => OpValue::Assign(v.parse()?),
        ("commit", OpType::Invoke) => OpValue::Commit(v.parse()?),
        ("drain", OpType::Invoke) => OpValue::DrainTargets(v.parse()?),
        ("drain", OpType::Ok) => OpValue::DrainComplete(v.parse()?),
        _ => OpValue::Other(v.to_json()?),
    })
}

impl<V: ValueSource> RawOp<'_, V> {
    pub(crate) fn into_op(self) -> Result<Op, serde_json::Error> {
        let value = decode_value(&self.f, self.op_type, self.value.as_ref())?;
        Ok(Op {
            index: self.index,
            time_ns: self.time,
            process: self.process,
            invoke_index: self.invoke_index,
            op_type: self.op_type,
            f: F::parse(&self.f, self.process),
            value,
            error: self.error,
            error_code: self.error_code,
            node: self.node,
            is_final: self.is_final,
        })
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawOp::<serde_json::Value>::deserialize(d)?;
        raw.into_op().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every typed value round-trips through JSON unchanged.
    #[test]
    fn ops_round_trip() {
        let lines = [
            r#"{"index":0,"time":5,"process":3,"type":"invoke","f":"send","value":{"records":{"events/2":[1,"a"]}}}"#,
            r#"{"index":1,"time":9,"process":3,"invoke_index":0,"type":"ok","f":"send","value":{"records":{"events/2":[[0,1],[1,"a"]]}}}"#,
            r#"{"index":2,"time":9,"process":4,"type":"ok","f":"poll","value":{"records":{"events/2":[[0,1]]}},"final":true}"#,
            r#"{"index":3,"time":9,"process":"nemesis","type":"info","f":"kill","value":{"targets":["n1"]},"node":"n1"}"#,
            r#"{"index":4,"time":9,"process":4,"type":"invoke","f":"assign","value":{"partitions":["events/2"],"seek":"beginning"}}"#,
            r#"{"index":5,"time":9,"process":4,"type":"info","f":"send","error":"timeout"}"#,
            r#"{"index":6,"time":9,"process":5,"type":"invoke","f":"enqueue","value":{"records":{"events/2":[7]}}}"#,
            r#"{"index":7,"time":9,"process":5,"invoke_index":6,"type":"fail","f":"enqueue","value":{"records":{"events/2":[7]}},"error":"max.block.ms"}"#,
            r#"{"index":8,"time":9,"process":4,"type":"invoke","f":"process","value":{"records":{"events/2":[[0,1],[1,"a"]]}}}"#,
            r#"{"index":9,"time":9,"process":4,"invoke_index":8,"type":"info","f":"process","value":{"records":{"events/2":[[0,1],[1,"a"]]}},"error":"killed"}"#,
            r#"{"index":10,"time":9,"process":4,"type":"invoke","f":"commit","value":{"group":"g","offsets":{"events/2":2}}}"#,
        ];
        for line in lines {
            let op: Op = serde_json::from_str(line).unwrap();
            let back = serde_json::to_string(&op).unwrap();
            assert_eq!(back, line);
        }
    }

    /// `F`'s names and its parser agree; the nemesis's ops are faults.
    #[test]
    fn f_names_parse_back() {
        let client = [F::Send, F::Poll, F::Commit, F::Assign, F::Enqueue, F::Process, F::Drain];
        for f in client {
            assert_eq!(F::parse(f.name(), Process::Client(0)), f);
        }
        assert_eq!(F::parse("kill", Process::Nemesis), F::Fault("kill".into()));
        assert_eq!(F::parse("frob", Process::Client(0)), F::Other("frob".into()));
    }

    /// `[null, v]` in a send completion means an unknown offset.
    #[test]
    fn null_offset_pairs_are_unknown_offsets() {
        let op: Op = serde_json::from_str(
            r#"{"index":1,"time":1,"process":0,"type":"info","f":"send","value":{"records":{"t/0":[[null,7]]}}}"#,
        )
        .unwrap();
        let OpValue::Send(s) = op.value else { panic!("not a send: {:?}", op.value) };
        assert_eq!(s.records.0[0].1, vec![SendRecord { offset: None, value: RecordValue::Int(7) }]);
    }
}
