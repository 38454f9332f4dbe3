//! Jepsen's `timeline.html`, bounded: the ops of each process as boxes from
//! invoke to completion, in a short window of time around the first
//! anomaly (or the first fault), so the page stays small whatever the
//! history's length.

use faultline_checker::Results;
use faultline_checker::history::{History, Kind, NONE, kind_name};
use faultline_checker::op::OpType;
use serde::Serialize;

/// The ops shown at most; those nearest the centre are kept.
pub const TIMELINE_OPS_MAX: usize = 300;
/// Seconds shown on each side of the centre, at most.
const HALF_WINDOW_S: f64 = 1.0;
/// Process columns shown at most.
const COLUMNS_MAX: usize = 24;
const HEIGHT_PX: f64 = 1200.0;
const COLUMN_PX: u32 = 110;

#[derive(Debug, Serialize)]
pub struct Timeline {
    /// What the window is centred on.
    pub centre: String,
    pub from_s: String,
    pub to_s: String,
    pub columns: Vec<String>,
    pub width_px: u32,
    pub height_px: u32,
    pub boxes: Vec<OpBox>,
    /// Ops of the window left out to stay within the bounds.
    pub left_out: usize,
}

/// One op: a box in its process's column.
#[derive(Debug, Serialize)]
pub struct OpBox {
    pub index: u32,
    pub left_px: u32,
    pub top_px: u32,
    pub height_px: u32,
    /// `ok`, `fail`, `info` or `nemesis`: the box's CSS class.
    pub class: &'static str,
    pub title: String,
    pub label: String,
}

/// The timeline around the first anomaly's first witness op, else the
/// first fault; `None` for a history with no client op.
pub fn timeline(h: &History, r: &Results) -> Option<Timeline> {
    let (centre_ns, centre) = centre(h, r)?;
    let half_ns = (HALF_WINDOW_S * 1e9) as u64;
    let (widest_from_ns, widest_to_ns) = (centre_ns.saturating_sub(half_ns), centre_ns.saturating_add(half_ns));
    // Invokes (and nemesis ops) within the widest window, nearest the
    // centre first; the window then shrinks to the ops kept, so a fast
    // history shows a few milliseconds and a slow one up to two seconds.
    let mut picked: Vec<u32> = (0..h.entries.len() as u32)
        .filter(|&i| {
            let e = &h.entries[i as usize];
            (e.op_type == OpType::Invoke || e.kind == Kind::Nemesis)
                && (widest_from_ns..=widest_to_ns).contains(&e.time_ns)
        })
        .collect();
    let total = picked.len();
    picked.sort_by_key(|&i| h.entries[i as usize].time_ns.abs_diff(centre_ns));
    picked.truncate(TIMELINE_OPS_MAX);
    let mut columns: Vec<u32> = Vec::new();
    for &i in &picked {
        let p = h.entries[i as usize].process;
        if !columns.contains(&p) && columns.len() < COLUMNS_MAX {
            columns.push(p);
        }
    }
    columns.sort_by_key(|&p| h.processes[p as usize].to_string());
    picked.retain(|&i| columns.contains(&h.entries[i as usize].process));
    let times = picked.iter().map(|&i| h.entries[i as usize].time_ns);
    let (from_ns, last_ns) = (times.clone().min()?, times.max()?);
    let to_ns = last_ns.saturating_add((last_ns - from_ns).max(1_000_000) / 20);
    let px_per_ns = HEIGHT_PX / (to_ns - from_ns) as f64;
    let boxes = picked.iter().map(|&i| op_box(h, i, &columns, (from_ns, to_ns), px_per_ns)).collect();
    Some(Timeline {
        centre,
        from_s: format!("{:.3}", from_ns as f64 / 1e9),
        to_s: format!("{:.3}", to_ns as f64 / 1e9),
        columns: columns.iter().map(|&p| h.processes[p as usize].to_string()).collect(),
        width_px: COLUMN_PX * columns.len() as u32,
        height_px: HEIGHT_PX as u32,
        left_out: total - picked.len(),
        boxes,
    })
}

fn centre(h: &History, r: &Results) -> Option<(u64, String)> {
    let first_anomaly = r
        .anomalies
        .iter()
        .flat_map(|(k, t)| t.examples.iter().map(move |e| (k, e)))
        .filter_map(|(k, e)| Some((e.witness_times_ns().into_iter().min()?, format!("the first {k} witness"))))
        .min_by_key(|(t, _)| *t);
    if first_anomaly.is_some() {
        return first_anomaly;
    }
    if let Some(n) = h.nemesis.iter().find(|n| !n.f.starts_with("start-")) {
        return Some((n.time_ns, format!("the first fault ({})", n.f)));
    }
    let e = h.entries.iter().find(|e| e.kind != Kind::Nemesis)?;
    Some((e.time_ns, "the first op".to_owned()))
}

/// Op `i`'s box in the window `(from_ns, to_ns)`.
fn op_box(h: &History, i: u32, columns: &[u32], (from_ns, to_ns): (u64, u64), px_per_ns: f64) -> OpBox {
    let e = &h.entries[i as usize];
    let col = columns.iter().position(|&p| p == e.process).unwrap_or(0) as u32;
    let (end_ns, class) = if e.kind == Kind::Nemesis {
        (e.time_ns, "nemesis")
    } else if e.partner == NONE {
        (to_ns, "info")
    } else {
        let c = &h.entries[e.partner as usize];
        (c.time_ns, c.op_type.as_str())
    };
    let top = (e.time_ns.saturating_sub(from_ns) as f64 * px_per_ns) as u32;
    let height = ((end_ns.min(to_ns).saturating_sub(e.time_ns)) as f64 * px_per_ns).max(3.0) as u32;
    let name = match h.nemesis.iter().find(|n| n.op == i) {
        Some(n) => format!("{} {}", n.f, n.targets.join(",")),
        None => kind_name(e.kind).to_owned(),
    };
    let ms = (end_ns.saturating_sub(e.time_ns)) as f64 / 1e6;
    OpBox {
        index: i,
        left_px: col * COLUMN_PX,
        top_px: top,
        height_px: height,
        class,
        title: format!(
            "op {i}: {name} by {} at {:.3} s, {class} after {ms:.1} ms{}",
            h.processes[e.process as usize],
            e.time_ns as f64 / 1e9,
            values(h, i)
        ),
        label: name,
    }
}

/// Up to six `partition:value` of an op (a poll's from its completion).
fn values(h: &History, i: u32) -> String {
    let e = &h.entries[i as usize];
    let from = if e.kind == Kind::Poll && e.partner != NONE { e.partner } else { i };
    let recs = h.recs(from);
    let shown: Vec<String> = recs
        .iter()
        .take(6)
        .map(|r| format!("{}:{}", h.partitions[r.partition as usize], h.keys[r.key as usize].value))
        .collect();
    match recs.len() {
        0 => String::new(),
        n if n > 6 => format!("; {} … ({n} records)", shown.join(" ")),
        _ => format!("; {}", shown.join(" ")),
    }
}
