//! The broker's view of the control plane: the metadata image, a way to
//! propose changes, and this broker's registration. The Raft controller
//! ([`crate::controller::Controller`]) implements it; data-plane unit tests
//! drive replicas directly and need no control plane.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

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
    /// Fires when this broker's registration epoch changes.
    fn watch_broker_epoch(&self) -> watch::Receiver<Option<i64>>;
    /// The active controller, as this node believes.
    fn active_controller(&self) -> Option<i32>;
    /// The controller quorum as this node sees it (Kafka's DescribeQuorum).
    fn quorum(&self) -> Option<QuorumView> {
        None
    }
}

/// The controller quorum, in KRaft's terms: the leader of the metadata log,
/// its epoch (the Raft term), the voters and this node's applied offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumView {
    pub leader: Option<i32>,
    pub epoch: i32,
    pub voters: Vec<i32>,
    pub applied_offset: i64,
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

    fn watch_broker_epoch(&self) -> watch::Receiver<Option<i64>> {
        crate::controller::Controller::broker_epoch(self)
    }

    fn active_controller(&self) -> Option<i32> {
        self.leader()
    }

    fn quorum(&self) -> Option<QuorumView> {
        Some(crate::controller::Controller::quorum(self))
    }
}
