//! The fast path for the lines that make up nearly every history: a client's
//! `send`, `enqueue`, `process` or `poll`, with integer or plain-string
//! record values. Such a line is scanned straight into a [`FastOp`] whose
//! names and values point into the block of text it came from, so reading it
//! allocates nothing.
//!
//! Any line that is not exactly of that shape (another `f`, the nemesis, an
//! escape, a float, an unknown key, keys out of the usual order) makes
//! [`parse`] return `None`, and the line goes through serde_json and
//! [`Op`](crate::op::Op) instead. Both paths fold into the history through
//! the same functions, so they cannot disagree on what a line means.

use super::fold::{Head, ValRef};
use super::scan::Scan;
use super::{Kind, kind_name};
use crate::op::{OpType, Process};

/// A byte range of a block's text.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    pub start: u32,
    pub end: u32,
}

/// A record value as the line wrote it.
#[derive(Debug, Clone, Copy)]
pub(super) enum FastValue {
    Int(i64),
    Str(Span),
}

/// One record: `offset` is `None` for a bare value, as in a send invoke.
#[derive(Debug, Clone, Copy)]
pub(super) struct FastRec {
    pub offset: Option<u64>,
    pub value: FastValue,
}

/// One partition's records in an op's value.
#[derive(Debug, Clone, Copy)]
pub(super) struct Group {
    /// Index into [`Arena::names`].
    pub name: u32,
    pub start: u32,
    pub end: u32,
}

/// The groups and records of every fast op of a block.
#[derive(Debug, Default)]
pub(super) struct Arena {
    pub groups: Vec<Group>,
    pub recs: Vec<FastRec>,
    /// The block's distinct partition names, so that the fold looks each
    /// up once per block rather than once per group.
    pub names: Vec<Span>,
}

impl Arena {
    pub(super) fn clear(&mut self) {
        self.groups.clear();
        self.recs.clear();
        self.names.clear();
    }
}

/// A hot line, scanned. Its process is a client.
#[derive(Debug, Clone, Copy)]
pub(super) struct FastOp {
    pub index: u64,
    pub time_ns: u64,
    pub process: u64,
    pub invoke_index: Option<u64>,
    pub op_type: OpType,
    pub kind: Kind,
    pub is_final: bool,
    /// `value.atomic`, when the value had it.
    pub atomic: Option<bool>,
    pub error: Option<Span>,
    /// This op's groups: `arena.groups[groups.0 .. groups.1]`.
    pub groups: (u32, u32),
}

impl FastOp {
    /// What folding needs of the line. `text` is its block's.
    pub(super) fn head<'t>(&self, text: &'t [u8]) -> Head<'t> {
        Head {
            index: self.index,
            time_ns: self.time_ns,
            process: Process::Client(self.process),
            invoke_index: self.invoke_index,
            op_type: self.op_type,
            kind: self.kind,
            f: kind_name(self.kind),
            error: self.error.map(|s| s.of(text)),
            is_final: self.is_final,
            atomic: !(self.kind == Kind::Send && self.op_type == OpType::Invoke && self.atomic == Some(false)),
        }
    }

    /// The records, partition by partition, with each partition's index
    /// into [`Arena::names`].
    pub(super) fn groups<'t>(
        &self,
        text: &'t [u8],
        arena: &'t Arena,
    ) -> impl Iterator<Item = (u32, impl Iterator<Item = (Option<u64>, ValRef<'t>)>)> {
        arena.groups[self.groups.0 as usize..self.groups.1 as usize].iter().map(move |g| {
            let recs = arena.recs[g.start as usize..g.end as usize].iter().map(move |r| {
                let value = match r.value {
                    FastValue::Int(i) => ValRef::Int(i),
                    FastValue::Str(s) => ValRef::Str(s.of(text)),
                };
                (r.offset, value)
            });
            (g.name, recs)
        })
    }
}

impl Span {
    /// The text of the span. Spans lie between quotes in lines already
    /// checked to be UTF-8, so this never falls back to "".
    pub(super) fn of(self, text: &[u8]) -> &str {
        std::str::from_utf8(&text[self.start as usize..self.end as usize]).unwrap_or_default()
    }
}

/// Which envelope keys a line has had, one bit each.
mod key {
    pub const INDEX: u16 = 1;
    pub const TIME: u16 = 1 << 1;
    pub const PROCESS: u16 = 1 << 2;
    pub const INVOKE_INDEX: u16 = 1 << 3;
    pub const TYPE: u16 = 1 << 4;
    pub const F: u16 = 1 << 5;
    pub const VALUE: u16 = 1 << 6;
    pub const ERROR: u16 = 1 << 7;
    pub const ERROR_CODE: u16 = 1 << 8;
    pub const NODE: u16 = 1 << 9;
    pub const FINAL: u16 = 1 << 10;
    /// The keys without which serde_json refuses the line.
    pub const REQUIRED: u16 = INDEX | TIME | PROCESS | TYPE | F;
}

