//! Per-directory recovery state: the recovery-point checkpoint and the
//! clean-shutdown marker.
//!
//! The checkpoint records, per partition, an offset below which everything
//! was fsync'd; recovery after a crash scans only from there. It is written
//! atomically with a CRC, and a damaged checkpoint is ignored (every log is
//! then scanned in full), never trusted. The marker exists only between a
//! clean shutdown and the next start.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use crate::fsutil::{fsync_dir, write_atomic};

pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
/// Kafka's name for the high-watermark checkpoint. Never a truncation point.
pub const HIGH_WATERMARK_FILE: &str = "replication-offset-checkpoint";
pub const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";

/// Reads the recovery-point checkpoint; missing or damaged means "none".
pub fn read_recovery_points(dir: &Path) -> BTreeMap<String, i64> {
    read_offsets(&dir.join(RECOVERY_POINT_FILE))
}

/// Replaces the recovery-point checkpoint atomically.
pub fn write_recovery_points(dir: &Path, points: &BTreeMap<String, i64>) -> io::Result<()> {
    write_offsets(&dir.join(RECOVERY_POINT_FILE), points)
}

/// Reads a partition → offset checkpoint file; missing or damaged means empty.
pub fn read_offsets(path: &Path) -> BTreeMap<String, i64> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return BTreeMap::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "unreadable checkpoint; ignoring it");
            return BTreeMap::new();
        }
    };
    let parsed = text.split_once('\n').and_then(|(body, crc)| {
        let crc = u32::from_str_radix(crc.trim(), 16).ok()?;
        (crc32c::crc32c(body.as_bytes()) == crc).then(|| serde_json::from_str(body).ok()).flatten()
    });
    parsed.unwrap_or_else(|| {
        tracing::warn!(path = %path.display(), "damaged checkpoint; ignoring it");
        BTreeMap::new()
    })
}

/// Replaces a partition → offset checkpoint file atomically.
pub fn write_offsets(path: &Path, points: &BTreeMap<String, i64>) -> io::Result<()> {
    let body = serde_json::to_string(points).expect("a map of strings to integers serializes");
    let text = format!("{body}\n{:08x}\n", crc32c::crc32c(body.as_bytes()));
    write_atomic(path, text.as_bytes())
}

/// Removes the clean-shutdown marker and says whether it was there. It is
/// removed durably before the broker serves anything, so a crash from now
/// on is seen as unclean at the next start.
pub fn take_clean_shutdown_marker(dir: &Path) -> io::Result<bool> {
    match fs::remove_file(dir.join(CLEAN_SHUTDOWN_FILE)) {
        Ok(()) => {
            fsync_dir(dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Written last in a clean shutdown, after every log was flushed.
pub fn write_clean_shutdown_marker(dir: &Path) -> io::Result<()> {
    write_atomic(&dir.join(CLEAN_SHUTDOWN_FILE), b"clean\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_points_round_trip_and_a_damaged_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let points = BTreeMap::from([("events-0".to_string(), 42), ("events-1".to_string(), 7)]);
        write_recovery_points(dir.path(), &points).unwrap();
        assert_eq!(read_recovery_points(dir.path()), points);
        let path = dir.path().join(RECOVERY_POINT_FILE);
        let damaged = fs::read_to_string(&path).unwrap().replace("42", "99");
        fs::write(&path, damaged).unwrap();
        assert!(read_recovery_points(dir.path()).is_empty());
    }

    #[test]
    fn the_marker_is_seen_once() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!take_clean_shutdown_marker(dir.path()).unwrap());
        write_clean_shutdown_marker(dir.path()).unwrap();
        assert!(take_clean_shutdown_marker(dir.path()).unwrap());
        assert!(!take_clean_shutdown_marker(dir.path()).unwrap());
    }
}
