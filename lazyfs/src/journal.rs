//! The journal of unsynced changes. The backing directory always holds what
//! processes see; for every change no fsync has made durable yet, the journal
//! keeps what the change replaced. Syncing a file or a directory drops the
//! records it made durable; losing unsynced changes puts back what the
//! remaining records replaced, newest first, so the backing directory ends as
//! the durable state: the last synced bytes and names.
//!
//! Which sync makes what durable (the strict POSIX reading, as on a disk
//! whose cache is lost at power failure):
//! - a file's bytes and length: `fsync`/`fdatasync` of that file;
//! - a name created, removed or renamed into a directory: `fsync` of that
//!   directory (a rename is durable once its destination directory is).
//!
//! A record names files by inode number, never by path: a later rename or
//! unlink moves the file, and the number follows it (see `inodes`).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::inodes::Inodes;

/// One change not yet durable, with what it replaced.
#[derive(Debug)]
pub(crate) enum Change {
    /// `len` bytes written at `offset`; `old` held the bytes it overwrote
    /// (those below `old_len`, the length before).
    Write { ino: u64, offset: u64, len: u64, old_len: u64, old: Vec<u8> },
    /// The length changed; `old_tail` is what a shrink cut off.
    SetLen { ino: u64, old_len: u64, new_len: u64, old_tail: Vec<u8> },
    /// A new name in `parent` (a file or a directory).
    Created { parent: u64, ino: u64 },
    /// `name` left `parent`; the file waits in the trash.
    Removed { parent: u64, name: OsString, ino: u64 },
    /// A rename; `replaced` is the file the destination named before, in the trash.
    Renamed {
        from_parent: u64,
        from_name: OsString,
        to_parent: u64,
        to_name: OsString,
        ino: u64,
        replaced: Option<u64>,
    },
}

impl Change {
    fn data_of(&self) -> Option<u64> {
        match self {
            Change::Write { ino, .. } | Change::SetLen { ino, .. } => Some(*ino),
            _ => None,
        }
    }

    /// The directory whose sync makes this change durable.
    fn dir(&self) -> Option<u64> {
        match self {
            Change::Created { parent, .. } | Change::Removed { parent, .. } => Some(*parent),
            Change::Renamed { to_parent, .. } => Some(*to_parent),
            _ => None,
        }
    }

    /// The file the trash holds for this change, to delete once it is durable.
    fn trashed(&self) -> Option<u64> {
        match self {
            Change::Removed { ino, .. } => Some(*ino),
            Change::Renamed { replaced, .. } => *replaced,
            _ => None,
        }
    }
}

/// What losing unsynced changes took away.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Loss {
    /// Files whose unsynced bytes or length changes were rolled back.
    pub files: usize,
    /// Unsynced bytes written and lost.
    pub bytes_lost: u64,
    /// Unsynced bytes a torn loss kept (a prefix of each file's writes).
    pub bytes_kept: u64,
    /// Names created, removed or renamed and put back.
    pub metadata_changes: usize,
}

/// How much is not yet durable.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    pub writes: usize,
    pub bytes: u64,
    pub metadata_changes: usize,
}

/// The unsynced changes, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    changes: Vec<Change>,
}

impl Journal {
    pub fn push(&mut self, change: Change) {
        self.changes.push(change);
    }

    pub fn pending(&self) -> Pending {
        let mut p = Pending::default();
        for c in &self.changes {
            match c {
                Change::Write { len, .. } => {
                    p.writes += 1;
                    p.bytes += len;
                }
                Change::SetLen { .. } => p.writes += 1,
                _ => p.metadata_changes += 1,
            }
        }
        p
    }

    /// `fsync` of file `ino`: its bytes and length are durable.
    pub fn sync_file(&mut self, ino: u64) {
        self.changes.retain(|c| c.data_of() != Some(ino));
    }

    /// `fsync` of directory `dir`: the names changed in it are durable, and
    /// the files they removed can go.
    pub fn sync_dir(&mut self, root: &Path, inodes: &mut Inodes, dir: u64) -> io::Result<()> {
        let (done, kept) = std::mem::take(&mut self.changes).into_iter().partition(|c| c.dir() == Some(dir));
        self.changes = kept;
        purge(root, inodes, done.iter().filter_map(Change::trashed))
    }

    /// Everything is durable (a checkpoint).
    pub fn sync_all(&mut self, root: &Path, inodes: &mut Inodes) -> io::Result<()> {
        let done = std::mem::take(&mut self.changes);
        purge(root, inodes, done.iter().filter_map(Change::trashed))
    }

    /// Rolls every unsynced change back, newest first. With `torn`, each
    /// file keeps a seeded random prefix of its unsynced writes (the last
    /// kept one possibly cut short); names are always rolled back.
    pub fn lose(&mut self, root: &Path, inodes: &mut Inodes, torn: Option<u64>) -> io::Result<Loss> {
        let changes = std::mem::take(&mut self.changes);
        let plan = torn.map(|seed| TornPlan::new(&changes, seed)).unwrap_or_default();
        let mut loss = Loss::default();
        let mut index: HashMap<u64, usize> = HashMap::new();
        let positions: Vec<usize> = changes
            .iter()
            .map(|c| {
                let ino = c.data_of().unwrap_or(0);
                let i = index.entry(ino).or_default();
                *i += 1;
                *i - 1
            })
            .collect();
        let mut touched = std::collections::HashSet::new();
        let mut first_error = None;
        for (c, &pos) in changes.iter().zip(&positions).rev() {
            let outcome = match c.data_of() {
                Some(ino) => {
                    touched.insert(ino);
                    revert_data(root, inodes, c, plan.keep(ino, pos), &mut loss)
                }
                None => {
                    loss.metadata_changes += 1;
                    revert_name(root, inodes, c)
                }
            };
            if let Err(e) = outcome {
                first_error.get_or_insert(e);
            }
        }
        loss.files = touched.len();
        match first_error {
            Some(e) => Err(io::Error::new(e.kind(), format!("rolling back unsynced changes: {e}"))),
            None => Ok(loss),
        }
    }
}

