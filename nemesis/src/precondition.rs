//! What a timeline step needs to be true when it fires, for the run to test
//! what its recipe was built to test.
//!
//! Some recipes win a race: "the follower must still be behind when the
//! leader dies". On a faster or slower machine the race can go the other
//! way, and the run then says nothing about the bug; a valid verdict from
//! it would be luck. A step with `require = "…"` has its precondition
//! checked right before it fires, and the outcome is recorded in the
//! history with the step's op (`"require"`, then `"met"` or `"unmet"` with
//! the figures). The checker turns an unmet precondition into an *unknown*
//! verdict with that reason.

use std::fmt;
use std::str::FromStr;

/// A condition on the cluster, checked when a timeline step fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// `behind:NODE:PARTITION`: NODE, not the partition's leader, lacks a
    /// record that was acknowledged: its replica ends at or below the
    /// highest offset of PARTITION acknowledged so far. (Not "below the
    /// leader's log end": a leader goes on appending records it cannot
    /// acknowledge, which would make a caught-up follower look behind.)
    Behind { node: String, partition: String },
}

impl fmt::Display for Precondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Precondition::Behind { node, partition } => write!(f, "behind:{node}:{partition}"),
        }
    }
}

impl FromStr for Precondition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("behind", rest)) => match rest.split_once(':') {
                Some((node, partition)) if !node.is_empty() && partition.contains('/') => {
                    Ok(Precondition::Behind { node: node.to_string(), partition: partition.to_string() })
                }
                _ => Err(format!("`{s}`: write behind:NODE:TOPIC/PARTITION, e.g. behind:n5:events/0")),
            },
            _ => Err(format!("`{s}`: unknown precondition; known: behind:NODE:TOPIC/PARTITION")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preconditions_round_trip_and_bad_ones_say_the_form() {
        let p: Precondition = "behind:n5:events/0".parse().unwrap();
        assert_eq!(p, Precondition::Behind { node: "n5".into(), partition: "events/0".into() });
        assert_eq!(p.to_string(), "behind:n5:events/0");
        for bad in ["behind:n5", "behind::events/0", "ahead:n5:events/0", "behind:n5:events"] {
            let e = bad.parse::<Precondition>().unwrap_err();
            assert!(e.contains("behind:NODE:TOPIC/PARTITION"), "{bad}: {e}");
        }
    }
}
