//! An op's `value`, typed by its `f` and `type`, and the records and
//! partition maps the values are made of. Each type serializes to exactly
//! the JSON it was read from.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
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

/// `f: "assign"`, type `invoke`. A consumer that subscribes records each
/// assignment its group gave it, with the group and the generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignValue {
    pub partitions: Vec<String>,
    pub seek: Seek,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i32>,
}

impl AssignValue {
    /// A consumer's own assignment, outside any group generation.
    pub fn manual(partitions: Vec<String>, seek: Seek) -> AssignValue {
        AssignValue { partitions, seek, group: None, generation: None }
    }
}

/// `f: "revoke"`, type `invoke`: the partitions a subscribing consumer gave
/// up when its group rebalanced, and the generation they belonged to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeValue {
    pub partitions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i32>,
}

/// `f: "commit"`, type `invoke`: the next offset to consume per partition.
/// A group member's commit names its generation and member id; a simple
/// consumer's names neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitValue {
    pub group: String,
    pub offsets: PartMap<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
}

impl CommitValue {
    /// A simple consumer's commit: no member, no generation.
    pub fn simple(group: String, offsets: PartMap<u64>) -> CommitValue {
        CommitValue { group, offsets, generation: None, member: None }
    }
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
    Revoke(RevokeValue),
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
            OpValue::Revoke(v) => v.serialize(s),
            OpValue::Commit(v) => v.serialize(s),
            OpValue::DrainTargets(v) => v.serialize(s),
            OpValue::DrainComplete(v) => v.serialize(s),
            OpValue::Other(v) => v.serialize(s),
        }
    }
}

impl OpValue {
    /// No value: the `value` key is left out.
    pub fn none() -> OpValue {
        OpValue::Other(serde_json::Value::Null)
    }
}
