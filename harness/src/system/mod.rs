//! The system under test, what Jepsen calls a `db`: how its nodes are set up,
//! started, killed, paused and resumed on their hosts, where their logs are,
//! and how the harness finds partition leaders and the active controller.
//!
//! Two systems exist: `faultline-node`, built in (the harness deploys its
//! binary, writes its `server.properties` and reads its HTTP API), and
//! `external-kafka`, any Kafka-protocol cluster on `hosts.toml` hosts, driven
//! by the commands of a `system.toml` (`file.rs`) and read over Kafka's
//! protocol (`kafka_admin.rs`), which works for the built-in node too.

pub mod external;
pub mod file;
pub mod kafka_admin;
pub mod roles;
