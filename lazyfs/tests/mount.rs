//! The filesystem through a real FUSE mount (needs root and /dev/fuse, as
//! CI has): what processes see, what `lose-unsynced` takes, and that a
//! killed process's implicit close makes nothing durable.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::Command as Process;
use std::time::Duration;

use faultline_lazyfs::control::{Command, send};
use faultline_lazyfs::{MountSpec, Mounted, mounts};

struct Setup {
    _tmp: tempfile::TempDir,
    spec: MountSpec,
    mounted: Option<Mounted>,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let spec = MountSpec {
        backing: tmp.path().join("data"),
        mountpoint: tmp.path().join("mnt"),
        control: tmp.path().join("control.sock"),
    };
    let mounted = Mounted::start(&spec).expect("mounting needs root and /dev/fuse");
    Setup { _tmp: tmp, spec, mounted: Some(mounted) }
}

fn lose(spec: &MountSpec) -> faultline_lazyfs::control::LossReply {
    let reply = send(&spec.control, Command::LoseUnsynced, Duration::from_secs(30)).unwrap();
    assert!(reply.ok, "{reply:?}");
    reply.loss.unwrap()
}

fn fsync_dir(dir: &Path) {
    File::open(dir).unwrap().sync_all().unwrap();
}

#[test]
fn through_the_mount_only_fsynced_bytes_and_names_survive_a_loss() {
    let mut s = setup();
    let mnt = s.spec.mountpoint.clone();
    let mut seg = File::create(mnt.join("0.log")).unwrap();
    seg.write_all(b"synced ").unwrap();
    seg.sync_all().unwrap();
    fsync_dir(&mnt);
    seg.write_all(b"unsynced").unwrap();
    fs::write(mnt.join("new-never-synced"), b"x").unwrap();
    assert_eq!(fs::read(mnt.join("0.log")).unwrap(), b"synced unsynced", "read-your-writes");
    drop(seg);
    let loss = lose(&s.spec);
    assert_eq!(loss.bytes_lost, 8 + 1);
    assert_eq!(fs::read(mnt.join("0.log")).unwrap(), b"synced ", "a fresh open reads the durable bytes");
    assert!(!mnt.join("new-never-synced").exists());
    assert!(
        mounts().unwrap().contains(&mnt),
        "the mount is in the mount table as ours: {}",
        fs::read_to_string("/proc/self/mountinfo").unwrap()
    );
    drop(s.mounted.take());
    assert!(!mounts().unwrap().contains(&mnt), "dropping the mount unmounts it");
    assert_eq!(fs::read(s.spec.backing.join("0.log")).unwrap(), b"synced ");
}

#[test]
fn a_killed_process_s_close_persists_nothing_and_a_synced_rename_does() {
    let s = setup();
    let mnt = &s.spec.mountpoint;
    fs::write(mnt.join("cp.tmp"), b"new").unwrap();
    OpenOptions::new().write(true).open(mnt.join("cp.tmp")).unwrap().sync_all().unwrap();
    fs::rename(mnt.join("cp.tmp"), mnt.join("cp")).unwrap();
    fsync_dir(mnt);
    // The shell writes, then SIGKILLs itself: FUSE still gets its flush and release.
    let status = Process::new("sh")
        .arg("-c")
        .arg("printf tail >> \"$1\"; kill -KILL $$")
        .arg("sh")
        .arg(mnt.join("cp"))
        .status()
        .unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
    assert_eq!(fs::read(mnt.join("cp")).unwrap(), b"newtail");
    lose(&s.spec);
    assert_eq!(fs::read(mnt.join("cp")).unwrap(), b"new");
}

#[test]
fn a_bad_control_command_gets_an_error_naming_it() {
    let s = setup();
    let stream = std::os::unix::net::UnixStream::connect(&s.spec.control).unwrap();
    (&stream).write_all(b"lose-everything\n").unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&stream), &mut line).unwrap();
    assert!(line.contains("\"ok\":false") && line.contains("lose-everything"), "{line}");
    let pending = send(&s.spec.control, Command::Pending, Duration::from_secs(30)).unwrap();
    assert!(pending.ok && pending.pending.is_some(), "the channel still answers: {pending:?}");
}
