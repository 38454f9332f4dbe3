//! The filesystem's operations on the backing directory, without FUSE: each
//! one does its change and journals what it replaced (see `journal`). The
//! FUSE layer (`fs`) only translates requests to these calls, so the model
//! is tested here on a plain directory.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::inodes::{Inodes, ROOT};
use crate::journal::{Change, Journal, Loss, Pending};

/// The hidden directory (in the backing root) where removed files wait
/// until their removal is durable, so that a loss can bring them back.
pub const TRASH: &str = ".faultline-lazyfs-trash";

/// The backing directory, its inode table and its journal.
#[derive(Debug)]
pub struct LazyDir {
    root: PathBuf,
    inodes: Inodes,
    journal: Journal,
    trashed: u64,
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl LazyDir {
    /// Serves `root`. A trash left by an earlier daemon holds only files
    /// whose removal nobody can undo any more: it is emptied.
    pub fn open(root: &Path) -> io::Result<LazyDir> {
        let trash = root.join(TRASH);
        if trash.exists() {
            fs::remove_dir_all(&trash)?;
        }
        fs::create_dir(&trash)?;
        Ok(LazyDir { root: root.to_path_buf(), inodes: Inodes::new(), journal: Journal::default(), trashed: 0 })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn rel(&self, ino: u64) -> io::Result<PathBuf> {
        self.inodes.path(ino).map(Path::to_path_buf).ok_or_else(|| errno(libc::ENOENT))
    }

    fn full(&self, ino: u64) -> io::Result<PathBuf> {
        Ok(self.root.join(self.rel(ino)?))
    }

    /// `parent/name`, refusing the trash's name in the root.
    fn child(&self, parent: u64, name: &OsStr) -> io::Result<PathBuf> {
        if parent == ROOT && name == TRASH {
            return Err(errno(libc::ENOENT));
        }
        Ok(self.rel(parent)?.join(name))
    }

    pub fn lookup(&mut self, parent: u64, name: &OsStr) -> io::Result<(u64, Metadata)> {
        let rel = self.child(parent, name)?;
        let meta = fs::symlink_metadata(self.root.join(&rel))?;
        Ok((self.inodes.ino_of(&rel), meta))
    }

    pub fn getattr(&self, ino: u64) -> io::Result<Metadata> {
        fs::symlink_metadata(self.full(ino)?)
    }

    /// The entries of directory `ino` (without `.` and `..`), sorted by name.
    pub fn list(&mut self, ino: u64) -> io::Result<Vec<(u64, OsString, fs::FileType)>> {
        let rel = self.rel(ino)?;
        let mut out = Vec::new();
        for entry in fs::read_dir(self.root.join(&rel))? {
            let entry = entry?;
            let name = entry.file_name();
            if ino == ROOT && name == TRASH {
                continue;
            }
            let child = self.inodes.ino_of(&rel.join(&name));
            out.push((child, name, entry.file_type()?));
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }

    /// Opens file `ino` for the handle of a FUSE open. The backing file is
    /// always opened for reading and writing (the kernel has checked the
    /// caller's access): a write must read what it overwrites. `O_TRUNC`
    /// is a journaled length change.
    pub fn open_file(&mut self, ino: u64, flags: i32) -> io::Result<File> {
        let path = self.full(ino)?;
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        if flags & libc::O_TRUNC != 0 {
            self.set_len(ino, &file, 0)?;
        }
        Ok(file)
    }

    /// Creates file `parent/name` (a journaled new name) and opens it.
    pub fn create(&mut self, parent: u64, name: &OsStr, mode: u32) -> io::Result<(u64, File)> {
        let rel = self.child(parent, name)?;
        let file = OpenOptions::new().read(true).write(true).create_new(true).mode(mode).open(self.root.join(&rel))?;
        let ino = self.inodes.ino_of(&rel);
        self.journal.push(Change::Created { parent, ino });
        Ok((ino, file))
    }

    pub fn mkdir(&mut self, parent: u64, name: &OsStr, mode: u32) -> io::Result<u64> {
        let rel = self.child(parent, name)?;
        fs::DirBuilder::new().mode(mode).create(self.root.join(&rel))?;
        let ino = self.inodes.ino_of(&rel);
        self.journal.push(Change::Created { parent, ino });
        Ok(ino)
    }

    /// Moves `rel` into the trash; the inode follows it there.
    fn move_to_trash(&mut self, rel: &Path) -> io::Result<u64> {
        let ino = self.inodes.ino_of(rel);
        self.trashed += 1;
        let trash_rel = Path::new(TRASH).join(self.trashed.to_string());
        fs::rename(self.root.join(rel), self.root.join(&trash_rel))?;
        self.inodes.moved(rel, &trash_rel);
        Ok(ino)
    }

    /// `unlink` and `rmdir`: the name goes, the file waits in the trash.
    pub fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> io::Result<()> {
        let rel = self.child(parent, name)?;
        let meta = fs::symlink_metadata(self.root.join(&rel))?;
        match (dir, meta.is_dir()) {
            (true, false) => return Err(errno(libc::ENOTDIR)),
            (false, true) => return Err(errno(libc::EISDIR)),
            (true, true) if fs::read_dir(self.root.join(&rel))?.next().is_some() => {
                return Err(errno(libc::ENOTEMPTY));
            }
            _ => {}
        }
        let ino = self.move_to_trash(&rel)?;
        self.journal.push(Change::Removed { parent, name: name.to_owned(), ino });
        Ok(())
    }

    /// A rename; a file the destination named goes to the trash first, and
    /// comes back if the rename then fails.
    pub fn rename(&mut self, parent: u64, name: &OsStr, to_parent: u64, to_name: &OsStr) -> io::Result<()> {
        let from = self.child(parent, name)?;
        let to = self.child(to_parent, to_name)?;
        let moving = fs::symlink_metadata(self.root.join(&from))?;
        if from == to {
            return Ok(());
        }
        if to.starts_with(&from) {
            return Err(errno(libc::EINVAL));
        }
        let ino = self.inodes.ino_of(&from);
        let replaced = match fs::symlink_metadata(self.root.join(&to)) {
            Ok(m) if m.is_dir() && !moving.is_dir() => return Err(errno(libc::EISDIR)),
            Ok(m) if !m.is_dir() && moving.is_dir() => return Err(errno(libc::ENOTDIR)),
            Ok(m) if m.is_dir() && fs::read_dir(self.root.join(&to))?.next().is_some() => {
                return Err(errno(libc::ENOTEMPTY));
            }
            Ok(_) => Some(self.move_to_trash(&to)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if let Err(e) = fs::rename(self.root.join(&from), self.root.join(&to)) {
            if let Some(r) = replaced {
                self.restore_from_trash(r, &to)?;
            }
            return Err(e);
        }
        self.inodes.moved(&from, &to);
        let (from_name, to_name) = (name.to_owned(), to_name.to_owned());
        self.journal.push(Change::Renamed { from_parent: parent, from_name, to_parent, to_name, ino, replaced });
        Ok(())
    }

    /// Puts a file the trash holds back at `rel` (an operation that failed half way).
    fn restore_from_trash(&mut self, ino: u64, rel: &Path) -> io::Result<()> {
        let at = self.rel(ino)?;
        fs::rename(self.root.join(&at), self.root.join(rel))?;
        self.inodes.moved(&at, rel);
        Ok(())
    }

    /// Writes `data` at `offset` of file `ino` through `file`, journaling
    /// the bytes it overwrites.
    pub fn write(&mut self, ino: u64, file: &File, offset: u64, data: &[u8]) -> io::Result<usize> {
        let old_len = file.metadata()?.len();
        let overlap = old_len.saturating_sub(offset).min(data.len() as u64);
        let mut old = vec![0; overlap as usize];
        file.read_exact_at(&mut old, offset)?;
        file.write_all_at(data, offset)?;
        self.journal.push(Change::Write { ino, offset, len: data.len() as u64, old_len, old });
        Ok(data.len())
    }

    /// Truncates or extends file `ino`, journaling what a shrink cuts off.
    pub fn set_len(&mut self, ino: u64, file: &File, new_len: u64) -> io::Result<()> {
        let old_len = file.metadata()?.len();
        if old_len == new_len {
            return Ok(());
        }
        let mut old_tail = vec![0; old_len.saturating_sub(new_len) as usize];
        file.read_exact_at(&mut old_tail, new_len)?;
        file.set_len(new_len)?;
        self.journal.push(Change::SetLen { ino, old_len, new_len, old_tail });
        Ok(())
    }

    /// `setattr` with a size but no open handle.
    pub fn truncate(&mut self, ino: u64, new_len: u64) -> io::Result<()> {
        let file = OpenOptions::new().read(true).write(true).open(self.full(ino)?)?;
        self.set_len(ino, &file, new_len)
    }

    /// `chmod`: passed through, not journaled.
    pub fn chmod(&mut self, ino: u64, mode: u32) -> io::Result<()> {
        fs::set_permissions(self.full(ino)?, std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777))
    }

    /// `fsync`/`fdatasync` of a file.
    pub fn sync_file(&mut self, ino: u64) {
        self.journal.sync_file(ino);
    }

    /// `fsync` of a directory.
    pub fn sync_dir(&mut self, ino: u64) -> io::Result<()> {
        self.journal.sync_dir(&self.root, &mut self.inodes, ino)
    }

    /// Makes everything durable (the control channel's `checkpoint`).
    pub fn checkpoint(&mut self) -> io::Result<()> {
        self.journal.sync_all(&self.root, &mut self.inodes)
    }

    /// Loses every unsynced change (see `Journal::lose`).
    pub fn lose_unsynced(&mut self, torn: Option<u64>) -> io::Result<Loss> {
        self.journal.lose(&self.root, &mut self.inodes, torn)
    }

    pub fn pending(&self) -> Pending {
        self.journal.pending()
    }
}
