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
