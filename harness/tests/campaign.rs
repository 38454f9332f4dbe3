//! Tests of `faultline campaign` through the real binary: bad files and
//! arguments exit 254 naming the cell and the key before anything runs;
//! the built-ins check, list and print; and a real two-cell campaign on a
//! cluster in network namespaces (one cell expected valid, one with a bug
//! switch expected to lose acknowledged writes) meets both expectations,
//! prints the table and writes JUnit XML that parses back. The real
//! campaign needs root, as CI has; it has its own cluster name, directory
//! and subnet, and checks that nothing leaked.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use faultline_checker::op::{F, Op, OpType};
use support::chromium::{self, element};
use support::runs::{history, json};
use support::*;

fn campaign(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline")).arg("campaign").args(args).output().expect("runs faultline campaign")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The repository's `recipes/bugs/` recipe for a switch.
fn recipe(bug: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../recipes/bugs")
        .join(format!("{bug}.toml"))
        .canonicalize()
        .expect("the recipe exists")
}

#[test]
fn bad_files_and_arguments_exit_254_naming_the_cell_and_key_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let cases: &[(&str, &[&str])] = &[
        ("name = \"x\"\n[[cell]]\nname = \"fast\"\nexpect = \"valid\"\nrun = { acsk = 1 }\n", &["cell `fast`", "acsk"]),
        (
            "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\nexpect-anomaly = [\"lost-write\"]\n",
            &["line 5", "expect-anomaly"],
        ),
        (
            "name = \"x\"\n[[cell]]\nname = \"b\"\nexpect-anomalies = [\"lost-writes\"]\n",
            &["cell `b`", "expect-anomalies", "lost-writes"],
        ),
        (
            "name = \"x\"\n[[cell]]\nname = \"c\"\nexpect = \"valid\"\nrun = { commit = \"sometimes\" }\n",
            &["cell `c`", "run.commit", "sometimes"],
        ),
        (
            "name = \"x\"\n[[cell]]\nname = \"d\"\nexpect = \"valid\"\nrun = { nemesis-timeline = \"nowhere.toml\" }\n",
            &["cell `d`", "run.nemesis-timeline", "nowhere.toml"],
        ),
    ];
    for (i, (toml, needles)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&file, toml).unwrap();
        let o = campaign(&[file.to_str().unwrap(), "--store", store.to_str().unwrap()]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(254), "case {i}: stdout {out}\nstderr {err}");
        for n in *needles {
            assert!(err.contains(n), "case {i}: {n:?} not in {err}");
        }
    }
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "name = \"x\"\n[[cell]]\nname = \"a\"\nexpect = \"valid\"\n").unwrap();
    for args in [
        vec![good.to_str().unwrap(), "--only", "nope"],
        vec![good.to_str().unwrap(), "--seeds", "0"],
        vec![good.to_str().unwrap(), "--time-limit", "-3"],
        vec![good.to_str().unwrap(), "--builtin", "bug-hunt"],
        vec!["--builtin", "no-such"],
        vec![],
    ] {
        let mut all = args.clone();
        all.extend(["--store", store.to_str().unwrap()]);
        let o = campaign(&all);
        assert_eq!(o.status.code(), Some(254), "{args:?}: {}", text(&o).1);
    }
    assert!(!store.exists(), "nothing ran, so nothing was stored");
}

