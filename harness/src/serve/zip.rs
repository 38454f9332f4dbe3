//! A run directory as a zip download, built in memory with a bound on what
//! goes in: a run is a few megabytes, and a store browser must not be made
//! to read gigabytes for one click.

use std::io::{Cursor, Read, Write};
use std::path::Path;

use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

/// Most bytes of files one download takes in.
pub const ZIP_INPUT_BYTES_MAX: u64 = 1 << 30;
/// Most files one download takes in.
const ZIP_FILES_MAX: usize = 100_000;

/// Every regular file under `dir` (symlinks are not followed), zipped
/// under `<top>/`; an error names what was too large.
pub fn zip_dir(dir: &Path, top: &str) -> anyhow::Result<Vec<u8>> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    let total: u64 = files.iter().map(|(_, len)| len).sum();
    if total > ZIP_INPUT_BYTES_MAX || files.len() > ZIP_FILES_MAX {
        anyhow::bail!("{} holds {} files, {total} bytes: more than a download takes", dir.display(), files.len());
    }
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .large_file(total > u32::MAX as u64);
    let mut buf = vec![0u8; 1 << 16];
    for (rel, _) in &files {
        zip.start_file(format!("{top}/{rel}"), opts)?;
        let mut f = std::fs::File::open(dir.join(rel))?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            zip.write_all(&buf[..n])?;
        }
    }
    Ok(zip.finish()?.into_inner())
}

/// Regular files under `dir`, relative to `root`, with their sizes.
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let t = e.file_type()?;
        if t.is_dir() {
            collect(root, &e.path(), out)?;
        } else if t.is_file() {
            let rel = e.path().strip_prefix(root)?.to_string_lossy().into_owned();
            out.push((rel, e.metadata()?.len()));
        }
        if out.len() > ZIP_FILES_MAX {
            anyhow::bail!("{} holds more than {ZIP_FILES_MAX} files", root.display());
        }
    }
    Ok(())
}
