//! faultline-lazyfs: a FUSE filesystem that forgets what was never synced.
//!
//! Mounted over a node's `log.dirs`, it behaves like a disk whose volatile
//! cache is lost at power failure. Every byte and every name a process
//! changes is visible at once (read-your-writes), but it becomes durable
//! only when `fsync` makes it so: a file's bytes and length by an fsync of
//! the file, a directory's names by an fsync of the directory. The control
//! channel's `lose-unsynced` rolls everything else back, as a power cut
//! would, and its torn variant keeps a random prefix of each file's
//! unsynced writes, like a partly written page.
//!
//! - `inodes`: inode numbers ↔ backing paths;
//! - `journal`: the unsynced changes and what they replaced, sync and loss;
//! - `lazy`: the operations on the backing directory (the model, without FUSE);
//! - `fs`: the FUSE adapter;
//! - `control`: the Unix-socket commands;
//! - `mount`: serving a mount, finding and removing ours.

pub mod control;
mod fs;
pub mod inodes;
mod journal;
pub mod lazy;
pub mod mount;

pub use control::{Command, Reply};
pub use journal::{Loss, Pending};
pub use lazy::LazyDir;
pub use mount::{MountSpec, Mounted, mounts, serve, unmount};

#[cfg(test)]
mod tests;
