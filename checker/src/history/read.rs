//! The streaming parser, as a pipeline over blocks of about a megabyte of
//! whole lines. A reader thread cuts the input into blocks; one worker per
//! core scans each block's lines, hot ones by the allocation-free fast path
//! and the rest by serde_json; the caller's thread folds the blocks in input
//! order. Blocks go back to the reader to be refilled, so at most
//! `BLOCKS_IN_FLIGHT` exist and memory in flight is bounded.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;

use super::fast::{self, Arena, FastOp};
use super::fold::{PartRef, Place};
use super::{History, NONE, TruncatedLine, malformed};
use crate::error::{Error, Result};
use crate::op::{Op, RawOp};

/// A block ends at the first newline after this many bytes.
const BLOCK_BYTES: usize = 1 << 20;
/// Workers beyond this gain nothing: the fold on the caller's thread is
/// the slower stage by then.
const WORKERS_MAX: usize = 4;

impl History {
    /// Reads a whole history. A malformed line is an error naming its line
    /// and column; a last line cut short is skipped and reported in
    /// [`History::truncated`].
    pub fn parse<R: BufRead + Send>(reader: R) -> Result<History> {
        History::parse_by(reader, true)
    }

    /// [`History::parse`], with the fast path on or off (off: every line
    /// through serde_json, which the differential tests compare against).
    pub(super) fn parse_by<R: BufRead + Send>(reader: R, fast: bool) -> Result<History> {
        let mut h = History::default();
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(WORKERS_MAX);
        let in_flight = 2 * workers + 2;
        std::thread::scope(|s| -> Result<()> {
            // Every channel end the caller's thread holds is a local of this
            // closure, so an early return drops them and unblocks the others.
            let (free_tx, free_rx) = sync_channel::<Block>(in_flight);
            for _ in 0..in_flight {
                let _ = free_tx.send(Block::default());
            }
            let (raw_tx, raw_rx) = sync_channel::<Block>(in_flight);
            let (parsed_tx, parsed_rx) = sync_channel::<Block>(in_flight);
            s.spawn(move || read_blocks(reader, &free_rx, &raw_tx));
            let raw_rx = Arc::new(Mutex::new(raw_rx));
            for _ in 0..workers {
                let (input, out) = (Arc::clone(&raw_rx), parsed_tx.clone());
                s.spawn(move || parse_blocks(&input, &out, fast));
            }
            drop(parsed_tx);
            let mut fold = InOrder::default();
            for block in parsed_rx {
                fold.pending.insert(block.seq, block);
                while let Some(mut b) = fold.pending.remove(&fold.next) {
                    if h.fold_block(&mut b, fold.line_base)? {
                        return Ok(());
                    }
                    fold.next += 1;
                    fold.line_base += b.lines;
                    // The reader may be done; then the block is just freed.
                    let _ = free_tx.send(b);
                }
            }
            Ok(())
        })?;
        h.finish();
        Ok(h)
    }

    /// Folds a block's lines in. True when it ended the input early (a cut
    /// last line).
    fn fold_block(&mut self, b: &mut Block, line_base: u64) -> Result<bool> {
        // The block's partition names, to global ids as they are first used.
        let mut ids = vec![NONE; b.arena.names.len()];
        for item in &b.items {
            match item {
                Item::Fast(line, op) => self.push_fast(op, b.text(), &b.arena, &mut ids, line_base + line)?,
                Item::Slow(line, op) => self.push(op, line_base + line)?,
                Item::Truncated(line, message) => {
                    // A line cut by a failed read is the read's error, not
                    // a writer killed mid-line.
                    if let Some(source) = b.io_error.take() {
                        return Err(Error::Io { path: "<history>".into(), source });
                    }
                    self.truncated = Some(TruncatedLine { line: line_base + line, message: message.clone() });
                    return Ok(true);
                }
                Item::Error { line, column, message } => return Err(malformed(line_base + line, *column, message)),
            }
        }
        match b.io_error.take() {
            Some(source) => Err(Error::Io { path: "<history>".into(), source }),
            None => Ok(false),
        }
    }

    /// Folds a line the fast path read. Its partitions are interned in the
    /// order serde_json's path would intern them.
    fn push_fast(&mut self, op: &FastOp, text: &[u8], arena: &Arena, ids: &mut [u32], line: u64) -> Result<()> {
        self.push_head(&op.head(text), line, |h, idx, _| {
            let Some(place) = Place::of(op.kind, op.op_type, idx) else { return Ok(()) };
            for (name, _) in op.groups(text, arena) {
                if ids[name as usize] == NONE {
                    ids[name as usize] = h.intern_partition(arena.names[name as usize].of(text));
                }
            }
            h.push_records(
                op.groups(text, arena).map(|(name, recs)| (PartRef::Id(ids[name as usize]), recs)),
                place,
                line,
            )
        })
    }
}

/// Where the caller's thread is: blocks arrive in any order and are folded
/// in input order.
#[derive(Default)]
struct InOrder {
    pending: BTreeMap<u64, Block>,
    next: u64,
    /// Lines in the blocks before `next`.
    line_base: u64,
}

/// Whole lines of the input and, once a worker has been at them, what they
/// hold. Line numbers in `items` count from 1 at the block's first line.
#[derive(Default)]
struct Block {
    seq: u64,
    /// The block's text is `buf[..len]`.
    buf: Vec<u8>,
    len: usize,
    io_error: Option<std::io::Error>,
    lines: u64,
    items: Vec<Item>,
    arena: Arena,
}

