//! The consumers' downstream database: one SQLite file per consumer slot,
//! as a real application writes what it consumes into its own database.
//!
//! - The harness creates each slot's file before the workload ([`create`]),
//!   recording its insert mode in the file, so a replacement process after a
//!   kill reopens the same database ([`Sink::open`]) as a restarted
//!   application reconnects to its own.
//! - A record counts as processed once the transaction that inserted it has
//!   committed ([`Sink::write`]). `plain` inserts every record; `idempotent`
//!   has a unique key on (partition, value), so redelivered records are
//!   absorbed (`INSERT OR IGNORE`).
//! - The `sink-outage` fault ([`Outage`]) holds the write lock of every file
//!   from another connection, so consumers' writes really fail with
//!   `SQLITE_BUSY` after [`BUSY_TIMEOUT_MS`].
//! - After the run, [`export`] writes every row into the store's
//!   `sink.jsonl` for the checker.
//!
//! Files use WAL mode: readers never block the writer, and a killed writer's
//! uncommitted transaction is rolled back when the file is next opened.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use faultline_checker::op::RecordValue;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

/// How long a consumer's write waits for the lock before `SQLITE_BUSY`:
/// much shorter than a sink outage (at least 2 s), so an outage really
/// fails writes instead of merely delaying them.
pub const BUSY_TIMEOUT_MS: u64 = 100;
/// How long the outage's own connection waits for a consumer's transaction
/// in progress before it holds the lock.
const OUTAGE_LOCK_WAIT_MS: u64 = 5_000;

/// How a sink inserts: the run's own mode, stored by name in the file.
pub use faultline_checker::modes::SinkMode as Mode;

fn connect(path: &Path, busy_timeout_ms: u64) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_millis(busy_timeout_ms))?;
    // `journal_mode` answers with the mode; WAL persists in the file.
    let _: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// Creates (or keeps) a slot's database with its schema and mode.
pub fn create(path: &Path, mode: Mode) -> anyhow::Result<()> {
    let conn = connect(path, OUTAGE_LOCK_WAIT_MS).with_context(|| format!("creating the sink {}", path.display()))?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS records (
             id INTEGER PRIMARY KEY,
             partition TEXT NOT NULL,
             record_offset INTEGER NOT NULL,
             value TEXT NOT NULL
         );",
    )
    .with_context(|| format!("creating the schema of {}", path.display()))?;
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('mode', ?1)", params![mode.name()])?;
    if mode == Mode::Idempotent {
        conn.execute_batch("CREATE UNIQUE INDEX IF NOT EXISTS records_unique ON records (partition, value);")?;
    }
    Ok(())
}

/// One consumer's connection to its slot's database.
pub struct Sink {
    conn: Connection,
    mode: Mode,
}

/// Why a write did not commit.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The database is locked by someone else (`SQLITE_BUSY`): a sink outage.
    #[error("sink busy (SQLITE_BUSY after {BUSY_TIMEOUT_MS} ms): {0}")]
    Busy(rusqlite::Error),
    #[error("sink write failed: {0}")]
    Other(rusqlite::Error),
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> WriteError {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => WriteError::Busy(e),
            _ => WriteError::Other(e),
        }
    }
}

impl Sink {
    /// Opens a database that [`create`] made; its mode comes from the file.
    pub fn open(path: &Path) -> anyhow::Result<Sink> {
        if !path.exists() {
            bail!("sink {}: no such database (the harness creates it before the workload)", path.display());
        }
        let conn = connect(path, BUSY_TIMEOUT_MS).with_context(|| format!("opening the sink {}", path.display()))?;
        let mode: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'mode'", [], |r| r.get(0))
            .optional()
            .with_context(|| format!("reading the mode of {}", path.display()))?;
        let Some(mode) = mode.as_deref().and_then(|m| m.parse::<Mode>().ok()) else {
            bail!("sink {}: bad or missing mode {mode:?} in its meta table", path.display())
        };
        Ok(Sink { conn, mode })
    }

    /// Inserts `records` of `partition` in one transaction; returns the rows
    /// inserted (fewer than given when an idempotent sink absorbed some).
    pub fn write(&mut self, partition: &str, records: &[(u64, RecordValue)]) -> Result<usize, WriteError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut inserted = 0;
        {
            let sql = match self.mode {
                Mode::Plain => "INSERT INTO records (partition, record_offset, value) VALUES (?1, ?2, ?3)",
                Mode::Idempotent => {
                    "INSERT OR IGNORE INTO records (partition, record_offset, value) VALUES (?1, ?2, ?3)"
                }
            };
            let mut stmt = tx.prepare_cached(sql)?;
            for (offset, value) in records {
                inserted += stmt.execute(params![partition, *offset as i64, value_text(value)])?;
            }
        }
        tx.commit()?;
        Ok(inserted)
    }
}

fn value_text(v: &RecordValue) -> String {
    match v {
        RecordValue::Int(i) => i.to_string(),
        RecordValue::Str(s) => s.clone(),
    }
}

