//! Fault schedules: what to break and when, decided before the run from a
//! seed, so the same seed gives the same schedule.
//!
//! Two sources:
//! - a **random mix** (`--nemesis kill,pause,partition --nemesis-interval 10`):
//!   each fault family alternates start and stop after a random wait of 0–2×
//!   the interval; a fault that only matters once it outlasts the broker
//!   session timeout (isolation, a paused leader) lasts at least twice that;
//! - a **scripted timeline** from TOML (`[[timeline]]` entries with `t`,
//!   `fault`, `target`, `shape`), as the bug recipes in `recipes/bugs/` use.
//!
//! Targets are roles (`leader-of:events/0`, `controller`, …) resolved when the
//! fault fires, from the cluster's metadata at that moment.

use std::collections::BTreeMap;
use std::fmt;

use rand::{RngExt, SeedableRng};
use serde::Deserialize;

use crate::fault::{Fault, FaultList, PartitionShape};
use crate::precondition::Precondition;

/// Bound on the operations one schedule may hold.
pub const SCHEDULE_OPS_MAX: usize = 10_000;

/// What a fault does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Kill,
    /// SIGKILL, then drop the node's unsynced writes (its lazyfs disk).
    PowerLoss,
    Start,
    Pause,
    Resume,
    /// Install a partition of this shape (`one`, `isolate`, `halves`, `majorities-ring`, `bridge`,
    /// `isolate-leader`, `leader-from-followers`, `mute-leader` (the leader's answers to the
    /// clients are dropped), or `random` for one of the standard set).
    Partition(String),
    /// Install an explicit grudge: node → the nodes whose packets it drops.
    Grudge(BTreeMap<String, std::collections::BTreeSet<String>>),
    Heal,
    KillProducer,
    KillConsumer,
    PauseConsumer,
    ResumeConsumer,
    /// The consumer application's next batch takes longer than its
    /// `max.poll.interval.ms` to process (the process stays alive).
    StallConsumer,
    PauseFetchers,
    ResumeFetchers,
    /// Make the consumers' downstream database refuse writes (another
    /// connection holds its write lock) until [`Action::SinkRecover`].
    SinkOutage,
    SinkRecover,
}

/// Who a fault hits, resolved when it fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Node(String),
    LeaderOf(String),
    FollowerOf(String),
    FollowersOf(String),
    /// The partition's in-sync replicas, leader included.
    IsrOf(String),
    Controller,
    All,
    Minority,
    Majority,
    /// Nodes that an earlier fault killed (for `start`).
    Killed,
    /// A random node.
    Random,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScheduledFault {
    /// Seconds since the workload started.
    pub at_s: f64,
    pub action: Action,
    pub target: Target,
    /// Timeline steps only: what must hold when it fires.
    pub require: Option<Precondition>,
}

/// Shortest sink outage of the random mix, seconds: several times the
/// consumers' SQLite `busy_timeout`, so writes really fail.
pub const SINK_OUTAGE_MIN_S: f64 = 2.0;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("timeline entry {index}: {message}")]
    Entry { index: usize, message: String },
    #[error("timeline: {0}")]
    Toml(String),
    #[error("the schedule would exceed {SCHEDULE_OPS_MAX} operations")]
    TooLong,
}

/// Parses a target: `n1`, `leader-of:events/0`, `follower-of:P`,
/// `followers-of:P`, `isr-of:P`, `controller`, `all`, `minority`, `majority`,
/// `killed`, `random`.
pub fn parse_target(text: &str) -> Result<Target, String> {
    Ok(match text.split_once(':') {
        Some(("leader-of", p)) => Target::LeaderOf(p.to_string()),
        Some(("follower-of", p)) => Target::FollowerOf(p.to_string()),
        Some(("followers-of", p)) => Target::FollowersOf(p.to_string()),
        Some(("isr-of", p)) => Target::IsrOf(p.to_string()),
        Some((kind, _)) => return Err(format!("unknown target kind `{kind}`")),
        None => match text {
            "controller" => Target::Controller,
            "all" => Target::All,
            "minority" => Target::Minority,
            "majority" => Target::Majority,
            "killed" => Target::Killed,
            "random" => Target::Random,
            n if !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
                Target::Node(n.to_string())
            }
            other => return Err(format!("unknown target `{other}`")),
        },
    })
}

