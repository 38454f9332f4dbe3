//! The fault registry: every fault a user can name, with its one name and
//! what it does. `--nemesis`, timelines' `fault` and `shape`, `run --help`
//! and the README all take their names from here, so a fault cannot be
//! known to one of them and refused by another.
//!
//! A fault's history op is named by [`crate::schedule::Action`], which is
//! built from these names (`partition-<shape>` for a partition).

use std::fmt;
use std::str::FromStr;

/// A named partition shape, resolved against the cluster when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PartitionShape {
    One,
    Halves,
    MajoritiesRing,
    Bridge,
    IsolateLeader,
    IsolateController,
    LeaderFromFollowers,
    MuteLeader,
    CoordinatorFromClients,
}

impl PartitionShape {
    /// Every shape, in the order help texts list them; the standard ones
    /// first, so [`PartitionShape::STANDARD`] is a prefix.
    pub const ALL: &[PartitionShape] = &[
        PartitionShape::One,
        PartitionShape::Halves,
        PartitionShape::MajoritiesRing,
        PartitionShape::Bridge,
        PartitionShape::IsolateLeader,
        PartitionShape::IsolateController,
        PartitionShape::LeaderFromFollowers,
        PartitionShape::MuteLeader,
        PartitionShape::CoordinatorFromClients,
    ];

    /// The shapes a plain `partition` picks from at random. `mute-leader`
    /// and `coordinator-from-clients` are left out: each is aimed at one
    /// claim ("the write succeeded, the ack did not"; "the commit request
    /// failed"). The order is part of the seeded schedule: do not reorder.
    pub const STANDARD: &[PartitionShape] = PartitionShape::ALL.split_at(7).0;

    pub fn name(self) -> &'static str {
        match self {
            PartitionShape::One => "one",
            PartitionShape::Halves => "halves",
            PartitionShape::MajoritiesRing => "majorities-ring",
            PartitionShape::Bridge => "bridge",
            PartitionShape::IsolateLeader => "isolate-leader",
            PartitionShape::IsolateController => "isolate-controller",
            PartitionShape::LeaderFromFollowers => "leader-from-followers",
            PartitionShape::MuteLeader => "mute-leader",
            PartitionShape::CoordinatorFromClients => "coordinator-from-clients",
        }
    }

    pub fn about(self) -> &'static str {
        match self {
            PartitionShape::One => "one node (random, or the target node) cut from the other nodes",
            PartitionShape::Halves => "the nodes split in two, the smaller half without a quorum",
            PartitionShape::MajoritiesRing => "every node sees a majority, no two the same one",
            PartitionShape::Bridge => "two halves joined by one node that sees both",
            PartitionShape::IsolateLeader => "the leader cut from every node and every client",
            PartitionShape::IsolateController => "the active controller cut from the other nodes",
            PartitionShape::LeaderFromFollowers => "the leader cut from its followers; it keeps its clients",
            PartitionShape::MuteLeader => {
                "the leader's answers to clients are dropped: writes arrive and replicate, acks are lost"
            }
            PartitionShape::CoordinatorFromClients => {
                "the consumer group's coordinator refuses the clients' connections: commits and offset reads fail"
            }
        }
    }

    fn parse(name: &str) -> Option<PartitionShape> {
        PartitionShape::ALL.iter().copied().find(|s| s.name() == name)
    }
}

/// A fault a user can name: in `--nemesis` (the ones that start
/// something) and as a timeline entry's `fault`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    Kill,
    /// SIGKILL, then the node's disk loses what was never fsynced.
    PowerLoss,
    Start,
    Pause,
    Resume,
    /// A partition of a random standard shape (or, in a timeline, the
    /// entry's `shape`).
    Partition,
    /// A partition of this shape.
    Shape(PartitionShape),
    Heal,
    KillProducer,
    KillConsumer,
    PauseConsumer,
    ResumeConsumer,
    StallConsumer,
    SinkOutage,
    SinkRecover,
    PauseFetchers,
    ResumeFetchers,
}

