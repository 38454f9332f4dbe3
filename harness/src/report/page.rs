//! The run report's page: gathers the verdict, `test.json`'s settings, the
//! availability figures, the charts, the anomaly examples with their offset
//! pictures, the replica table and the timeline into one template context,
//! and renders `templates/run.html` with `minijinja` (HTML autoescape on).

use std::collections::BTreeSet;

use faultline_checker::availability::{FaultStats, WindowStats};
use faultline_checker::history::{History, NONE, kind_name};
use faultline_checker::op::OpType;
use faultline_checker::summary::percent;
use faultline_checker::verdict::{Status, TypeResult};
use faultline_checker::{AnomalyKind, Replicas, Results, Validity};
use serde::Serialize;

use super::{charts, offsets, series, timeline};

/// Partitions drawn: those with anomalies first.
const PARTITION_CHARTS_MAX: usize = 8;

#[derive(Serialize)]
struct Page {
    title: String,
    verdict: String,
    verdict_class: &'static str,
    unknown_reasons: Vec<String>,
    seed: Option<serde_json::Value>,
    reproduce: Option<String>,
    about: Vec<(String, String)>,
    settings: Vec<(String, String)>,
    summary: String,
    faults: Vec<FaultRow>,
    outside: Option<FaultRow>,
    charts: Charts,
    bucket: String,
    scatter_note: String,
    partitions: Vec<PartitionRow>,
    partitions_left_out: usize,
    anomalies: Vec<AnomalyView>,
    replicas: Vec<ReplicaRow>,
    timeline: Option<timeline::Timeline>,
    witness_ops: Vec<OpRow>,
    not_checked: Vec<String>,
    version: &'static str,
    style: &'static str,
}

#[derive(Serialize)]
struct Charts {
    throughput: String,
    latency: String,
    partitions: Vec<String>,
}

#[derive(Serialize)]
struct FaultRow {
    label: String,
    color: String,
    window: String,
    ok_per_s: String,
    errors: String,
    p99: String,
}

#[derive(Serialize)]
struct PartitionRow {
    name: String,
    sends: String,
    acknowledged: u64,
    lost: String,
    duplicated: String,
    unavailable: String,
    longest: String,
}

#[derive(Serialize)]
struct AnomalyView {
    kind: String,
    count: u64,
    status: &'static str,
    reason: Option<String>,
    context: Vec<String>,
    examples: Vec<ExampleView>,
}

#[derive(Serialize)]
struct ExampleView {
    explanation: String,
    faults: Vec<String>,
    ops: Vec<u32>,
    strip: Option<offsets::Strip>,
    witness: String,
}

#[derive(Serialize)]
struct ReplicaRow {
    partition: String,
    node: String,
    leo: u64,
    records: usize,
    epoch: u64,
    diverges: String,
}

#[derive(Serialize)]
struct OpRow {
    index: u32,
    process: String,
    f: &'static str,
    outcome: String,
    time: String,
    latency: String,
    records: String,
    in_timeline: bool,
}

/// Everything a run report is made from.
pub struct Input<'a> {
    pub title: String,
    pub history: &'a History,
    pub results: &'a Results,
    /// `test.json`, when the run has one.
    pub test: Option<&'a serde_json::Value>,
    pub replicas: Option<&'a Replicas>,
}

/// The page's HTML.
pub fn render(input: &Input<'_>) -> anyhow::Result<String> {
    let (h, r) = (input.history, input.results);
    let s = series::series(h, r);
    let windows: Vec<_> = r.availability.faults.iter().map(|f| f.window.clone()).collect();
    let drawn = s.partitions.iter().take(PARTITION_CHARTS_MAX);
    let charts = Charts {
        throughput: charts::throughput(&s, &windows)?,
        latency: charts::latency(&s.scatter, s.span, &windows)?,
        partitions: drawn.map(|l| charts::partition(l, s.span, &windows)).collect::<anyhow::Result<_>>()?,
    };
    let timeline = timeline::timeline(h, r);
    let anomalies: Vec<AnomalyView> = r.anomalies.iter().map(|(k, t)| anomaly_view(h, r, *k, t)).collect();
    let in_timeline: BTreeSet<u32> = timeline.iter().flat_map(|t| t.boxes.iter().map(|b| b.index)).collect();
    let witness_ops = witness_ops(h, &anomalies, &in_timeline);
    let page = Page {
        title: input.title.clone(),
        verdict: r.valid.to_string(),
        verdict_class: match r.valid {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::Unknown => "unknown",
        },
        unknown_reasons: r.unknown_reasons.clone(),
        seed: input.test.and_then(|t| t.get("seed")).cloned(),
        reproduce: input.test.and_then(|t| t["reproduce"].as_str()).map(str::to_owned),
        about: about(input.test),
        settings: settings(input.test),
        summary: faultline_checker::summary::summary(r),
        faults: r.availability.faults.iter().map(fault_row).collect(),
        outside: r.availability.outside_faults.as_ref().map(|w| window_row("outside", "#fff", "", Some(w))),
        charts,
        bucket: format!("{:.2} s", s.bucket_s),
        scatter_note: scatter_note(&s.scatter),
        partitions_left_out: s.partitions.len().saturating_sub(PARTITION_CHARTS_MAX),
        partitions: partition_rows(r),
        anomalies,
        replicas: input.replicas.map(|rep| replica_rows(rep, r)).unwrap_or_default(),
        timeline,
        witness_ops,
        not_checked: r.not_checked.clone(),
        version: env!("CARGO_PKG_VERSION"),
        style: include_str!("templates/style.css"),
    };
    let mut env = minijinja::Environment::new();
    env.add_template("run.html", include_str!("templates/run.html"))?;
    let tmpl = env.get_template("run.html")?;
    Ok(tmpl.render(&page)?)
}

