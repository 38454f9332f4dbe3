//! openraft's storage conformance suite, run against our log store and
//! state machine in fresh temporary directories.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};
use tokio::sync::watch;

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::types::{StorageError, TypeConfig};
use crate::controller::metadata::MetadataImage;

/// Creates a store per test; the temp dir guard lives as long as the test.
struct TempStores;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for TempStores {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = LogStore::open(dir.path()).expect("open log store");
        let (tx, _rx) = watch::channel(Arc::new(MetadataImage::default()));
        let sm = StateMachine::open(dir.path(), tx).expect("open state machine");
        Ok((dir, log, sm))
    }
}

/// The whole openraft storage suite passes on our store.
#[test]
fn openraft_storage_suite_passes() {
    Suite::test_all(TempStores).expect("storage suite");
}
