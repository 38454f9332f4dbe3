//! The inode table: FUSE names files by inode number, the backing directory
//! by path. Numbers are handed out on first sight of a path and follow the
//! file through renames, so an open file and the journal's records about it
//! keep naming the same file wherever it moves (including into the trash).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The root's number, fixed by FUSE.
pub const ROOT: u64 = 1;

/// Inode numbers and the paths (relative to the backing root) they name now.
#[derive(Debug)]
pub struct Inodes {
    by_ino: HashMap<u64, PathBuf>,
    by_path: HashMap<PathBuf, u64>,
    next: u64,
}

impl Default for Inodes {
    fn default() -> Self {
        Inodes::new()
    }
}

impl Inodes {
    /// A table that knows only the root (the empty relative path).
    pub fn new() -> Inodes {
        let mut t = Inodes { by_ino: HashMap::new(), by_path: HashMap::new(), next: ROOT + 1 };
        t.by_ino.insert(ROOT, PathBuf::new());
        t.by_path.insert(PathBuf::new(), ROOT);
        t
    }

    /// The path `ino` names now, if it still names one.
    pub fn path(&self, ino: u64) -> Option<&Path> {
        self.by_ino.get(&ino).map(PathBuf::as_path)
    }

    /// The number of `rel`, handing out a new one on first sight.
    pub fn ino_of(&mut self, rel: &Path) -> u64 {
        if let Some(&ino) = self.by_path.get(rel) {
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.by_ino.insert(ino, rel.to_path_buf());
        self.by_path.insert(rel.to_path_buf(), ino);
        ino
    }

    /// The number of `rel`, if it has one.
    pub fn get(&self, rel: &Path) -> Option<u64> {
        self.by_path.get(rel).copied()
    }

    /// `from` (and everything under it) now lives at `to`; whatever `to`
    /// named before is forgotten.
    pub fn moved(&mut self, from: &Path, to: &Path) {
        self.removed(to);
        let moving: Vec<(PathBuf, u64)> =
            self.by_path.iter().filter(|(p, _)| p.starts_with(from)).map(|(p, i)| (p.clone(), *i)).collect();
        for (old, ino) in moving {
            // `join("")` would add a trailing slash, which names only directories.
            let rest = old.strip_prefix(from).expect("filtered on the prefix");
            let new = if rest.as_os_str().is_empty() { to.to_path_buf() } else { to.join(rest) };
            self.by_path.remove(&old);
            self.by_path.insert(new.clone(), ino);
            self.by_ino.insert(ino, new);
        }
    }

    /// `rel` and everything under it are gone.
    pub fn removed(&mut self, rel: &Path) {
        if rel.as_os_str().is_empty() {
            return;
        }
        let gone: Vec<PathBuf> = self.by_path.keys().filter(|p| p.starts_with(rel)).cloned().collect();
        for p in gone {
            if let Some(ino) = self.by_path.remove(&p) {
                self.by_ino.remove(&ino);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_follows_its_file_and_its_children_through_a_rename() {
        let mut t = Inodes::new();
        let d = t.ino_of(Path::new("d"));
        let f = t.ino_of(Path::new("d/f"));
        let other = t.ino_of(Path::new("e"));
        t.moved(Path::new("d"), Path::new("e"));
        assert_eq!(t.path(d).unwrap().as_os_str(), "e", "no trailing slash");
        assert_eq!(t.path(f), Some(Path::new("e/f")));
        assert_eq!(t.path(other), None, "the replaced target is forgotten");
        assert_eq!(t.get(Path::new("d/f")), None);
        assert_eq!(t.ino_of(Path::new("e/f")), f);
    }

    #[test]
    fn removing_a_directory_forgets_what_is_under_it_but_never_the_root() {
        let mut t = Inodes::new();
        let f = t.ino_of(Path::new("d/f"));
        let keep = t.ino_of(Path::new("dd"));
        t.removed(Path::new("d"));
        assert_eq!(t.path(f), None);
        assert_eq!(t.path(keep), Some(Path::new("dd")), "a sibling sharing a name prefix stays");
        t.removed(Path::new(""));
        assert_eq!(t.path(ROOT), Some(Path::new("")));
    }
}
