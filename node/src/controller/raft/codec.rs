//! CRC-checked framing for every on-disk record of the controller store:
//! raft log records, the vote, the committed log id and the snapshot.
//!
//! A frame is `[len: u32 LE][crc32c: u32 LE][payload: len bytes of JSON]`,
//! where the CRC covers the length bytes and the payload, so a torn write
//! that leaves a plausible length is still caught. Reading a log scans
//! frames until the first one that is incomplete, fails its CRC or does not
//! decode: everything from there on is a torn tail for the caller to cut.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes before the payload: length and CRC.
pub const HEADER_BYTES: usize = 8;
/// Largest payload we write or accept; a larger length on disk is
/// corruption, not a reason to allocate gigabytes.
pub const PAYLOAD_BYTES_MAX: usize = 64 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("record is truncated: {needed} bytes needed, {available} available")]
    Truncated { needed: usize, available: usize },
    #[error("record length {0} exceeds the {PAYLOAD_BYTES_MAX}-byte limit")]
    TooLarge(usize),
    #[error("record checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("record does not decode: {0}")]
    Decode(String),
    #[error("{0} trailing bytes after the record")]
    Trailing(usize),
}

fn checksum(len_bytes: &[u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len_bytes), payload)
}

/// Encodes `value` as one frame.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let payload = serde_json::to_vec(value).expect("controller records serialize to JSON");
    assert!(payload.len() <= PAYLOAD_BYTES_MAX, "record of {} bytes is over the limit", payload.len());
    let len_bytes = (payload.len() as u32).to_le_bytes();
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&checksum(&len_bytes, &payload).to_le_bytes());
    out.extend_from_slice(&payload);
    // Pair assertion: what we are about to write reads back.
    debug_assert!(matches!(decode_frame::<serde_json::Value>(&out), Ok((_, n)) if n == out.len()));
    out
}

/// Decodes the frame at the start of `bytes`, returning the value and the
/// frame's length in bytes.
pub fn decode_frame<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), CodecError> {
    if bytes.len() < HEADER_BYTES {
        return Err(CodecError::Truncated { needed: HEADER_BYTES, available: bytes.len() });
    }
    let len_bytes: [u8; 4] = bytes[0..4].try_into().expect("4 bytes");
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > PAYLOAD_BYTES_MAX {
        return Err(CodecError::TooLarge(len));
    }
    let end = HEADER_BYTES + len;
    if bytes.len() < end {
        return Err(CodecError::Truncated { needed: end, available: bytes.len() });
    }
    let stored = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    let payload = &bytes[HEADER_BYTES..end];
    let computed = checksum(&len_bytes, payload);
    if stored != computed {
        return Err(CodecError::Checksum { stored, computed });
    }
    let value = serde_json::from_slice(payload).map_err(|e| CodecError::Decode(e.to_string()))?;
    Ok((value, end))
}

/// Decodes a file that holds exactly one frame (vote, committed, snapshot).
pub fn decode_single<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, n) = decode_frame(bytes)?;
    if n != bytes.len() {
        return Err(CodecError::Trailing(bytes.len() - n));
    }
    Ok(value)
}

/// The valid prefix of a log file.
pub struct Scan<T> {
    /// Each decoded record with the byte offset where its frame starts.
    pub records: Vec<(u64, T)>,
    /// Length of the valid prefix; bytes after it are a torn or corrupt tail.
    pub valid_len: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub tail_error: Option<CodecError>,
}

/// Decodes consecutive frames until the end or the first invalid frame.
pub fn scan<T: DeserializeOwned>(bytes: &[u8]) -> Scan<T> {
    let mut records = Vec::new();
    let mut pos = 0usize;
    let mut tail_error = None;
    while pos < bytes.len() {
        match decode_frame(&bytes[pos..]) {
            Ok((value, n)) => {
                records.push((pos as u64, value));
                pos += n;
            }
            Err(e) => {
                tail_error = Some(e);
                break;
            }
        }
    }
    Scan { records, valid_len: pos as u64, tail_error }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_torn_or_flipped_tail_is_cut() {
        let mut file = Vec::new();
        for i in 0..3u64 {
            file.extend(encode(&i));
        }
        let whole = scan::<u64>(&file);
        assert_eq!(whole.records.iter().map(|r| r.1).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!((whole.valid_len, whole.tail_error), (file.len() as u64, None));

        let second = whole.records[1].0 as usize;
        let torn = scan::<u64>(&file[..file.len() - 1]);
        assert_eq!(torn.records.len(), 2);
        assert!(matches!(torn.tail_error, Some(CodecError::Truncated { .. })));

        let mut flipped = file.clone();
        flipped[second + HEADER_BYTES] ^= 0x01;
        let bad = scan::<u64>(&flipped);
        assert_eq!((bad.records.len(), bad.valid_len), (1, second as u64));
        assert!(matches!(bad.tail_error, Some(CodecError::Checksum { .. })));
    }

    #[test]
    fn a_single_record_file_rejects_trailing_bytes_and_huge_lengths() {
        let mut one = encode(&"vote");
        assert_eq!(decode_single::<String>(&one).unwrap(), "vote");
        one.push(0);
        assert_eq!(decode_single::<String>(&one), Err(CodecError::Trailing(1)));
        let huge = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        assert!(matches!(decode_frame::<String>(&huge), Err(CodecError::TooLarge(_))));
    }
}
