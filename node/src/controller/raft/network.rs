//! Raft RPCs over HTTP: the client half ([`HttpNetworkFactory`]) that
//! openraft calls, posting JSON to a voter's `/internal/raft/...` routes.
//! The server half is in [`crate::controller::routes`].
//!
//! A peer's reply is the JSON of `Result<Response, RaftError>`: a remote
//! raft error comes back as `RemoteError`, a refused connection as
//! `Unreachable` (openraft then backs off), anything else (timeout, bad
//! status, undecodable body) as `Network`.

use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::types::{NodeId, TypeConfig};

pub const APPEND_PATH: &str = "/internal/raft/append";
pub const VOTE_PATH: &str = "/internal/raft/vote";
pub const SNAPSHOT_PATH: &str = "/internal/raft/snapshot";

/// Creates one [`HttpNetwork`] per replication target.
#[derive(Clone)]
pub struct HttpNetworkFactory {
    http: reqwest::Client,
    /// Upper bound on one RPC; openraft's own per-RPC TTL is usually shorter.
    rpc_timeout: Duration,
    /// Pause before retrying an unreachable peer, so a dead voter does not
    /// get a tight loop of connection attempts.
    unreachable_backoff: Duration,
}

impl HttpNetworkFactory {
    pub fn new(http: reqwest::Client, rpc_timeout: Duration, unreachable_backoff: Duration) -> HttpNetworkFactory {
        HttpNetworkFactory { http, rpc_timeout, unreachable_backoff }
    }
}

pub struct HttpNetwork {
    target: NodeId,
    /// Base URL of the target voter, from the raft membership (our config).
    base_url: String,
    factory: HttpNetworkFactory,
}

impl RaftNetworkFactory<TypeConfig> for HttpNetworkFactory {
    type Network = HttpNetwork;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> HttpNetwork {
        HttpNetwork { target, base_url: node.addr.trim_end_matches('/').to_string(), factory: self.clone() }
    }
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl HttpNetwork {
    async fn post<Req, Resp, E>(&self, path: &str, req: &Req, option: &RPCOption) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let timeout = option.hard_ttl().min(self.factory.rpc_timeout);
        let url = format!("{}{path}", self.base_url);
        let resp = self.factory.http.post(&url).timeout(timeout).json(req).send().await.map_err(|e| {
            if e.is_connect() {
                RPCError::Unreachable(Unreachable::new(&e))
            } else {
                RPCError::Network(NetworkError::new(&e))
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            let err = std::io::Error::other(format!("{url}: HTTP {status}"));
            return Err(RPCError::Network(NetworkError::new(&err)));
        }
        let body: Result<Resp, RaftError<NodeId, E>> =
            resp.json().await.map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        body.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for HttpNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        self.post(APPEND_PATH, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.post(SNAPSHOT_PATH, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.post(VOTE_PATH, &rpc, &option).await
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.factory.unreachable_backoff))
    }
}
