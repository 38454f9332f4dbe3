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

use std::time::Duration;

use faultline_checker::op::RecordValue;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaError;

/// One poll's messages, taken out of librdkafka as `(partition, offset,
/// value)`, and the error that ended it early.
pub struct Polled {
    pub messages: Vec<(u32, i64, RecordValue)>,
    pub error: Option<KafkaError>,
}

/// Takes up to `max` messages: waits up to `wait` for the first, then takes
/// only what is ready; stops at the first error. Blocks.
pub fn poll_batch<C: ConsumerContext>(consumer: &BaseConsumer<C>, max: usize, wait: Duration) -> Polled {
    let mut polled = Polled { messages: Vec::new(), error: None };
    let mut timeout = wait;
    // Bounded by `max`.
    while polled.messages.len() < max {
        match consumer.poll(timeout) {
            None => break,
            Some(Err(e)) => {
                polled.error = Some(e);
                break;
            }
            Some(Ok(m)) => {
                let text = m.payload().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
                let value = text.parse().map_or(RecordValue::Str(text), RecordValue::Int);
                polled.messages.push((m.partition() as u32, m.offset(), value));
            }
        }
        timeout = Duration::ZERO;
    }
    polled
}