/// A timeline entry's action: its `fault` from the registry, and for
/// `partition` its `shape` (a named shape, `random`, or a shape of
/// [`crate::partition::parse_shape`] such as `isolate:n1`).
fn parse_action(fault: &str, shape: Option<&str>) -> Result<Action, String> {
    let fault: Fault = fault.parse().map_err(|e: crate::fault::FaultError| e.to_string())?;
    if shape.is_some() && fault != Fault::Partition {
        return Err(format!("`{fault}` takes no shape; use fault = \"partition\" with a shape"));
    }
    Ok(match fault {
        Fault::Kill => Action::Kill,
        Fault::PowerLoss => Action::PowerLoss,
        Fault::Start => Action::Start,
        Fault::Pause => Action::Pause,
        Fault::Resume => Action::Resume,
        Fault::Heal => Action::Heal,
        Fault::KillProducer => Action::KillProducer,
        Fault::KillConsumer => Action::KillConsumer,
        Fault::PauseConsumer => Action::PauseConsumer,
        Fault::ResumeConsumer => Action::ResumeConsumer,
        Fault::StallConsumer => Action::StallConsumer,
        Fault::PauseFetchers => Action::PauseFetchers,
        Fault::SinkOutage => Action::SinkOutage,
        Fault::SinkRecover => Action::SinkRecover,
        Fault::ResumeFetchers => Action::ResumeFetchers,
        Fault::Shape(s) => Action::Partition(s.name().to_string()),
        Fault::Partition => match shape {
            None | Some("random") => Action::Partition("random".into()),
            Some(s) => match s.parse::<Fault>() {
                Ok(Fault::Shape(named)) => Action::Partition(named.name().to_string()),
                _ => {
                    crate::partition::parse_shape(s).map_err(|e| {
                        format!("shape: {e}; or a named shape: {}", Fault::names(|f| matches!(f, Fault::Shape(_))))
                    })?;
                    Action::Partition(s.to_string())
                }
            },
        },
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineEntry {
    t: f64,
    fault: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    shape: Option<String>,
    /// With `fault = "partition"`, `shape = "explicit"`: node → nodes it drops.
    #[serde(default)]
    grudge: Option<BTreeMap<String, Vec<String>>>,
    /// A precondition checked when the step fires (`behind:n5:events/0`).
    #[serde(default)]
    require: Option<String>,
}

#[derive(Deserialize)]
struct TimelineFile {
    #[serde(default)]
    timeline: Vec<TimelineEntry>,
}

/// Parses the `[[timeline]]` entries of a TOML document (other tables, such
/// as a recipe's `[cluster]`, are ignored here). Entries must be in time
/// order; errors name the entry and the field.
pub fn parse_timeline(toml_text: &str) -> Result<Vec<ScheduledFault>, ScheduleError> {
    let file: TimelineFile = toml::from_str(toml_text).map_err(|e| ScheduleError::Toml(e.to_string()))?;
    if file.timeline.len() > SCHEDULE_OPS_MAX {
        return Err(ScheduleError::TooLong);
    }
    let mut out = Vec::with_capacity(file.timeline.len());
    let mut last = 0.0;
    for (i, e) in file.timeline.iter().enumerate() {
        let bad = |message: String| ScheduleError::Entry { index: i, message };
        if !(e.t.is_finite() && e.t >= 0.0) {
            return Err(bad(format!("t = {}: must be a finite number of seconds ≥ 0", e.t)));
        }
        if e.t < last {
            return Err(bad(format!("t = {} comes before the previous entry's t = {last}", e.t)));
        }
        last = e.t;
        let action = match (&e.grudge, e.shape.as_deref()) {
            (Some(g), Some("explicit")) if e.fault == "partition" => {
                Action::Grudge(g.iter().map(|(k, v)| (k.clone(), v.iter().cloned().collect())).collect())
            }
            (Some(_), _) => return Err(bad("grudge: only with fault = \"partition\" and shape = \"explicit\"".into())),
            (None, Some("explicit")) => return Err(bad("shape = \"explicit\" needs a grudge table".into())),
            (None, _) => parse_action(&e.fault, e.shape.as_deref()).map_err(|m| bad(format!("fault: {m}")))?,
        };
        let target = match (&action, e.target.as_deref()) {
            (Action::Heal | Action::Grudge(_) | Action::SinkOutage | Action::SinkRecover, None) => Target::All,
            (_, None) => return Err(bad("target: missing".into())),
            (_, Some(t)) => parse_target(t).map_err(|m| bad(format!("target: {m}")))?,
        };
        let require = e.require.as_deref().map(str::parse).transpose().map_err(|m| bad(format!("require: {m}")))?;
        out.push(ScheduledFault { at_s: e.t, action, target, require });
    }
    Ok(out)
}

/// A random mix: for each family in `families`, alternate start and stop
/// after random waits of 0–2× `interval_s`, until `time_limit_s`. Faults
/// that must outlast the session timeout last at least twice it. Every
/// started fault is stopped by `time_limit_s` (the final heal also runs).
pub fn random_mix(
    families: &FaultList,
    interval_s: f64,
    time_limit_s: f64,
    session_timeout_s: f64,
    seed: u64,
) -> Result<Vec<ScheduledFault>, ScheduleError> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut ops = Vec::new();
    for family in families.faults() {
        let mut t = rng.random_range(0.0..(2.0 * interval_s).max(0.001));
        // Bounded: t grows by at least the minimum duration per round.
        while t < time_limit_s {
            let (start, stop, min_s) = match family {
                Fault::Kill => (Action::Kill, Some(Action::Start), 0.0),
                Fault::PowerLoss => (Action::PowerLoss, Some(Action::Start), 0.0),
                Fault::Pause => (Action::Pause, Some(Action::Resume), 2.0 * session_timeout_s),
                Fault::KillProducer => (Action::KillProducer, None, 0.0),
                Fault::KillConsumer => (Action::KillConsumer, None, 0.0),
                Fault::StallConsumer => (Action::StallConsumer, None, 0.0),
                Fault::PauseConsumer => (Action::PauseConsumer, Some(Action::ResumeConsumer), 2.0 * session_timeout_s),
                Fault::SinkOutage => (Action::SinkOutage, Some(Action::SinkRecover), SINK_OUTAGE_MIN_S),
                Fault::Partition | Fault::Shape(_) => {
                    let shape = match family {
                        Fault::Shape(s) => *s,
                        _ => PartitionShape::STANDARD[rng.random_range(0..PartitionShape::STANDARD.len())],
                    };
                    (Action::Partition(shape.name().to_string()), Some(Action::Heal), 2.0 * session_timeout_s)
                }
                // FaultList holds only faults the mix can stop.
                Fault::Start | Fault::Resume | Fault::Heal | Fault::SinkRecover => unreachable!("not in a mix"),
                Fault::PauseFetchers | Fault::ResumeFetchers | Fault::ResumeConsumer => unreachable!("not in a mix"),
            };
            let target = match start {
                Action::Kill | Action::PowerLoss | Action::Pause => Target::Random,
                _ => Target::All,
            };
            ops.push(ScheduledFault { at_s: t, action: start, target, require: None });
            let lasts = rng.random_range(0.0..(2.0 * interval_s).max(0.001)).max(min_s).max(0.1);
            if let Some(stop) = stop {
                let end = (t + lasts).min(time_limit_s);
                let target = if stop == Action::Start { Target::Killed } else { Target::All };
                ops.push(ScheduledFault { at_s: end, action: stop, target, require: None });
            }
            t += lasts + rng.random_range(0.0..(2.0 * interval_s).max(0.001));
            if ops.len() > SCHEDULE_OPS_MAX {
                return Err(ScheduleError::TooLong);
            }
        }
    }
    ops.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    Ok(ops)
}

impl fmt::Display for Action {
    /// The fault's name in histories, logs and `test.json`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name: String = match self {
            Action::Kill => "kill".into(),
            Action::PowerLoss => "power-loss".into(),
            Action::Start => "start".into(),
            Action::Pause => "pause".into(),
            Action::Resume => "resume".into(),
            Action::Partition(shape) => format!("partition-{shape}"),
            Action::Grudge(_) => "partition-explicit".into(),
            Action::Heal => "heal".into(),
            Action::KillProducer => "kill-producer".into(),
            Action::KillConsumer => "kill-consumer".into(),
            Action::PauseConsumer => "pause-consumer".into(),
            Action::ResumeConsumer => "resume-consumer".into(),
            Action::StallConsumer => "stall-consumer".into(),
            Action::PauseFetchers => "pause-fetchers".into(),
            Action::ResumeFetchers => "resume-fetchers".into(),
            Action::SinkOutage => "sink-outage".into(),
            Action::SinkRecover => "sink-recover".into(),
        };
        f.write_str(&name)
    }
}

