//! The campaign file: TOML read with serde (`deny_unknown_fields`, so a
//! misspelt key is an error that names it), then checked cell by cell and
//! expanded into a plan of [`Cell`]s, each a `faultline run` command line
//! and an expectation. Every error names the cell and the key, and is found
//! before anything runs (`faultline campaign` exits 254).
//!
//! Run settings (`[defaults]`, a cell's `run` table, `matrix` axes) are
//! `faultline run`'s own settings under their own names: the merged table
//! is deserialised straight into [`RunSettings`] and checked by the run's
//! own [`Plan`], so a campaign accepts exactly what `faultline run`
//! accepts, with no flag strings between them. `docs/campaigns.md`
//! documents the format with an example.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::claims::{self, Claim};
use super::expand::{Combo, expand};
use super::expect::Expectation;
use crate::app::library::ClientLibrary;
use crate::run::plan::{Plan, TimelineText};
use crate::run::{HarnessArgs, RunSettings};

/// Longest campaign name; `<campaign>-<cell>` names a run's store directory.
const CAMPAIGN_NAME_LEN_MAX: usize = 24;
/// Longest cell name, after matrix expansion.
const CELL_NAME_LEN_MAX: usize = 64;
/// Most cells one campaign may expand to: a campaign is read by people.
pub const CELLS_MAX: usize = 500;
/// Most values one matrix axis may list.
pub(super) const AXIS_VALUES_MAX: usize = 32;
/// Most seeds per cell.
pub const SEEDS_MAX: u32 = 100;

/// `faultline run`'s default seed, a cell's first seed unless it sets one.
#[cfg(test)]
use crate::run::DEFAULT_SEED as RUN_DEFAULT_SEED;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CampaignDoc {
    name: String,
    #[serde(default)]
    description: Option<String>,
    /// Seeds per cell unless a cell says otherwise.
    #[serde(default)]
    seeds: Option<u32>,
    /// Run settings every cell starts from.
    #[serde(default)]
    defaults: toml::Table,
    #[serde(default, rename = "cell")]
    cells: Vec<CellDoc>,
    /// What the campaign sets out to show, claim by claim.
    #[serde(default, rename = "claim")]
    claims: Vec<Claim>,
}

/// One `[[cell]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct CellDoc {
    pub(super) name: String,
    /// One line for people: the claim or the bug the cell is about.
    #[serde(default)]
    about: Option<String>,
    /// Part of the quick subset (`--only headline`).
    #[serde(default)]
    headline: bool,
    #[serde(default)]
    seeds: Option<u32>,
    /// `"valid"` or `"invalid"`: the checker's verdict.
    #[serde(default)]
    expect: Option<String>,
    /// Anomaly types that must appear (permitted or not); `a|b` is either.
    #[serde(default)]
    expect_anomalies: Vec<String>,
    /// Anomaly types that must not appear.
    #[serde(default)]
    expect_no_anomalies: Vec<String>,
    /// Error codes (`error_code`: Kafka's error names, `timeout`, …) that must appear on some fail or info op.
    #[serde(default)]
    expect_errors: Vec<String>,
    /// Error codes that must appear on no fail or info op.
    #[serde(default)]
    expect_no_errors: Vec<String>,
    /// Run settings over `[defaults]`.
    #[serde(default)]
    run: toml::Table,
    /// Axes: a setting and its values; the cell runs once per combination.
    #[serde(default)]
    pub(super) matrix: toml::Table,
    /// A client-side cell: its claim is about the client application, and
    /// it runs once per library listed (`faultline` keeps the cell's name,
    /// another library is named `<cell>-<library>`).
    #[serde(default)]
    pub(super) clients: Vec<ClientLibrary>,
}

