//! librdkafka's idempotent producer under faults, over the Kafka listener:
//! a leader failover mid-produce loses and duplicates nothing at acks=all,
//! and with the `dedupe-window-1` bug switch, librdkafka's retries of
//! batches whose acks were lost append them twice (the control, with the
//! switch off, recognises every retry); and librdkafka retries a request
//! whose answer is lost after `socket.timeout.ms`, never after its own
//! `request.timeout.ms`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::cluster::{Cluster, FAST, create_req};
use crate::rdkafka_util::{MuteProxy, Producer, Reports, values_in, wait_until};
use crate::util::Node;

/// How many times each value is in the log.
fn counts(values: &[String]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for v in values {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    counts
}

/// Sends `v0`, `v1`, … until `stop` (at most 50,000), paced so librdkafka's
/// queue never fills; returns how many were sent.
fn send_until(producer: &Producer, topic: &str, stop: &AtomicBool) -> usize {
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) && sent < 50_000 {
        producer.send(topic, &format!("v{sent}"));
        sent += 1;
        if sent % 20 == 0 {
            producer.poll(Duration::from_millis(5));
        }
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_idempotent_producer_survives_a_leader_failover_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, kafka) = Cluster::start_with_kafka(dir.path(), 3, FAST);
    cluster.client(1).create_topic(&create_req("fo", 3, &[("min.insync.replicas", "2")])).await.unwrap();
    let before = cluster.wait_for("fo", &[], "a full ISR", Duration::from_secs(10), |p| p.isr.len() == 3).await;
    let brokers: Vec<String> = kafka.iter().map(ToString::to_string).collect();
    let producer = Arc::new(Producer::new(&brokers.join(","), &[("linger.ms", "5"), ("message.timeout.ms", "60000")]));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (producer, stop) = (producer.clone(), stop.clone());
        std::thread::spawn(move || send_until(&producer, "fo", &stop))
    };
    wait_until("200 acks", Duration::from_secs(60), async || producer.acked_count() >= 200).await;

    let old = before.leader.unwrap();
    cluster.kill(old);
    let after = cluster
        .wait_for("fo", &[old], "a new leader", Duration::from_secs(30), |p| {
            p.leader.is_some_and(|l| l != old) && p.leader_epoch > before.leader_epoch
        })
        .await;
    let at_failover = producer.acked_count();
    wait_until("200 acks from the new leader", Duration::from_secs(60), async || {
        producer.acked_count() >= at_failover + 200
    })
    .await;
    cluster.restart(old);
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    let reports: Reports = producer.flush();

    assert_eq!(reports.0.len(), sent, "every record got a delivery report");
    assert!(reports.failed().is_empty(), "acks=all with retries fails nothing: {:?}", &reports.failed()[..1]);
    let log = values_in(&cluster, "fo").await;
    let counts = counts(&log);
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "no duplicates across the failover to {:?}: {dups:?}", after.leader);
    let lost: Vec<_> = reports.acked().into_iter().filter(|r| !counts.contains_key(r.value.as_str())).collect();
    assert!(lost.is_empty(), "no acknowledged record lost: {} of {}", lost.len(), reports.acked().len());
}

/// One node whose Kafka listener is advertised at a proxy: an idempotent
/// producer's five in-flight batches are appended while the proxy drops
/// the acks, then the connection is cut and librdkafka retries them.
/// Returns the delivery reports, the log, and the node behind its proxy.
async fn retries_of_batches_whose_acks_were_lost(bugs: &str) -> (Reports, Vec<String>, Proxied) {
    let proxied = Proxied::start(bugs).await;
    let (client, proxy) = (proxied.node.client(), &proxied.proxy);
    let settings =
        [("max.in.flight.requests.per.connection", "5"), ("batch.num.messages", "1"), ("message.timeout.ms", "5000")];
    let producer = Arc::new(Producer::new(&proxy.addr.to_string(), &settings));
    let warm: Vec<String> = (0..10).map(|i| format!("w{i}")).collect();
    let p = producer.clone();
    let warmed = tokio::task::spawn_blocking(move || p.send_all("dd", &warm)).await.unwrap();
    assert_eq!(warmed.acked().len(), 10, "warm-up: {:?}", warmed.failed());

    proxy.mute(true);
    let p = producer.clone();
    tokio::task::spawn_blocking(move || (0..5).for_each(|i| p.send("dd", &format!("v{i}")))).await.unwrap();
    let end = async || client.describe_topic("dd").await.unwrap().partitions[0].log_end_offset;
    wait_until("5 records appended with their acks dropped", Duration::from_secs(30), async || end().await == 15).await;
    assert_eq!(producer.acked_count(), 10, "the proxy dropped every ack");
    proxy.cut();
    proxy.mute(false);
    let p = producer.clone();
    let reports = tokio::task::spawn_blocking(move || p.flush()).await.unwrap();
    let log = values_in_node(&proxied.node).await;
    (reports, log, proxied)
}

/// A node whose Kafka listener is advertised at a [`MuteProxy`], with a
/// one-partition topic `dd`.
struct Proxied {
    node: Node,
    addr: std::net::SocketAddr,
    proxy: MuteProxy,
    _dir: tempfile::TempDir,
}

