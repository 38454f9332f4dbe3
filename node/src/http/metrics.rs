//! Prometheus metrics: request counts and latencies per route and status,
//! per-partition log end offsets, high watermarks and bytes appended, and
//! what Kafka operators alert on (under-replicated and offline partitions,
//! ISR shrinks and expands, leader elections, the active controller, fenced
//! brokers, produce errors by code), rendered in the text exposition format
//! at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;

use crate::broker::Broker;

/// Upper bounds of the latency histogram's buckets, in seconds.
const LATENCY_BUCKETS_S: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    /// Cumulative counts are computed at render time; these are per bucket,
    /// with one extra for +Inf.
    buckets: [u64; LATENCY_BUCKETS_S.len() + 1],
    sum_s: f64,
    count: u64,
}

/// Request statistics keyed by route template, so the key set is bounded
/// by the routes that exist (unmatched paths share one key).
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
}

impl Metrics {
    pub fn observe(&self, route: &str, status: u16, elapsed: Duration) {
        let mut routes = self.routes.lock();
        let stats = match routes.get_mut(route) {
            Some(s) => s,
            None => routes.entry(route.to_string()).or_default(),
        };
        *stats.by_status.entry(status).or_default() += 1;
        let s = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS_S.iter().position(|&b| s <= b).unwrap_or(LATENCY_BUCKETS_S.len());
        stats.buckets[bucket] += 1;
        stats.sum_s += s;
        stats.count += 1;
    }

    pub fn render(&self, broker: &Broker) -> String {
        let mut out = String::new();
        let routes = self.routes.lock();
        out.push_str("# HELP faultline_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE faultline_http_requests_total counter\n");
        for (route, stats) in routes.iter() {
            for (status, n) in &stats.by_status {
                let _ = writeln!(out, "faultline_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
            }
        }
        out.push_str("# HELP faultline_http_request_duration_seconds HTTP request latency by route.\n");
        out.push_str("# TYPE faultline_http_request_duration_seconds histogram\n");
        for (route, stats) in routes.iter() {
            let mut cumulative = 0;
            for (i, bound) in LATENCY_BUCKETS_S.iter().enumerate() {
                cumulative += stats.buckets[i];
                let _ = writeln!(
                    out,
                    "faultline_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "faultline_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                stats.count
            );
            let _ = writeln!(out, "faultline_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", stats.sum_s);
            let _ = writeln!(out, "faultline_http_request_duration_seconds_count{{route=\"{route}\"}} {}", stats.count);
        }
        drop(routes);
        let partitions = broker.all_partitions();
        let gauges: [(&str, &str, &str); 4] = [
            ("faultline_log_end_offset", "gauge", "Log end offset of each local replica."),
            ("faultline_high_watermark", "gauge", "High watermark of each local replica."),
            ("faultline_log_appended_bytes_total", "counter", "Bytes appended to each partition since start."),
            ("faultline_log_appended_records_total", "counter", "Records appended to each partition since start."),
        ];
        for (i, (name, kind, help)) in gauges.iter().enumerate() {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for p in &partitions {
                let v = match i {
                    0 => p.read_state(|st| st.log().log_end_offset()) as u64,
                    1 => p.high_watermark() as u64,
                    2 => p.bytes_appended.load(Ordering::Relaxed),
                    _ => p.records_appended.load(Ordering::Relaxed),
                };
                let _ = writeln!(out, "{name}{{topic=\"{}\",partition=\"{}\"}} {v}", p.topic, p.index);
            }
        }
        render_health(&mut out, broker);
        out
    }
}

/// One metric's `# HELP`/`# TYPE` header.
fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One unlabelled sample with its header.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Kafka's alerting metrics. Broker-scoped ones count this broker's
/// replicas and requests. Controller-scoped gauges are reported by the
/// active controller and are 0 elsewhere (as in Kafka, so that a sum over
/// the cluster is the cluster's figure); election counts come from the
/// replicated metadata, so every node reports the same, monotonic totals.
fn render_health(out: &mut String, broker: &Broker) {
    let under = broker
        .all_partitions()
        .iter()
        .filter(|p| p.read_state(|st| st.is_leader() && st.isr().len() < st.replicas().len()))
        .count();
    let help = "Partitions this broker leads whose ISR is smaller than their replica set.";
    single(out, "faultline_under_replicated_partitions", "gauge", help, under as u64);
    let help = "ISR shrinks of partitions this broker leads, committed by the controller.";
    single(out, "faultline_isr_shrinks_total", "counter", help, broker.stats.isr_shrinks());
    let help = "ISR expands of partitions this broker leads, committed by the controller.";
    single(out, "faultline_isr_expands_total", "counter", help, broker.stats.isr_expands());
    let name = "faultline_produce_errors_total";
    header(out, name, "counter", "Produce requests this broker refused, by Kafka error name.");
    for (error, n) in broker.stats.produce_errors() {
        let _ = writeln!(out, "{name}{{error=\"{error}\"}} {n}");
    }
    let image = broker.image();
    let active = broker.control().active_controller() == Some(broker.config.node_id);
    let help = "1 on the active controller (the controller quorum's raft leader), 0 elsewhere.";
    single(out, "faultline_active_controller", "gauge", help, u64::from(active));
    let partitions = || image.topics.values().flat_map(|t| &t.partitions);
    let offline = if active { partitions().filter(|p| p.leader.is_none()).count() } else { 0 };
    let help = "Partitions without a leader; reported by the active controller, 0 elsewhere.";
    single(out, "faultline_offline_partitions", "gauge", help, offline as u64);
    let fenced = if active { image.brokers.values().filter(|b| b.fenced).count() } else { 0 };
    let help = "Registered brokers the controller has fenced; reported by the active controller, 0 elsewhere.";
    single(out, "faultline_fenced_brokers", "gauge", help, fenced as u64);
    let (clean, unclean) = partitions().fold((0, 0), |(c, u), p| (c + p.elections.clean, u + p.elections.unclean));
    let name = "faultline_leader_elections_total";
    let help =
        "Leader elections of every partition in the cluster, clean (from the ISR) or unclean, from the metadata.";
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name}{{kind=\"clean\"}} {clean}\n{name}{{kind=\"unclean\"}} {unclean}");
}
