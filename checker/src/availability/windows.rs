//! Fault windows: when each fault of the nemesis was in effect, paired from
//! the history's nemesis ops alone.
//!
//! A fault's window opens at the op that recorded its effect (`kill`, not
//! the `start-kill` that scheduled it) and closes at the op that undid it:
//! `start` for `kill`, `resume` for `pause`, `heal` for any partition,
//! `resume-fetchers`, `sink-recover`, or `final-heal` for all of them. A
//! closing op with targets closes only the open windows of its class that
//! share a target (`start n2` leaves `kill n1` open); one without targets
//! (or with `all`) closes the whole class, and so does `sink-recover` (the
//! sink is one thing, named by its files when it fails and as `sink` when
//! it recovers), and a window without targets closes at its class's next
//! closer. A window still open when the
//! history ends closes there. Faults that do not last (`kill-producer`,
//! `kill-consumer`, and any fault this checker does not know) are instants:
//! windows of zero length. Skipped faults open nothing.

use serde::Serialize;

use crate::history::{History, NemesisOp};

/// A nemesis fault and when it was in effect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultWindow {
    /// The fault's name in the history (`kill`, `partition-halves`, …).
    pub fault: String,
    /// The nodes or targets it acted on.
    pub targets: Vec<String>,
    pub start_ns: u64,
    /// Equal to `start_ns` for an instant fault.
    pub end_ns: u64,
    /// The op that ended it (`heal`, `start`, `final-heal`), or `None` when
    /// it lasted to the end of the history or was an instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    /// The history index of the op that recorded its effect.
    pub op: u32,
}

impl FaultWindow {
    /// "partition-halves n1,n2 at 4.0–8.1 s": how texts name a window.
    pub fn label(&self) -> String {
        let targets = if self.targets.is_empty() { String::new() } else { format!(" {}", self.targets.join(",")) };
        let (a, b) = (self.start_ns as f64 / 1e9, self.end_ns as f64 / 1e9);
        if self.is_instant() {
            format!("{}{targets} at {a:.1} s", self.fault)
        } else {
            format!("{}{targets} at {a:.1}–{b:.1} s", self.fault)
        }
    }

    pub fn is_instant(&self) -> bool {
        self.end_ns == self.start_ns
    }

    /// Whether time `t_ns` falls in the window (an instant holds only its
    /// own moment).
    pub fn contains(&self, t_ns: u64) -> bool {
        t_ns >= self.start_ns && (t_ns < self.end_ns || t_ns == self.start_ns)
    }
}

/// The op names that end a lasting fault, by the fault's name; `None` for
/// faults that do not last.
fn closers(fault: &str) -> Option<&'static [&'static str]> {
    match fault {
        "kill" => Some(&["start"]),
        "pause" => Some(&["resume"]),
        "pause-fetchers" => Some(&["resume-fetchers"]),
        "sink-outage" => Some(&["sink-recover"]),
        f if f.starts_with("partition") => Some(&["heal"]),
        _ => None,
    }
}

/// Op names that only end faults and are no window of their own.
const CLOSING: [&str; 6] = ["start", "resume", "heal", "resume-fetchers", "sink-recover", "final-heal"];

/// Every fault window of the history, in order of start.
pub fn fault_windows(h: &History) -> Vec<FaultWindow> {
    let end_ns = h.entries.iter().map(|e| e.time_ns).max().unwrap_or(0);
    let mut done: Vec<FaultWindow> = Vec::new();
    let mut open: Vec<FaultWindow> = Vec::new();
    for n in h.nemesis.iter().filter(|n| n.skipped.is_none() && !n.f.starts_with("start-")) {
        if CLOSING.contains(&n.f.as_str()) {
            close(&mut open, &mut done, n);
            continue;
        }
        let mut w = FaultWindow {
            fault: n.f.clone(),
            targets: n.targets.clone(),
            start_ns: n.time_ns,
            end_ns: n.time_ns,
            ended_by: None,
            op: n.op,
        };
        if closers(&n.f).is_some() {
            w.end_ns = end_ns.max(n.time_ns);
            open.push(w);
        } else {
            done.push(w);
        }
    }
    done.append(&mut open);
    done.sort_by_key(|w| (w.start_ns, w.op));
    done
}

