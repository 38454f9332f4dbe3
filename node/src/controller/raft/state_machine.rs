//! The controller's state machine: openraft's [`RaftStateMachine`] over the
//! [`MetadataImage`], and its snapshots.
//!
//! Normal entries apply their [`Command`](crate::controller::metadata::Command)
//! with [`MetadataImage::apply`] at the entry's log index and answer with its
//! result; blank and membership entries only advance the applied log id
//! (and the stored membership). Every applied batch is published on a watch
//! channel: that is how the rest of the node sees metadata.
//!
//! The image lives in memory and is not persisted per apply. Snapshots are
//! the persistent form: file `snapshot` holds one CRC-framed record of the
//! snapshot meta (last applied log id, membership) and the image, replaced
//! atomically. At start-up the machine resumes from that snapshot and
//! openraft re-applies the committed log after it.

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::RaftStateMachine;
use openraft::{AnyError, EntryPayload, RaftSnapshotBuilder, StorageIOError};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::codec;
use super::types::{ApplyResponse, Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::controller::metadata::MetadataImage;
use crate::fsutil;

const SNAPSHOT_FILE: &str = "snapshot";

/// The on-disk snapshot record.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    image: MetadataImage,
}

/// The newest snapshot, built or installed, and where it is persisted.
struct SnapshotSlot {
    dir: PathBuf,
    /// Meta and serialized image (the bytes sent to followers).
    current: Option<(SnapshotMeta, Vec<u8>)>,
}

impl SnapshotSlot {
    /// Persists and publishes `meta`/`image` unless a newer snapshot is
    /// already current (a build racing an install must not win).
    fn store(&mut self, meta: SnapshotMeta, image: &MetadataImage, force: bool) -> io::Result<()> {
        let newer = self.current.as_ref().is_none_or(|(m, _)| m.last_log_id <= meta.last_log_id);
        if !newer && !force {
            return Ok(());
        }
        let record = StoredSnapshot { meta, image: image.clone() };
        fsutil::write_atomic(&self.dir.join(SNAPSHOT_FILE), &codec::encode(&record))?;
        let bytes = serde_json::to_vec(&record.image).map_err(io::Error::other)?;
        self.current = Some((record.meta, bytes));
        Ok(())
    }
}

pub struct StateMachine {
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    slot: Arc<Mutex<SnapshotSlot>>,
    /// Publishes the image after every applied batch and install.
    image_tx: watch::Sender<Arc<MetadataImage>>,
    /// Makes snapshot ids unique within this process.
    snapshot_seq: Arc<AtomicU64>,
}

impl StateMachine {
    /// Opens the machine in `dir`, resuming from the snapshot there if any,
    /// and publishes the starting image on `image_tx`.
    pub fn open(dir: &Path, image_tx: watch::Sender<Arc<MetadataImage>>) -> io::Result<StateMachine> {
        fsutil::create_dir_durable(dir)?;
        let path = dir.join(SNAPSHOT_FILE);
        let stored = match std::fs::read(&path) {
            Ok(bytes) => Some(
                codec::decode_single::<StoredSnapshot>(&bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))?,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let mut slot = SnapshotSlot { dir: dir.to_path_buf(), current: None };
        let (mut image, mut last_applied, mut membership) =
            (MetadataImage::default(), None, StoredMembership::default());
        if let Some(s) = stored {
            last_applied = s.meta.last_log_id;
            membership = s.meta.last_membership.clone();
            let bytes = serde_json::to_vec(&s.image).map_err(io::Error::other)?;
            slot.current = Some((s.meta, bytes));
            image = s.image;
        }
        let image = Arc::new(image);
        image_tx.send_replace(image.clone());
        Ok(StateMachine {
            image,
            last_applied,
            membership,
            slot: Arc::new(Mutex::new(slot)),
            image_tx,
            snapshot_seq: Arc::new(AtomicU64::new(0)),
        })
    }

    fn apply_one(&mut self, entry: Entry) -> ApplyResponse {
        debug_assert!(self.last_applied.is_none_or(|l| l.index < entry.log_id.index), "entries apply in log order");
        self.last_applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => ApplyResponse { result: None },
            EntryPayload::Normal(cmd) => {
                let result = Arc::make_mut(&mut self.image).apply(entry.log_id.index, &cmd);
                ApplyResponse { result: Some(result) }
            }
            EntryPayload::Membership(m) => {
                self.membership = StoredMembership::new(Some(entry.log_id), m);
                ApplyResponse { result: None }
            }
        }
    }
}

async fn blocking<R: Send + 'static>(f: impl FnOnce() -> io::Result<R> + Send + 'static) -> io::Result<R> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(io::Error::other(e.to_string())),
    }
}

/// Builds a snapshot of the state as it was when the builder was taken.
pub struct SnapshotBuilder {
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    slot: Arc<Mutex<SnapshotSlot>>,
    snapshot_seq: Arc<AtomicU64>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match self.last_applied {
            Some(l) => format!("{}-{}-{}-{seq}", l.leader_id.term, l.leader_id.node_id, l.index),
            None => format!("none-{seq}"),
        };
        let meta =
            SnapshotMeta { last_log_id: self.last_applied, last_membership: self.membership.clone(), snapshot_id };
        let (slot, image, m) = (self.slot.clone(), self.image.clone(), meta.clone());
        blocking(move || slot.lock().store(m, &image, false))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e)))?;
        let bytes = serde_json::to_vec(&*self.image).expect("the image serializes");
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let replies: Vec<ApplyResponse> = entries.into_iter().map(|e| self.apply_one(e)).collect();
        self.image_tx.send_replace(self.image.clone());
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            image: self.image.clone(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            slot: self.slot.clone(),
            snapshot_seq: self.snapshot_seq.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let image: MetadataImage = serde_json::from_slice(snapshot.get_ref())
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e)))?;
        let image = Arc::new(image);
        let (slot, img, m) = (self.slot.clone(), image.clone(), meta.clone());
        blocking(move || slot.lock().store(m, &img, true))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e)))?;
        self.image = image;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.image_tx.send_replace(self.image.clone());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let slot = self.slot.lock();
        Ok(slot
            .current
            .as_ref()
            .map(|(meta, bytes)| Snapshot { meta: meta.clone(), snapshot: Box::new(Cursor::new(bytes.clone())) }))
    }
}