fn key_bit(name: &[u8]) -> Option<u16> {
    Some(match name {
        b"index" => key::INDEX,
        b"time" => key::TIME,
        b"process" => key::PROCESS,
        b"invoke_index" => key::INVOKE_INDEX,
        b"type" => key::TYPE,
        b"f" => key::F,
        b"value" => key::VALUE,
        b"error" => key::ERROR,
        b"error_code" => key::ERROR_CODE,
        b"node" => key::NODE,
        b"final" => key::FINAL,
        _ => return None,
    })
}

/// Scans the line `text[start..end]` of a block. On `None` the arena is as
/// it was, and the line is serde_json's to read.
pub(super) fn parse(text: &[u8], start: usize, end: usize, arena: &mut Arena) -> Option<FastOp> {
    let before = (arena.groups.len(), arena.recs.len(), arena.names.len());
    let op = Line { text, line: &text[start..end], base: start as u32, arena }.op();
    if op.is_none() {
        arena.groups.truncate(before.0);
        arena.recs.truncate(before.1);
        arena.names.truncate(before.2);
    }
    op
}

struct Line<'a, 'b> {
    /// The whole block, where earlier lines' partition names are.
    text: &'a [u8],
    line: &'a [u8],
    base: u32,
    arena: &'b mut Arena,
}

impl<'a> Line<'a, '_> {
    fn span(&self, (start, end): (usize, usize)) -> Span {
        Span { start: self.base + start as u32, end: self.base + end as u32 }
    }

    /// The span of `part`, a slice of this line.
    fn span_of(&self, part: &[u8]) -> Span {
        let start = part.as_ptr() as usize - self.line.as_ptr() as usize;
        self.span((start, start + part.len()))
    }

    fn op(mut self) -> Option<FastOp> {
        let first_group = self.arena.groups.len() as u32;
        let mut op = FastOp {
            index: 0,
            time_ns: 0,
            process: 0,
            invoke_index: None,
            op_type: OpType::Invoke,
            kind: Kind::Unknown,
            is_final: false,
            atomic: None,
            error: None,
            groups: (first_group, first_group),
        };
        let (line, blank) = (self.line, op);
        let mut s = Scan::new(line);
        let mut seen = prefix(&mut s, &mut op).unwrap_or(0);
        let laid_out = seen != 0;
        if !laid_out {
            (s, op) = (Scan::new(line), blank);
        }
        let field = |s: &mut Scan<'_>, name: &[u8]| {
            let bit = key_bit(name).filter(|b| seen & b == 0)?;
            seen |= bit;
            self.field(s, bit, seen, &mut op)
        };
        if laid_out {
            s.object_rest(field)?
        } else {
            s.object(field)?
        }
        (s.at_end() && seen & key::REQUIRED == key::REQUIRED).then_some(())?;
        op.groups.1 = self.arena.groups.len() as u32;
        Some(op)
    }

    /// One envelope field. `value` is read by the `f` and `type` before it,
    /// so a line that puts them after it gives up.
    fn field(&mut self, s: &mut Scan<'_>, bit: u16, seen: u16, op: &mut FastOp) -> Option<()> {
        match bit {
            key::INDEX => op.index = s.u64()?,
            key::TIME => op.time_ns = s.u64()?,
            key::PROCESS => op.process = s.u64()?,
            key::INVOKE_INDEX => op.invoke_index = s.opt_u64()?,
            key::TYPE => op.op_type = op_type(s.bytes()?)?,
            key::F => op.kind = kind(s.bytes()?)?,
            key::VALUE if seen & (key::F | key::TYPE) == key::F | key::TYPE => self.value(s, op)?,
            key::ERROR => op.error = s.opt_string()?.map(|r| self.span(r)),
            key::ERROR_CODE | key::NODE => drop(s.opt_string()?),
            key::FINAL => op.is_final = s.bool()?,
            _ => return None,
        }
        Some(())
    }

    fn value(&mut self, s: &mut Scan<'_>, op: &mut FastOp) -> Option<()> {
        if s.try_word(b"null") {
            return Some(());
        }
        match (op.kind, op.op_type) {
            (Kind::Poll, OpType::Ok) | (Kind::Process, _) => self.records_value(s, &mut None, true),
            (Kind::Poll, _) => s.skip_value(1),
            _ => self.records_value(s, &mut op.atomic, false),
        }
    }

    /// `{"records": {...}}`, with `"atomic"` too for sends and enqueues.
    /// `placed` values are `[offset, value]` pairs only.
    fn records_value(&mut self, s: &mut Scan<'_>, atomic: &mut Option<bool>, placed: bool) -> Option<()> {
        let (mut records, mut has_atomic) = (false, false);
        s.object(|s, name| match name {
            b"records" if !records => {
                records = true;
                s.object(|s, partition| {
                    let name = self.span_of(partition);
                    self.group(s, name, placed)
                })
            }
            b"atomic" if !placed && !has_atomic => {
                has_atomic = true;
                *atomic = if s.try_word(b"null") { None } else { Some(s.bool()?) };
                Some(())
            }
            _ => None,
        })?;
        records.then_some(())
    }

    fn group(&mut self, s: &mut Scan<'_>, name: Span, placed: bool) -> Option<()> {
        let name = self.name_id(name);
        let start = self.arena.recs.len() as u32;
        s.array(|s| {
            let rec = if placed { self.placed(s)? } else { self.sent(s)? };
            self.arena.recs.push(rec);
            Some(())
        })?;
        let end = self.arena.recs.len() as u32;
        self.arena.groups.push(Group { name, start, end });
        Some(())
    }

    /// The index of `name` in the block's names, added if new.
    fn name_id(&mut self, name: Span) -> u32 {
        let bytes = &self.text[name.start as usize..name.end as usize];
        let known = self.arena.names.iter().position(|n| &self.text[n.start as usize..n.end as usize] == bytes);
        known.unwrap_or_else(|| {
            self.arena.names.push(name);
            self.arena.names.len() - 1
        }) as u32
    }

    /// A send's record: a bare value, or `[offset or null, value]`.
    fn sent(&self, s: &mut Scan<'_>) -> Option<FastRec> {
        if s.peek()? != b'[' {
            return Some(FastRec { offset: None, value: self.record_value(s)? });
        }
        let mut pair = (None, None);
        let mut n = 0;
        s.array(|s| {
            n += 1;
            match n {
                1 => pair.0 = s.opt_u64()?,
                2 => pair.1 = Some(self.record_value(s)?),
                _ => return None,
            }
            Some(())
        })?;
        Some(FastRec { offset: pair.0, value: pair.1? })
    }

    /// A poll's or process's record: `[offset, value]`.
    fn placed(&self, s: &mut Scan<'_>) -> Option<FastRec> {
        s.eat(b'[')?;
        let offset = s.u64()?;
        s.eat(b',')?;
        let value = self.record_value(s)?;
        s.eat(b']')?;
        Some(FastRec { offset: Some(offset), value })
    }

    fn record_value(&self, s: &mut Scan<'_>) -> Option<FastValue> {
        if s.peek()? == b'"' { Some(FastValue::Str(self.span(s.string()?))) } else { s.i64().map(FastValue::Int) }
    }
}

