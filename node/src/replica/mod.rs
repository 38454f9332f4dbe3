//! Partition replication: leader epochs, follower fetching and epoch-based
//! truncation, the high watermark and ISR maintenance (`docs/semantics.md` §2).
//!
//! - [`epoch_cache`]: the leader-epoch cache and the truncation-point function;
//! - [`manager`]: metadata → local roles, fetcher tasks, ISR proposals;
//! - [`fetcher`]: the follower's fetch loop;
//! - [`serve`]: the leader's answer to a follower fetch;
//! - [`protocol`]: the internal fetch request and response.
//!
//! The replica state machine itself (roles, HW, follower tracking) lives in
//! `broker::partition`, next to the log it guards.

pub mod epoch_cache;
pub mod fetcher;
pub mod manager;
pub mod protocol;
pub mod serve;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod bug_tests;
