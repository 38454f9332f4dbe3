//! Reading an op from JSON in two steps: the envelope first, with `value`
//! left unparsed, then `value` typed by the envelope's `f` and `type`. The
//! streaming parser borrows the value from the line; `Deserialize for Op`
//! owns it.

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer};

use super::{F, Op, OpType, OpValue, Process};

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
        ("revoke", OpType::Invoke) => OpValue::Revoke(v.parse()?),
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
