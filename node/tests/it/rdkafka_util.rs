//! Test support for real-client tests: an idempotent librdkafka producer
//! (the `rdkafka` crate) that records every delivery report, a reader of a
//! topic's whole log over the HTTP API, and a TCP proxy that can swallow
//! the broker's answers and cut its connections (acks lost after append).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use faultline_client::api::FetchRequest;
use parking_lot::Mutex;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::cluster::Cluster;

/// One delivery report: the value sent and where it landed, or the error.
#[derive(Debug, Clone)]
pub struct Report {
    pub value: String,
    pub outcome: Result<(i32, i64), String>,
}

/// Every delivery report of a producer.
#[derive(Debug, Default)]
pub struct Reports(pub Vec<Report>);

impl Reports {
    pub fn acked(&self) -> Vec<&Report> {
        self.0.iter().filter(|r| r.outcome.is_ok()).collect()
    }
    pub fn failed(&self) -> Vec<&Report> {
        self.0.iter().filter(|r| r.outcome.is_err()).collect()
    }
}

/// Collects delivery reports as librdkafka's background thread delivers
/// them (from `poll`/`flush`).
#[derive(Default)]
pub struct Recorder {
    reports: Mutex<Vec<Report>>,
    acked: AtomicUsize,
}

impl ClientContext for Recorder {}

impl ProducerContext for Recorder {
    type DeliveryOpaque = Box<String>;

    fn delivery(&self, result: &DeliveryResult<'_>, value: Box<String>) {
        let outcome = match result {
            Ok(m) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                Ok((m.partition(), m.offset()))
            }
            Err((e, _)) => Err(e.to_string()),
        };
        self.reports.lock().push(Report { value: *value, outcome });
    }
}

/// librdkafka's idempotent producer (acks=all) with `extra` settings.
pub struct Producer {
    inner: BaseProducer<Recorder>,
}

impl Producer {
    pub fn new(brokers: &str, extra: &[(&str, &str)]) -> Producer {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", brokers).set("acks", "all").set("enable.idempotence", "true");
        for (k, v) in extra {
            config.set(*k, *v);
        }
        Producer { inner: config.create_with_context(Recorder::default()).expect("a librdkafka producer") }
    }

    /// Enqueues one record; waits (bounded) while librdkafka's queue is full.
    pub fn send(&self, topic: &str, value: &str) {
        let mut record: BaseRecord<'_, str, str, Box<String>> =
            BaseRecord::with_opaque_to(topic, Box::new(value.to_string())).payload(value);
        for _ in 0..1_000 {
            match self.inner.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.inner.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("enqueueing {value}: {e}"),
            }
        }
        panic!("librdkafka's queue stayed full");
    }

    /// Serves delivery reports for up to `timeout`.
    pub fn poll(&self, timeout: Duration) {
        self.inner.poll(timeout);
    }

    pub fn acked_count(&self) -> usize {
        self.inner.context().acked.load(Ordering::Relaxed)
    }

    /// Waits (bounded) for every record to be delivered or failed, and
    /// returns the reports so far.
    pub fn flush(&self) -> Reports {
        let _ = self.inner.flush(Duration::from_secs(60));
        Reports(self.inner.context().reports.lock().clone())
    }

    pub fn send_all(&self, topic: &str, values: &[String]) -> Reports {
        for v in values {
            self.send(topic, v);
        }
        self.flush()
    }
}

/// Every value in `topic`'s log below the HW, all partitions, over HTTP
/// from each partition's leader.
pub async fn values_in(cluster: &Cluster, topic: &str) -> Vec<String> {
    let mut values = Vec::new();
    for (p, d) in cluster.describe(topic, &[]).await.partitions.iter().enumerate() {
        let client = cluster.client(d.leader.expect("a leader"));
        let mut offset = 0;
        // Bounded by the HW: each round reads at least one record or stops.
        loop {
            let req = FetchRequest { offset, max_records: None, max_bytes: None, max_wait_ms: None };
            let records = client.fetch(topic, p as u32, &req).await.expect("a fetch from the leader").records;
            let Some(last) = records.last() else { break };
            offset = last.offset + 1;
            values.extend(records.into_iter().map(|r| r.value));
        }
    }
    values
}

/// A TCP proxy in front of one Kafka listener. While muted it reads the
/// broker's answers and drops them; `cut` closes every connection it
/// carries, so the client reconnects and retries what was in flight.
pub struct MuteProxy {
    pub addr: SocketAddr,
    muted: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl MuteProxy {
    /// Listens on `listener` and forwards each connection to `upstream`.
    pub fn start(listener: std::net::TcpListener, upstream: SocketAddr) -> MuteProxy {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let muted = Arc::new(AtomicBool::new(false));
        let (cut, cuts) = watch::channel(0u64);
        let m = muted.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else { continue };
                tokio::spawn(carry(client, server, m.clone(), cuts.clone()));
            }
        });
        MuteProxy { addr, muted, cut }
    }

    pub fn mute(&self, on: bool) {
        self.muted.store(on, Ordering::SeqCst);
    }

    /// Closes every connection the proxy carries now.
    pub fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

/// Copies both ways until either side closes or the proxy cuts; the
/// broker's bytes are dropped while muted.
async fn carry(
    client: tokio::net::TcpStream,
    server: tokio::net::TcpStream,
    muted: Arc<AtomicBool>,
    mut cuts: watch::Receiver<u64>,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async { tokio::io::copy(&mut cr, &mut sw).await.map(|_| ()) };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = sr.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            if !muted.load(Ordering::SeqCst) {
                cw.write_all(&buf[..n]).await?;
            }
        }
    };
    cuts.borrow_and_update();
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = cuts.changed() => {}
    }
}

/// Waits (bounded) until `cond` holds, polling every 20 ms.
pub async fn wait_until(what: &str, timeout: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
