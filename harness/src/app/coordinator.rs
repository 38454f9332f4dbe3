//! The consumer group's coordinator as a client follows it: asks the known
//! coordinator or a bootstrap node, and moves to the node a
//! `NOT_COORDINATOR` names.

use std::time::Duration;

use std::future::Future;

use faultline_checker::op::RecordValue;
use faultline_client::api::{
    ErrorCode, FetchedRecord, JoinGroupRequest, JoinGroupResponse, MemberRequest, OffsetCommit, OffsetCommitRequest,
    SyncGroupRequest, SyncGroupResponse,
};
use faultline_client::{Client, ClientError, ClusterClient};

/// Attempts of one group request while following coordinator hints.
const COORDINATOR_ATTEMPTS_MAX: u32 = 5;
/// Pause after a failed coordinator attempt.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Whether an error may hide a request that took effect.
fn indefinite(e: &ClientError) -> bool {
    e.code().is_none()
}

pub struct Coordinator {
    cluster: ClusterClient,
    address: Option<String>,
    group: String,
}

impl Coordinator {
    pub fn new(cluster: ClusterClient, group: String) -> Coordinator {
        Coordinator { cluster, address: None, group }
    }

    fn pick(&self, attempt: u32) -> Client {
        let boot = self.cluster.bootstrap();
        let address = self.address.clone().unwrap_or_else(|| boot[attempt as usize % boot.len()].clone());
        self.cluster.node(&address)
    }

    /// Follows the coordinator after an error that says it is elsewhere
    /// or unreachable; any other answer came from the coordinator itself.
    fn learn(&mut self, e: &ClientError) {
        match e {
            ClientError::Api { body, .. }
                if body.error == ErrorCode::NotCoordinator && body.leader_address.is_some() =>
            {
                self.address = body.leader_address.clone();
            }
            e if moved(e) => self.address = None,
            _ => {}
        }
    }

    /// Forgets the coordinator's address: the next request asks a
    /// bootstrap node again.
    pub fn forget(&mut self) {
        self.address = None;
    }

    /// Sends one group request, at most [`COORDINATOR_ATTEMPTS_MAX`] times,
    /// following the coordinator; `retry` says which errors deserve another
    /// attempt. Also says whether a failed attempt may have taken effect.
    async fn attempts<T, Fut>(
        &mut self,
        call: impl Fn(Client, String) -> Fut,
        retry: impl Fn(&ClientError) -> bool,
    ) -> (Result<T, ClientError>, bool)
    where
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let (mut last, mut maybe) = (None, false);
        for attempt in 0..COORDINATOR_ATTEMPTS_MAX {
            match call(self.pick(attempt), self.group.clone()).await {
                Ok(r) => return (Ok(r), maybe),
                Err(e) => {
                    maybe |= indefinite(&e);
                    self.learn(&e);
                    if !retry(&e) {
                        return (Err(e), maybe);
                    }
                    last = Some(e);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
        (Err(last.expect("at least one attempt")), maybe)
    }

    /// The group's committed offsets (a read: retried freely).
    pub async fn committed(&mut self) -> Result<Vec<OffsetCommit>, ClientError> {
        let read = |c: Client, g: String| async move { c.committed_offsets(&g).await.map(|r| r.offsets) };
        self.attempts(read, |_| true).await.0
    }

    /// Commits; `Err((error, maybe_applied))` when no attempt succeeded. A
    /// fenced commit is not retried: it was refused for good.
    pub async fn commit(&mut self, req: &OffsetCommitRequest) -> Result<(), (ClientError, bool)> {
        let send = |c: Client, g: String| async move { c.commit_offsets(&g, req).await.map(|_| ()) };
        let (result, maybe) = self.attempts(send, |e| !fenced(e)).await;
        result.map_err(|e| (e, maybe))
    }

    pub async fn join(&mut self, req: &JoinGroupRequest) -> Result<JoinGroupResponse, ClientError> {
        self.attempts(|c, g| async move { c.join_group(&g, req, Duration::ZERO).await }, moved).await.0
    }

    pub async fn sync(&mut self, req: &SyncGroupRequest, wait: Duration) -> Result<SyncGroupResponse, ClientError> {
        self.attempts(|c, g| async move { c.sync_group(&g, req, wait).await }, moved).await.0
    }

    pub async fn heartbeat(&mut self, req: &MemberRequest) -> Result<(), ClientError> {
        self.attempts(|c, g| async move { c.heartbeat(&g, req).await.map(|_| ()) }, moved).await.0
    }

    pub async fn leave(&mut self, req: &MemberRequest) -> Result<(), ClientError> {
        self.attempts(|c, g| async move { c.leave_group(&g, req).await.map(|_| ()) }, moved).await.0
    }
}

/// The coordinator is elsewhere, not ready, or did not answer.
fn moved(e: &ClientError) -> bool {
    matches!(e.code(), Some(ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable) | None)
}

/// The group refused the member or its generation.
pub fn fenced(e: &ClientError) -> bool {
    matches!(e.code(), Some(ErrorCode::IllegalGeneration | ErrorCode::UnknownMemberId | ErrorCode::RebalanceInProgress))
}

/// Fetched records as `[offset, value]` pairs of the history.
pub fn fetched_pairs(records: &[FetchedRecord]) -> Vec<(u64, RecordValue)> {
    records.iter().map(|r| (r.offset.max(0) as u64, RecordValue::from_text(&r.value))).collect()
}
