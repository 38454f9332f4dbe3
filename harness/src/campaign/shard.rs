//! `--shard I/N`: a deterministic slice of a campaign's cells, so that N
//! CI runners can share one campaign. Cell k (0-based, in the campaign's
//! order after `--only`) belongs to shard `k mod N + 1`: the shards
//! partition the cells exactly, and a campaign's long cells, which sit
//! together in its file, spread over the runners.

use std::fmt;
use std::str::FromStr;

use super::file::{CELLS_MAX, Cell};

/// Shard `index` of `count`, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    pub fn new(index: usize, count: usize) -> Result<Shard, String> {
        if count == 0 || count > CELLS_MAX {
            return Err(format!("{index}/{count}: the shard count must be 1 to {CELLS_MAX}"));
        }
        if index == 0 || index > count {
            return Err(format!("{index}/{count}: the shard must be 1 to {count}"));
        }
        Ok(Shard { index, count })
    }

    /// 1-based.
    pub fn index(self) -> usize {
        self.index
    }

    pub fn count(self) -> usize {
        self.count
    }

    /// This shard's cells, in the campaign's order.
    pub fn select(self, cells: Vec<Cell>) -> Vec<Cell> {
        cells.into_iter().enumerate().filter(|(k, _)| k % self.count + 1 == self.index).map(|(_, c)| c).collect()
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("{s}: expected I/N, e.g. 2/4"))?;
        let num = |v: &str| v.trim().parse::<usize>().map_err(|_| format!("{s}: expected I/N, e.g. 2/4"));
        Shard::new(num(i)?, num(n)?)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::expect::Expectation;
    use crate::campaign::outcome::tests::cell;

    /// Every cell lands in exactly one shard, in the campaign's order
    /// within it, for every shard count up to past the number of cells.
    #[test]
    fn shards_partition_the_cells_exactly() {
        let cells: Vec<Cell> = (0..11)
            .map(|k| cell(&format!("c{k}"), Expectation::from_parts(Some("valid"), &[], &[], &[], &[]).unwrap(), 1))
            .collect();
        for n in 1..=13 {
            let mut seen: Vec<String> = Vec::new();
            for i in 1..=n {
                let got: Vec<String> =
                    Shard::new(i, n).unwrap().select(cells.clone()).into_iter().map(|c| c.name).collect();
                let mut sorted = got.clone();
                sorted.sort_by_key(|name| name[1..].parse::<usize>().unwrap());
                assert_eq!(got, sorted, "shard {i}/{n} keeps the campaign's order");
                seen.extend(got);
            }
            seen.sort();
            let mut all: Vec<String> = cells.iter().map(|c| c.name.clone()).collect();
            all.sort();
            assert_eq!(seen, all, "{n} shards partition the cells");
        }
    }

    #[test]
    fn shards_parse_and_refuse_nonsense() {
        assert_eq!("2/4".parse::<Shard>().map(|s| s.to_string()), Ok("2/4".to_owned()));
        for bad in ["0/4", "5/4", "1/0", "x/2", "3", "1/2/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
