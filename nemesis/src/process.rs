//! Child processes that never outlive the process that started them.
//!
//! A test, a benchmark or `faultline demo` holds its nodes in kill-on-drop
//! handles, but `Drop` does not run when that process is SIGKILLed, aborts
//! or is stopped by a timeout: the nodes would be orphaned and keep their
//! ports. [`die_with_parent`] asks the kernel to SIGKILL the child when its
//! parent dies (`PR_SET_PDEATHSIG`), so nothing survives the parent whatever
//! way it ends.

use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::Signal;
use nix::unistd::{Pid, getpid, getppid};

/// Makes the child `cmd` spawns die (SIGKILL) when its parent dies.
///
/// The kernel ties the signal to the *thread* that forks, so spawn from a
/// thread that lives as long as the child should (a test's own thread, a
/// runtime worker), never from a short-lived one such as tokio's blocking
/// pool.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    let parent: Pid = getpid();
    // SAFETY: the closure runs between fork and exec and only makes two
    // async-signal-safe system calls (prctl, getppid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Some(Signal::SIGKILL))?;
            // The parent may have died between the fork and the prctl.
            if getppid() != parent {
                return Err(std::io::Error::other("the parent exited before the child started"));
            }
            Ok(())
        })
    }
}
