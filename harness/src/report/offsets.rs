//! The offset picture of an anomaly example: the offsets around it in its
//! partition with the values acks and polls saw there, the example's own
//! value marked, so a reader sees where in the log a lost record sat or a
//! duplicate landed.

use faultline_checker::Anomaly;
use faultline_checker::history::History;
use serde::Serialize;

/// Offsets shown on each side of the example's offset.
const SIDE: u64 = 6;
/// Distinct values listed per offset.
const VALUES_PER_OFFSET_MAX: usize = 4;

#[derive(Debug, Serialize)]
pub struct Strip {
    pub partition: String,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Serialize)]
pub struct Cell {
    pub offset: u64,
    /// The example's own offset.
    pub centre: bool,
    pub values: Vec<CellValue>,
}

#[derive(Debug, Serialize)]
pub struct CellValue {
    pub value: String,
    /// The example's value.
    pub marked: bool,
    /// Seen only by an ack (no poll returned it here).
    pub ack_only: bool,
    /// The first op that saw it here, for the link.
    pub op: u32,
}

/// The strip around an example that names a partition and an offset.
pub fn strip(h: &History, a: &Anomaly) -> Option<Strip> {
    let pname = a.partition.as_ref()?;
    let p = h.partition_id(pname)?;
    let w = &a.witness;
    let offset =
        [&w["offset"], &w["from"]["offset"], &w["observations"][0]["offset"]].into_iter().find_map(|v| v.as_u64())?;
    let value = w["value"].as_i64().map(|v| v.to_string()).or_else(|| w["value"].as_str().map(str::to_owned));
    let obs = &h.index.obs[h.index.part_obs[p as usize].clone()];
    let (lo, hi) = (offset.saturating_sub(SIDE), offset.saturating_add(SIDE));
    let from = obs.partition_point(|o| o.offset < lo);
    let mut cells: Vec<Cell> = (lo..=hi).map(|o| Cell { offset: o, centre: o == offset, values: Vec::new() }).collect();
    for group in obs[from..]
        .iter()
        .take_while(|o| o.offset <= hi)
        .collect::<Vec<_>>()
        .chunk_by(|a, b| a.key == b.key && a.offset == b.offset)
    {
        let o = group[0];
        let cell = &mut cells[(o.offset - lo) as usize];
        if cell.values.len() >= VALUES_PER_OFFSET_MAX {
            continue;
        }
        let text = h.keys[o.key as usize].value.to_string();
        cell.values.push(CellValue {
            marked: value.as_deref() == Some(text.as_str()),
            ack_only: group.iter().all(|g| g.ack),
            op: o.op,
            value: text,
        });
    }
    Some(Strip { partition: pname.clone(), cells })
}