/// Who ran it, with what: from `test.json`.
fn about(test: Option<&serde_json::Value>) -> Vec<(String, String)> {
    let Some(t) = test else { return vec![("test.json".into(), "absent: an imported history".into())] };
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    ["name", "faultline_version", "git_commit"]
        .into_iter()
        .filter_map(|k| Some((k.to_owned(), text(t.get(k).filter(|v| !v.is_null())?))))
        .chain(
            t.get("client").map(|c| ("client".to_owned(), format!("{} {}", text(&c["library"]), text(&c["version"])))),
        )
        .collect()
}

fn settings(test: Option<&serde_json::Value>) -> Vec<(String, String)> {
    let Some(obj) = test.and_then(|t| t["settings"].as_object()) else { return Vec::new() };
    obj.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
        .collect()
}

fn fault_row(f: &FaultStats) -> FaultRow {
    let c = charts::fault_color(&f.window.fault);
    let color = format!("rgb({},{},{})", c.0, c.1, c.2);
    let window = if f.window.is_instant() {
        format!("{:.1} s", f.window.start_ns as f64 / 1e9)
    } else {
        format!("{:.1}–{:.1} s", f.window.start_ns as f64 / 1e9, f.window.end_ns as f64 / 1e9)
    };
    FaultRow { window, ..window_row(&f.label, &color, "", f.inside.as_ref()) }
}

fn window_row(label: &str, color: &str, window: &str, w: Option<&WindowStats>) -> FaultRow {
    let dash = || "–".to_owned();
    FaultRow {
        label: label.to_owned(),
        color: color.to_owned(),
        window: w.map_or_else(|| window.to_owned(), |w| format!("{:.1} s", w.duration_s)),
        ok_per_s: w.map_or_else(dash, |w| format!("{:.0}", w.sends.ok_per_s)),
        errors: w.map_or_else(dash, |w| format!("{} / {}", w.sends.fail, w.sends.info)),
        p99: w.and_then(|w| w.send_latency.as_ref()).map_or_else(dash, |l| format!("{:.1} ms", l.p99_ms)),
    }
}

fn scatter_note(s: &series::Scatter) -> String {
    let mut note = format!(
        "Latency of each completed send and poll at its invoke time (log scale); {} of {} ops drawn",
        s.points.len(),
        s.total
    );
    if s.ok_stride > 1 {
        note.push_str(&format!(": every failed or unknown op and one in {} ok ops (downsampled)", s.ok_stride));
    }
    if s.errors_left_out > 0 {
        note.push_str(&format!("; {} failed or unknown ops beyond the first ones left out", s.errors_left_out));
    }
    note.push_str(". Ops that never completed have no latency and are not drawn.");
    note
}

fn partition_rows(r: &Results) -> Vec<PartitionRow> {
    let pct = |n: u64, share: Option<f64>| match share {
        Some(s) => format!("{n} ({})", percent(s)),
        None => n.to_string(),
    };
    r.stats
        .partitions
        .iter()
        .map(|(name, p)| {
            let a = r.availability.partitions.get(name);
            PartitionRow {
                name: name.clone(),
                sends: a.map_or_else(String::new, |a| format!("{} / {} / {}", a.sends.ok, a.sends.fail, a.sends.info)),
                acknowledged: p.acknowledged,
                lost: pct(p.lost, p.lost_share),
                duplicated: pct(p.duplicated, p.duplicated_share),
                unavailable: a.map_or_else(String::new, |a| format!("{:.1} s", a.unavailable_s)),
                longest: a.and_then(|a| a.longest_unavailable).map_or_else(String::new, |g| {
                    format!("{:.2} s at {:.1}–{:.1} s", g.duration_s, g.start_s, g.end_s)
                }),
            }
        })
        .collect()
}