#[test]
fn the_builtins_check_list_and_print() {
    for (name, cells) in [
        ("seed-claims", &["c1-autocommit-queue", "c5-acks-all-faults", "c9-idempotence"][..]),
        ("bug-hunt", &["ack-all-on-local-append", "ack-all-on-local-append-off", "dedupe-window-1"][..]),
    ] {
        let o = campaign(&["--builtin", name, "--list"]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{name}: {err}");
        for c in cells {
            assert!(out.contains(&format!("\n{c}")), "{c} listed for {name}: {out}");
        }
        assert!(out.contains("faultline run "), "each cell's run command: {out}");
        let printed = campaign(&["--builtin", name, "--print"]);
        let file =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../campaigns/{name}.toml")))
                .unwrap();
        assert_eq!(String::from_utf8_lossy(&printed.stdout), file, "--print gives the file in the repository");
    }
    let o = campaign(&["--builtin", "seed-claims", "--list", "--only", "headline", "--seeds", "1"]);
    let (out, _) = text(&o);
    assert!(out.contains("[headline]") && !out.contains("c9-idempotence"), "{out}");
}

/// One end-to-end story on a real cluster: run a two-cell campaign, then
/// read what it printed and stored (the table, the campaign directory, each
/// cell's run, the JUnit file). It is long because every check reads the
/// output of that one campaign run, and each extra run would cost a cluster.
#[test]
fn a_two_cell_campaign_meets_a_valid_and_an_invalid_expectation() {
    let switch = "ack-all-on-local-append";
    let cluster = TestCluster::new("cg");
    let subnet = test_subnet(7);
    let store = cluster.dir.join("store");
    let file = cluster.dir.join("two.toml");
    let junit = cluster.dir.join("reports/junit.xml");
    std::fs::write(
        &file,
        format!(
            r#"name = "two"
[defaults]
rate = 300
nodes = 3
replication-factor = 3
min-insync-replicas = 2

[[cell]]
name = "clean"
about = "acks=all, RF 3, min ISR 2, no faults"
expect = "valid"
expect-no-anomalies = ["lost-write"]
run = {{ time-limit = 10, acks = "all" }}

[[cell]]
name = "ack-all-bug"
about = "ack-all-on-local-append with its recipe"
expect = "invalid"
expect-anomalies = ["lost-write"]
run = {{ time-limit = 25, topic-partitions = 1, bugs = ["{switch}"], admin-hooks = true, nemesis-timeline = "{}" }}

[[claim]]
id = "fault"
text = "acknowledging on the local append loses acknowledged writes; acks=all with min ISR 2 does not"
cells = ["ack-all-bug", "clean"]
"#,
            recipe(switch).display()
        ),
    )
    .unwrap();
    let o = campaign(&[
        file.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--report",
        cluster.dir.join("reports/campaign.html").to_str().unwrap(),
        "--cluster-name",
        &cluster.name,
        "--subnet",
        &subnet,
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "both cells meet their expectations:\nstdout: {out}\nstderr: {err}");

    // The table: a row per cell and, under it, what was expected and observed.
    let table = &out[out.rfind("Campaign two: 2 cells\n").expect("the table")..];
    let block = |name: &str| {
        let mut lines = table.lines().skip_while(|l| !l.starts_with(&format!("{name} ")));
        let row = lines.next().unwrap_or_else(|| panic!("row {name} in {table}"));
        std::iter::once(row).chain(lines.take_while(|l| l.starts_with("    "))).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(
        table.lines().nth(1).unwrap(),
        "Settings of every cell unless it says otherwise: min-isr=2 nodes=3 rate=300 rf=3",
        "{table}"
    );
    assert!(
        table.lines().nth(2).unwrap().split_whitespace().eq(["cell", "verdict", "detected", "time", "faults"]),
        "{table}"
    );
    assert!(table.lines().all(|l| l.len() <= 120), "the table fits in 120 columns:\n{table}");
    let clean = block("clean");
    for part in ["settings  acks=all", "expected  valid -lost-write", " ok "] {
        assert!(clean.contains(part), "{part:?} in {clean}");
    }
    let bug = block("ack-all-bug");
    for part in
        ["bug:ack-all-on-local-append+recipe", "invalid +lost-write", "INVALID", "lost-write=", " ok ", "seed 1/1"]
    {
        assert!(bug.contains(part), "{part:?} in {bug}");
    }
    assert!(table.contains("2 ok, 0 mismatch, 0 unknown, 0 error, 0 not run"), "{table}");

    // The reports: the campaign directory and the JUnit file.
    let dir = std::fs::canonicalize(store.join("campaigns/two/latest")).expect("the campaign's directory");
    assert!(
        table.starts_with(&std::fs::read_to_string(dir.join("table.txt")).unwrap()),
        "table.txt is the printed table"
    );
    assert!(dir.join("timelines/ack-all-on-local-append.toml").exists(), "the timeline is kept with the campaign");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("campaign.json")).unwrap()).unwrap();
    assert_eq!(summary["exit_code"], 0);
    let bug_cell = &summary["cells"][1];
    assert_eq!(bug_cell["verdict"], "ok");
    let t = bug_cell["detection"]["time_s"].as_f64().expect("a time to detection");
    assert!((0.0..25.0).contains(&t), "the first lost write is within the run: {t}");
    for cell in ["clean", "ack-all-bug"] {
        let run = std::fs::canonicalize(store.join(format!("two-{cell}/latest")))
            .expect("each cell's run is stored under <campaign>-<cell>");
        assert!(run.join("results.json").exists());
    }
    let xml = std::fs::read_to_string(&junit).expect("--junit writes the file");
    assert_eq!(xml, std::fs::read_to_string(dir.join("junit.xml")).unwrap());
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).expect("a testsuite");
    assert_eq!(
        (suite.attribute("name"), suite.attribute("tests"), suite.attribute("failures"), suite.attribute("errors")),
        (Some("two"), Some("2"), Some("0"), Some("0"))
    );
    let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.iter().map(|c| c.attribute("name").unwrap()).collect::<Vec<_>>(), ["clean", "ack-all-bug"]);
    assert!(cases.iter().all(|c| !c.children().any(|n| n.has_tag_name("failure") || n.has_tag_name("error"))));
    let out_text = cases[1].children().find(|n| n.has_tag_name("system-out")).and_then(|n| n.text()).unwrap();
    assert!(
        out_text.contains("reproduce: faultline run") && out_text.contains("--bug ack-all-on-local-append"),
        "{out_text}"
    );

    assert_reports(&cluster.dir, &store, &out);
    assert_eq!(cluster.leftovers(), Vec::<String>::new(), "leftovers");
    assert!(!store.join("clusters").join(&cluster.name).exists(), "every cell's cluster is torn down");
}

