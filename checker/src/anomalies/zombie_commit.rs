//! `zombie-commit`: an offset commit the group coordinator accepted from a
//! member whose generation had already ended (`docs/semantics.md` R5.1).
//!
//! A subscribing consumer records each assignment with its group and
//! generation, and each commit with the generation it names. If some
//! member's `assign` of generation g' completed before a commit naming
//! generation g < g' was sent, generation g had ended when the coordinator
//! received the commit, so it had to refuse it (`ILLEGAL_GENERATION` or
//! `UNKNOWN_MEMBER_ID`). An `ok` commit is a fencing failure: a consumer
//! that lost its partitions (a zombie) moved the committed offsets of
//! partitions another member owns. Kafka permits none; only an offsets
//! partition that lost data (unclean election) can bring an ended
//! generation back.

use serde_json::json;

use crate::anomaly::{Anomaly, AnomalyKind, Findings};
use crate::history::{History, NONE};
use crate::op::OpType;
use crate::util::FxHashMap;

/// One group's generations as they became known: (time the assign
/// completed, the highest generation known by then, that assign's op).
type Known = Vec<(u64, i32, u32)>;

pub fn check(h: &History, out: &mut Findings) {
    let known = generations(h);
    for c in &h.commits {
        let Some(generation) = c.generation else { continue };
        let invoke = &h.entries[c.invoke as usize];
        if invoke.partner == NONE || h.outcome(c.invoke) != Some(OpType::Ok) {
            continue;
        }
        let Some(k) = known.get(c.group.as_str()) else { continue };
        let before = k.partition_point(|(t, _, _)| *t < invoke.time_ns);
        let Some(&(_, newer, assign)) = before.checked_sub(1).map(|i| &k[i]) else { continue };
        if newer > generation {
            let partition = c.offsets.first().map(|(p, _)| *p);
            out.report(AnomalyKind::ZombieCommit, partition, || witness(h, c.invoke, generation, newer, assign));
        }
    }
}

/// Per group, the generations that ok assigns proved, in time order with a
/// running maximum.
fn generations(h: &History) -> FxHashMap<&str, Known> {
    let mut by_group: FxHashMap<&str, Known> = FxHashMap::default();
    for (&invoke, a) in &h.assigns {
        let (Some(group), Some(generation)) = (a.group.as_deref(), a.generation) else { continue };
        let done = h.entries[invoke as usize].partner;
        if done != NONE && h.outcome(invoke) == Some(OpType::Ok) {
            by_group.entry(group).or_default().push((h.entries[done as usize].time_ns, generation, done));
        }
    }
    for k in by_group.values_mut() {
        k.sort_unstable();
        let mut best = (i32::MIN, NONE);
        for e in k.iter_mut() {
            if e.1 > best.0 {
                best = (e.1, e.2);
            }
            (e.1, e.2) = best;
        }
    }
    by_group
}

fn witness(h: &History, commit: u32, generation: i32, newer: i32, assign: u32) -> Anomaly {
    let done = h.entries[commit as usize].partner;
    Anomaly {
        faults: Vec::new(),
        kind: AnomalyKind::ZombieCommit,
        partition: None,
        explanation: format!(
            "process {} committed under generation {generation} (op {commit}, acknowledged by op {done}) after \
             generation {newer} had been assigned (op {assign}); the coordinator should have refused it",
            h.processes[h.entries[commit as usize].process as usize],
        ),
        witness: json!({
            "commit": h.op_json(commit),
            "acknowledged": h.op_json(done),
            "generation": generation,
            "newer_assign": h.op_json(assign),
            "newer_generation": newer,
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::anomaly::AnomalyKind;
    use crate::testing::{clean_findings, findings_of, injected};

    #[test]
    fn finds_injected_zombie_commits() {
        let f = injected(AnomalyKind::ZombieCommit, 3);
        assert_eq!(f.count(AnomalyKind::ZombieCommit), 3);
        assert_eq!(f.kinds.len(), 1, "{:?}", f.kinds.keys().collect::<Vec<_>>());
    }

    /// Two members of generation 1; p2 is reassigned everything in
    /// generation 2; then p1 commits under generation 1 and the commit is
    /// accepted (a zombie), or refused (fenced, no anomaly).
    fn history(zombie_outcome: &str) -> String {
        format!(
            r#"{{"index":0,"time":1,"process":1,"type":"invoke","f":"assign","value":{{"partitions":["t/0"],"seek":"committed","group":"g","generation":1}}}}
{{"index":1,"time":2,"process":1,"type":"ok","f":"assign"}}
{{"index":2,"time":3,"process":2,"type":"invoke","f":"assign","value":{{"partitions":["t/1"],"seek":"committed","group":"g","generation":1}}}}
{{"index":3,"time":4,"process":2,"type":"ok","f":"assign"}}
{{"index":4,"time":5,"process":2,"type":"invoke","f":"commit","value":{{"group":"g","offsets":{{"t/1":3}},"generation":1,"member":"b"}}}}
{{"index":5,"time":6,"process":2,"type":"ok","f":"commit"}}
{{"index":6,"time":7,"process":2,"type":"invoke","f":"revoke","value":{{"partitions":["t/1"],"generation":1}}}}
{{"index":7,"time":8,"process":2,"type":"ok","f":"revoke"}}
{{"index":8,"time":9,"process":2,"type":"invoke","f":"assign","value":{{"partitions":["t/0","t/1"],"seek":"committed","group":"g","generation":2}}}}
{{"index":9,"time":10,"process":2,"type":"ok","f":"assign"}}
{{"index":10,"time":11,"process":1,"type":"invoke","f":"commit","value":{{"group":"g","offsets":{{"t/0":5}},"generation":1,"member":"a"}}}}
{{"index":11,"time":12,"process":1,"type":"{zombie_outcome}","f":"commit"}}
"#
        )
    }

    #[test]
    fn finds_an_accepted_commit_of_an_ended_generation() {
        let f = findings_of(&history("ok"));
        assert_eq!(f.count(AnomalyKind::ZombieCommit), 1);
        let w = &f.examples(AnomalyKind::ZombieCommit)[0].witness;
        assert_eq!((w["generation"].as_i64(), w["newer_generation"].as_i64()), (Some(1), Some(2)));
        assert_eq!(w["newer_assign"]["index"], 9);
        assert_eq!(w["commit"]["index"], 10);
    }

    #[test]
    fn a_refused_stale_commit_and_current_commits_are_not_zombies() {
        assert_eq!(findings_of(&history("fail")).count(AnomalyKind::ZombieCommit), 0);
        assert_eq!(clean_findings().count(AnomalyKind::ZombieCommit), 0);
    }
}
