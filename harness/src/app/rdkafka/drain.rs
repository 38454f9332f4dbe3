//! The final reader over Kafka's protocol, for a system that has no HTTP
//! API (`--system`): librdkafka assigned to every partition from offset 0,
//! polled until each partition's position reaches the harness's target or
//! the deadline passes; recorded as the HTTP reader records it, a `drain`
//! op and its polls, all in the final phase.

use std::time::{Duration, Instant};

use anyhow::Context;
use faultline_checker::op::{DrainComplete, DrainTargets, F, Op, OpType, OpValue, PartMap, PollValue, RecordValue};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::errors::kafka_error_code;
use super::poll_batch;
use crate::app::record::{emit, part_name};
use crate::app::spec::{ClientSpec, DrainSpec};

/// Messages one drain poll takes at most.
const DRAIN_RECORDS_MAX: usize = 5_000;
/// How long one poll waits for its first message.
const POLL_WAIT: Duration = Duration::from_millis(100);

pub async fn drain(c: &ClientSpec, a: &DrainSpec) -> anyhow::Result<()> {
    let (c, a) = (c.clone(), a.clone());
    tokio::task::spawn_blocking(move || drain_blocking(&c, &a)).await.context("the drain reader panicked")?
}

fn drain_blocking(c: &ClientSpec, a: &DrainSpec) -> anyhow::Result<()> {
    let (drainer, poller) = (c.process, c.process + 1);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", c.kafka_bootstrap.join(","))
        .set("group.id", "faultline-drain")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("socket.timeout.ms", c.request_timeout_ms.to_string())
        .create()
        .context("librdkafka's consumer")?;
    let mut tpl = TopicPartitionList::new();
    for &(p, _) in &a.targets {
        tpl.add_partition_offset(&c.topic, p as i32, Offset::Offset(0))?;
    }
    consumer.assign(&tpl).context("assigning every partition")?;
    let goal = DrainTargets {
        targets: PartMap(a.targets.iter().map(|&(p, o)| (part_name(&c.topic, p), o.max(0) as u64)).collect()),
    };
    emit(Op::invoke(drainer, F::Drain, OpValue::DrainTargets(goal)).in_final_phase());
    let mut positions: Vec<i64> = vec![0; a.targets.len()];
    let deadline = Instant::now() + Duration::from_millis(a.deadline_ms);
    // Bounded by the deadline.
    while a.targets.iter().zip(&positions).any(|((_, t), p)| p < t) && Instant::now() < deadline {
        emit(Op::invoke(poller, F::Poll, OpValue::none()).in_final_phase());
        let polled = poll_batch(&consumer, DRAIN_RECORDS_MAX, POLL_WAIT);
        let mut read: Vec<(String, Vec<(u64, RecordValue)>)> = Vec::new();
        for (p, offset, value) in polled.messages {
            let Some(i) = a.targets.iter().position(|(t, _)| *t == p) else { continue };
            positions[i] = positions[i].max(offset + 1);
            let name = part_name(&c.topic, p);
            match read.iter_mut().find(|(n, _)| *n == name) {
                Some((_, records)) => records.push((offset as u64, value)),
                None => read.push((name, vec![(offset as u64, value)])),
            }
        }
        match (read.is_empty(), polled.error) {
            (true, Some(e)) => {
                let op = Op::complete(OpType::Fail, poller, F::Poll, OpValue::none());
                emit(op.with_error(Some(&kafka_error_code(&e)), e.to_string()).in_final_phase());
            }
            _ => {
                let value = OpValue::Poll(PollValue { records: PartMap(read) });
                emit(Op::complete(OpType::Ok, poller, F::Poll, value).in_final_phase());
            }
        }
    }
    let complete = a.targets.iter().zip(&positions).map(|(&(p, t), &at)| (part_name(&c.topic, p), at >= t)).collect();
    let value = OpValue::DrainComplete(DrainComplete { complete: PartMap(complete) });
    emit(Op::complete(OpType::Ok, drainer, F::Drain, value).in_final_phase());
    Ok(())
}
