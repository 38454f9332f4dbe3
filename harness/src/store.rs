//! The store: one directory per run, `store/<name>/<timestamp>/`, as in
//! Jepsen's `store/`, with `store/latest` and `store/<name>/latest`
//! pointing at the newest run.
//!
//! A run directory holds `test.json` (settings, seed, version, node config,
//! timeouts and the checker's `"guarantees"`), `history.jsonl`,
//! `results.json`, `replicas.json`, `faultline.log`, `clients.log` and
//! `nodes/<node>/node.log` (plus `nodes/<node>/data` when the run was
//! invalid). [`RunLog`] is the harness's plain progress log, written to
//! stderr and to `faultline.log`.

use parking_lot::Mutex;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;

/// Creates `<store>/<name>/<timestamp>/` and points both `latest` links at it.
pub fn create_run_dir(store: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let base = store.join(name);
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let stamp = utc_stamp(SystemTime::now());
    // Bounded: two runs in the same second get a numeric suffix.
    let mut dir = base.join(&stamp);
    for i in 1..100 {
        if !dir.exists() {
            break;
        }
        dir = base.join(format!("{stamp}-{i}"));
    }
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let rel_in_name = PathBuf::from(dir.file_name().expect("named"));
    let rel_in_store = PathBuf::from(name).join(&rel_in_name);
    relink(&base.join("latest"), &rel_in_name)?;
    relink(&store.join("latest"), &rel_in_store)?;
    Ok(dir)
}

/// Replaces the symlink `link` atomically (new link, rename over the old).
fn relink(link: &Path, target: &Path) -> anyhow::Result<()> {
    let tmp = link.with_extension("tmp-link");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).with_context(|| format!("linking {}", tmp.display()))?;
    std::fs::rename(&tmp, link).with_context(|| format!("replacing {}", link.display()))
}

/// `20261126T081550Z`: sortable, and free of characters shells dislike.
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", rem / 3_600, rem % 3_600 / 60, rem % 60)
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("serializing")?;
    std::fs::write(path, format!("{text}\n")).with_context(|| format!("writing {}", path.display()))
}

/// Writes `value` as compact JSON to `path`: for data files (a replica
/// dump holds a line's worth of JSON per record when pretty-printed).
pub fn write_json_compact(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string(value).context("serializing")?;
    std::fs::write(path, format!("{text}\n")).with_context(|| format!("writing {}", path.display()))
}

/// Copies a directory tree (node data dirs of an invalid run). Bounded by
/// the tree; symlinks are skipped.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

/// The run's progress log: each line goes to the harness's log on stderr
/// (through `tracing`, so `-q`, `-v` and `--log-format` apply) and, whatever
/// the level, to `faultline.log` in the store with the time since the run
/// began.
pub struct RunLog {
    file: Mutex<Option<File>>,
    started: Instant,
}

impl Default for RunLog {
    fn default() -> RunLog {
        RunLog::new()
    }
}

impl RunLog {
    /// A log whose clock (and the text log's) starts now.
    pub fn new() -> RunLog {
        let started = Instant::now();
        crate::logging::restart_clock(started);
        RunLog { file: Mutex::new(None), started }
    }

    /// From now on, lines also go to `path`.
    pub fn open(&self, path: &Path) -> anyhow::Result<()> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        *self.file.lock() = Some(file);
        Ok(())
    }

    /// What the run is doing.
    pub fn info(&self, msg: impl AsRef<str>) {
        tracing::info!(target: "faultline::run", "{}", msg.as_ref());
        self.to_file("", msg.as_ref());
    }

    /// Something went wrong that the run survives (its verdict may say so).
    pub fn warn(&self, msg: impl AsRef<str>) {
        tracing::warn!(target: "faultline::run", "{}", msg.as_ref());
        self.to_file("WARN ", msg.as_ref());
    }

    /// The harness itself failed; the run stops.
    pub fn error(&self, msg: impl AsRef<str>) {
        tracing::error!(target: "faultline::run", "{}", msg.as_ref());
        self.to_file("ERROR ", msg.as_ref());
    }

    fn to_file(&self, level: &str, msg: &str) {
        if let Some(f) = self.file.lock().as_mut() {
            let line = format!("[{:8.3} s] {level}{msg}\n", self.started.elapsed().as_secs_f64());
            let _ = f.write_all(line.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stamps_are_utc_civil_times() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(1_795_421_750)), "20261123T081550Z");
    }

    #[test]
    fn run_dirs_are_linked_as_latest() {
        let store = tempfile::tempdir().unwrap();
        let a = create_run_dir(store.path(), "t").unwrap();
        let b = create_run_dir(store.path(), "t").unwrap();
        assert_ne!(a, b);
        assert_eq!(std::fs::canonicalize(store.path().join("latest")).unwrap(), std::fs::canonicalize(&b).unwrap());
        assert_eq!(std::fs::canonicalize(store.path().join("t/latest")).unwrap(), std::fs::canonicalize(&b).unwrap());
    }
}