/// The pages people look at, rendered by headless Chromium: the campaign's
/// report (the claim held, both cells side by side and in the matrix, each
/// linking its run's report) and both runs' reports (one with lost writes,
/// one valid).
fn assert_reports(dir: &Path, store: &Path, out: &str) {
    let page = dir.join("reports/campaign.html");
    assert!(out.contains(&format!("Campaign report: {}", page.display())), "{out}");
    let shots = dir.join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    // `faultline report` writes a campaign directory's page again, from its files alone.
    let campaign_dir = std::fs::canonicalize(store.join("campaigns/two/latest")).unwrap();
    std::fs::remove_file(campaign_dir.join("report.html")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_faultline")).arg("report").arg(&campaign_dir).output().unwrap();
    assert!(o.status.success() && campaign_dir.join("report.html").exists(), "{}", text(&o).1);
    let c = chromium::render(&format!("file://{}", page.display()), &shots, "campaign-report", 1400);
    let claim = element(&c.dom, "claim-fault");
    assert!(claim.contains(">held<") && claim.matches("class=\"card\"").count() == 2, "{claim}");
    let matrix = element(&c.dom, "matrix");
    assert_eq!(matrix.matches("<tr id=\"cell-").count(), 2, "{matrix}");
    assert!(matrix.contains("lost-write ") && matrix.contains("% of acknowledged"), "{matrix}");
    for href in matrix.split("href=\"").skip(1).map(|h| &h[..h.find('"').unwrap()]) {
        assert!(page.parent().unwrap().join(href).exists(), "the link {href} leads to a run's report");
    }
    for (cell, name, verdict) in
        [("ack-all-bug", "run-report-invalid", "invalid"), ("clean", "run-report-valid", "valid")]
    {
        let run = std::fs::canonicalize(store.join(format!("two-{cell}/latest"))).unwrap();
        assert!(out.contains(&format!("Report: {}", run.join("report.html").display())), "{out}");
        let r = chromium::render(&format!("file://{}", run.join("report.html").display()), &shots, name, 2400);
        assert!(element(&r.dom, "verdict").contains(&format!(">{verdict}<")), "{cell}");
        assert!(element(&r.dom, "throughput").contains("<polyline"), "{cell}: throughput drawn");
        assert!(element(&r.dom, "latency").matches("<circle").count() > 10, "{cell}: latency drawn");
        assert!(element(&r.dom, "timeline").contains("class=\"op ok\""), "{cell}: timeline drawn");
        if verdict == "invalid" {
            let lost = element(&r.dom, "lost-write");
            assert!(lost.contains("violation"), "{lost}");
            assert!(r.dom.contains("class=\"strip\"") && r.dom.contains("class=\"marked"), "{cell}: offset picture");
        } else {
            assert!(element(&r.dom, "no-anomalies").contains("No anomalies."));
        }
    }
}

/// Runs `seed-claims`' librdkafka rows `cells` over three seeds on a
/// cluster of its own, checks every row met its expectation, and returns
/// the store.
fn librdkafka_rows(tag: &str, k: u32, cells: &str) -> (TestCluster, PathBuf) {
    let cluster = TestCluster::new(tag);
    let subnet = test_subnet(k);
    let store = cluster.dir.join("store");
    let o = campaign(&[
        "--builtin",
        "seed-claims",
        "--client",
        "librdkafka",
        "--only",
        cells,
        "--seeds",
        "3",
        "--store",
        store.to_str().unwrap(),
        "--cluster-name",
        &cluster.name,
        "--subnet",
        &subnet,
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "every librdkafka row meets its expectation:\n{out}\nstderr: {err}");
    let n = cells.split(',').count();
    assert!(out.contains(&format!("{n} ok, 0 mismatch, 0 unknown, 0 error, 0 not run")), "{out}");
    assert_eq!(cluster.leftovers(), Vec::<String>::new(), "leftovers");
    (cluster, store)
}

/// A cell's runs, newest last.
fn runs_of(store: &Path, cell: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(store.join(format!("seed-claims-{cell}")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.ends_with("latest"))
        .collect();
    dirs.sort();
    dirs
}

/// Claims 1 and 2 on librdkafka: its own auto-commit commits records still
/// in the queue, so a consumer kill loses them to processing; committing
/// after processing loses nothing, into a plain or an idempotent sink.
#[test]
fn the_consumer_claims_hold_on_librdkafka_over_three_seeds() {
    let cells = "c1-autocommit-queue,c2-commit-after-process,c2-idempotent-sink";
    let (_cluster, store) = librdkafka_rows("rkc", 5, cells);
    let run = runs_of(&store, "c1-autocommit-queue-librdkafka").pop().unwrap();
    let test = json(&run.join("test.json"));
    assert_eq!(
        (test["client"]["library"].as_str(), test["client"]["version"].as_str()),
        (Some("librdkafka"), Some("2.12.1"))
    );
    // librdkafka's auto-commits, recorded from its commit callback: the
    // invoke and the completion share the callback's time. Only a graceful
    // close's commit (a call, recorded around it) is a process's last.
    let ops = history(&run);
    let commits: Vec<&Op> = ops.iter().filter(|o| o.f == F::Commit && o.op_type == OpType::Ok).collect();
    let from_callback = commits.iter().filter(|c| ops[c.invoke_index.unwrap() as usize].time_ns == c.time_ns).count();
    assert!(from_callback > 0, "librdkafka's auto-commits are in the history");
    for (i, c) in commits.iter().enumerate() {
        let invoke = &ops[c.invoke_index.unwrap() as usize];
        let last_of_its_process = !commits[i + 1..].iter().any(|later| later.process == c.process);
        assert!(
            invoke.time_ns == c.time_ns || last_of_its_process,
            "a commit from the callback has no invoke time: {c:?}"
        );
    }
}

/// Claims 8 and 9 on librdkafka: a fire-and-forget producer killed with
/// records lingering in librdkafka's queue loses them, a callback producer
/// loses nothing acknowledged; retries without idempotence duplicate across
/// leader kills, and librdkafka's idempotent producer does not.
#[test]
fn the_producer_claims_hold_on_librdkafka_over_three_seeds() {
    let cells = "c8-fire-and-forget,c8-callback,c9-retries-no-idempotence,c9-idempotence";
    let (_cluster, store) = librdkafka_rows("rkp", 6, cells);
    let run = runs_of(&store, "c8-fire-and-forget-librdkafka").pop().unwrap();
    let ops = history(&run);
    let enqueued = ops.iter().filter(|o| o.f == F::Enqueue && o.op_type == OpType::Ok).count();
    let sends = ops.iter().filter(|o| o.f == F::Send && o.op_type == OpType::Invoke).count();
    assert!(enqueued > 0 && sends >= enqueued, "one send op per record librdkafka queued: {enqueued} {sends}");
}

/// A campaign `name` of one-node, three-second cells, written into the
/// cluster's directory: `cells` are its `[[cell]]` and `[[claim]]` tables.
fn tiny_campaign(cluster: &TestCluster, name: &str, cells: &str) -> PathBuf {
    let file = cluster.dir.join(format!("{name}.toml"));
    let defaults =
        "nodes = 1\nreplication-factor = 1\nmin-insync-replicas = 1\ntopic-partitions = 1\nrate = 100\ntime-limit = 3";
    std::fs::write(&file, format!("name = \"{name}\"\n[defaults]\n{defaults}\n\n{cells}")).unwrap();
    file
}

/// `faultline campaign FILE` on the test's cluster name and subnet, into `store`.
fn run_tiny(file: &Path, store: &Path, cluster: &TestCluster, subnet: &str, extra: &[&str]) -> Output {
    let mut args = vec![file.to_str().unwrap(), "--store", store.to_str().unwrap()];
    args.extend(["--cluster-name", &cluster.name, "--subnet", subnet]);
    args.extend(extra);
    campaign(&args)
}

/// `--shard` then `campaign merge` gives what one unsharded run of the
/// same campaign gives: the cells in the campaign's order with the same
/// verdicts, the same exit code, the same claims, one JUnit file and one
/// report linking every run.
#[test]
fn shards_merged_equal_the_unsharded_campaign() {
    let cluster = TestCluster::new("cm");
    let subnet = test_subnet(6);
    let file = tiny_campaign(
        &cluster,
        "three",
        r#"[[cell]]
name = "a"
expect = "valid"

[[cell]]
name = "b"
about = "a clean run expected invalid: a mismatch on purpose"
expect = "invalid"

[[cell]]
name = "c"
expect-no-anomalies = ["lost-write"]

[[claim]]
id = "x"
text = "b and a"
cells = ["b", "a"]

[[claim]]
id = "y"
text = "c alone"
cells = ["c"]
"#,
    );
    let run = |store: &Path, extra: &[&str]| {
        let o = run_tiny(&file, store, &cluster, &subnet, extra);
        let dir = std::fs::canonicalize(store.join("campaigns/three/latest")).expect("the campaign's directory");
        (o.status.code(), dir)
    };
    let whole = cluster.dir.join("whole");
    let (whole_code, whole_dir) = run(&whole, &[]);
    assert_eq!(whole_code, Some(1), "b mismatches on purpose");
    let shards = cluster.dir.join("shards");
    let (one_code, one) = run(&shards, &["--shard", "1/2"]);
    let (two_code, two) = run(&shards, &["--shard", "2/2"]);
    assert_eq!((one_code, two_code), (Some(0), Some(1)), "shard 1/2 ran a and c, shard 2/2 ran b");
    let junit = cluster.dir.join("merged.xml");
    let o = campaign(&[
        "merge",
        two.to_str().unwrap(),
        one.to_str().unwrap(),
        "--store",
        shards.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), whole_code, "{}", text(&o).1);
    let merged_dir = std::fs::canonicalize(shards.join("campaigns/three/latest")).unwrap();
    let (whole_json, merged) = (json(&whole_dir.join("campaign.json")), json(&merged_dir.join("campaign.json")));
    let cells = |v: &serde_json::Value| {
        v["cells"].as_array().unwrap().iter().map(|c| (c["name"].clone(), c["verdict"].clone())).collect::<Vec<_>>()
    };
    assert_eq!(cells(&merged), cells(&whole_json), "the campaign's order and verdicts");
    let claims = |v: &serde_json::Value| {
        v["claims"].as_array().unwrap().iter().map(|c| (c["id"].clone(), c["held"].clone())).collect::<Vec<_>>()
    };
    assert_eq!(claims(&merged), claims(&whole_json));
    assert_eq!(merged["claims"][0]["held"], "did not hold");
    let doc_text = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&doc_text).expect("well-formed XML");
    let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).unwrap();
    assert_eq!((suite.attribute("tests"), suite.attribute("failures")), (Some("3"), Some("1")));
    let names: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).map(|n| n.attribute("name")).collect();
    assert_eq!(names, [Some("a"), Some("b"), Some("c")]);
    let page = std::fs::read_to_string(merged_dir.join("report.html")).unwrap();
    // The page escapes `/` in attributes, as HTML allows; a browser reads it back.
    let links: Vec<String> =
        page.split("href=\"").skip(1).map(|h| h[..h.find('"').unwrap()].replace("&#x2f;", "/")).collect();
    assert!(links.len() >= 3 && links.iter().all(|l| merged_dir.join(l).exists()), "{links:?}");
    assert_eq!(cluster.leftovers(), Vec::<String>::new(), "leftovers");
}

