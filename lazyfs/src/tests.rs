//! The model's rules, on a plain backing directory (no FUSE): what a loss
//! takes and what it leaves.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::path::Path;

use crate::inodes::ROOT;
use crate::lazy::{LazyDir, TRASH};

fn dir() -> (tempfile::TempDir, LazyDir) {
    let tmp = tempfile::tempdir().unwrap();
    let lazy = LazyDir::open(tmp.path()).unwrap();
    (tmp, lazy)
}

fn name(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn read(root: &Path, rel: &str) -> Option<Vec<u8>> {
    fs::read(root.join(rel)).ok()
}

/// Creates `rel` in the root, writes `bytes`, and syncs the root so the name is durable.
fn durable_file(d: &mut LazyDir, rel: &str, bytes: &[u8]) -> (u64, File) {
    let (ino, file) = d.create(ROOT, name(rel), 0o644).unwrap();
    d.write(ino, &file, 0, bytes).unwrap();
    d.sync_file(ino);
    d.sync_dir(ROOT).unwrap();
    (ino, file)
}

#[test]
fn written_but_unsynced_bytes_are_gone_after_a_loss_and_reads_saw_them_before() {
    let (tmp, mut d) = dir();
    let (ino, file) = durable_file(&mut d, "seg", b"synced|");
    d.write(ino, &file, 7, b"unsynced").unwrap();
    assert_eq!(read(tmp.path(), "seg").unwrap(), b"synced|unsynced", "reads see unsynced writes");
    let loss = d.lose_unsynced(None).unwrap();
    assert_eq!(read(tmp.path(), "seg").unwrap(), b"synced|");
    assert_eq!((loss.files, loss.bytes_lost, loss.bytes_kept), (1, 8, 0));
}

#[test]
fn synced_bytes_stay_and_an_unsynced_overwrite_is_put_back() {
    let (tmp, mut d) = dir();
    let (ino, file) = durable_file(&mut d, "f", b"aaaaaaaa");
    d.write(ino, &file, 2, b"bb").unwrap();
    d.sync_file(ino);
    d.write(ino, &file, 4, b"cccccc").unwrap();
    d.set_len(ino, &file, 3).unwrap();
    d.lose_unsynced(None).unwrap();
    assert_eq!(read(tmp.path(), "f").unwrap(), b"aabbaaaa", "the synced overwrite stays, the rest rolls back");
}

#[test]
fn a_new_file_whose_directory_was_not_synced_vanishes_even_if_its_bytes_were() {
    let (tmp, mut d) = dir();
    let sub = d.mkdir(ROOT, name("p"), 0o755).unwrap();
    d.sync_dir(ROOT).unwrap();
    let (ino, file) = d.create(sub, name("00.log"), 0o644).unwrap();
    d.write(ino, &file, 0, b"data").unwrap();
    d.sync_file(ino);
    let loss = d.lose_unsynced(None).unwrap();
    assert_eq!(read(tmp.path(), "p/00.log"), None);
    assert!(tmp.path().join("p").is_dir(), "the directory's own name was synced");
    assert_eq!(loss.metadata_changes, 1);
}

#[test]
fn a_new_directory_not_synced_in_its_parent_vanishes_with_everything_in_it() {
    let (tmp, mut d) = dir();
    let sub = d.mkdir(ROOT, name("events-0"), 0o755).unwrap();
    let (ino, file) = d.create(sub, name("00.log"), 0o644).unwrap();
    d.write(ino, &file, 0, b"data").unwrap();
    d.sync_file(ino);
    d.sync_dir(sub).unwrap();
    d.lose_unsynced(None).unwrap();
    assert!(!tmp.path().join("events-0").exists());
}

/// A durable `rel` holding "old", replaced by "new" the way `write_atomic`
/// does (a fsynced temporary file renamed over it), short of its last step:
/// the directory's fsync.
fn replace_atomically(d: &mut LazyDir, rel: &str) {
    durable_file(d, rel, b"old");
    let tmp = format!("{rel}.tmp");
    let (ino, file) = d.create(ROOT, name(&tmp), 0o644).unwrap();
    d.write(ino, &file, 0, b"new").unwrap();
    d.sync_file(ino);
    d.rename(ROOT, name(&tmp), ROOT, name(rel)).unwrap();
}

#[test]
fn a_rename_without_a_directory_fsync_is_undone_and_the_replaced_file_returns() {
    let (tmp, mut d) = dir();
    replace_atomically(&mut d, "checkpoint");
    assert_eq!(read(tmp.path(), "checkpoint").unwrap(), b"new");
    d.lose_unsynced(None).unwrap();
    assert_eq!(read(tmp.path(), "checkpoint").unwrap(), b"old");
    assert_eq!(read(tmp.path(), "checkpoint.tmp"), None, "its creation was never durable either");
}

#[test]
fn a_rename_followed_by_a_directory_fsync_survives() {
    let (tmp, mut d) = dir();
    replace_atomically(&mut d, "checkpoint");
    d.sync_dir(ROOT).unwrap();
    d.lose_unsynced(None).unwrap();
    assert_eq!(read(tmp.path(), "checkpoint").unwrap(), b"new");
    assert_eq!(fs::read_dir(tmp.path().join(TRASH)).unwrap().count(), 0, "the replaced file is purged");
}

#[test]
fn an_unsynced_unlink_is_undone_with_the_file_s_synced_bytes() {
    let (tmp, mut d) = dir();
    durable_file(&mut d, "00.log", b"records");
    d.remove(ROOT, name("00.log"), false).unwrap();
    assert_eq!(read(tmp.path(), "00.log"), None);
    d.lose_unsynced(None).unwrap();
    assert_eq!(read(tmp.path(), "00.log").unwrap(), b"records");
}

#[test]
fn torn_mode_keeps_a_prefix_of_each_file_s_unsynced_writes() {
    let mut seen_partial = false;
    for seed in 0..32 {
        let (tmp, mut d) = dir();
        let (ino, file) = durable_file(&mut d, "seg", b"S");
        let writes: Vec<Vec<u8>> = (0..4u8).map(|i| vec![b'a' + i; 10]).collect();
        let mut offset = 1;
        for w in &writes {
            d.write(ino, &file, offset, w).unwrap();
            offset += w.len() as u64;
        }
        let all: Vec<u8> = std::iter::once(b'S').chain(writes.concat()).collect();
        let loss = d.lose_unsynced(Some(seed)).unwrap();
        let after = read(tmp.path(), "seg").unwrap();
        assert!(all.starts_with(&after), "seed {seed}: {after:?} is not a prefix of what was written");
        assert_eq!(loss.bytes_kept + 1, after.len() as u64, "seed {seed}");
        assert_eq!(loss.bytes_kept + loss.bytes_lost, 40, "seed {seed}");
        seen_partial |= !(after.len() - 1).is_multiple_of(10);
        let (_again_tmp, mut again) = dir();
        let (ino2, file2) = durable_file(&mut again, "seg", b"S");
        let mut offset = 1;
        for w in &writes {
            again.write(ino2, &file2, offset, w).unwrap();
            offset += w.len() as u64;
        }
        assert_eq!(again.lose_unsynced(Some(seed)).unwrap(), loss, "seed {seed}: a torn loss replays from its seed");
    }
    assert!(seen_partial, "some seed cuts a write short");
}

#[test]
fn a_checkpoint_makes_everything_durable() {
    let (tmp, mut d) = dir();
    let (ino, file) = d.create(ROOT, name("f"), 0o644).unwrap();
    d.write(ino, &file, 0, b"x").unwrap();
    d.checkpoint().unwrap();
    assert_eq!(d.pending().writes, 0);
    let loss = d.lose_unsynced(None).unwrap();
    assert_eq!(read(tmp.path(), "f").unwrap(), b"x");
    assert_eq!(loss, crate::Loss::default());
}

#[test]
fn the_trash_is_hidden_and_its_name_refused() {
    let (_tmp, mut d) = dir();
    durable_file(&mut d, "a", b"1");
    let names: Vec<_> = d.list(ROOT).unwrap().into_iter().map(|e| e.1).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("a")]);
    assert!(d.lookup(ROOT, name(TRASH)).is_err());
    assert!(d.create(ROOT, name(TRASH), 0o644).is_err());
}