/// A sink outage in progress: another connection holds every file's write
/// lock. Dropping it (or [`Outage::end`]) releases them.
pub struct Outage {
    held: Vec<Connection>,
}

impl Outage {
    /// Takes the write lock of every file in `paths`, waiting for
    /// transactions in progress.
    pub fn begin(paths: &[PathBuf]) -> anyhow::Result<Outage> {
        let mut held = Vec::with_capacity(paths.len());
        for path in paths {
            let conn = connect(path, OUTAGE_LOCK_WAIT_MS)
                .with_context(|| format!("sink outage: opening {}", path.display()))?;
            conn.execute_batch("BEGIN IMMEDIATE")
                .with_context(|| format!("sink outage: locking {}", path.display()))?;
            held.push(conn);
        }
        Ok(Outage { held })
    }

    /// Releases every lock: writes succeed again.
    pub fn end(self) -> anyhow::Result<()> {
        for conn in &self.held {
            conn.execute_batch("ROLLBACK").context("sink outage: releasing a lock")?;
        }
        Ok(())
    }
}

/// Writes every row of the slot databases into `out` (JSON Lines:
/// `{"slot": 0, "partition": "events/2", "offset": 17, "value": 1000000005}`),
/// returning the row count.
pub fn export(slots: &[(u32, PathBuf)], out: &Path) -> anyhow::Result<u64> {
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let mut rows = 0u64;
    for (slot, path) in slots {
        if !path.exists() {
            continue;
        }
        let conn = connect(path, OUTAGE_LOCK_WAIT_MS).with_context(|| format!("opening {}", path.display()))?;
        let mut stmt = conn.prepare("SELECT partition, record_offset, value FROM records ORDER BY id")?;
        let mut it = stmt.query([])?;
        // Bounded by the table's rows.
        while let Some(row) = it.next()? {
            let (partition, offset, value): (String, i64, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
            let value = faultline_checker::op::RecordValue::from_text(&value);
            let line = serde_json::json!({ "slot": slot, "partition": partition, "offset": offset, "value": value });
            serde_json::to_writer(&mut w, &line)?;
            w.write_all(b"\n")?;
            rows += 1;
        }
    }
    w.flush().with_context(|| format!("writing {}", out.display()))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(xs: &[(u64, i64)]) -> Vec<(u64, RecordValue)> {
        xs.iter().map(|&(o, v)| (o, RecordValue::Int(v))).collect()
    }

    #[test]
    fn an_idempotent_sink_absorbs_redelivery_and_a_plain_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.sqlite"), dir.path().join("b.sqlite"));
        create(&a, Mode::Plain).unwrap();
        create(&b, Mode::Idempotent).unwrap();
        let (mut plain, mut idem) = (Sink::open(&a).unwrap(), Sink::open(&b).unwrap());
        assert_eq!(plain.write("events/0", &recs(&[(0, 10), (1, 11)])).unwrap(), 2);
        assert_eq!(plain.write("events/0", &recs(&[(1, 11)])).unwrap(), 1);
        assert_eq!(idem.write("events/0", &recs(&[(0, 10), (1, 11)])).unwrap(), 2);
        assert_eq!(idem.write("events/0", &recs(&[(1, 11)])).unwrap(), 0, "redelivered value absorbed");
        let out = dir.path().join("sink.jsonl");
        assert_eq!(export(&[(0, a), (1, b)], &out).unwrap(), 5);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.lines().next().unwrap().contains(r#""offset":0"#) && text.contains(r#""slot":1"#), "{text}");
    }

    /// The fault takes effect: while the outage holds the lock, a write
    /// fails with SQLITE_BUSY and commits nothing; after it, writes succeed.
    #[test]
    fn a_sink_outage_makes_writes_fail_busy_until_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite");
        create(&path, Mode::Plain).unwrap();
        let mut sink = Sink::open(&path).unwrap();
        let outage = Outage::begin(std::slice::from_ref(&path)).unwrap();
        let err = sink.write("events/0", &recs(&[(0, 1)])).unwrap_err();
        assert!(matches!(err, WriteError::Busy(_)), "{err}");
        outage.end().unwrap();
        assert_eq!(sink.write("events/0", &recs(&[(0, 1)])).unwrap(), 1);
        let out = dir.path().join("sink.jsonl");
        assert_eq!(export(&[(0, path)], &out).unwrap(), 1, "the refused write left no row");
    }

    #[test]
    fn opening_a_missing_or_foreign_database_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.sqlite");
        assert!(Sink::open(&missing).err().unwrap().to_string().contains("nope.sqlite"));
        let foreign = dir.path().join("foreign.sqlite");
        Connection::open(&foreign).unwrap().execute_batch("CREATE TABLE meta (key TEXT, value TEXT)").unwrap();
        assert!(Sink::open(&foreign).err().unwrap().to_string().contains("mode"));
    }
}
