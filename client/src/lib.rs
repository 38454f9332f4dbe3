//! `faultline-client`: the broker's HTTP wire types and a Rust client for them.
//!
//! The node depends on [`api`] for its request and response bodies, so the
//! wire format has exactly one definition. [`Client`] is a thin, typed HTTP
//! client over those types. [`ClusterClient`] follows leaders; [`Producer`]
//! adds Kafka's retries and idempotence, one batch per send, and
//! [`AsyncProducer`] its accumulator (linger, batch size, buffer memory).
//!
//! Locks are `parking_lot`'s (tokio's async mutexes aside): never poisoned,
//! so `.lock()` returns the guard. A panic while a lock is held is a bug
//! that already fails its caller (a test, or the harness worker's task);
//! poisoning would only make every other task sharing the client or the
//! producer panic too, burying the first panic under copies of it.

pub mod accumulator;
pub mod api;
mod client;
pub mod cluster;
pub mod health;
pub mod producer;

pub use accumulator::{
    AccumulatorConfig, AsyncProducer, BatchInfo, BatchObserver, Delivery, EnqueueError, RecordOutcome,
};
pub use client::{Client, ClientError};
pub use cluster::ClusterClient;
pub use health::wait_healthy_blocking;
pub use producer::{Producer, ProducerConfig, Reservation, SendOutcome};
