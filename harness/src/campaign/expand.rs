//! A campaign cell's expansion into runs: the cartesian product of its
//! `matrix` axes (each combination named `<cell>-<key>-<value>…`), then one
//! copy per client library its `clients` lists (`<name>-<library>` for all
//! but `faultline`), or only the library `--client` asks for.

use super::file::{AXIS_VALUES_MAX, CELLS_MAX, CellDoc, check_key};
use crate::app::library::ClientLibrary;

/// One combination of a cell's matrix: its name and its axis values.
pub(super) struct Combo {
    pub(super) name: String,
    pub(super) values: Vec<(String, toml::Value)>,
    /// Not a further client library's copy: only these are headline cells,
    /// so the quick subset stays quick.
    pub(super) primary: bool,
}

/// The cartesian product of a cell's `matrix` axes (keys in sorted order),
/// then of its client libraries; with `only`, just that library's cells.
pub(super) fn expand(c: &CellDoc, only: Option<ClientLibrary>) -> Result<Vec<Combo>, String> {
    if c.matrix.contains_key("client") && !c.clients.is_empty() {
        return Err("matrix.client: the cell lists `clients`; give the libraries there".into());
    }
    let clients = match only {
        Some(_) if c.clients.is_empty() => return Ok(Vec::new()),
        Some(lib) => vec![lib],
        None => c.clients.clone(),
    };
    let combos = expand_matrix(c)?;
    if clients.is_empty() {
        return Ok(combos);
    }
    let named = |name: &str, lib: ClientLibrary| match lib {
        ClientLibrary::Faultline => name.to_string(),
        other => format!("{name}-{other}"),
    };
    Ok(combos
        .iter()
        .flat_map(|combo| {
            clients.iter().enumerate().map(move |(i, &lib)| {
                let mut values = combo.values.clone();
                values.push(("client".into(), toml::Value::String(lib.to_string())));
                Combo { name: named(&combo.name, lib), values, primary: i == 0 || only.is_some() }
            })
        })
        .collect())
}

/// The cartesian product of a cell's `matrix` axes (keys in sorted order).
fn expand_matrix(c: &CellDoc) -> Result<Vec<Combo>, String> {
    let mut combos = vec![Combo { name: c.name.clone(), values: Vec::new(), primary: true }];
    for (key, values) in &c.matrix {
        let at = format!("matrix.{key}");
        check_key(key).map_err(|e| format!("{at}: {e}"))?;
        let toml::Value::Array(values) = values else { return Err(format!("{at}: expected an array of values")) };
        if values.is_empty() || values.len() > AXIS_VALUES_MAX {
            return Err(format!("{at}: expected 1 to {AXIS_VALUES_MAX} values"));
        }
        let mut next = Vec::new();
        for combo in &combos {
            for v in values {
                let mut values = combo.values.clone();
                values.push((key.clone(), v.clone()));
                next.push(Combo { name: format!("{}-{key}-{}", combo.name, slug(v)), values, primary: true });
            }
        }
        if next.len() > CELLS_MAX {
            return Err(format!("matrix: more than {CELLS_MAX} combinations"));
        }
        combos = next;
    }
    Ok(combos)
}

/// A value as a name part: `all`, `1`, `true`, `kill-partition`.
fn slug(v: &toml::Value) -> String {
    let raw = match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a.iter().map(slug).collect::<Vec<_>>().join("-"),
        other => other.to_string(),
    };
    let mut out = String::new();
    for ch in raw.chars() {
        let ch = ch.to_ascii_lowercase();
        if ch.is_ascii_alphanumeric() {
            out.push(ch);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}