impl Block {
    fn text(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

enum Item {
    Fast(u64, FastOp),
    Slow(u64, Box<Op>),
    Truncated(u64, String),
    Error { line: u64, column: u64, message: String },
}

/// The reader stage: cuts the input into blocks of whole lines (the last
/// block may end without a newline) and stops at the end, at a read error
/// (sent as the last block), or when nobody is left to take blocks.
fn read_blocks<R: BufRead>(mut reader: R, free: &Receiver<Block>, out: &SyncSender<Block>) {
    let mut carry = Vec::new();
    for seq in 0.. {
        let Ok(mut b) = free.recv() else { return };
        b.seq = seq;
        b.io_error = None;
        b.lines = 0;
        b.items.clear();
        b.arena.clear();
        // Buffers are zeroed once and then reused: reads go straight in.
        let size = (2 * BLOCK_BYTES).max(carry.len() + BLOCK_BYTES);
        if b.buf.len() < size {
            b.buf.resize(size, 0);
        }
        b.buf[..carry.len()].copy_from_slice(&carry);
        b.len = carry.len();
        carry.clear();
        let end = match fill(&mut reader, &mut b) {
            Ok(Some(cut)) => {
                carry.extend_from_slice(&b.buf[cut..b.len]);
                b.len = cut;
                false
            }
            Ok(None) => true,
            Err(e) => {
                b.io_error = Some(e);
                true
            }
        };
        if out.send(b).is_err() || end {
            return;
        }
    }
}

/// Reads until the block holds `BLOCK_BYTES` and a newline: then the length
/// up to its last newline. `None` at the end of the input. Reads as large
/// as a `BufReader`'s buffer bypass it, so bytes are copied once.
fn fill<R: Read>(reader: &mut R, b: &mut Block) -> std::io::Result<Option<usize>> {
    let mut cut = memchr::memrchr(b'\n', b.text()).map(|i| i + 1);
    loop {
        if b.len == b.buf.len() {
            // A line longer than the buffer: make room for more of it.
            b.buf.resize(2 * b.buf.len(), 0);
        }
        let n = match reader.read(&mut b.buf[b.len..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(None);
        }
        if let Some(i) = memchr::memrchr(b'\n', &b.buf[b.len..b.len + n]) {
            cut = Some(b.len + i + 1);
        }
        b.len += n;
        if b.len >= BLOCK_BYTES && cut.is_some() {
            return Ok(cut);
        }
    }
}

/// A worker: scans blocks until the reader is done or the fold hangs up.
fn parse_blocks(input: &Mutex<Receiver<Block>>, out: &SyncSender<Block>, fast: bool) {
    loop {
        let next = match input.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(mut b) = next else { return };
        parse_block(&mut b, fast);
        if out.send(b).is_err() {
            return;
        }
    }
}

/// Scans a block's lines into items, up to its first bad or cut line.
fn parse_block(b: &mut Block, fast: bool) {
    let text = &b.buf[..b.len];
    // Spans are `u32`s; a block that large (one giant line) takes the slow path.
    let fast = fast && u32::try_from(text.len()).is_ok();
    // One check of the whole block is cheaper than one per line; a block
    // that fails it is checked line by line, to name the line.
    let whole = std::str::from_utf8(text).ok();
    let mut start = 0;
    while start < text.len() {
        let end = memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |i| start + i);
        let (raw, base, has_newline) = (&text[start..end], start, end < text.len());
        start = end + 1;
        b.lines += 1;
        let line_no = b.lines;
        let line = match whole.map_or_else(|| std::str::from_utf8(raw), |s| Ok(&s[base..end])) {
            Ok(t) => t.trim_end_matches('\r'),
            Err(e) => {
                let column = e.valid_up_to() as u64 + 1;
                b.items.push(Item::Error { line: line_no, column, message: "invalid UTF-8".into() });
                return;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        if fast && let Some(op) = fast::parse(text, base, base + line.len(), &mut b.arena) {
            b.items.push(Item::Fast(line_no, op));
            continue;
        }
        match parse_line(line) {
            Ok(op) => b.items.push(Item::Slow(line_no, Box::new(op))),
            Err(LineError { eof: true, message, .. }) if !has_newline => {
                b.items.push(Item::Truncated(line_no, message));
                return;
            }
            Err(LineError { column, message, .. }) => {
                b.items.push(Item::Error { line: line_no, column, message });
                return;
            }
        }
    }
}

pub(super) struct LineError {
    column: u64,
    message: String,
    /// The line ended before the JSON did: a truncated write.
    eof: bool,
}

/// Parses one line: the envelope first, then `value` typed by `f`. Errors in
/// the value are mapped back to columns of the whole line.
pub(super) fn parse_line(line: &str) -> std::result::Result<Op, LineError> {
    let raw: RawOp<'_, &RawValue> = serde_json::from_str(line).map_err(|e| LineError {
        column: e.column() as u64,
        eof: e.is_eof(),
        message: without_position(&e),
    })?;
    let value_col =
        raw.value.map_or(1, |v| (v.get().as_ptr() as usize).saturating_sub(line.as_ptr() as usize) as u64 + 1);
    // A `Cow` clone: free unless the name had escapes.
    let f = raw.f.clone();
    raw.into_op().map_err(|e| LineError {
        column: value_col + (e.column() as u64).saturating_sub(1),
        eof: false,
        message: format!("bad value for f {f:?}: {}", without_position(&e)),
    })
}

/// serde_json's message without its " at line 1 column N" suffix: positions
/// are reported against the whole file instead (histories and `sink.jsonl`).
pub(crate) fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((msg, _)) => msg.to_owned(),
        None => text,
    }
}