/// A name that is not in the registry, or a fault the random mix cannot
/// schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("unknown fault `{0}`; known: {known}", known = Fault::names(|_| true))]
    Unknown(String),
    #[error(
        "`{0}` stops a fault, so only a timeline can use it; --nemesis takes {mix}",
        mix = Fault::names(Fault::in_mix)
    )]
    NotInMix(String),
    #[error("expected at least one fault name")]
    Empty,
}

impl Fault {
    /// Every fault, in the order help texts list them.
    pub fn all() -> impl Iterator<Item = Fault> {
        let plain = [Fault::Kill, Fault::PowerLoss, Fault::Start, Fault::Pause, Fault::Resume, Fault::Partition];
        let rest = [
            Fault::Heal,
            Fault::KillProducer,
            Fault::KillConsumer,
            Fault::PauseConsumer,
            Fault::ResumeConsumer,
            Fault::StallConsumer,
            Fault::SinkOutage,
            Fault::SinkRecover,
            Fault::PauseFetchers,
            Fault::ResumeFetchers,
        ];
        plain.into_iter().chain(PartitionShape::ALL.iter().map(|s| Fault::Shape(*s))).chain(rest)
    }

    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::PowerLoss => "power-loss",
            Fault::Start => "start",
            Fault::Pause => "pause",
            Fault::Resume => "resume",
            Fault::Partition => "partition",
            Fault::Shape(s) => s.name(),
            Fault::Heal => "heal",
            Fault::KillProducer => "kill-producer",
            Fault::KillConsumer => "kill-consumer",
            Fault::PauseConsumer => "pause-consumer",
            Fault::ResumeConsumer => "resume-consumer",
            Fault::StallConsumer => "stall-consumer",
            Fault::SinkOutage => "sink-outage",
            Fault::SinkRecover => "sink-recover",
            Fault::PauseFetchers => "pause-fetchers",
            Fault::ResumeFetchers => "resume-fetchers",
        }
    }

    pub fn about(self) -> &'static str {
        match self {
            Fault::Kill => "SIGKILL a node (the random mix restarts it later)",
            Fault::PowerLoss => {
                "SIGKILL a node, then its disk loses every write and name change it never fsynced \
                 (nodes on the lazyfs disk; the random mix restarts it later)"
            }
            Fault::Start => "restart killed nodes",
            Fault::Pause => "SIGSTOP a node (the random mix resumes it later)",
            Fault::Resume => "SIGCONT paused nodes",
            Fault::Partition => "a partition of a random standard shape (healed later)",
            Fault::Shape(s) => s.about(),
            Fault::Heal => "remove every partition",
            Fault::KillProducer => "SIGKILL a producer process; a new one takes its place",
            Fault::KillConsumer => "SIGKILL a consumer process; a new one takes its place",
            Fault::PauseConsumer => "SIGSTOP a consumer process, as a long GC pause (the random mix resumes it later)",
            Fault::ResumeConsumer => "SIGCONT the paused consumer process",
            Fault::StallConsumer => {
                "a consumer's processing takes longer than max.poll.interval.ms while its process stays alive"
            }
            Fault::SinkOutage => "the consumers' database refuses writes (until sink-recover)",
            Fault::SinkRecover => "the consumers' database accepts writes again",
            Fault::PauseFetchers => "a follower stops fetching (needs --admin-hooks)",
            Fault::ResumeFetchers => "the follower fetches again",
        }
    }

    /// Whether `--nemesis` may name it: faults that start something, which
    /// the random mix stops again by itself.
    pub fn in_mix(self) -> bool {
        !matches!(
            self,
            Fault::Start
                | Fault::Resume
                | Fault::Heal
                | Fault::ResumeConsumer
                | Fault::SinkRecover
                | Fault::PauseFetchers
                | Fault::ResumeFetchers
        )
    }

    /// The names of the faults `keep` keeps, comma-separated.
    pub fn names(keep: impl Fn(Fault) -> bool) -> String {
        Fault::all().filter(|f| keep(*f)).map(Fault::name).collect::<Vec<_>>().join(", ")
    }

    /// One line per fault `keep` keeps: `name: what it does`, for help texts.
    pub fn help(keep: impl Fn(Fault) -> bool) -> String {
        Fault::all().filter(|f| keep(*f)).map(|f| format!("{}: {}", f.name(), f.about())).collect::<Vec<_>>().join("\n")
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = FaultError;
    fn from_str(s: &str) -> Result<Fault, FaultError> {
        if let Some(shape) = PartitionShape::parse(s) {
            return Ok(Fault::Shape(shape));
        }
        Fault::all().find(|f| f.name() == s).ok_or_else(|| FaultError::Unknown(s.to_string()))
    }
}

