//! The internal follower-fetch protocol between nodes: one request per
//! (follower, leader) pair carrying every partition the follower copies
//! from that leader, answered with a JSON header followed by raw batches.
//!
//! Response body: `u32` header length (big-endian), the JSON
//! [`FetchResponseHeader`], then each partition's batch bytes in header
//! order. Batches travel in their on-disk format, CRC included, so the
//! follower validates exactly what it writes.

use faultline_client::api::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::replica::epoch_cache::EpochEnd;

pub const FETCH_PATH: &str = "/internal/replica/fetch";
/// Bound on one fetch answer across partitions.
pub const FETCH_RESPONSE_BYTES_MAX: usize = 8 << 20;
/// Bound on one partition's share of a fetch answer, whatever the follower
/// asks (the largest `replica.fetch.max.bytes` accepted).
pub const FETCH_PARTITION_BYTES_MAX: usize = 1 << 20;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct FetchRequest {
    pub replica_id: i32,
    pub broker_epoch: i64,
    pub max_wait_ms: u64,
    pub partitions: Vec<PartitionFetch>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PartitionFetch {
    pub topic: String,
    pub partition: u32,
    pub fetch_offset: i64,
    pub last_fetched_epoch: Option<i32>,
    pub current_leader_epoch: i32,
    /// The follower's `replica.fetch.max.bytes`: about this many bytes of
    /// this partition per answer, and at least one batch.
    pub max_bytes: usize,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct FetchResponseHeader {
    pub partitions: Vec<PartitionResult>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PartitionResult {
    pub topic: String,
    pub partition: u32,
    pub error: Option<ErrorCode>,
    pub diverging_epoch: Option<i32>,
    pub diverging_end_offset: Option<i64>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    /// Sizes of the batches that follow in the body for this partition.
    pub batch_sizes: Vec<u32>,
}

impl PartitionResult {
    pub fn diverging(&self) -> Option<EpochEnd> {
        Some(EpochEnd { epoch: self.diverging_epoch?, end_offset: self.diverging_end_offset? })
    }
}

/// Serialises a header and the batches it describes.
pub fn encode_response(header: &FetchResponseHeader, batches: &[Vec<u8>]) -> Vec<u8> {
    let json = serde_json::to_vec(header).expect("the header serializes");
    let total: usize = batches.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(4 + json.len() + total);
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    for b in batches {
        out.extend_from_slice(b);
    }
    out
}

/// The batches of one partition, in log order.
pub type Batches = Vec<Vec<u8>>;

/// Splits a response body back into its header and per-partition batches.
pub fn decode_response(body: &[u8]) -> Result<(FetchResponseHeader, Vec<Batches>), String> {
    let len = body.get(..4).ok_or("short fetch response")?;
    let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
    let json = body.get(4..4 + len).ok_or("truncated fetch header")?;
    let header: FetchResponseHeader = serde_json::from_slice(json).map_err(|e| format!("fetch header: {e}"))?;
    let mut at = 4 + len;
    let mut all = Vec::with_capacity(header.partitions.len());
    for p in &header.partitions {
        let mut batches = Vec::with_capacity(p.batch_sizes.len());
        for &size in &p.batch_sizes {
            let b = body.get(at..at + size as usize).ok_or("truncated fetch batches")?;
            batches.push(b.to_vec());
            at += size as usize;
        }
        all.push(batches);
    }
    Ok((header, all))
}
