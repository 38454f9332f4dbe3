//! The built-in campaigns, `seed-claims` and `bug-hunt`: the TOML files in
//! `campaigns/` and the timelines they name, embedded in the binary so
//! `faultline campaign --builtin NAME` works from anywhere, and printable
//! (`--print`) so users can copy one and edit it.

/// A built-in campaign.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// The classic advice about Kafka data loss, claim by claim.
    SeedClaims,
    /// Every broker bug switch, on and off.
    BugHunt,
}

/// The files a built-in's cells name, by the path they use.
pub type Files = &'static [(&'static str, &'static str)];

macro_rules! embed {
    ($($path:literal => $file:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../", $file)))),*]
    };
}

const SEED_CLAIMS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../campaigns/seed-claims.toml"));
const SEED_CLAIMS_FILES: Files = embed! {
    "timelines/acks1-leader-kill.toml" => "campaigns/timelines/acks1-leader-kill.toml",
    "timelines/leader-mute-then-kill.toml" => "campaigns/timelines/leader-mute-then-kill.toml",
    "timelines/follower-lag-then-isolate.toml" => "campaigns/timelines/follower-lag-then-isolate.toml",
    "timelines/one-follower-down.toml" => "campaigns/timelines/one-follower-down.toml",
    "timelines/two-followers-down.toml" => "campaigns/timelines/two-followers-down.toml",
    "timelines/sink-outage.toml" => "campaigns/timelines/sink-outage.toml",
    "timelines/stall-consumer.toml" => "campaigns/timelines/stall-consumer.toml",
    "timelines/coordinator-from-clients.toml" => "campaigns/timelines/coordinator-from-clients.toml",
    "timelines/leader-kills.toml" => "campaigns/timelines/leader-kills.toml",
    "timelines/power-loss-all.toml" => "campaigns/timelines/power-loss-all.toml",
    "timelines/power-loss-one-at-a-time.toml" => "campaigns/timelines/power-loss-one-at-a-time.toml",
    "../recipes/app/stall-cluster.toml" => "recipes/app/stall-cluster.toml",
};

const BUG_HUNT: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../campaigns/bug-hunt.toml"));
const BUG_HUNT_FILES: Files = embed! {
    "../recipes/bugs/truncate-to-local-hw.toml" => "recipes/bugs/truncate-to-local-hw.toml",
    "../recipes/bugs/leader-unilateral-isr-shrink.toml" => "recipes/bugs/leader-unilateral-isr-shrink.toml",
    "../recipes/bugs/ack-all-on-local-append.toml" => "recipes/bugs/ack-all-on-local-append.toml",
    "../recipes/bugs/serve-consumers-to-leo.toml" => "recipes/bugs/serve-consumers-to-leo.toml",
    "../recipes/bugs/elect-out-of-sync-replica.toml" => "recipes/bugs/elect-out-of-sync-replica.toml",
    "../recipes/bugs/skip-truncate-same-leader.toml" => "recipes/bugs/skip-truncate-same-leader.toml",
    "../recipes/bugs/isr-join-ignores-epoch-start.toml" => "recipes/bugs/isr-join-ignores-epoch-start.toml",
    "../recipes/bugs/dedupe-window-1.toml" => "recipes/bugs/dedupe-window-1.toml",
    "../recipes/bugs/drop-producer-state-on-failover.toml" => "recipes/bugs/drop-producer-state-on-failover.toml",
    "../recipes/bugs/accept-stale-generation-commit.toml" => "recipes/bugs/accept-stale-generation-commit.toml",
    "../recipes/bugs/skip-fsync-on-flush-messages.toml" => "recipes/bugs/skip-fsync-on-flush-messages.toml",
};

impl Builtin {
    /// The campaign file's text and the files it names.
    pub fn source(self) -> (&'static str, Files) {
        match self {
            Builtin::SeedClaims => (SEED_CLAIMS, SEED_CLAIMS_FILES),
            Builtin::BugHunt => (BUG_HUNT, BUG_HUNT_FILES),
        }
    }

    /// Where the file lives in the repository.
    pub fn repo_path(self) -> &'static str {
        match self {
            Builtin::SeedClaims => "campaigns/seed-claims.toml",
            Builtin::BugHunt => "campaigns/bug-hunt.toml",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use faultline_node::bugs::Bug;

    use super::*;
    use crate::campaign::file::{Campaign, Overrides, Source, load};

    fn builtin(b: Builtin) -> Campaign {
        let (text, files) = b.source();
        load(text, &Source::Builtin(files), &Overrides::default()).unwrap_or_else(|e| panic!("{}: {e}", b.repo_path()))
    }

    #[test]
    fn both_builtins_parse_and_validate_and_read_the_same_from_disk() {
        for b in [Builtin::SeedClaims, Builtin::BugHunt] {
            let embedded = builtin(b);
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(b.repo_path());
            let text = std::fs::read_to_string(&path).unwrap();
            let from_disk = load(&text, &Source::File(&path), &Overrides::default())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(embedded.cells.len(), from_disk.cells.len());
            for (a, d) in embedded.cells.iter().zip(&from_disk.cells) {
                assert_eq!(a.run, d.run, "{}", a.name);
                assert_eq!(a.timeline.as_ref().map(|t| &t.text), d.timeline.as_ref().map(|t| &t.text), "{}", a.name);
            }
        }
    }

    /// The example in docs/campaigns.md is a valid campaign (its timeline is
    /// seed-claims' own).
    #[test]
    fn the_documented_example_loads() {
        let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/campaigns.md"));
        let start = doc.find("```toml\n").expect("a TOML example") + "```toml\n".len();
        let example = &doc[start..start + doc[start..].find("```").unwrap()];
        let c = load(example, &Source::Builtin(SEED_CLAIMS_FILES), &Overrides::default())
            .unwrap_or_else(|e| panic!("docs/campaigns.md example: {e}"));
        let names: Vec<&str> = c.cells.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            names,
            ["acks1-zombie", "acks-all", "two-down", "kills-min-insync-replicas-1", "kills-min-insync-replicas-2"]
        );
    }

    /// Every claim of issue 9 has a cell, the headline subset is small
    /// enough for the main job (one seed each), and every cell says what
    /// it is about.
    #[test]
    fn seed_claims_covers_the_nine_claims_with_a_short_headline_subset() {
        let c = builtin(Builtin::SeedClaims);
        for claim in 1..=9 {
            assert!(c.cells.iter().any(|x| x.name.starts_with(&format!("c{claim}-"))), "claim {claim} has a cell");
        }
        assert!(c.cells.iter().all(|x| x.about.is_some()), "every cell says what it is about");
        let headline: Vec<&_> = c.cells.iter().filter(|x| x.headline).collect();
        let budget_s: f64 = headline
            .iter()
            .map(|x| {
                x.settings.get("time-limit").and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64))).unwrap()
                    + 15.0
            })
            .sum();
        assert!(budget_s <= 300.0, "the headline subset takes about {budget_s} s, over the main job's 5 minutes");
        assert!(headline.len() >= 5, "{} headline cells", headline.len());
        for x in &c.cells {
            let t = x.settings.get("time-limit").and_then(|v| v.as_integer()).unwrap();
            assert!((15..=25).contains(&t), "{}: time-limit {t}", x.name);
        }
    }

    /// bug-hunt has an on and an off cell per switch, and each agrees with
    /// the switch's recipe (settings, timeline, expected anomaly).
    #[test]
    fn bug_hunt_pairs_every_switch_with_its_recipe() {
        let c = builtin(Builtin::BugHunt);
        assert_eq!(c.cells.len(), 2 * Bug::ALL.len());
        for bug in Bug::ALL {
            let name = bug.name();
            let on = c.cells.iter().find(|x| x.name == name).unwrap_or_else(|| panic!("no cell {name}"));
            let off = c
                .cells
                .iter()
                .find(|x| x.name == format!("{name}-off"))
                .unwrap_or_else(|| panic!("no cell {name}-off"));
            let recipe: toml::Table =
                toml::from_str(BUG_HUNT_FILES.iter().find(|(p, _)| p.ends_with(&format!("/{name}.toml"))).unwrap().1)
                    .unwrap();
            let get = |path: &str| -> Option<toml::Value> {
                let (table, key) = path.split_once('.').unwrap();
                recipe.get(table).and_then(|t| t.get(key)).cloned()
            };
            let mut want: BTreeMap<&str, toml::Value> = BTreeMap::new();
            want.insert("nodes", get("cluster.nodes").unwrap());
            want.insert("topic-partitions", get("topic.partitions").unwrap());
            want.insert("replication-factor", get("topic.replication-factor").unwrap());
            want.insert("min-insync-replicas", get("topic.min-insync-replicas").unwrap());
            want.insert("rate", get("workload.rate").unwrap());
            want.insert("time-limit", get("workload.time-limit-s").unwrap());
            let acks = get("workload.acks").unwrap();
            for cell in [on, off] {
                for (k, v) in &want {
                    assert_eq!(cell.settings.get(*k), Some(v), "{}: {k}", cell.name);
                }
                let cell_acks =
                    cell.settings.get("acks").map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
                assert_eq!(cell_acks.as_deref(), acks.as_str(), "{}: acks", cell.name);
                let flag = |k: &str| cell.settings.get(k).and_then(toml::Value::as_bool).unwrap_or(false);
                assert_eq!(
                    flag("unclean-leader-election"),
                    get("topic.unclean-leader-election").and_then(|v| v.as_bool()).unwrap_or(false),
                    "{}",
                    cell.name
                );
                assert_eq!(
                    flag("admin-hooks"),
                    get("cluster.admin-hooks").and_then(|v| v.as_bool()).unwrap_or(false),
                    "{}",
                    cell.name
                );
                assert_eq!(
                    cell.settings.get("idempotence").and_then(toml::Value::as_bool),
                    get("workload.idempotence").and_then(|v| v.as_bool()),
                    "{}",
                    cell.name
                );
                assert_eq!(cell.timeline.as_ref().unwrap().label, format!("../recipes/bugs/{name}.toml"));
                assert_eq!(
                    cell.settings.get("broker-config"),
                    get("cluster.config").as_ref(),
                    "{}: broker-config",
                    cell.name
                );
                assert_eq!(
                    cell.settings.get("max-in-flight"),
                    get("workload.max-in-flight").as_ref(),
                    "{}: max-in-flight",
                    cell.name
                );
            }
            assert_eq!(on.settings.get("bugs"), Some(&toml::Value::Array(vec![toml::Value::String(name.into())])));
            assert!(!off.settings.contains_key("bugs"));
            let expected: Vec<String> =
                recipe["expect"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
            assert_eq!(on.expect.anomalies, expected.iter().map(|e| vec![e.clone()]).collect::<Vec<_>>(), "{name}");
            assert!(on.expect.hunts() && on.seeds > 1, "{name} hunts over several seeds");
            assert_eq!(off.expect.verdict, Some(faultline_checker::Validity::Valid), "{name}-off");
        }
    }
}
