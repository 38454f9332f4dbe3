//! Durable storage: one segmented log per topic-partition replica.
//!
//! - [`batch`]: the on-disk batch format and its validation;
//! - [`segment`]: a `.log` file plus its sparse `.index`;
//! - [`partition_log`]: the ordered segments of one partition, with append,
//!   read, truncate, flush and crash recovery;
//! - [`checkpoint`]: the per-directory recovery-point checkpoint and
//!   clean-shutdown marker.

pub mod batch;
pub mod checkpoint;
pub mod partition_log;
pub mod segment;

pub use partition_log::{AppendInfo, LogConfig, LogError, OpenMode, PartitionLog, RecoveryReport};

#[cfg(test)]
mod tests;
