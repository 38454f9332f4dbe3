//! `sink.jsonl`: the final contents of the consumers' downstream sink, for the
//! `lost-processing` and `duplicate-processing` analyses.
//!
//! The harness writes one JSON line per row of the sink databases, in any
//! order: `{"slot": 0, "partition": "events/2", "offset": 17, "value": 1000000005}`.
//! `slot` is the consumer slot whose database holds the row; `value` is a
//! record value (integer or string) as in the history. Fields other than
//! these are ignored, so the harness may add columns. Reading streams line by
//! line, interning partition names, so memory is one small row per sink row.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::op::RecordValue;
use crate::util::FxHashMap;

/// One line of `sink.jsonl`, as written and read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkLine {
    pub slot: u64,
    pub partition: String,
    pub offset: u64,
    pub value: RecordValue,
}

/// One row of the sink, with its partition interned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkRow {
    pub slot: u64,
    /// Index into [`Sink::partitions`].
    pub partition: u32,
    pub offset: u64,
    pub value: RecordValue,
}

/// Every row of the sink, in file order.
#[derive(Debug, Clone, Default)]
pub struct Sink {
    partitions: Vec<String>,
    partition_ids: FxHashMap<String, u32>,
    rows: Vec<SinkRow>,
}

impl Sink {
    /// Reads `sink.jsonl`. A line that is not valid JSON or lacks a field is
    /// an error naming its 1-based line and column; blank lines are skipped.
    pub fn parse<R: BufRead>(mut reader: R) -> Result<Sink> {
        let mut sink = Sink::default();
        let mut buf = String::with_capacity(128);
        let mut line_no: u64 = 0;
        loop {
            buf.clear();
            let n = reader.read_line(&mut buf).map_err(|source| Error::Io { path: "<sink>".into(), source })?;
            if n == 0 {
                return Ok(sink);
            }
            line_no += 1;
            let line = buf.trim_end_matches(['\n', '\r']);
            if line.trim().is_empty() {
                continue;
            }
            let row: SinkLine = serde_json::from_str(line).map_err(|e| Error::Malformed {
                line: line_no,
                column: e.column() as u64,
                message: crate::history::without_position(&e),
            })?;
            sink.push(row);
        }
    }

    /// Adds one row.
    pub fn push(&mut self, line: SinkLine) {
        let partition = match self.partition_ids.get(line.partition.as_str()) {
            Some(&id) => id,
            None => {
                let id = self.partitions.len() as u32;
                self.partition_ids.insert(line.partition.clone(), id);
                self.partitions.push(line.partition);
                id
            }
        };
        self.rows.push(SinkRow { slot: line.slot, partition, offset: line.offset, value: line.value });
    }

    pub fn rows(&self) -> &[SinkRow] {
        &self.rows
    }

    /// Partition names, indexed by [`SinkRow::partition`].
    pub fn partitions(&self) -> &[String] {
        &self.partitions
    }

    pub fn partition_name(&self, id: u32) -> &str {
        &self.partitions[id as usize]
    }

    /// The distinct slots that hold at least one row.
    pub fn slot_count(&self) -> usize {
        let mut slots: Vec<u64> = self.rows.iter().map(|r| r.slot).collect();
        slots.sort_unstable();
        slots.dedup();
        slots.len()
    }

    /// Writes the rows as `sink.jsonl`, in order.
    pub fn write_jsonl<W: Write>(&self, mut w: W) -> std::io::Result<()> {
        for r in &self.rows {
            let line = SinkLine {
                slot: r.slot,
                partition: self.partitions[r.partition as usize].clone(),
                offset: r.offset,
                value: r.value.clone(),
            };
            serde_json::to_writer(&mut w, &line)?;
            w.write_all(b"\n")?;
        }
        w.flush()
    }
}

impl FromIterator<SinkLine> for Sink {
    fn from_iter<I: IntoIterator<Item = SinkLine>>(iter: I) -> Sink {
        let mut sink = Sink::default();
        for line in iter {
            sink.push(line);
        }
        sink
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows read back as written, with partitions interned.
    #[test]
    fn rows_round_trip() {
        let text = "{\"slot\":0,\"partition\":\"events/2\",\"offset\":17,\"value\":1000000005}\n\n\
                    {\"slot\":1,\"partition\":\"events/0\",\"offset\":3,\"value\":\"x\",\"inserted_at\":5}\n\
                    {\"slot\":1,\"partition\":\"events/2\",\"offset\":18,\"value\":7}";
        let sink = Sink::parse(text.as_bytes()).unwrap();
        assert_eq!(sink.rows().len(), 3);
        assert_eq!(sink.partitions(), ["events/2", "events/0"]);
        assert_eq!(sink.rows()[1], SinkRow { slot: 1, partition: 1, offset: 3, value: RecordValue::Str("x".into()) });
        assert_eq!(sink.slot_count(), 2);
        let mut out = Vec::new();
        sink.write_jsonl(&mut out).unwrap();
        let again = Sink::parse(out.as_slice()).unwrap();
        assert_eq!(again.rows(), sink.rows());
    }

    /// A bad line is an error naming its 1-based line and column.
    #[test]
    fn bad_line_names_line_and_column() {
        let text = "{\"slot\":0,\"partition\":\"events/2\",\"offset\":17,\"value\":5}\n\
                    {\"slot\":0,\"partition\":\"events/2\",\"value\":6}\n";
        match Sink::parse(text.as_bytes()) {
            Err(Error::Malformed { line, column, message }) => {
                assert_eq!(line, 2);
                assert!(column > 1, "{column}");
                assert!(message.contains("offset"), "{message}");
            }
            other => panic!("expected a malformed line, got {other:?}"),
        }
        assert!(matches!(Sink::parse("{\"slot\":-1}".as_bytes()), Err(Error::Malformed { line: 1, .. })));
    }
}
