//! Integration tests of `faultline-node`: every test runs the real binary
//! on 127.0.0.1 with an ephemeral port and its own data directory.

mod api;
mod bugs;
mod cluster;
mod crash;
mod groups;
mod idempotence;
mod kafka;
mod kafka_admin;
mod kafka_clients;
mod kafka_faults;
mod kafka_fuzz;
mod kafka_groups;
mod leaks;
mod lifecycle;
mod openapi;
mod producer;
mod rdkafka_util;
mod replication;
mod util;
