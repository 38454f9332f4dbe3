//! Jepsen's and Maelstrom's Kafka histories (`history.edn`, EDN) read into
//! faultline's model, so that `faultline check --format jepsen` checks them
//! with the same analyses as its own histories.
//!
//! The file is one op per line, each a map (`{:type :invoke, :f :send, …}`)
//! or a tagged record (`#jepsen.history.Op{…}`), as `jepsen.tests.kafka`
//! and Maelstrom's kafka workload write it; it is read line by line, never
//! whole. A file that is one EDN vector of ops is read too (in memory).
//! `edn` reads each line (fast for Jepsen's usual forms, with the
//! `edn-format` crate for the rest); `convert` says what maps to what. What the mapping cannot carry is said
//! in the verdict's "not checked" list ([`History::not_checked`]): the
//! order inside transactions, skips across polls of subscribing consumers,
//! and the lost-write rule without a final drain (Jepsen's: a value below
//! the highest offset an ok poll read, that nobody read).

mod convert;
mod edn;
#[cfg(test)]
mod tests;
mod write;

pub use write::edn_line;

use std::io::BufRead;

use self::edn::Edn;
use super::History;
use crate::error::{Error, Result};

fn malformed(line: u64, message: impl Into<String>) -> Error {
    Error::Malformed { line, column: 1, message: message.into() }
}

/// The op map of a parsed form: a map, or a record tagged with a map.
fn op_map<'e, 'a>(v: &'e Edn<'a>) -> Option<&'e Edn<'a>> {
    match v {
        Edn::Map(_) => Some(v),
        Edn::Tagged(_, inner) => op_map(inner),
        _ => None,
    }
}

/// One line's form: the fast reader's, or `edn-format`'s for anything
/// outside its subset (and for the error, when the line is not EDN).
fn read_form(text: &str, line: u64) -> Result<Edn<'_>> {
    if let Some(form) = edn::read_fast(text) {
        return Ok(form);
    }
    if edn::too_deep(text) {
        return Err(malformed(line, format!("forms nested deeper than {} levels", edn::DEPTH_MAX)));
    }
    let value = edn_format::parse_str(text).map_err(|e| malformed(line, format!("EDN: {e}")))?;
    Ok(Edn::from_value(&value))
}

fn convert_form(c: &mut convert::Converter, form: &Edn<'_>, line: u64) -> Result<Vec<crate::op::Op>> {
    let map = op_map(form).ok_or_else(|| malformed(line, "an op must be a map or a tagged map"))?;
    c.convert(map).map_err(|m| malformed(line, m))
}

impl History {
    /// Reads a Jepsen EDN history, line by line on this thread (a reader
    /// thread, as [`History::parse`] has, measured slower here: the ops
    /// would be built on one core and indexed on the other). Errors name
    /// the line (the op's position in a file that is one vector).
    pub fn parse_jepsen<R: BufRead>(mut reader: R) -> Result<History> {
        let mut h = History::default();
        let mut c = convert::Converter::default();
        let (mut line, mut line_no) = (String::new(), 0u64);
        let io = |source| Error::Io { path: "<history>".into(), source };
        // Bounded by the input: one line per turn.
        while reader.read_line(&mut line).map_err(io)? > 0 {
            line_no += 1;
            let text = line.trim();
            if text.starts_with('[') && c.ops_written() == 0 {
                let mut rest = format!("{text}\n");
                reader.read_to_string(&mut rest).map_err(io)?;
                c = whole_vector(&rest, &mut h)?;
                break;
            }
            if !text.is_empty() && !text.starts_with(';') {
                for op in convert_form(&mut c, &read_form(text, line_no)?, line_no)? {
                    h.push(&op, line_no)?;
                }
            }
            line.clear();
        }
        h.finish_jepsen(&c);
        Ok(h)
    }

    /// Indexes the history and says what the mapping left unchecked.
    fn finish_jepsen(&mut self, c: &convert::Converter) {
        self.finish();
        if c.txns > 0 {
            self.not_checked.push(format!(
                "txn: {} transactions, each checked as its sends then its polls; the order inside a transaction \
                 (a poll that sees the transaction's own sends, the sends' order against its polls) is not checked",
                c.txns
            ));
        }
        if c.subscribes > 0 {
            self.not_checked.push(
                "subscribe: the history has no rebalances, so poll-skip and nonmonotonic-poll of subscribing \
                 consumers are checked inside each poll only, not across polls"
                    .to_owned(),
            );
        }
        if self.drains.is_empty() {
            self.not_checked.push(
                "final drain: none in this history, so lost-write follows Jepsen's rule (a value below the highest \
                 offset some ok poll read, that no ok poll read) and unseen values may only be late"
                    .to_owned(),
            );
        }
    }
}

/// A history that is one EDN vector of ops: converted here, in memory;
/// returns the converter for [`History::finish_jepsen`].
fn whole_vector(text: &str, h: &mut History) -> Result<convert::Converter> {
    let mut c = convert::Converter::default();
    let form = read_form(text, 1)?;
    let Edn::Seq(ops) = form else { return Err(malformed(1, "expected one op per line or a vector of ops")) };
    for (i, form) in ops.iter().enumerate() {
        for op in convert_form(&mut c, form, i as u64 + 1)? {
            h.push(&op, i as u64 + 1)?;
        }
    }
    Ok(c)
}
