//! The broker's view of the control plane: the metadata image, a way to
//! propose changes, and this broker's registration. The Raft controller
//! ([`crate::controller::Controller`]) implements it; [`MemoryControlPlane`]
//! is an in-process stand-in for tests of the data plane alone.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::controller::metadata::{Command, CommandResult, MetadataImage};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait ControlPlane: Send + Sync + 'static {
    /// The latest metadata this node applied.
    fn image(&self) -> Arc<MetadataImage>;
    /// Fires on every applied change.
    fn watch(&self) -> watch::Receiver<Arc<MetadataImage>>;
    /// Proposes a command; resolves once it is applied on this node.
    fn propose(&self, cmd: Command) -> BoxFuture<'_, Result<CommandResult, String>>;
    /// This broker's current registration epoch, once registered.
    fn broker_epoch(&self) -> Option<i64>;
    /// The active controller, as this node believes.
    fn active_controller(&self) -> Option<i32>;
}

/// A control plane that applies commands to an in-memory image at once: no
/// quorum, no liveness. For tests of replication and elections that script
/// the controller's decisions themselves.
pub struct MemoryControlPlane {
    image: Mutex<MetadataImage>,
    tx: watch::Sender<Arc<MetadataImage>>,
    broker_epochs: Mutex<std::collections::BTreeMap<i32, i64>>,
    node_id: i32,
}

impl MemoryControlPlane {
    pub fn new(node_id: i32) -> Arc<MemoryControlPlane> {
        Arc::new(MemoryControlPlane {
            image: Mutex::new(MetadataImage::default()),
            tx: watch::channel(Arc::new(MetadataImage::default())).0,
            broker_epochs: Mutex::default(),
            node_id,
        })
    }

    /// Applies `cmd` at the next offset and publishes the new image.
    pub fn apply(&self, cmd: &Command) -> CommandResult {
        let mut image = self.image.lock().unwrap();
        let index = image.offset + 1;
        let result = image.apply(index, cmd);
        if let CommandResult::BrokerRegistered { epoch } = result
            && let Command::RegisterBroker { id, .. } = cmd
        {
            self.broker_epochs.lock().unwrap().insert(*id, epoch);
        }
        self.tx.send_replace(Arc::new(image.clone()));
        result
    }
}

impl ControlPlane for MemoryControlPlane {
    fn image(&self) -> Arc<MetadataImage> {
        self.tx.borrow().clone()
    }

    fn watch(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.tx.subscribe()
    }

    fn propose(&self, cmd: Command) -> BoxFuture<'_, Result<CommandResult, String>> {
        Box::pin(async move { Ok(self.apply(&cmd)) })
    }

    fn broker_epoch(&self) -> Option<i64> {
        self.broker_epochs.lock().unwrap().get(&self.node_id).copied()
    }

    fn active_controller(&self) -> Option<i32> {
        Some(self.node_id)
    }
}

impl ControlPlane for crate::controller::Controller {
    fn image(&self) -> Arc<MetadataImage> {
        crate::controller::Controller::image(self)
    }

    fn watch(&self) -> watch::Receiver<Arc<MetadataImage>> {
        crate::controller::Controller::watch(self)
    }

    fn propose(&self, cmd: Command) -> BoxFuture<'_, Result<CommandResult, String>> {
        Box::pin(async move { crate::controller::Controller::propose(self, cmd).await.map_err(|e| e.to_string()) })
    }

    fn broker_epoch(&self) -> Option<i64> {
        *crate::controller::Controller::broker_epoch(self).borrow()
    }

    fn active_controller(&self) -> Option<i32> {
        self.leader()
    }
}