impl Proxied {
    async fn start(bugs: &str) -> Proxied {
        let dir = tempfile::tempdir().unwrap();
        let kafka_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let proxy_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = proxy_listener.local_addr().unwrap();
        let node = Node::start(
            dir.path(),
            &[
                &format!("listeners=http://127.0.0.1:0,PLAINTEXT://127.0.0.1:{kafka_port}"),
                &format!("advertised.listeners=PLAINTEXT://{addr}"),
                &format!("faultline.bugs={bugs}"),
            ],
        );
        node.client().create_topic(&create_req("dd", 1, &[])).await.unwrap();
        let proxy = MuteProxy::start(proxy_listener, ([127, 0, 0, 1], kafka_port).into());
        Proxied { node, addr, proxy, _dir: dir }
    }
}

async fn values_in_node(node: &Node) -> Vec<String> {
    let req = faultline_client::api::FetchRequest { offset: 0, max_records: None, max_bytes: None, max_wait_ms: None };
    node.client().fetch("dd", 0, &req).await.unwrap().records.into_iter().map(|r| r.value).collect()
}

/// With the broker keeping one batch per producer, librdkafka's retry of
/// the oldest unacknowledged batch is not recognised: the broker answers
/// OUT_OF_ORDER_SEQUENCE_NUMBER, librdkafka raises a fatal error and
/// reports that record failed (and, depending on timing, the other
/// in-flight ones failed or purged), although the broker had appended
/// each one. An application that sends again what was not acknowledged (a
/// new producer, as after any fatal error) duplicates them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dedupe_window_1_librdkafka_reports_appended_records_failed_and_resends_duplicate() {
    let (reports, log, proxy) = retries_of_batches_whose_acks_were_lost("dedupe-window-1").await;
    let sent: Vec<String> = (0..5).map(|i| format!("v{i}")).collect();
    let oos =
        reports.failed().iter().filter(|r| r.outcome.as_ref().unwrap_err().contains("OutOfOrderSequence")).count();
    assert!(oos >= 1, "the broker refused a retry as out of order: {reports:?}");
    assert_eq!(&log[10..], &sent[..], "every retried record is in the log, once");
    // An acknowledgement names the record's first offset, or none (-1001)
    // when librdkafka infers delivery from a later batch's.
    for (i, v) in sent.iter().enumerate() {
        if let Some(Ok((_, offset))) = reports.acked().into_iter().find(|r| r.value == *v).map(|r| &r.outcome) {
            assert!([10 + i as i64, -1001].contains(offset), "{v} at {offset}: {reports:?}");
        }
    }
    // Reported failed, or (after librdkafka's fatal error) never reported.
    let acked: Vec<String> = reports.acked().iter().map(|r| r.value.clone()).collect();
    let failed: Vec<String> = sent.into_iter().filter(|v| !acked.contains(v)).collect();
    assert!(!failed.is_empty(), "{reports:?}");
    let failed_count = failed.len();
    let p = Arc::new(Producer::new(&proxy.addr.to_string(), &[]));
    let resent = tokio::task::spawn_blocking(move || p.send_all("dd", &failed)).await.unwrap();
    assert_eq!(resent.acked().len(), failed_count, "{resent:?}");
    let log = values_in_node(&proxy.node).await;
    let dups = counts(&log).into_values().filter(|n| *n > 1).count();
    assert_eq!(dups, failed_count, "each record the application sent again is in the log twice: {log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_switch_librdkafka_retries_are_recognised() {
    let (reports, log, _) = retries_of_batches_whose_acks_were_lost("").await;
    assert_eq!(log.len(), 15, "every retry was recognised as a duplicate: {log:?}");
    assert_eq!(reports.acked().len(), 15, "and answered with its offsets: {:?}", reports.failed());
}

/// librdkafka's `request.timeout.ms` is only the ack timeout it asks the
/// broker for; the time it waits for an answer before retrying is
/// `socket.timeout.ms` (60 s by default). So a non-idempotent librdkafka
/// producer whose answer is lost does not retry after `request.timeout.ms`,
/// as Kafka's Java client does, and does not duplicate; with
/// `socket.timeout.ms` as short, it retries and duplicates. (This is why
/// the harness gives a run's `request.timeout.ms` to both.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_retries_a_lost_answer_after_socket_timeout_ms_not_request_timeout_ms() {
    let appended = async |extra: &[(&str, &str)]| {
        let proxied = Proxied::start("").await;
        let mut settings = vec![("enable.idempotence", "false"), ("request.timeout.ms", "1000")];
        settings.extend_from_slice(extra);
        let producer = Arc::new(Producer::new(&proxied.addr.to_string(), &settings));
        let p = producer.clone();
        let warmed = tokio::task::spawn_blocking(move || p.send_all("dd", &["w".to_string()])).await.unwrap();
        assert_eq!(warmed.acked().len(), 1, "warm-up: {:?}", warmed.failed());
        proxied.proxy.mute(true);
        producer.send("dd", "v");
        let end = async || proxied.node.client().describe_topic("dd").await.unwrap().partitions[0].log_end_offset;
        wait_until("the record appended with its answer dropped", Duration::from_secs(30), async || end().await >= 2)
            .await;
        // Past the timeout with the answer dropped; then answers flow again
        // (so a reconnection's handshake can complete) for three more.
        let p = producer.clone();
        tokio::task::spawn_blocking(move || p.poll(Duration::from_millis(1_500))).await.unwrap();
        proxied.proxy.mute(false);
        let p = producer.clone();
        tokio::task::spawn_blocking(move || p.poll(Duration::from_millis(3_000))).await.unwrap();
        let log = values_in_node(&proxied.node).await;
        log.iter().filter(|v| *v == "v").count()
    };
    assert_eq!(appended(&[]).await, 1, "request.timeout.ms alone: librdkafka still waits for the answer");
    assert!(appended(&[("socket.timeout.ms", "1000")]).await >= 2, "socket.timeout.ms: retried, so duplicated");
}