impl fmt::Display for Target {
    /// The target as timelines write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name: String = match self {
            Target::Node(n) => n.clone(),
            Target::LeaderOf(p) => format!("leader-of:{p}"),
            Target::FollowerOf(p) => format!("follower-of:{p}"),
            Target::FollowersOf(p) => format!("followers-of:{p}"),
            Target::IsrOf(p) => format!("isr-of:{p}"),
            Target::Controller => "controller".into(),
            Target::All => "all".into(),
            Target::Minority => "minority".into(),
            Target::Majority => "majority".into(),
            Target::Killed => "killed".into(),
            Target::Random => "random".into(),
        };
        f.write_str(&name)
    }
}

/// Counts per action, for summaries.
pub fn summary(ops: &[ScheduledFault]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for op in ops {
        *m.entry(op.action.to_string()).or_default() += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Faults and targets print under the names histories and timelines
    /// use, never as Rust's `Debug` (`KillConsumer`).
    /// `require` is parsed with its step; a bad one names the entry.
    #[test]
    fn a_step_carries_its_precondition() {
        let ops = parse_timeline(
            "[[timeline]]\nt = 1\nfault = \"kill\"\ntarget = \"n4\"\nrequire = \"behind:n5:events/0\"\n",
        )
        .unwrap();
        assert_eq!(ops[0].require, Some(Precondition::Behind { node: "n5".into(), partition: "events/0".into() }));
        let err = parse_timeline("[[timeline]]\nt = 1\nfault = \"kill\"\ntarget = \"n4\"\nrequire = \"behind:n5\"\n")
            .unwrap_err();
        assert!(err.to_string().starts_with("timeline entry 0: require: `behind:n5`"), "{err}");
    }

    #[test]
    fn actions_and_targets_display_their_names() {
        assert_eq!(Action::KillConsumer.to_string(), "kill-consumer");
        assert_eq!(Action::Partition("halves".into()).to_string(), "partition-halves");
        assert_eq!(Target::LeaderOf("events/0".into()).to_string(), "leader-of:events/0");
        let tl =
            parse_timeline("[[timeline]]\nt = 1.0\nfault = \"pause-fetchers\"\ntarget = \"followers-of:events/0\"\n")
                .unwrap();
        assert_eq!(
            (tl[0].action.to_string(), tl[0].target.to_string()),
            ("pause-fetchers".into(), "followers-of:events/0".into())
        );
    }

    #[test]
    fn a_power_loss_is_a_timeline_step_on_the_isr_and_a_mix_fault_that_restarts_its_node() {
        let tl = parse_timeline("[[timeline]]\nt = 1\nfault = \"power-loss\"\ntarget = \"isr-of:events/0\"\n").unwrap();
        assert_eq!((tl[0].action.clone(), tl[0].target.clone()), (Action::PowerLoss, Target::IsrOf("events/0".into())));
        assert_eq!(tl[0].target.to_string(), "isr-of:events/0");
        let ops = random_mix(&"power-loss".parse().unwrap(), 2.0, 40.0, 3.0, 7).unwrap();
        let losses = ops.iter().filter(|o| o.action == Action::PowerLoss).count();
        assert!(losses > 0);
        assert_eq!(losses, ops.iter().filter(|o| o.action == Action::Start && o.target == Target::Killed).count());
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let fams: FaultList = "kill,pause,partition,kill-producer".parse().unwrap();
        let a = random_mix(&fams, 5.0, 60.0, 3.0, 42).unwrap();
        let b = random_mix(&fams, 5.0, 60.0, 3.0, 42).unwrap();
        let c = random_mix(&fams, 5.0, 60.0, 3.0, 43).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.windows(2).all(|w| w[0].at_s <= w[1].at_s), "in time order");
        assert!(a.iter().all(|op| op.at_s <= 60.0));
    }

    #[test]
    fn every_fault_started_is_stopped_and_long_faults_outlast_the_session_timeout() {
        let fams: FaultList = "pause,partition,kill".parse().unwrap();
        let ops = random_mix(&fams, 2.0, 40.0, 3.0, 7).unwrap();
        let count = |a: &dyn Fn(&Action) -> bool| ops.iter().filter(|o| a(&o.action)).count();
        assert_eq!(count(&|a| *a == Action::Pause), count(&|a| *a == Action::Resume));
        assert_eq!(count(&|a| matches!(a, Action::Partition(_))), count(&|a| *a == Action::Heal));
        assert_eq!(count(&|a| *a == Action::Kill), count(&|a| *a == Action::Start));
        for (i, op) in ops.iter().enumerate() {
            if op.action == Action::Pause
                && let Some(end) = ops[i..].iter().find(|o| o.action == Action::Resume)
                && end.at_s < 40.0
            {
                assert!(end.at_s - op.at_s >= 6.0 - 1e-9, "a pause lasts ≥ 2× the session timeout");
            }
        }
    }

    #[test]
    fn timelines_parse_roles_and_name_the_bad_entry() {
        let ops = parse_timeline(
            "[[timeline]]\n\
             t = 5.0\n\
             fault = \"partition\"\n\
             shape = \"leader-from-followers\"\n\
             target = \"leader-of:events/0\"\n\n\
             [[timeline]]\n\
             t = 9\n\
             fault = \"heal\"\n",
        )
        .unwrap();
        assert_eq!(
            ops[0],
            ScheduledFault {
                at_s: 5.0,
                action: Action::Partition("leader-from-followers".into()),
                target: Target::LeaderOf("events/0".into()),
                require: None,
            }
        );
        assert_eq!(ops[1].target, Target::All);
        let err = parse_timeline(
            "[[timeline]]\n\
             t = 5\n\
             fault = \"kill\"\n\
             target = \"leader-of:x\"\n\
             [[timeline]]\n\
             t = 1\n\
             fault = \"start\"\n\
             target = \"killed\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("entry 1") && err.to_string().contains("before"), "{err}");
        let err = parse_timeline("[[timeline]]\nt = 1\nfault = \"explode\"\ntarget = \"n1\"\n").unwrap_err();
        assert!(err.to_string().contains("entry 0: fault: unknown fault `explode`"), "{err}");
        assert!(parse_timeline("[[timeline]]\nt = 1\nfault = \"kill\"\ntarget = \"n1\"\nbogus = 2\n").is_err());
        let err = parse_timeline("[[timeline]]\nt = 1\nfault = \"partition\"\nshape = \"zigzag\"\n").unwrap_err();
        assert!(err.to_string().contains("zigzag") && err.to_string().contains("mute-leader"), "{err}");
    }

    /// Every fault the registry names is accepted by a timeline, under
    /// that name (mute-leader was once refused here).
    #[test]
    fn every_registered_fault_is_a_timeline_fault() {
        for f in Fault::all() {
            let text = format!("[[timeline]]\nt = 1\nfault = \"{f}\"\ntarget = \"leader-of:events/0\"\n");
            let ops = parse_timeline(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(ops.len(), 1);
        }
    }

    #[test]
    fn an_explicit_grudge_parses_from_a_timeline() {
        let ops = parse_timeline(
            "[[timeline]]\nt = 1\nfault = \"partition\"\nshape = \"explicit\"\ngrudge = { n1 = [\"n2\", \"n3\"] }\n",
        )
        .unwrap();
        let Action::Grudge(g) = &ops[0].action else { panic!("{:?}", ops[0]) };
        assert_eq!(g["n1"].len(), 2);
        assert!(parse_timeline("[[timeline]]\nt = 1\nfault = \"partition\"\nshape = \"explicit\"\n").is_err());
    }

    /// The bug recipes of issue 4 are valid timelines.
    #[test]
    fn every_bug_recipe_timeline_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/bugs");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let ops = parse_timeline(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!ops.is_empty(), "{}", path.display());
            n += 1;
        }
        assert_eq!(n, 11);
    }
}
