//! Every rule id and section mark the repository cites is defined in `docs/semantics.md`, and no
//! file points at the design document that `docs/semantics.md` replaced.
//!
//! Citations are read from every `*.rs`, `*.md` and `*.toml` file under the workspace root (the
//! parent of this crate), skipping the directories `target/` and `.git/`, the run store `store/`
//! (git-ignored run output), and `Cargo.toml` files (package metadata, no prose). A citation is:
//! - a rule id: `R`, digits, `.`, digits, where the `R` does not follow an ASCII letter, digit or
//!   `_` (so an identifier such as `xR1.2` cites nothing). Anything after the minor number is not
//!   part of the id: `R4.7(6)` and `R4.7.6` both cite rule R4.7, `R6.3a` cites R6.3;
//! - a section mark: `§`, digits, and optionally `.` and digits. A `.` not followed by a digit ends
//!   the mark, so `§8.` at the end of a sentence cites §8.
//!
//! `docs/semantics.md` defines a rule id with a line that starts with its bold label (`**`, the id,
//! `**`), and a section mark with a heading line (one or more `#`, a space) whose first word is
//! exactly the mark. Each id is defined once.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The name of the design file the repository used to cite; built in two halves so this file
/// does not itself mention it.
const OLD_NAME: &str = concat!("kafka-", "semantics.md");

const SEMANTICS: &str = "docs/semantics.md";

/// Directories never walked, by name.
const SKIP_DIRS: [&str; 3] = ["target", ".git", "store"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("the workspace root")
}

/// Every regular file under `dir`, in a stable order, outside the skipped directories.
/// Symbolic links are not followed.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())).path())
        .collect();
    entries.sort();
    for path in entries {
        let meta = fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if meta.is_dir() {
            if !SKIP_DIRS.contains(&name) {
                walk(&path, out);
            }
        } else if meta.is_file() {
            out.push(path);
        }
    }
}

/// Whether citations are read from this file.
fn is_cited_from(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    matches!(ext, "rs" | "md" | "toml") && name != "Cargo.toml"
}

/// End of the run of ASCII digits starting at `from`.
fn digits_end(chars: &[char], from: usize) -> usize {
    let mut i = from;
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// The rule ids and section marks in one line, in order (see the module doc).
fn ids_in(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let rule = chars[i] == 'R' && (i == 0 || !(chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '_'));
        let section = chars[i] == '§';
        if !rule && !section {
            i += 1;
            continue;
        }
        let major_end = digits_end(&chars, i + 1);
        if major_end == i + 1 {
            i += 1;
            continue;
        }
        let mut end = major_end;
        if end + 1 < chars.len() && chars[end] == '.' && chars[end + 1].is_ascii_digit() {
            end = digits_end(&chars, end + 1);
        }
        if rule && end == major_end {
            // `R` and a number without a minor part is no rule id.
            i = major_end;
            continue;
        }
        out.push(chars[i..end].iter().collect());
        i = end;
    }
    out
}

/// The id a line of `docs/semantics.md` defines, if any (see the module doc).
fn defined_by(line: &str) -> Option<String> {
    if let Some(rest) = line.strip_prefix("**") {
        let (label, _) = rest.split_once("**")?;
        return (label.starts_with('R') && ids_in(label) == [label]).then(|| label.to_owned());
    }
    let rest = line.trim_start_matches('#');
    if rest.len() == line.len() || !rest.starts_with(' ') {
        return None;
    }
    let word = rest.split_whitespace().next()?;
    (word.starts_with('§') && ids_in(word) == [word]).then(|| word.to_owned())
}

/// Each defined id with the 1-based lines that define it.
fn definitions(doc: &str) -> BTreeMap<String, Vec<usize>> {
    let mut defs: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (n, line) in doc.lines().enumerate() {
        if let Some(id) = defined_by(line) {
            defs.entry(id).or_default().push(n + 1);
        }
    }
    defs
}

#[test]
fn scanner_reads_ids_as_documented() {
    assert_eq!(
        ids_in("see R4.7(6), R4.7.6, §8.1. and §8-§9; xR1.2, a_R1.3, 0.12.5, R2, R, § 3 and (R4.10):"),
        ["R4.7", "R4.7", "§8.1", "§8", "§9", "R4.10"]
    );
    let doc = "**R1.1** text\n### §2.2 Title\n**R1.10 bold title**\nnot **R1.2** at the start\n# §3x\n#§4\n## §9";
    let defs: Vec<String> = definitions(doc).into_keys().collect();
    assert_eq!(defs, ["R1.1", "§2.2", "§9"]);
}

#[test]
fn every_cited_rule_and_section_is_defined_in_docs_semantics() {
    let root = root();
    let doc_path = root.join(SEMANTICS);
    let doc = fs::read_to_string(&doc_path).unwrap_or_else(|e| panic!("{}: {e}", doc_path.display()));
    let defs = definitions(&doc);
    let twice: Vec<String> = defs
        .iter()
        .filter(|(_, lines)| lines.len() > 1)
        .map(|(id, lines)| format!("{id} at lines {lines:?}"))
        .collect();
    assert!(twice.is_empty(), "{SEMANTICS} defines ids more than once: {}", twice.join("; "));

    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut cited = 0usize;
    let mut cited_outside = 0usize;
    let mut distinct = BTreeSet::new();
    let mut undefined = Vec::new();
    let mut old_name = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&root).unwrap_or(path).display().to_string();
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("{rel}: {e}"));
        if bytes.windows(OLD_NAME.len()).any(|w| w == OLD_NAME.as_bytes()) {
            old_name.push(rel.clone());
        }
        if !is_cited_from(path) {
            continue;
        }
        let text = String::from_utf8(bytes).unwrap_or_else(|e| panic!("{rel} is not UTF-8: {e}"));
        let is_semantics = rel == SEMANTICS;
        for (n, line) in text.lines().enumerate() {
            // A definition's own label or heading is not a citation of it.
            let definition = if is_semantics { defined_by(line) } else { None };
            for (k, id) in ids_in(line).into_iter().enumerate() {
                if k == 0 && definition.as_ref() == Some(&id) {
                    continue;
                }
                cited += 1;
                cited_outside += usize::from(!is_semantics);
                if !defs.contains_key(&id) {
                    let how = if id.starts_with('R') {
                        format!("a line starting with `**{id}**`")
                    } else {
                        format!("a heading whose first word is `{id}`")
                    };
                    undefined.push(format!("{rel}:{}: {id} is not defined in {SEMANTICS} (needs {how})", n + 1));
                }
                distinct.insert(id);
            }
        }
    }
    println!(
        "{cited} citations ({cited_outside} outside {SEMANTICS}) of {} distinct ids in {} files checked; \
         {SEMANTICS} defines {} ids",
        distinct.len(),
        files.iter().filter(|p| is_cited_from(p)).count(),
        defs.len()
    );
    assert!(cited_outside > 0 && distinct.len() > 1, "no citation found under {}: the scan is broken", root.display());
    assert!(undefined.is_empty(), "{} undefined citations:\n{}", undefined.len(), undefined.join("\n"));
    assert!(old_name.is_empty(), "files still mention {OLD_NAME}; cite {SEMANTICS} instead: {}", old_name.join(", "));
}
