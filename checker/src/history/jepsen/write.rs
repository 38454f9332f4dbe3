//! faultline's ops written as a Jepsen EDN history, the inverse of
//! `convert` for what Jepsen's model has: sends, polls, assigns and the
//! nemesis's ops. For benchmarks and tests (`faultline gen-history --format
//! jepsen`); enqueue, process, commit and drain ops have no Jepsen form and
//! are left out, so the final drain's polls become plain polls.

use std::fmt::Write;

use crate::op::{F, Op, OpType, OpValue, PartMap, Process, RecordValue, Seek};

fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn value(out: &mut String, v: &RecordValue) {
    match v {
        RecordValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        RecordValue::Str(s) => string(out, s),
    }
}

fn sends(out: &mut String, records: &PartMap<Vec<crate::op::SendRecord>>, with_offsets: bool) {
    out.push('[');
    for (p, recs) in &records.0 {
        for r in recs {
            out.push_str("[:send ");
            string(out, p);
            out.push(' ');
            match (with_offsets, r.offset) {
                (true, Some(o)) => {
                    let _ = write!(out, "[{o} ");
                    value(out, &r.value);
                    out.push(']');
                }
                (true, None) => {
                    out.push_str("[nil ");
                    value(out, &r.value);
                    out.push(']');
                }
                (false, _) => value(out, &r.value),
            }
            out.push(']');
        }
    }
    out.push(']');
}

fn polled(out: &mut String, records: &PartMap<Vec<(u64, RecordValue)>>) {
    out.push_str("[[:poll {");
    for (p, recs) in &records.0 {
        string(out, p);
        out.push_str(" [");
        for (o, v) in recs {
            let _ = write!(out, "[{o} ");
            value(out, v);
            out.push(']');
        }
        out.push_str("] ");
    }
    out.push_str("}]]");
}

/// The op as one EDN line (no newline), numbered `index`; `None` for ops
/// Jepsen's model has no form for.
pub fn edn_line(op: &Op, index: u64) -> Option<String> {
    let t = match op.op_type {
        OpType::Invoke => "invoke",
        OpType::Ok => "ok",
        OpType::Fail => "fail",
        OpType::Info => "info",
    };
    let mut out = format!("{{:index {index}, :time {}, :type :{t}, ", op.time_ns);
    let process = match op.process {
        Process::Client(p) => p,
        Process::Nemesis => {
            let _ = write!(out, ":process :nemesis, :f :{}}}", op.f.name());
            return Some(out);
        }
    };
    let _ = write!(out, ":process {process}, ");
    match (&op.f, &op.value) {
        (F::Send, OpValue::Send(s)) => {
            out.push_str(":f :send, :value ");
            sends(&mut out, &s.records, op.op_type == OpType::Ok);
        }
        (F::Send, _) => out.push_str(":f :send, :value nil"),
        (F::Poll, OpValue::Poll(p)) if op.op_type == OpType::Ok => {
            out.push_str(":f :poll, :value ");
            polled(&mut out, &p.records);
        }
        (F::Poll, _) => out.push_str(":f :poll, :value [[:poll]]"),
        (F::Assign, OpValue::Assign(a)) => {
            out.push_str(":f :assign, :value [");
            for p in &a.partitions {
                string(&mut out, p);
                out.push(' ');
            }
            out.push(']');
            if a.seek == Seek::Beginning {
                out.push_str(", :seek-to-beginning? true");
            }
        }
        (F::Assign, _) => out.push_str(":f :assign, :value nil"),
        _ => return None,
    }
    out.push('}');
    Some(out)
}