/// The envelope as the recorder writes it, byte for byte: `{"index":…,
/// "time":…,"process":…[,"invoke_index":…],"type":…,"f":…`. Matching that
/// layout as literals skips scanning and dispatching five keys. The keys it
/// read, or `None` when the line is laid out otherwise (then it is read
/// again from the start, key by key).
fn prefix(s: &mut Scan<'_>, op: &mut FastOp) -> Option<u16> {
    s.try_lit(b"{\"index\":").then_some(())?;
    op.index = s.u64()?;
    s.try_lit(b",\"time\":").then_some(())?;
    op.time_ns = s.u64()?;
    s.try_lit(b",\"process\":").then_some(())?;
    op.process = s.u64()?;
    let mut seen = key::INDEX | key::TIME | key::PROCESS | key::TYPE | key::F;
    if s.try_lit(b",\"invoke_index\":") {
        op.invoke_index = Some(s.u64()?);
        seen |= key::INVOKE_INDEX;
    }
    s.try_lit(b",\"type\":").then_some(())?;
    op.op_type = op_type(s.bytes()?)?;
    s.try_lit(b",\"f\":").then_some(())?;
    op.kind = kind(s.bytes()?)?;
    Some(seen)
}

fn op_type(name: &[u8]) -> Option<OpType> {
    Some(match name {
        b"invoke" => OpType::Invoke,
        b"ok" => OpType::Ok,
        b"fail" => OpType::Fail,
        b"info" => OpType::Info,
        _ => return None,
    })
}

/// The `f`s of the fast path.
fn kind(name: &[u8]) -> Option<Kind> {
    Some(match name {
        b"send" => Kind::Send,
        b"enqueue" => Kind::Enqueue,
        b"poll" => Kind::Poll,
        b"process" => Kind::Process,
        _ => return None,
    })
}
