//! The openraft plumbing of the controller quorum: types, durable storage,
//! and the HTTP transport. Nothing here is visible outside
//! [`crate::controller`].
//!
//! - [`types`]: the raft type configuration and id conversions;
//! - [`codec`]: CRC-framed on-disk records;
//! - [`log_store`]: the fsync'd raft log and vote;
//! - [`state_machine`]: the metadata image as a raft state machine, with snapshots;
//! - [`network`]: raft RPCs over the nodes' HTTP listeners.

pub mod codec;
pub mod log_store;
pub mod network;
pub mod state_machine;
pub mod types;

#[cfg(test)]
mod suite;
