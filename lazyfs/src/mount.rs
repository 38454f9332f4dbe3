//! Mounting and unmounting. [`serve`] mounts the filesystem over a
//! directory and answers FUSE and the control socket until the mount goes
//! away (an unmount, or SIGTERM/SIGINT, which unmount first). [`mounts`]
//! and [`unmount`] let the harness find and remove mounts a crashed run
//! left behind: every mount's source is [`FSNAME`].

use std::fs;
use std::io;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use fuser::{Config, MountOption, SessionACL};
use nix::sys::signal::{SigSet, Signal};

use crate::control;
use crate::fs::{LazyFs, State};
use crate::lazy::LazyDir;

/// The source the mount table shows for our mounts (their type is `fuse`,
/// or `fuse.faultline-lazyfs` when mounted through `fusermount3`).
pub const FSNAME: &str = "faultline-lazyfs";

/// Where a mount keeps its data and how it is reached.
#[derive(Debug, Clone)]
pub struct MountSpec {
    /// The real directory holding the data.
    pub backing: PathBuf,
    /// Where the filesystem appears.
    pub mountpoint: PathBuf,
    /// The control channel's Unix socket.
    pub control: PathBuf,
}

/// Mounts the filesystem and starts answering its control socket.
fn mount(spec: &MountSpec) -> io::Result<fuser::Session<LazyFs>> {
    fs::create_dir_all(&spec.backing)?;
    fs::create_dir_all(&spec.mountpoint)?;
    let state = Arc::new(Mutex::new(State::new(LazyDir::open(&spec.backing)?)));
    let mut config = Config::default();
    config.mount_options = vec![MountOption::FSName(FSNAME.into()), MountOption::Subtype(FSNAME.into())];
    // The nodes may run as another user than the daemon.
    config.acl = SessionACL::All;
    let session = fuser::Session::new(LazyFs::new(Arc::clone(&state)), &spec.mountpoint, &config)?;
    let _ = fs::remove_file(&spec.control);
    let listener = UnixListener::bind(&spec.control)?;
    thread::spawn(move || control::serve(listener, state));
    Ok(session)
}

/// Mounts and serves until unmounted; SIGTERM and SIGINT unmount.
pub fn serve(spec: &MountSpec) -> io::Result<()> {
    // Signals are taken by one thread (sigwait); every thread spawned
    // after this inherits the mask.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.thread_block().map_err(io::Error::from)?;
    let mut session = mount(spec)?;
    // Through the session, so that it does not unmount a second time when it ends.
    let mut unmounter = session.unmount_callable();
    thread::spawn(move || {
        if signals.wait().is_ok() {
            let _ = unmounter.unmount();
        }
    });
    let outcome = session.run();
    let _ = fs::remove_file(&spec.control);
    outcome
}

/// A mount served by a thread of this process, unmounted on drop (for tests).
pub struct Mounted {
    session: Option<fuser::BackgroundSession>,
}

impl Mounted {
    pub fn start(spec: &MountSpec) -> io::Result<Mounted> {
        Ok(Mounted { session: Some(mount(spec)?.spawn()?) })
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = session.umount_and_join();
        }
    }
}

/// Detaches the mount at `path` (the kernel finishes when it is idle).
pub fn unmount(path: &Path) -> io::Result<()> {
    nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH).map_err(io::Error::from)
}

/// Every mount of ours on this machine, from `/proc/self/mountinfo`.
pub fn mounts() -> io::Result<Vec<PathBuf>> {
    Ok(parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo")?))
}

/// Mount points of FUSE mounts whose source is [`FSNAME`]. A line is `id parent dev root
/// mountpoint options [optional fields] - fstype source superopts`; paths
/// escape space, tab, newline and backslash as octal.
fn parse_mountinfo(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut fields = right.split(' ');
            let (fstype, source) = (fields.next()?, fields.next()?);
            (fstype.split('.').next() == Some("fuse") && source == FSNAME).then(|| PathBuf::from(unescape(point)))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match (b[i], octal) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_of_our_type_give_their_unescaped_mount_points() {
        let text = "\
36 35 98:0 / /mnt1 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
50 22 0:45 / /tmp/a\\040b/mnt rw,nosuid,nodev,relatime shared:30 - fuse.faultline-lazyfs faultline-lazyfs rw
51 22 0:46 / /tmp/other rw - fuse.sshfs host: rw
52 22 0:47 / /tmp/pure rw,nosuid,nodev,relatime - fuse faultline-lazyfs rw,user_id=0
53 22 0:48 / /tmp/named rw - ext4 faultline-lazyfs rw
";
        assert_eq!(parse_mountinfo(text), vec![PathBuf::from("/tmp/a b/mnt"), PathBuf::from("/tmp/pure")]);
    }
}
