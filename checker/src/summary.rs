//! The short human summary `faultline check` prints: the verdict, what was
//! checked, availability in a few lines, and each anomaly type with its
//! scale (a share of what was acknowledged) and when it happened (which
//! fault windows).

use crate::anomaly::AnomalyKind;
use crate::verdict::{Results, Status, TypeResult, Validity};

/// Fault windows listed in the summary; the rest are counted.
const WINDOWS_SHOWN_MAX: usize = 6;

/// The short human summary `faultline check` prints.
pub fn summary(r: &Results) -> String {
    let mut out = String::new();
    let verdict = match r.valid {
        Validity::Valid => "valid: no violations found",
        Validity::Invalid => "INVALID: violations found",
        Validity::Unknown => "UNKNOWN: the checker could not decide",
    };
    out.push_str(&format!("Verdict: {verdict}\n"));
    for reason in &r.unknown_reasons {
        out.push_str(&format!("  unknown because: {reason}\n"));
    }
    let ops: u64 = r.stats.ops.values().flat_map(|m| m.values()).sum();
    let acked: u64 = r.stats.partitions.values().map(|p| p.acknowledged).sum();
    out.push_str(&format!(
        "Checked {ops} ops over {} partitions ({acked} values acknowledged).\n",
        r.stats.partitions.len()
    ));
    let enqueued: u64 = r.stats.partitions.values().map(|p| p.enqueued).sum();
    if enqueued > 0 {
        out.push_str(&format!("{enqueued} values were enqueued into producer buffers.\n"));
    }
    if let Some(s) = &r.stats.sink {
        out.push_str(&format!("The sink holds {} rows in {} slots.\n", s.rows, s.slots));
    }
    if r.anomalies.is_empty() {
        out.push_str("No anomalies.\n");
    }
    availability(r, &mut out);
    for (kind, t) in &r.anomalies {
        anomaly(r, *kind, t, &mut out);
    }
    if r.warnings.count > 0 {
        out.push_str(&format!("{} warnings, e.g. {}\n", r.warnings.count, r.warnings.examples[0]));
    }
    if let Some(t) = &r.truncated_line {
        out.push_str(&format!("Skipped truncated last line {}: {}\n", t.line, t.message));
    }
    let ignored: u64 = r.stats.ignored_f.values().sum();
    if ignored > 0 {
        let names: Vec<&str> = r.stats.ignored_f.keys().map(String::as_str).collect();
        out.push_str(&format!("Ignored {ignored} ops with unknown f: {}\n", names.join(", ")));
    }
    for n in &r.not_checked {
        out.push_str(&format!("Not checked: {n}\n"));
    }
    out
}

/// Sends and latency overall, unavailable partitions, and the lasting fault
/// windows next to the time outside them.
fn availability(r: &Results, out: &mut String) {
    let a = &r.availability;
    let Some(sends) = a.ops.get("send") else { return };
    let mut line = format!(
        "Sends: ok {}, fail {}, info {} over {:.1} s ({:.0} ok/s)",
        sends.ok, sends.fail, sends.info, a.span_s, sends.ok_per_s
    );
    if let Some(l) = a.latency.get("send") {
        line.push_str(&format!("; latency p50 {} p99 {} max {}", ms(l.p50_ms), ms(l.p99_ms), ms(l.max_ms)));
    }
    out.push_str(&format!("{line}.\n"));
    if r.guarantees.acks == crate::guarantees::Acks::Zero {
        // Unavailability is measured by acknowledged sends.
        out.push_str("Unavailability: not measured: acks=0 sends are never acknowledged.\n");
    } else if a.unavailable_s > 0.0 {
        out.push_str(&format!(
            "Unavailable {:.1} s in all (no acknowledged send for ≥ {} ms while clients kept sending):\n",
            a.unavailable_s, a.unavailable_gap_min_ms
        ));
        for (p, pa) in a.partitions.iter().filter(|(_, pa)| pa.unavailable_s > 0.0) {
            let longest = pa.longest_unavailable.expect("an unavailable partition has a longest stretch");
            out.push_str(&format!(
                "  {p}: {:.1} s, longest {:.1} s at {:.1}–{:.1} s\n",
                pa.unavailable_s, longest.duration_s, longest.start_s, longest.end_s
            ));
        }
    }
    let lasting: Vec<_> = a.faults.iter().filter_map(|f| Some((f, f.inside.as_ref()?))).collect();
    if let (Some(o), false) = (&a.outside_faults, lasting.is_empty()) {
        out.push_str(&format!("Outside faults: {}\n", window_text(o)));
        for (f, w) in lasting.iter().take(WINDOWS_SHOWN_MAX) {
            out.push_str(&format!("During {}: {}\n", f.label, window_text(w)));
        }
        if lasting.len() > WINDOWS_SHOWN_MAX {
            out.push_str(&format!("… and {} more fault windows (results.json)\n", lasting.len() - WINDOWS_SHOWN_MAX));
        }
    }
}

