//! The KRaft-style controller: cluster metadata replicated by a Raft quorum.
//!
//! - [`metadata`]: the metadata image and the deterministic commands that
//!   change it, with Kafka's election and ISR rules.
//!
//! Architecture Invariant: no openraft type appears outside this module.

pub mod metadata;
mod raft;