/// Settings the campaign owns, with what to use instead.
const OWNED_BY_CAMPAIGN: &[(&str, &str)] = &[
    ("store", "`faultline campaign --store`"),
    ("name", "the run name `<campaign>-<cell>`"),
    ("cluster-name", "the campaign"),
    ("subnet", "the campaign"),
    ("hosts", "`faultline campaign --hosts`"),
    ("system", "`faultline campaign --system`"),
    ("leave-running", "nothing: a campaign tears every cluster down"),
    ("cleanup-stale", "`faultline campaign --cleanup-stale`"),
    ("kill-client", "`nemesis = [\"kill-producer\"]` or a timeline"),
];

/// Where a campaign's relative paths (timelines) are found.
pub enum Source<'a> {
    /// A file on disk: paths are relative to its directory.
    File(&'a Path),
    /// A built-in: paths are looked up among its embedded files.
    Builtin(&'a [(&'static str, &'static str)]),
}

/// Command-line overrides, applied before the checks.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub seeds: Option<u32>,
    pub time_limit: Option<f64>,
    /// Only the client-side cells, each with this library.
    pub client: Option<ClientLibrary>,
}

/// A campaign ready to run.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub name: String,
    pub description: Option<String>,
    /// `[defaults]`, for the table's header line.
    pub defaults: BTreeMap<String, toml::Value>,
    pub cells: Vec<Cell>,
    pub claims: Vec<Claim>,
}

/// One cell after defaults, matrix expansion and overrides.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Unique in the campaign; `base-key-value` for matrix cells.
    pub name: String,
    /// The `[[cell]]` it came from (differs from `name` for matrix cells).
    pub base: String,
    pub about: Option<String>,
    pub headline: bool,
    /// The effective settings written in the file (`[defaults]`, the
    /// cell's `run`, its matrix values and overrides), for the reports.
    pub settings: BTreeMap<String, toml::Value>,
    /// Settings whose value is `[defaults]`' own: the table leaves them to
    /// its header line.
    pub from_defaults: std::collections::BTreeSet<String>,
    /// The run's settings with the first seed (further seeds count up
    /// from it) and without the timeline, whose path is set when the cell
    /// runs.
    pub run: RunSettings,
    pub timeline: Option<Timeline>,
    pub seeds: u32,
    pub expect: Expectation,
}

/// A scripted timeline a cell uses: copied into the campaign's store
/// directory so every reproduce command stays valid.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// The path as the file wrote it.
    pub label: String,
    pub text: String,
}

/// Reads, checks and expands a campaign.
pub fn load(text: &str, source: &Source, overrides: &Overrides) -> Result<Campaign, String> {
    let doc: CampaignDoc = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
    check_name("name", &doc.name, CAMPAIGN_NAME_LEN_MAX).map_err(|e| format!("campaign {e}"))?;
    if doc.cells.is_empty() {
        return Err("the campaign has no [[cell]]".into());
    }
    check_settings_table(&doc.defaults).map_err(|e| format!("[defaults]: {e}"))?;
    let names: Vec<&str> = doc.cells.iter().map(|c| c.name.as_str()).collect();
    claims::check(&doc.claims, &names)?;
    if let Some(s) = doc.seeds {
        check_seeds(s).map_err(|e| format!("seeds: {e}"))?;
    }
    let mut cells = Vec::new();
    for c in &doc.cells {
        let at = format!("cell `{}`", c.name);
        check_name("name", &c.name, CELL_NAME_LEN_MAX).map_err(|e| format!("{at}: {e}"))?;
        for combo in expand(c, overrides.client).map_err(|e| format!("{at}: {e}"))? {
            let name = combo.name.clone();
            let at = format!("cell `{name}`");
            check_name("name", &name, CELL_NAME_LEN_MAX).map_err(|e| format!("{at}: {e}"))?;
            if cells.iter().any(|x: &Cell| x.name == name) {
                return Err(format!("{at}: name: two cells are named `{name}`"));
            }
            let cell = build_cell(&doc, c, combo, source, overrides).map_err(|e| format!("{at}: {e}"))?;
            cells.push(cell);
            if cells.len() > CELLS_MAX {
                return Err(format!("the campaign expands to more than {CELLS_MAX} cells"));
            }
        }
    }
    if let Some(client) = overrides.client
        && cells.is_empty()
    {
        return Err(format!("--client {client}: the campaign has no client-side cell (`clients = [...]`)"));
    }
    let defaults = doc.defaults.into_iter().collect();
    let mut claims = doc.claims;
    for c in &mut claims {
        // In the claim's order: the losing configuration, then its control.
        let bases = c.cells.clone();
        c.expanded = bases
            .iter()
            .flat_map(|b| cells.iter().filter(move |cell| &cell.base == b))
            .map(|c| c.name.clone())
            .collect();
    }
    Ok(Campaign { name: doc.name, description: doc.description, defaults, cells, claims })
}

