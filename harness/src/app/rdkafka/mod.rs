//! The applications on librdkafka (`--client librdkafka`): the same producer
//! and consumer stories as the Rust model's, written as an application on
//! the `rdkafka` crate would write them, talking Kafka's wire protocol to the
//! nodes' Kafka listeners. They record the same history format, from what
//! the library reports: a delivery report per record, each poll's records,
//! each commit librdkafka performed.
//!
//! `config.rs` turns a spec into librdkafka's settings (Kafka's keys where
//! librdkafka has them, the spec's own keys as they are) and checks them
//! before a run; `errors.rs` names the library's errors in the history's
//! vocabulary; `producer.rs` and `consumer.rs` are the applications;
//! `drain.rs` is the final reader for a system without faultline-node's
//! HTTP API.

pub mod config;
pub mod consumer;
pub mod drain;
pub mod errors;
pub mod producer;
