//! librdkafka's settings for an application spec. Kafka's settings go under
//! the keys librdkafka gives them (most are Kafka's own; `buffer.memory`
//! becomes `queue.buffering.max.kbytes`, `fetch.max.wait.ms` becomes
//! `fetch.wait.max.ms`), then the spec's librdkafka keys as they are, so a
//! user's key wins.
//!
//! `request.timeout.ms` is two settings in librdkafka. Its own
//! `request.timeout.ms` is only the ack timeout it asks the broker to honour;
//! how long the client waits for an answer before it gives the request up
//! and retries is `socket.timeout.ms` (default 60 s). Kafka's Java client
//! does both with its `request.timeout.ms`, so the run's value goes to both:
//! otherwise a librdkafka producer waits out a lost answer for up to its
//! delivery timeout instead of retrying it after the run's 3 s. `max.block.ms` and `max.poll.records` have no
//! librdkafka key: the applications keep them (waiting on a full queue,
//! bounding a poll's records).
//!
//! [`check`] builds both clients from a plan, without brokers, so librdkafka
//! refuses an unknown key, a bad value or a conflict (idempotence with
//! `acks=1`, more than 5 in flight) before anything starts.

use faultline_checker::modes::{Acks, CommitStrategy};
use rdkafka::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::BaseProducer;

use crate::app::spec::{ConsumerSpec, ProducerSpec};
use crate::run::plan::Plan;

/// librdkafka's highest `socket.timeout.ms`.
const SOCKET_TIMEOUT_MS_MAX: u64 = 300_000;
/// librdkafka's `retry.backoff.max.ms` default; it must not be below `retry.backoff.ms`.
const RETRY_BACKOFF_MAX_MS: u64 = 1_000;

fn acks(a: Acks) -> &'static str {
    match a {
        Acks::Zero => "0",
        Acks::One => "1",
        Acks::All => "all",
    }
}

/// The producer's settings; `bootstrap` is `None` for [`check`].
pub fn producer(a: &ProducerSpec, request_timeout_ms: u64, bootstrap: Option<&[String]>) -> ClientConfig {
    let mut c = ClientConfig::new();
    if let Some(b) = bootstrap {
        c.set("bootstrap.servers", b.join(","));
    }
    // librdkafka's retry.backoff.ms starts at 1.
    let backoff_ms = a.retry_backoff_ms.max(1);
    c.set("acks", acks(a.acks))
        .set("enable.idempotence", a.idempotence.to_string())
        .set("retries", a.retries.to_string())
        .set("delivery.timeout.ms", a.delivery_timeout_ms.to_string())
        .set("request.timeout.ms", request_timeout_ms.to_string())
        .set("socket.timeout.ms", request_timeout_ms.min(SOCKET_TIMEOUT_MS_MAX).to_string())
        .set("retry.backoff.ms", backoff_ms.to_string())
        .set("retry.backoff.max.ms", backoff_ms.max(RETRY_BACKOFF_MAX_MS).to_string())
        .set("linger.ms", a.linger_ms.to_string())
        .set("batch.size", a.batch_size.to_string())
        .set("queue.buffering.max.kbytes", a.buffer_memory.div_ceil(1024).max(1).to_string())
        .set("max.in.flight.requests.per.connection", a.max_in_flight.to_string());
    for (k, v) in &a.library_config {
        c.set(k, v);
    }
    c
}

/// The consumer's settings; `bootstrap` is `None` for [`check`].
pub fn consumer(a: &ConsumerSpec, request_timeout_ms: u64, bootstrap: Option<&[String]>) -> ClientConfig {
    let mut c = ClientConfig::new();
    if let Some(b) = bootstrap {
        c.set("bootstrap.servers", b.join(","));
    }
    c.set("group.id", &a.group)
        .set("enable.auto.commit", (a.commit == CommitStrategy::Auto).to_string())
        .set("auto.commit.interval.ms", a.auto_commit_interval_ms.to_string())
        .set("auto.offset.reset", a.auto_offset_reset.to_string())
        .set("fetch.wait.max.ms", a.fetch_max_wait_ms.to_string())
        .set("enable.partition.eof", "false")
        .set("socket.timeout.ms", request_timeout_ms.min(SOCKET_TIMEOUT_MS_MAX).to_string());
    for (k, v) in &a.library_config {
        c.set(k, v);
    }
    c
}

/// Builds the plan's producer and consumer without brokers: librdkafka's
/// own error (naming the key) if it refuses a setting.
pub fn check(plan: &Plan) -> Result<(), String> {
    let p = producer(&plan.producer_spec(), plan.producer.request_timeout_ms, None);
    p.create::<BaseProducer>().map_err(|e| format!("--client librdkafka: the producer's settings: {e}"))?;
    let c = consumer(&plan.consumer_spec(vec![0], None), plan.consumer.request_timeout_ms, None);
    c.create::<BaseConsumer>().map_err(|e| format!("--client librdkafka: the consumer's settings: {e}"))?;
    Ok(())
}