#[test]
fn a_replaced_file_returns_where_the_rename_put_the_other_even_after_it_moved_on() {
    let (tmp, mut d) = dir();
    let (a, b, c) = (
        d.mkdir(ROOT, name("a"), 0o755).unwrap(),
        d.mkdir(ROOT, name("b"), 0o755).unwrap(),
        d.mkdir(ROOT, name("c"), 0o755).unwrap(),
    );
    d.sync_dir(ROOT).unwrap();
    for (parent, rel, bytes) in [(a, "x", b"x".as_slice()), (b, "y", b"y".as_slice())] {
        let (ino, file) = d.create(parent, name(rel), 0o644).unwrap();
        d.write(ino, &file, 0, bytes).unwrap();
        d.sync_file(ino);
        d.sync_dir(parent).unwrap();
    }
    d.rename(a, name("x"), b, name("y")).unwrap();
    d.rename(b, name("y"), c, name("z")).unwrap();
    d.sync_dir(c).unwrap();
    d.lose_unsynced(None).unwrap();
    assert_eq!(read(tmp.path(), "b/y").unwrap(), b"y", "the replaced file is back at b/y");
}

#[test]
fn a_loss_survives_a_directory_whose_removal_was_made_durable() {
    let (tmp, mut d) = dir();
    let sub = d.mkdir(ROOT, name("d"), 0o755).unwrap();
    d.sync_dir(ROOT).unwrap();
    let (ino, file) = d.create(sub, name("f"), 0o644).unwrap();
    d.write(ino, &file, 0, b"1").unwrap();
    d.sync_file(ino);
    d.sync_dir(sub).unwrap();
    d.remove(sub, name("f"), false).unwrap();
    d.remove(ROOT, name("d"), true).unwrap();
    d.sync_dir(ROOT).unwrap();
    d.lose_unsynced(None).expect("nothing to put back where the directory was");
    assert!(!tmp.path().join("d").exists());
}

#[test]
fn a_rename_onto_its_own_subdirectory_or_across_kinds_is_refused_and_changes_nothing() {
    let (tmp, mut d) = dir();
    let sub = d.mkdir(ROOT, name("d"), 0o755).unwrap();
    durable_file(&mut d, "f", b"1");
    d.mkdir(sub, name("e"), 0o755).unwrap();
    assert_eq!(d.rename(ROOT, name("d"), sub, name("d2")).unwrap_err().raw_os_error(), Some(libc::EINVAL));
    assert_eq!(d.rename(ROOT, name("f"), sub, name("e")).unwrap_err().raw_os_error(), Some(libc::EISDIR));
    assert_eq!(d.rename(sub, name("e"), ROOT, name("f")).unwrap_err().raw_os_error(), Some(libc::ENOTDIR));
    assert_eq!(read(tmp.path(), "f").unwrap(), b"1");
    assert!(tmp.path().join("d/e").is_dir());
}