fn build_cell(
    doc: &CampaignDoc,
    c: &CellDoc,
    combo: Combo,
    source: &Source,
    overrides: &Overrides,
) -> Result<Cell, String> {
    check_settings_table(&c.run).map_err(|e| format!("run: {e}"))?;
    let mut settings: BTreeMap<String, toml::Value> =
        doc.defaults.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    settings.extend(c.run.iter().map(|(k, v)| (k.clone(), v.clone())));
    settings.extend(combo.values.iter().cloned());
    if let Some(t) = overrides.time_limit {
        settings.insert("time-limit".into(), toml::Value::Float(t));
    }
    let expect = Expectation::from_parts(
        c.expect.as_deref(),
        &c.expect_anomalies,
        &c.expect_no_anomalies,
        &c.expect_errors,
        &c.expect_no_errors,
    )?;
    let seeds = overrides.seeds.or(c.seeds).or(doc.seeds).unwrap_or(1);
    check_seeds(seeds).map_err(|e| format!("seeds: {e}"))?;
    let timeline = match settings.remove("nemesis-timeline") {
        Some(toml::Value::String(label)) if !label.is_empty() => {
            let text = read_source(source, &label).map_err(|e| format!("run.nemesis-timeline: {e}"))?;
            Some(Timeline { label, text })
        }
        Some(_) => return Err("run.nemesis-timeline: expected a non-empty string".into()),
        None => None,
    };
    let table: toml::Table = settings.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let run: RunSettings = serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|e| format!("run.{}: {}", e.path(), e.inner().to_string().trim_end()))?;
    if run.seed.checked_add(u64::from(seeds)).is_none() {
        return Err("run.seed: too large for its seeds".into());
    }
    // The run's own checks, so that a cell `faultline run` would refuse
    // stops the campaign before anything runs.
    let text = timeline.as_ref().map(|t| TimelineText { label: &t.label, text: &t.text });
    Plan::with_timeline(run.clone(), HarnessArgs::default(), text).map_err(|e| format!("run: {e}"))?;
    settings.remove("seed");
    let from_defaults =
        settings.iter().filter(|(k, v)| doc.defaults.get(k.as_str()) == Some(v)).map(|(k, _)| k.clone()).collect();
    Ok(Cell {
        name: combo.name,
        base: c.name.clone(),
        about: c.about.clone(),
        headline: c.headline && combo.primary,
        settings,
        from_defaults,
        run,
        timeline,
        seeds,
        expect,
    })
}

fn check_name(key: &str, name: &str, max: usize) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok { Ok(()) } else { Err(format!("{key} = {name:?}: use 1 to {max} of a-z, 0-9 and inner dashes")) }
}

fn check_seeds(n: u32) -> Result<(), String> {
    if (1..=SEEDS_MAX).contains(&n) { Ok(()) } else { Err(format!("{n}: must be 1 to {SEEDS_MAX}")) }
}

/// Every key is a known setting.
fn check_settings_table(t: &toml::Table) -> Result<(), String> {
    t.keys().try_for_each(|k| check_key(k))
}

