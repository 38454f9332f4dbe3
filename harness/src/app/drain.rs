//! The final phase's reader: a fresh client that reads every partition
//! from offset 0 up to the end offset the harness settled on, recorded as
//! a `drain` op (its targets, then which were reached) and its polls.

use std::time::{Duration, Instant};

use faultline_checker::op::{DrainComplete, DrainTargets, F, Op, OpType, OpValue, PartMap, PollValue};
use faultline_client::ClusterClient;
use faultline_client::api::FetchRequest;

use super::coordinator::fetched_pairs;
use super::processing::RETRY_PAUSE;
use super::record::{emit, part_name, with_client_error};
use super::spec::{ClientSpec, DrainSpec};

/// Records one final-drain fetch asks for.
const DRAIN_RECORDS_MAX: u32 = 5_000;

pub async fn drain(c: &ClientSpec, a: &DrainSpec) -> anyhow::Result<()> {
    let (drainer, poller) = (c.process, c.process + 1);
    let cluster = ClusterClient::new(c.bootstrap.clone(), Duration::from_millis(c.request_timeout_ms));
    let goal = DrainTargets {
        targets: PartMap(a.targets.iter().map(|&(p, o)| (part_name(&c.topic, p), o.max(0) as u64)).collect()),
    };
    emit(Op::invoke(drainer, F::Drain, OpValue::DrainTargets(goal)).in_final_phase());
    let deadline = Instant::now() + Duration::from_millis(a.deadline_ms);
    let mut complete = Vec::new();
    for &(p, target) in &a.targets {
        let position = read_partition(&cluster, &c.topic, p, target, poller, deadline).await;
        complete.push((part_name(&c.topic, p), position >= target));
    }
    let value = OpValue::DrainComplete(DrainComplete { complete: PartMap(complete) });
    emit(Op::complete(OpType::Ok, drainer, F::Drain, value).in_final_phase());
    Ok(())
}

/// Reads partition `p` up to `target` or the deadline; returns the position reached.
async fn read_partition(
    cluster: &ClusterClient,
    topic: &str,
    p: u32,
    target: i64,
    poller: u64,
    deadline: Instant,
) -> i64 {
    let name = part_name(topic, p);
    let mut position = 0i64;
    // Bounded by the deadline: every round either advances or pauses.
    while position < target && Instant::now() < deadline {
        emit(Op::invoke(poller, F::Poll, OpValue::none()).in_final_phase());
        let req = FetchRequest {
            offset: position,
            max_records: Some(DRAIN_RECORDS_MAX),
            max_bytes: None,
            max_wait_ms: Some(0),
        };
        match cluster.fetch(topic, p, &req).await {
            Ok(resp) => {
                if let Some(last) = resp.records.last() {
                    position = last.offset + 1;
                }
                let records = PartMap(vec![(name.clone(), fetched_pairs(&resp.records))]);
                let value = OpValue::Poll(PollValue { records });
                emit(Op::complete(OpType::Ok, poller, F::Poll, value).in_final_phase());
                if resp.records.is_empty() {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
            Err(e) => {
                let op = Op::complete(OpType::Fail, poller, F::Poll, OpValue::none());
                emit(with_client_error(op, &e).in_final_phase());
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
    position
}