/// For a torn loss: how many of each file's unsynced writes survive, and
/// how many bytes of the first one that does not.
#[derive(Debug, Default)]
struct TornPlan {
    by_ino: HashMap<u64, (usize, u64)>,
}

/// What happens to one data change in a loss.
enum Keep {
    All,
    Prefix(u64),
    Nothing,
}

impl TornPlan {
    fn new(changes: &[Change], seed: u64) -> TornPlan {
        let mut rng = SplitMix(seed);
        let mut ops: HashMap<u64, Vec<u64>> = HashMap::new();
        for c in changes {
            match c {
                Change::Write { ino, len, .. } => ops.entry(*ino).or_default().push(*len),
                Change::SetLen { ino, .. } => ops.entry(*ino).or_default().push(0),
                _ => {}
            }
        }
        let mut inos: Vec<_> = ops.keys().copied().collect();
        inos.sort_unstable();
        let by_ino = inos
            .into_iter()
            .map(|ino| {
                let lens = &ops[&ino];
                let kept = (rng.next() % (lens.len() as u64 + 1)) as usize;
                let partial = lens.get(kept).map_or(0, |&len| if len > 1 { rng.next() % len } else { 0 });
                (ino, (kept, partial))
            })
            .collect();
        TornPlan { by_ino }
    }

    fn keep(&self, ino: u64, pos: usize) -> Keep {
        match self.by_ino.get(&ino) {
            Some(&(kept, _)) if pos < kept => Keep::All,
            Some(&(kept, partial)) if pos == kept && partial > 0 => Keep::Prefix(partial),
            _ => Keep::Nothing,
        }
    }
}

/// A small seeded generator (SplitMix64): torn losses replay from their seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn open_rw(root: &Path, inodes: &Inodes, ino: u64) -> io::Result<Option<File>> {
    // A file whose removal is durable is gone, and so is what was unsynced in it.
    let Some(rel) = inodes.path(ino) else { return Ok(None) };
    OpenOptions::new().read(true).write(true).open(root.join(rel)).map(Some)
}

fn revert_data(root: &Path, inodes: &Inodes, c: &Change, keep: Keep, loss: &mut Loss) -> io::Result<()> {
    if matches!(keep, Keep::All) {
        if let Change::Write { len, .. } = c {
            loss.bytes_kept += len;
        }
        return Ok(());
    }
    let Some(file) = open_rw(root, inodes, c.data_of().expect("a data change"))? else { return Ok(()) };
    match c {
        Change::Write { offset, len, old_len, old, .. } => {
            let prefix = match keep {
                Keep::Prefix(n) => read_exact_at(&file, *offset, n)?,
                _ => Vec::new(),
            };
            file.write_all_at(old, *offset)?;
            if offset + len > *old_len {
                file.set_len(*old_len)?;
            }
            file.write_all_at(&prefix, *offset)?;
            loss.bytes_kept += prefix.len() as u64;
            loss.bytes_lost += len - prefix.len() as u64;
        }
        Change::SetLen { old_len, new_len, old_tail, .. } => {
            file.set_len(*old_len)?;
            file.write_all_at(old_tail, *new_len)?;
        }
        _ => unreachable!("not a data change"),
    }
    Ok(())
}

fn read_exact_at(file: &File, offset: u64, n: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; n as usize];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// `parent/name`, or `None` when the directory itself is gone for good (its
/// removal was made durable): there is nowhere to put anything back.
fn child(inodes: &Inodes, parent: u64, name: &OsString) -> Option<PathBuf> {
    inodes.path(parent).map(|dir| dir.join(name))
}

fn revert_name(root: &Path, inodes: &mut Inodes, c: &Change) -> io::Result<()> {
    match c {
        Change::Created { ino, .. } => match inodes.path(*ino).map(Path::to_path_buf) {
            Some(rel) => {
                remove_any(&root.join(&rel))?;
                inodes.removed(&rel);
                Ok(())
            }
            None => Ok(()),
        },
        Change::Removed { parent, name, ino } => match child(inodes, *parent, name) {
            Some(to) => move_back(root, inodes, *ino, &to),
            None => Ok(()),
        },
        Change::Renamed { from_parent, from_name, to_parent, to_name, ino, replaced } => {
            if let Some(from) = child(inodes, *from_parent, from_name) {
                move_back(root, inodes, *ino, &from)?;
            }
            // The replaced file goes back where the rename put the other one.
            match (replaced, child(inodes, *to_parent, to_name)) {
                (Some(r), Some(to)) => move_back(root, inodes, *r, &to),
                _ => Ok(()),
            }
        }
        _ => unreachable!("not a name change"),
    }
}

fn move_back(root: &Path, inodes: &mut Inodes, ino: u64, to: &Path) -> io::Result<()> {
    let Some(from) = inodes.path(ino).map(Path::to_path_buf) else { return Ok(()) };
    fs::rename(root.join(&from), root.join(to))?;
    inodes.moved(&from, to);
    Ok(())
}

fn remove_any(path: &Path) -> io::Result<()> {
    let removed = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn purge(root: &Path, inodes: &mut Inodes, trashed: impl Iterator<Item = u64>) -> io::Result<()> {
    for ino in trashed.collect::<Vec<_>>() {
        if let Some(rel) = inodes.path(ino).map(Path::to_path_buf) {
            remove_any(&root.join(&rel))?;
            inodes.removed(&rel);
        }
    }
    Ok(())
}
