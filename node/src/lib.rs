//! `faultline-node`: the broker that faultline tests.
//!
//! A Kafka-like broker with an HTTP/JSON API. Layout:
//! - [`config`]: `server.properties` with Kafka's key names, validated;
//! - [`log`]: durable segmented partition logs with crash recovery;
//! - [`broker`]: topics and partitions on this node, produce and fetch;
//! - [`groups`]: consumer-group offsets, stored in `__consumer_offsets`;
//! - [`http`]: the axum routes, error mapping, metrics and OpenAPI;
//! - [`server`]: start-up, background tasks and clean shutdown.
//!
//! Locks are `parking_lot`'s (tokio's async mutexes aside): they are never
//! poisoned, so `.lock()` returns the guard. A panic while a lock is held is
//! a bug either way: it fails the test, or ends the node task that panicked
//! with its message on stderr. Poisoning would add only a cascade: every
//! later user of that lock would panic too, hiding the first panic and
//! taking the node down one request at a time. Critical sections are short
//! and never await, and the state they guard keeps its own rules (see
//! [`broker::ReplicaState`], whose rules are asserted in debug builds).

pub mod broker;
pub mod bugs;
pub mod config;
pub mod controller;
pub mod error;
pub mod fsutil;
pub mod groups;
pub mod http;
pub mod kafka;
pub mod log;
pub mod replica;
pub mod server;