/// The faults of a random mix, as `--nemesis` and a campaign's `nemesis`
/// take them: a comma list (or, in TOML, a list of names). Every name is
/// one the mix can schedule, and the list is not empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultList(Vec<Fault>);

impl FaultList {
    pub fn new(faults: Vec<Fault>) -> Result<FaultList, FaultError> {
        if faults.is_empty() {
            return Err(FaultError::Empty);
        }
        if let Some(f) = faults.iter().find(|f| !f.in_mix()) {
            return Err(FaultError::NotInMix(f.name().to_string()));
        }
        Ok(FaultList(faults))
    }

    pub fn faults(&self) -> &[Fault] {
        &self.0
    }
}

impl fmt::Display for FaultList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.iter().map(|x| x.name()).collect::<Vec<_>>().join(","))
    }
}

impl FromStr for FaultList {
    type Err = FaultError;
    fn from_str(s: &str) -> Result<FaultList, FaultError> {
        let faults = s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::parse).collect::<Result<_, _>>()?;
        FaultList::new(faults)
    }
}

impl serde::Serialize for FaultList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for FaultList {
    /// A comma list in one string, or a list of names.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<FaultList, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let text = match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected fault names: a list, or one string with commas"))?
        {
            Raw::One(s) => s,
            Raw::Many(v) => v.join(","),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_fault() {
        for f in Fault::all() {
            assert_eq!(f.name().parse::<Fault>(), Ok(f));
            assert!(!f.about().is_empty());
        }
        let names: std::collections::BTreeSet<&str> = Fault::all().map(Fault::name).collect();
        assert_eq!(names.len(), Fault::all().count(), "names are unique");
        assert_eq!("mute-leader".parse::<Fault>(), Ok(Fault::Shape(PartitionShape::MuteLeader)));
        assert!(matches!("nap".parse::<Fault>(), Err(FaultError::Unknown(_))));
    }

    /// The seeded schedule draws from this list by index: its content and
    /// order are part of every recorded seed.
    #[test]
    fn the_standard_shapes_are_the_seeded_list() {
        let names: Vec<&str> = PartitionShape::STANDARD.iter().map(|s| s.name()).collect();
        let want = [
            "one",
            "halves",
            "majorities-ring",
            "bridge",
            "isolate-leader",
            "isolate-controller",
            "leader-from-followers",
        ];
        assert_eq!(names, want);
    }

    #[test]
    fn a_mix_takes_only_faults_it_can_stop() {
        let l: FaultList = "kill, partition,mute-leader".parse().unwrap();
        assert_eq!(l.to_string(), "kill,partition,mute-leader");
        assert!(matches!("kill,heal".parse::<FaultList>(), Err(FaultError::NotInMix(n)) if n == "heal"));
        assert_eq!(" , ".parse::<FaultList>(), Err(FaultError::Empty));
        let err = "explode".parse::<FaultList>().unwrap_err().to_string();
        assert!(err.contains("explode") && err.contains("sink-outage"), "{err}");
    }

    #[test]
    fn a_mix_deserialises_from_a_string_or_a_list() {
        #[derive(serde::Deserialize)]
        struct T {
            n: FaultList,
        }
        let a: T = toml::from_str("n = \"kill,pause\"").unwrap();
        let b: T = toml::from_str("n = [\"kill\", \"pause\"]").unwrap();
        assert_eq!(a.n, b.n);
        assert!(toml::from_str::<T>("n = 3").is_err());
    }
}
