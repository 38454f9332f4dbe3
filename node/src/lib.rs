//! `faultline-node`: the broker that faultline tests.
//!
//! A Kafka-like broker with an HTTP/JSON API. Layout:
//! - [`config`]: `server.properties` with Kafka's key names, validated;
//! - [`log`]: durable segmented partition logs with crash recovery;
//! - [`broker`]: topics and partitions on this node, produce and fetch;
//! - [`groups`]: consumer-group offsets, stored in `__consumer_offsets`;
//! - [`http`]: the axum routes, error mapping, metrics and OpenAPI;
//! - [`server`]: start-up, background tasks and clean shutdown.

pub mod broker;
pub mod bugs;
pub mod config;
pub mod controller;
pub mod error;
pub mod fsutil;
pub mod groups;
pub mod http;
pub mod log;
pub mod replica;
pub mod server;