fn window_text(w: &crate::availability::WindowStats) -> String {
    let lat = w.send_latency.as_ref().map_or(String::new(), |l| format!(", p99 {}", ms(l.p99_ms)));
    format!("{:.0} ok sends/s, {} failed, {} unknown{lat}", w.sends.ok_per_s, w.sends.fail, w.sends.info)
}

/// A share as a percentage with the digits that matter: `45%`, `9.7%`,
/// `0.04%`, `<0.01%`.
pub fn percent(share: f64) -> String {
    let p = 100.0 * share;
    match p {
        p if p >= 10.0 => format!("{p:.0}%"),
        p if p >= 1.0 => format!("{p:.1}%"),
        p if p >= 0.01 => format!("{p:.2}%"),
        p if p > 0.0 => "<0.01%".to_owned(),
        _ => "0%".to_owned(),
    }
}

fn ms(v: f64) -> String {
    if v >= 100.0 { format!("{v:.0} ms") } else { format!("{v:.1} ms") }
}

/// One anomaly type: count and status, shares per partition, when, and
/// one example.
fn anomaly(r: &Results, kind: AnomalyKind, t: &TypeResult, out: &mut String) {
    let status = match (&t.status, &t.reason) {
        (Status::Permitted, Some(why)) => format!("permitted: {why}"),
        _ => "violation".to_owned(),
    };
    out.push_str(&format!("{kind}: {} ({status})\n", t.count));
    let share = |p: &crate::verdict::PartitionStats| match kind {
        AnomalyKind::LostWrite => p.lost_share,
        AnomalyKind::Duplicate => p.duplicated_share,
        _ => None,
    };
    let shares: Vec<String> = r
        .stats
        .partitions
        .iter()
        .filter_map(|(name, p)| Some(format!("{} of acknowledged on {name}", percent(share(p)?))))
        .collect();
    if !shares.is_empty() {
        out.push_str(&format!("  {}\n", shares.join(", ")));
    }
    if let Some(w) = &t.when {
        let timed: u64 = w.outside_faults + w.in_faults.iter().map(|c| c.count).sum::<u64>();
        for c in w.in_faults.iter().take(WINDOWS_SHOWN_MAX) {
            out.push_str(&format!("  {} of them during {}\n", c.count, c.label));
        }
        if w.outside_faults > 0 && w.outside_faults < timed {
            out.push_str(&format!("  {} outside every fault\n", w.outside_faults));
        }
    }
    if let Some(ex) = t.examples.first() {
        out.push_str(&format!("  e.g. {}\n", ex.explanation));
    }
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn percentages_keep_the_digits_that_matter() {
        let got: Vec<String> = [0.45, 0.097, 0.0004, 0.00000001, 0.0].into_iter().map(percent).collect();
        assert_eq!(got, ["45%", "9.7%", "0.04%", "<0.01%", "0%"]);
    }
}