/// A key is a run setting; the campaign's own keys say what to use instead.
pub(super) fn check_key(key: &str) -> Result<(), String> {
    if let Some((_, instead)) = OWNED_BY_CAMPAIGN.iter().find(|(k, _)| *k == key) {
        return Err(format!("`{key}` is set by the campaign; use {instead}"));
    }
    let known = RunSettings::keys();
    if known.iter().any(|k| k == key) {
        Ok(())
    } else {
        Err(format!("unknown setting `{key}`; known: {}", known.join(", ")))
    }
}

/// Reads a file a campaign names.
fn read_source(source: &Source, rel: &str) -> Result<String, String> {
    match source {
        Source::File(file) => {
            let path = file.parent().unwrap_or(Path::new(".")).join(rel);
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
        }
        Source::Builtin(files) => files
            .iter()
            .find(|(p, _)| *p == rel)
            .map(|(_, t)| t.to_string())
            .ok_or_else(|| format!("{rel}: not a file of this built-in campaign")),
    }
}

/// The file a campaign's cell uses for its timeline, as the run will see it.
pub fn timeline_file_name(label: &str) -> String {
    let stem = Path::new(label).file_name().and_then(|n| n.to_str()).unwrap_or("timeline.toml");
    stem.to_string()
}

/// Where a timeline goes inside the campaign's directory.
pub fn timeline_path(campaign_dir: &Path, label: &str) -> PathBuf {
    campaign_dir.join("timelines").join(timeline_file_name(label))
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::modes::Acks;

    fn load_str(text: &str) -> Result<Campaign, String> {
        load(
            text,
            &Source::Builtin(&[(
                "t.toml",
                "[[timeline]]\nt = 2.0\nfault = \"kill\"\ntarget = \"leader-of:events/0\"\n",
            )]),
            &Overrides::default(),
        )
    }

    const GOOD: &str = r#"
name = "demo"
[defaults]
nodes = 3
rate = 200
[[cell]]
name = "a"
expect = "valid"
run = { acks = "all", time-limit = 10 }
[[cell]]
name = "b"
expect-anomalies = ["lost-write"]
seeds = 3
run = { acks = 1, nemesis = ["kill", "partition"], nemesis-interval = 3, unclean-leader-election = true }
"#;

    #[test]
    fn a_good_file_gives_cells_with_run_flags_and_expectations() {
        let c = load_str(GOOD).unwrap();
        assert_eq!(c.name, "demo");
        assert_eq!(c.cells.len(), 2);
        let a = &c.cells[0];
        let want = RunSettings { acks: Acks::All, nodes: 3, rate: 200.0, time_limit: 10.0, ..Default::default() };
        assert_eq!(a.run, want);
        assert_eq!((a.run.seed, a.seeds), (RUN_DEFAULT_SEED, 1));
        let b = &c.cells[1];
        assert_eq!(b.run.nemesis.as_ref().map(|n| n.to_string()).as_deref(), Some("kill,partition"));
        assert!(b.run.unclean_leader_election);
        assert_eq!(b.seeds, 3);
        assert!(b.expect.hunts());
    }

    #[track_caller]
    fn bad(text: &str, needles: &[&str]) {
        let err = load_str(text).expect_err("must be refused");
        for n in needles {
            assert!(err.contains(n), "error {err:?} should mention {n:?}");
        }
    }

    /// A table of bad campaign files, one row each with what its error must
    /// name. It is long because the table is: each row is independent, and
    /// splitting it would only scatter one list over several tests.
    #[test]
    fn errors_name_the_bad_key_and_the_cell() {
        bad("name = \"x\"\nbogus = 1\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\n", &["bogus"]);
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nexpect-anomaly = [\"lost-write\"]\n",
            &["expect-anomaly"],
        );
        bad("name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nrun = { acsk = 1 }\n", &["cell `a`", "acsk"]);
        bad(
            "name = \"x\"\n[defaults]\nrate = \"fast\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\n",
            &["cell `a`", "run.rate", "expected f64"],
        );
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nrun = { producer-mode = \"yolo\" }\n",
            &["cell `a`", "run.producer-mode", "yolo"],
        );
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nrun = { acks = 2 }\n",
            &["cell `a`", "run.acks"],
        );
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nrun = { store = \"s\" }\n",
            &["cell `a`", "store", "--store"],
        );
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nrun = { nodes = 1 }\n",
            &["cell `a`", "replication-factor"],
        );
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nrun = { bugs = [\"nope\"] }\n",
            &["cell `a`", "--bug", "nope"],
        );
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nrun = { acks = 1, idempotence = true }\n",
            &["cell `a`", "--idempotence", "acks"],
        );
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nrun = { retries = 0, idempotence = true }\n",
            &["cell `a`", "--idempotence", "retries"],
        );
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nrun = { nemesis = \"explode\" }\n",
            &["cell `a`", "run.nemesis", "explode"],
        );
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nrun = { nemesis-timeline = \"missing.toml\" }\n",
            &["cell `a`", "run.nemesis-timeline", "missing.toml"],
        );
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\n\
             run = { nemesis-timeline = \"t.toml\", time-limit = 2 }\n",
            &["cell `a`", "past --time-limit"],
        );
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\n\
             run = { nemesis-timeline = \"t.toml\", nemesis = \"kill\" }\n",
            &["cell `a`", "one or the other"],
        );
        bad("name = \"x\"\n[[cell]]\nname = \"a\"\n", &["cell `a`", "expect"]);
        bad("name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"fine\"\n", &["cell `a`", "expect = \"fine\""]);
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect-anomalies = [\"lost-wirte\"]\n",
            &["cell `a`", "expect-anomalies", "lost-wirte"],
        );
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect-errors = [\"NOT_ENOUGH\"]\n",
            &["cell `a`", "expect-errors", "NOT_ENOUGH"],
        );
        bad("name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nseeds = 0\n", &["cell `a`", "seeds"]);
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\n",
            &["two cells", "`a`"],
        );
        bad("name = \"X Y\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\n", &["campaign name"]);
        bad("name = \"x\"\n", &["no [[cell]]"]);
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nmatrix = { acks = 1 }\n",
            &["cell `a`", "matrix.acks", "array"],
        );
        bad(
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nmatrix = { ackz = [1] }\n",
            &["cell `a`", "matrix.ackz"],
        );
    }

    #[test]
    fn a_timeline_that_pauses_fetchers_needs_admin_hooks() {
        let files =
            [("f.toml", "[[timeline]]\nt = 1.0\nfault = \"pause-fetchers\"\ntarget = \"followers-of:events/0\"\n")];
        let text =
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nrun = { nemesis-timeline = \"f.toml\" }\n";
        let err = load(text, &Source::Builtin(&files), &Overrides::default()).unwrap_err();
        assert!(err.contains("admin-hooks"), "{err}");
        let ok = text.replace("\" }", "\", admin-hooks = true }");
        let c = load(&ok, &Source::Builtin(&files), &Overrides::default()).unwrap();
        assert_eq!(c.cells[0].timeline.as_ref().unwrap().label, "f.toml");
        assert!(c.cells[0].run.nemesis_timeline.is_none(), "the timeline's path is set when the cell runs");
    }

    #[test]
    fn a_matrix_expands_into_named_cells() {
        let text = "name = \"x\"\n[[cell]]\nname = \"m\"\nexpect = \"valid\"\n\
                    matrix = { acks = [1, \"all\"], idempotence = [false] }\n";
        let c = load_str(text).unwrap();
        let names: Vec<&str> = c.cells.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["m-acks-1-idempotence-false", "m-acks-all-idempotence-false"]);
        assert!(c.cells.iter().all(|x| x.base == "m"));
        assert_eq!(c.cells[1].run.acks, Acks::All);
        assert!(c.cells.iter().all(|x| x.run.idempotence == Some(false)));
        let refused = text.replace("idempotence = [false]", "idempotence = [true]");
        assert!(
            load_str(&refused).unwrap_err().contains("cell `m-acks-1-idempotence-true`: run: --idempotence"),
            "each combination is checked"
        );
    }

    #[test]
    fn overrides_replace_seeds_and_time_limit_and_are_checked_too() {
        let o = Overrides { seeds: Some(5), time_limit: Some(7.5), client: None };
        let c = load(GOOD, &Source::Builtin(&[]), &o).unwrap();
        assert!(c.cells.iter().all(|x| x.seeds == 5));
        assert!(c.cells.iter().all(|x| x.run.time_limit == 7.5));
        assert!(load(GOOD, &Source::Builtin(&[]), &Overrides { seeds: Some(0), ..Default::default() }).is_err());
    }

    #[test]
    fn client_side_cells_run_once_per_library_and_client_selects_them() {
        let text = "name = \"x\"\n[[cell]]\nname = \"app\"\nexpect = \"valid\"\n\
                    clients = [\"faultline\", \"librdkafka\"]\n\
                    [[cell]]\nname = \"broker\"\nexpect = \"valid\"\n";
        let c = load_str(text).unwrap();
        let got: Vec<(&str, ClientLibrary)> = c.cells.iter().map(|x| (x.name.as_str(), x.run.client)).collect();
        assert_eq!(
            got,
            [
                ("app", ClientLibrary::Faultline),
                ("app-librdkafka", ClientLibrary::Librdkafka),
                ("broker", Default::default())
            ]
        );
        let only = |lib| load(text, &Source::Builtin(&[]), &Overrides { client: Some(lib), ..Default::default() });
        let names: Vec<String> = only(ClientLibrary::Librdkafka).unwrap().cells.into_iter().map(|x| x.name).collect();
        assert_eq!(names, ["app-librdkafka"], "--client keeps the client-side cells, with that library");
        let none = text.replace("clients = [\"faultline\", \"librdkafka\"]\n", "");
        let e = load(
            &none,
            &Source::Builtin(&[]),
            &Overrides { client: Some(ClientLibrary::Librdkafka), ..Default::default() },
        );
        assert!(e.unwrap_err().contains("no client-side cell"));
        let bad = text.replace("\"librdkafka\"]", "\"kafka-go\"]");
        assert!(load_str(&bad).unwrap_err().contains("kafka-go"), "an unknown library is named");
    }

    #[test]
    fn timelines_are_read_relative_to_the_campaign_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tl")).unwrap();
        std::fs::write(dir.path().join("tl/k.toml"), "[[timeline]]\nt = 1.0\nfault = \"kill\"\ntarget = \"n1\"\n")
            .unwrap();
        let file = dir.path().join("c.toml");
        let text =
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nrun = { nemesis-timeline = \"tl/k.toml\" }\n";
        let c = load(text, &Source::File(&file), &Overrides::default()).unwrap();
        assert!(c.cells[0].timeline.as_ref().unwrap().text.contains("kill"));
        assert_eq!(timeline_path(Path::new("/s"), "tl/k.toml"), Path::new("/s/timelines/k.toml"));
    }

    /// Every harness argument of `faultline run` is one the campaign sets
    /// itself, and says so when a cell tries: a new one must be added here.
    #[test]
    fn every_harness_argument_is_owned_by_the_campaign() {
        let cmd = <HarnessArgs as clap::Args>::augment_args(clap::Command::new("x"));
        for arg in cmd.get_arguments() {
            let long = arg.get_long().expect("long options only");
            assert!(OWNED_BY_CAMPAIGN.iter().any(|(k, _)| *k == long), "--{long} is not owned by the campaign");
            assert!(check_key(long).unwrap_err().contains("set by the campaign"));
        }
    }
}