fn anomaly_view(h: &History, r: &Results, kind: AnomalyKind, t: &TypeResult) -> AnomalyView {
    let mut context = Vec::new();
    for (name, p) in &r.stats.partitions {
        let share = match kind {
            AnomalyKind::LostWrite => p.lost_share,
            AnomalyKind::Duplicate => p.duplicated_share,
            _ => None,
        };
        if let Some(s) = share {
            context.push(format!("{} of what {name} acknowledged", percent(s)));
        }
    }
    if let Some(w) = &t.when {
        context.extend(w.in_faults.iter().map(|c| format!("{} during {}", c.count, c.label)));
        if w.outside_faults > 0 {
            context.push(format!("{} outside every fault", w.outside_faults));
        }
    }
    let examples = t
        .examples
        .iter()
        .map(|e| ExampleView {
            explanation: e.explanation.clone(),
            faults: e.faults.clone(),
            ops: e.witness_ops().into_iter().map(|(i, _)| i).collect(),
            strip: offsets::strip(h, e),
            witness: serde_json::to_string_pretty(&e.witness).unwrap_or_default(),
        })
        .collect();
    let status = if t.status == Status::Violation { "violation" } else { "permitted" };
    AnomalyView { kind: kind.to_string(), count: t.count, status, reason: t.reason.clone(), context, examples }
}

/// Every op an example or an offset picture links to.
fn witness_ops(h: &History, anomalies: &[AnomalyView], in_timeline: &BTreeSet<u32>) -> Vec<OpRow> {
    let mut ops = BTreeSet::new();
    for e in anomalies.iter().flat_map(|a| &a.examples) {
        ops.extend(e.ops.iter().copied());
        ops.extend(e.strip.iter().flat_map(|s| s.cells.iter().flat_map(|c| c.values.iter().map(|v| v.op))));
    }
    ops.into_iter()
        .filter(|&i| (i as usize) < h.entries.len())
        .map(|i| {
            let e = &h.entries[i as usize];
            let partner = (e.partner != NONE).then(|| &h.entries[e.partner as usize]);
            let recs = h.recs(i);
            let records: Vec<String> = recs
                .iter()
                .take(8)
                .map(|r| format!("{}@{}", h.keys[r.key as usize].value, offset_text(r.offset)))
                .collect();
            OpRow {
                index: i,
                process: h.processes[e.process as usize].to_string(),
                f: kind_name(e.kind),
                outcome: match (e.op_type, partner) {
                    (OpType::Invoke, Some(p)) => format!("invoke ({})", p.op_type.as_str()),
                    (OpType::Invoke, None) => "invoke (never completed)".to_owned(),
                    (t, _) => t.as_str().to_owned(),
                },
                time: format!("{:.3} s", e.time_ns as f64 / 1e9),
                latency: partner
                    .map_or_else(String::new, |p| format!("{:.1} ms", p.time_ns.abs_diff(e.time_ns) as f64 / 1e6)),
                records: if recs.len() > 8 {
                    format!("{} … ({})", records.join(" "), recs.len())
                } else {
                    records.join(" ")
                },
                in_timeline: in_timeline.contains(&i),
            }
        })
        .collect()
}

fn offset_text(o: u64) -> String {
    if o == faultline_checker::history::NO_OFFSET { "?".into() } else { o.to_string() }
}

fn replica_rows(rep: &Replicas, r: &Results) -> Vec<ReplicaRow> {
    let divergent: Vec<(String, u64)> = r
        .anomalies
        .get(&AnomalyKind::ReplicaDivergence)
        .map(|t| {
            t.examples.iter().filter_map(|e| Some((e.partition.clone()?, e.witness["offset"].as_u64()?))).collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    for (partition, nodes) in rep {
        let at = divergent.iter().find(|(p, _)| p == partition).map(|(_, o)| format!("at offset {o}"));
        for (node, log) in nodes {
            rows.push(ReplicaRow {
                partition: partition.clone(),
                node: node.clone(),
                leo: log.log_end_offset,
                records: log.records.len(),
                epoch: log.records.iter().map(|r| r.1).max().unwrap_or(0),
                diverges: at.clone().unwrap_or_default(),
            });
        }
    }
    rows
}
