//! The streaming parser: a reader thread splits lines and JSON-parses them
//! in batches while the caller's thread folds them in, so that parsing a
//! large history keeps two cores busy.

use std::io::BufRead;

use serde_json::value::RawValue;

use super::{History, TruncatedLine, malformed};
use crate::error::{Error, Result};
use crate::op::{Op, RawOp};

impl History {
    /// Reads a whole history. A malformed line is an error naming its line
    /// and column; a last line cut short is skipped and reported in
    /// [`History::truncated`].
    ///
    /// Two stages on two threads: one reads and JSON-parses lines in batches,
    /// the caller's thread validates and interns them in order. The channel
    /// between them holds at most `PARSE_BATCHES_IN_FLIGHT` batches.
    pub fn parse<R: BufRead + Send>(reader: R) -> Result<History> {
        let mut h = History::default();
        std::thread::scope(|s| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Parsed>>(PARSE_BATCHES_IN_FLIGHT);
            // Consumed batches go back to the reader thread to be freed there.
            // Unbounded in type only: the reader drains it before each send,
            // so it never holds more than the batches in flight.
            let (done_tx, done_rx) = std::sync::mpsc::channel::<Vec<Parsed>>();
            s.spawn(move || read_lines(reader, &tx, &done_rx));
            // Dropping `rx` on an early return stops the reader at its next send.
            for mut batch in rx {
                for item in &mut batch {
                    match item {
                        Parsed::Op(line, op) => h.push(op, *line)?,
                        Parsed::Truncated(t) => h.truncated = Some(t.clone()),
                        Parsed::Error(_) => {
                            if let Parsed::Error(e) = std::mem::replace(item, Parsed::Taken) {
                                return Err(e);
                            }
                        }
                        Parsed::Taken => {}
                    }
                }
                let _ = done_tx.send(batch);
            }
            Ok(())
        })?;
        h.finish();
        Ok(h)
    }
}

/// Lines parsed per batch handed from the reader thread to the indexer:
/// large enough to amortise the channel, small enough to stay in cache.
const PARSE_BATCH_LINES: usize = 4096;
/// Batches queued between the two stages; bounds the memory in flight.
const PARSE_BATCHES_IN_FLIGHT: usize = 4;

enum Parsed {
    Op(u64, Op),
    Truncated(TruncatedLine),
    Error(Error),
    /// An error moved out of its batch.
    Taken,
}

/// The reader stage: splits lines and parses JSON, in order. Stops at the
/// first error, at a truncated last line, or when the indexer hangs up.
fn read_lines<R: BufRead>(
    mut reader: R,
    tx: &std::sync::mpsc::SyncSender<Vec<Parsed>>,
    done: &std::sync::mpsc::Receiver<Vec<Parsed>>,
) {
    let mut buf = Vec::with_capacity(512);
    let mut line_no: u64 = 0;
    let mut batch = Vec::with_capacity(PARSE_BATCH_LINES);
    let done = loop {
        buf.clear();
        let n = match reader.read_until(b'\n', &mut buf) {
            Ok(n) => n,
            Err(source) => break Some(Parsed::Error(Error::Io { path: "<history>".into(), source })),
        };
        if n == 0 {
            break None;
        }
        line_no += 1;
        let has_newline = buf.last() == Some(&b'\n');
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t,
            Err(e) => break Some(Parsed::Error(malformed(line_no, e.valid_up_to() as u64 + 1, "invalid UTF-8"))),
        };
        let line = text.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(op) => batch.push(Parsed::Op(line_no, op)),
            Err(LineError { eof: true, message, .. }) if !has_newline => {
                break Some(Parsed::Truncated(TruncatedLine { line: line_no, message }));
            }
            Err(LineError { column, message, .. }) => break Some(Parsed::Error(malformed(line_no, column, &message))),
        }
        if batch.len() == PARSE_BATCH_LINES {
            // Reuse a consumed batch's vector when one is back; its ops are
            // freed here, on the thread that allocated them.
            let fresh = match done.try_recv() {
                Ok(mut old) => {
                    while let Ok(more) = done.try_recv() {
                        drop(more);
                    }
                    old.clear();
                    old
                }
                Err(_) => Vec::with_capacity(PARSE_BATCH_LINES),
            };
            let full = std::mem::replace(&mut batch, fresh);
            if tx.send(full).is_err() {
                return;
            }
        }
    };
    batch.extend(done);
    let _ = tx.send(batch);
}

struct LineError {
    column: u64,
    message: String,
    /// The line ended before the JSON did: a truncated write.
    eof: bool,
}

/// Parses one line: the envelope first, then `value` typed by `f`. Errors in
/// the value are mapped back to columns of the whole line.
fn parse_line(line: &str) -> std::result::Result<Op, LineError> {
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
