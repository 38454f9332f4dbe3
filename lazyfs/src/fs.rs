//! The FUSE face of [`LazyDir`]: each request becomes one call on the
//! shared state, and its `io::Error` becomes the reply's errno.
//!
//! Attributes and names are never cached by the kernel (a zero TTL), the
//! kernel's page cache of a file is dropped at every open (no
//! `keep_cache`), and the mount has no `writeback_cache`: after a loss, a
//! restarted process reads what the backing directory holds, never stale
//! kernel pages. `flush` and `release` (every `close()`, a SIGKILL's too)
//! make nothing durable.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::lazy::LazyDir;

const TTL: Duration = Duration::ZERO;

/// An open file: the backing file, opened for reading and writing.
struct Handle {
    ino: u64,
    file: File,
    /// `O_APPEND`: writes land at the backing file's end, whatever offset the kernel sends.
    append: bool,
}

/// What the FUSE threads and the control channel share.
pub struct State {
    pub dir: LazyDir,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
}

impl State {
    pub fn new(dir: LazyDir) -> State {
        State { dir, handles: HashMap::new(), next_fh: 1 }
    }

    fn add(&mut self, ino: u64, file: File, flags: i32) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, Handle { ino, file, append: flags & libc::O_APPEND != 0 });
        fh
    }
}

/// The filesystem FUSE drives.
pub struct LazyFs {
    state: Arc<Mutex<State>>,
}

impl LazyFs {
    pub fn new(state: Arc<Mutex<State>>) -> LazyFs {
        LazyFs { state }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the journal as it was before
        // the call: every call journals only after its change succeeded.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn err(e: io::Error) -> Errno {
    Errno::from(e)
}

fn kind(t: std::fs::FileType) -> FileType {
    if t.is_dir() {
        FileType::Directory
    } else if t.is_symlink() {
        FileType::Symlink
    } else if t.is_fifo() {
        FileType::NamedPipe
    } else if t.is_socket() {
        FileType::Socket
    } else if t.is_char_device() {
        FileType::CharDevice
    } else if t.is_block_device() {
        FileType::BlockDevice
    } else {
        FileType::RegularFile
    }
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    let at = Duration::new(secs.unsigned_abs(), nsecs as u32);
    if secs >= 0 { UNIX_EPOCH + at } else { UNIX_EPOCH - at }
}

fn attr(ino: u64, m: &Metadata) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: m.len(),
        blocks: m.blocks(),
        atime: time(m.atime(), m.atime_nsec()),
        mtime: time(m.mtime(), m.mtime_nsec()),
        ctime: time(m.ctime(), m.ctime_nsec()),
        crtime: time(m.ctime(), m.ctime_nsec()),
        kind: kind(m.file_type()),
        perm: (m.mode() & 0o7777) as u16,
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev() as u32,
        blksize: m.blksize() as u32,
        flags: 0,
    }
}

impl Filesystem for LazyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.lock().dir.lookup(parent.0, name) {
            Ok((ino, m)) => reply.entry(&TTL, &attr(ino, &m), Generation(0)),
            Err(e) => reply.error(err(e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let s = self.lock();
        // An open file answers through its handle, even once its name is gone.
        let by_handle = fh.and_then(|fh| s.handles.get(&fh.0)).map(|h| h.file.metadata());
        match by_handle.unwrap_or_else(|| s.dir.getattr(ino.0)) {
            Ok(m) => reply.attr(&TTL, &attr(ino.0, &m)),
            Err(e) => reply.error(err(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut s = self.lock();
        let outcome = (|| {
            if let Some(size) = size {
                match fh.and_then(|fh| s.handles.get(&fh.0)).map(|h| h.file.try_clone()) {
                    Some(file) => s.dir.set_len(ino.0, &file?, size)?,
                    None => s.dir.truncate(ino.0, size)?,
                }
            }
            if let Some(mode) = mode {
                // Permissions are passed through, not journaled.
                s.dir.chmod(ino.0, mode)?;
            }
            match fh.and_then(|fh| s.handles.get(&fh.0)) {
                Some(h) => h.file.metadata(),
                None => s.dir.getattr(ino.0),
            }
        })();
        match outcome {
            Ok(m) => reply.attr(&TTL, &attr(ino.0, &m)),
            Err(e) => reply.error(err(e)),
        }
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let mut s = self.lock();
        match s.dir.mkdir(parent.0, name, mode & !umask).and_then(|ino| Ok((ino, s.dir.getattr(ino)?))) {
            Ok((ino, m)) => reply.entry(&TTL, &attr(ino, &m), Generation(0)),
            Err(e) => reply.error(err(e)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.lock().dir.remove(parent.0, name, false) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(err(e)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.lock().dir.remove(parent.0, name, true) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(err(e)),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        // Exchanges and no-replace renames are not journaled yet: refuse them
        // rather than lose track of a change.
        if !flags.is_empty() {
            return reply.error(Errno::EINVAL);
        }
        match self.lock().dir.rename(parent.0, name, newparent.0, newname) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(err(e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut s = self.lock();
        match s.dir.open_file(ino.0, flags.0) {
            Ok(file) => {
                let fh = s.add(ino.0, file, flags.0);
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(err(e)),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut s = self.lock();
        let made = s.dir.create(parent.0, name, mode & !umask).and_then(|(ino, f)| Ok((ino, f.metadata()?, f)));
        match made {
            Ok((ino, m, file)) => {
                let fh = s.add(ino, file, flags);
                reply.created(&TTL, &attr(ino, &m), Generation(0), FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(err(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let s = self.lock();
        let Some(h) = s.handles.get(&fh.0) else { return reply.error(Errno::EBADF) };
        let mut buf = vec![0; size as usize];
        let mut filled = 0;
        while filled < buf.len() {
            match h.file.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return reply.error(err(e)),
            }
        }
        reply.data(&buf[..filled]);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut s = self.lock();
        let State { dir, handles, .. } = &mut *s;
        let Some(h) = handles.get(&fh.0) else { return reply.error(Errno::EBADF) };
        let offset = match h.append {
            true => match h.file.metadata() {
                Ok(m) => m.len(),
                Err(e) => return reply.error(err(e)),
            },
            false => offset,
        };
        match dir.write(h.ino, &h.file, offset, data) {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(err(e)),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        // Every close() flushes, a killed process's too: nothing becomes durable here.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.lock().handles.remove(&fh.0);
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        self.lock().dir.sync_file(ino.0);
        reply.ok();
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let entries = match self.lock().dir.list(ino.0) {
            Ok(entries) => entries,
            Err(e) => return reply.error(err(e)),
        };
        let dots = [(ino.0, ".".into(), FileType::Directory), (ino.0, "..".into(), FileType::Directory)];
        let all = dots.into_iter().chain(entries.into_iter().map(|(i, n, t)| (i, n, kind(t))));
        for (i, (child, name, t)) in all.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), i as u64 + 1, t, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        match self.lock().dir.sync_dir(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(err(e)),
        }
    }

    fn getxattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, _size: u32, reply: ReplyXattr) {
        // ENOSYS tells the kernel to stop asking (it asks for
        // `security.capability` before every write otherwise).
        reply.error(Errno::ENOSYS);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match nix::sys::statvfs::statvfs(self.lock().dir.root()) {
            Ok(v) => reply.statfs(
                v.blocks(),
                v.blocks_free(),
                v.blocks_available(),
                v.files(),
                v.files_free(),
                v.block_size() as u32,
                v.name_max() as u32,
                v.fragment_size() as u32,
            ),
            Err(e) => reply.error(Errno::from_i32(e as i32)),
        }
    }
}