/// Ends the open windows that closing op `n` undoes.
fn close(open: &mut Vec<FaultWindow>, done: &mut Vec<FaultWindow>, n: &NemesisOp) {
    let everything = n.targets.is_empty() || n.targets.iter().any(|t| t == "all");
    let mut i = 0;
    while i < open.len() {
        let w = &open[i];
        let class = n.f == "final-heal" || closers(&w.fault).is_some_and(|c| c.contains(&n.f.as_str()));
        let whole_class = everything || matches!(n.f.as_str(), "final-heal" | "sink-recover") || w.targets.is_empty();
        let shares = whole_class || w.targets.iter().any(|t| n.targets.contains(t));
        if class && shares {
            let mut w = open.swap_remove(i);
            w.end_ns = n.time_ns.max(w.start_ns);
            w.ended_by = Some(n.f.clone());
            done.push(w);
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history of nemesis ops `(time_ns, f, value)` and one send.
    fn history(nemesis: &[(u64, &str, &str)]) -> History {
        let mut lines: Vec<String> = nemesis
            .iter()
            .enumerate()
            .map(|(i, (t, f, v))| {
                format!(r#"{{"index":{i},"time":{t},"process":"nemesis","type":"info","f":"{f}","value":{v}}}"#)
            })
            .collect();
        let n = lines.len();
        let send = r#""process":0,"type":"invoke","f":"send","value":{"records":{"t/0":[1]}}"#;
        lines.push(format!(r#"{{"index":{n},"time":6000000000,{send}}}"#));
        History::parse(lines.join("\n").as_bytes()).unwrap()
    }

    /// A kill closes at the start of its node, not of another; a partition
    /// at heal; an instant has no length; a skipped fault opens nothing; what
    /// is still open closes at the end of the history.
    #[test]
    fn windows_pair_faults_with_what_undid_them() {
        let h = history(&[
            (1_000_000_000, "start-kill", r#"{"target":"random","scheduled_ns":1}"#),
            (1_100_000_000, "kill", r#"{"outcome":"installed","targets":["n1"]}"#),
            (1_200_000_000, "kill", r#"{"outcome":"installed","targets":["n2"]}"#),
            (2_000_000_000, "start", r#"{"outcome":"installed","targets":["n2"]}"#),
            (3_000_000_000, "partition-halves", r#"{"targets":["n1","n3"]}"#),
            (4_000_000_000, "heal", r#"{"targets":["all"]}"#),
            (4_500_000_000, "kill-producer", r#"{"targets":["random"]}"#),
            (4_600_000_000, "pause", r#"{"outcome":"skipped","reason":"no leader"}"#),
        ]);
        let w = fault_windows(&h);
        let tenths = |ns: u64| ns / 100_000_000;
        let got: Vec<_> =
            w.iter().map(|w| (w.fault.as_str(), tenths(w.start_ns), tenths(w.end_ns), w.ended_by.as_deref())).collect();
        assert_eq!(
            got,
            vec![
                ("kill", 11, 60, None),
                ("kill", 12, 20, Some("start")),
                ("partition-halves", 30, 40, Some("heal")),
                ("kill-producer", 45, 45, None),
            ]
        );
        assert_eq!(w[2].label(), "partition-halves n1,n3 at 3.0–4.0 s");
        assert_eq!(w[3].label(), "kill-producer random at 4.5 s");
        assert!(w[2].contains(3_500_000_000) && !w[2].contains(4_000_000_000));
        assert!(w[3].contains(4_500_000_000) && !w[3].contains(4_600_000_000));
    }

    /// A sink outage names its files, its recovery the sink: one class, so
    /// the recovery ends it.
    #[test]
    fn sink_recover_ends_the_outage_whatever_the_names() {
        let h = history(&[
            (1_000, "sink-outage", r#"{"outcome":"installed","targets":["slot-0.sqlite","slot-1.sqlite"]}"#),
            (2_000, "sink-recover", r#"{"outcome":"installed","targets":["sink"]}"#),
        ]);
        let w = fault_windows(&h);
        assert_eq!((w.len(), w[0].end_ns, w[0].ended_by.as_deref()), (1, 2_000, Some("sink-recover")));
    }

    /// `final-heal` ends every open fault, whatever its class or targets.
    #[test]
    fn final_heal_closes_everything() {
        let h = history(&[
            (1_000, "pause", r#"{"targets":["n1"]}"#),
            (2_000, "sink-outage", r#"{}"#),
            (3_000, "final-heal", r#"{"outcome":"installed"}"#),
        ]);
        let w = fault_windows(&h);
        assert_eq!(w.len(), 2);
        assert!(w.iter().all(|w| w.end_ns == 3_000 && w.ended_by.as_deref() == Some("final-heal")));
    }
}
