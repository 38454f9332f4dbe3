//! How a client process reports: one op of the public history format per
//! stdout line, stamped with `CLOCK_MONOTONIC`, and the logical process ids
//! it reports under.

use std::io::Write;
use std::sync::Arc;

use faultline_checker::op::{Op, OpType, PartMap, RecordValue, SendRecord, SendValue};
use faultline_client::api::Acks as WireAcks;
use faultline_client::{ClientError, SendOutcome};
use parking_lot::Mutex;

use crate::history::monotonic_ns;

/// Writes one event line, stamped now; a closed stdout means the harness is
/// gone, and nobody records what this process does any more.
pub fn emit(op: Op) {
    emit_at(op, monotonic_ns());
}

/// Writes one event line stamped `time_ns` (`CLOCK_MONOTONIC`): for an op
/// whose invoke and completion are known at one moment.
pub fn emit_at(op: Op, time_ns: u64) {
    let mut line = serde_json::to_vec(&op.at(time_ns)).expect("ops serialize");
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    if out.write_all(&line).and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// The same op with a client error, its code and its text.
pub fn with_client_error(op: Op, e: &ClientError) -> Op {
    op.with_error(Some(&e.code_name()), e.to_string())
}

pub fn part_name(topic: &str, p: u32) -> String {
    format!("{topic}/{p}")
}

/// This client's process ids: `first, first + stride, ...`. Each logical
/// thread (the application loop, each in-flight slot of a partition, a
/// queue worker) takes one, and takes a new one after an `info` op, so no
/// id ever has two ops open.
#[derive(Clone)]
pub struct Ids(Arc<Mutex<(u64, u64)>>);

impl Ids {
    pub fn new(first: u64, stride: u64) -> Ids {
        Ids(Arc::new(Mutex::new((first, stride))))
    }

    /// The next unused id. With stride 0 (one logical thread) the id is kept.
    pub fn take(&self) -> u64 {
        let mut g = self.0.lock();
        let id = g.0;
        g.0 += g.1;
        id
    }
}

/// Bare values of one partition: a send or enqueue invoke's value.
pub fn bare(name: &str, values: &[i64]) -> SendValue {
    SendValue {
        records: PartMap(vec![(
            name.to_string(),
            values.iter().map(|&v| SendRecord { offset: None, value: RecordValue::Int(v) }).collect(),
        )]),
        atomic: None,
    }
}

/// A send's completion as the history records it (R1.10): its type, value
/// and error text.
pub fn send_completion(
    acks: WireAcks,
    name: &str,
    values: &[i64],
    outcome: &SendOutcome,
) -> (OpType, SendValue, Option<SendError>) {
    let error = |code: &str, text: &str| Some(SendError { code: code.to_string(), text: text.to_string() });
    match outcome {
        SendOutcome::Acked { .. } if acks == WireAcks::None => {
            (OpType::Info, bare(name, values), error("no-ack", "acks=0: never acknowledged"))
        }
        SendOutcome::Acked { base_offset: Some(base), .. } if *base >= 0 => {
            let recs = values
                .iter()
                .enumerate()
                .map(|(i, &v)| SendRecord { offset: Some(*base as u64 + i as u64), value: RecordValue::Int(v) })
                .collect();
            (OpType::Ok, SendValue { records: PartMap(vec![(name.to_string(), recs)]), atomic: None }, None)
        }
        SendOutcome::Acked { .. } => {
            (OpType::Info, bare(name, values), error("no-base-offset", "acknowledged without a base offset"))
        }
        SendOutcome::Failed { error: text, code, .. } => (OpType::Fail, bare(name, values), error(code, text)),
        SendOutcome::Unknown { error: text, code, .. } => (OpType::Info, bare(name, values), error(code, text)),
    }
}

/// Why a send did not end `ok`: the history's `error_code` and `error`.
pub struct SendError {
    pub code: String,
    pub text: String,
}

impl SendError {
    /// The op with this error, if there is one.
    pub fn on(op: Op, error: Option<SendError>) -> Op {
        match error {
            Some(e) => op.with_error(Some(&e.code), e.text),
            None => op,
        }
    }
}
