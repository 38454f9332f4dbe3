//! Partition replication: leader epochs, follower fetching and epoch-based
//! truncation, the high watermark and ISR maintenance (`kafka-semantics.md` §2).
//!
//! - [`epoch_cache`]: the leader-epoch cache and the truncation-point function.

pub mod epoch_cache;
