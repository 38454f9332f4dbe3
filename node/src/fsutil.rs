//! Small file-system helpers with the durability rules of ARCHITECTURE.md:
//! metadata files are replaced atomically, directories are fsync'd after
//! entries change, and a failed fsync is never retried.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Fsyncs a directory so that entries created, renamed or removed in it
/// survive a power loss.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and any missing parents, then fsyncs the parent of each
/// directory it created, and `dir`'s own parent even when `dir` existed (a
/// node killed between the mkdir and the fsync left it unsynced): without
/// that, a power loss can take a directory (and everything fsynced inside
/// it) away with its name.
pub fn create_dir_durable(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    // Bounded by the path's depth.
    while let Some(d) = at.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d);
        at = d.parent();
    }
    fs::create_dir_all(dir)?;
    if missing.is_empty() {
        missing.push(dir);
    }
    for d in missing.iter().rev() {
        match d.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => fsync_dir(parent)?,
            None => fsync_dir(Path::new("."))?,
        }
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically: write a temporary file, fsync it,
/// rename it over `path`, fsync the directory. A reader sees the old or the
/// new content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| io::Error::other("path has no parent directory"))?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
    file.write_all(bytes)?;
    fsync_or_abort(&file, &tmp);
    drop(file);
    fs::rename(&tmp, path)?;
    fsync_dir(dir)
}

/// Fsyncs file data, or aborts the process.
///
/// Linux may drop dirty pages after a failed fsync and report the failure
/// only once, so a retry can "succeed" over lost data (PostgreSQL's
/// fsyncgate). A crash followed by log recovery is the only safe answer.
pub fn fsync_or_abort(file: &File, path: &Path) {
    if let Err(err) = file.sync_data() {
        tracing::error!(path = %path.display(), error = %err, "fsync failed; aborting rather than retrying");
        eprintln!("fatal: fsync of {} failed: {err}", path.display());
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_dir_durable_makes_every_missing_level() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c");
        create_dir_durable(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_durable(&deep).unwrap();
    }
}