/// `--repeat N` runs every seed of every cell without stopping early and
/// judges each cell against the flake bar: a cell that holds on every seed
/// passes, one that misses is FLAKY, and the exit code says so.
#[test]
fn repeat_runs_every_seed_and_applies_the_flake_bar() {
    let cluster = TestCluster::new("cr");
    let subnet = test_subnet(5);
    let store = cluster.dir.join("store");
    let file = tiny_campaign(
        &cluster,
        "flaky",
        r#"[[cell]]
name = "holds"
expect = "valid"

[[cell]]
name = "misses"
about = "a clean run expected invalid: below the bar on purpose"
expect = "invalid"
"#,
    );
    let o = run_tiny(&file, &store, &cluster, &subnet, &["--repeat", "2"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "a cell below the bar:\n{out}\n{err}");
    let dir = std::fs::canonicalize(store.join("campaigns/flaky/latest")).unwrap();
    let rows = json(&dir.join("flake.json"));
    let got: Vec<_> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["cell"].clone(), r["met"].clone(), r["runs"].clone(), r["passes"].clone()))
        .collect();
    assert_eq!(
        got,
        [
            (serde_json::json!("holds"), serde_json::json!(2), serde_json::json!(2), serde_json::json!(true)),
            (serde_json::json!("misses"), serde_json::json!(0), serde_json::json!(2), serde_json::json!(false)),
        ]
    );
    let table = std::fs::read_to_string(dir.join("flake.txt")).unwrap();
    assert!(out.contains(&table) && table.contains("FLAKY"), "{table}");
    assert_eq!(cluster.leftovers(), Vec::<String>::new(), "leftovers");
}
