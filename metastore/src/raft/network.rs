//! Raft RPCs between meta nodes: JSON over the cluster's signed HTTP/2,
//! `POST /v1/raft/{append,vote,snapshot}` answering the receiver's
//! `Result` as it is. A snapshot chunk travels as its JSON header followed
//! by its bytes as they are (see [`encode_chunk`]), not as a JSON array of
//! numbers, which is several times larger and slower to parse.

use bytes::Bytes;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use troika_rpc::RpcClient;

use super::{NodeId, TypeConfig};

pub const APPEND_PATH: &str = "/v1/raft/append";
pub const VOTE_PATH: &str = "/v1/raft/vote";
pub const SNAPSHOT_PATH: &str = "/v1/raft/snapshot";

#[derive(Clone)]
pub struct Network {
    rpc: RpcClient,
}

impl Network {
    pub fn new(rpc: RpcClient) -> Self {
        Self { rpc }
    }
}

pub struct Connection {
    rpc: RpcClient,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Connection {
        Connection {
            rpc: self.rpc.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

/// The part of a snapshot chunk sent as JSON.
#[derive(Serialize, Deserialize)]
struct ChunkHeader {
    vote: openraft::Vote<NodeId>,
    meta: openraft::SnapshotMeta<NodeId, BasicNode>,
    offset: u64,
    done: bool,
}

/// A snapshot chunk on the wire: the header's length (4 bytes, big
/// endian), the header as JSON, then the chunk's bytes.
pub fn encode_chunk(req: InstallSnapshotRequest<TypeConfig>) -> Result<Vec<u8>, serde_json::Error> {
    let header = serde_json::to_vec(&ChunkHeader {
        vote: req.vote,
        meta: req.meta,
        offset: req.offset,
        done: req.done,
    })?;
    let mut out = Vec::with_capacity(4 + header.len() + req.data.len());
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&req.data);
    Ok(out)
}

/// The inverse of [`encode_chunk`].
pub fn decode_chunk(body: &[u8]) -> Result<InstallSnapshotRequest<TypeConfig>, String> {
    let len = body
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or("snapshot chunk shorter than its header length")?;
    let header = body
        .get(4..4 + len)
        .ok_or("snapshot chunk shorter than its header")?;
    let h: ChunkHeader =
        serde_json::from_slice(header).map_err(|e| format!("snapshot chunk header: {e}"))?;
    Ok(InstallSnapshotRequest {
        vote: h.vote,
        meta: h.meta,
        offset: h.offset,
        data: body[4 + len..].to_vec(),
        done: h.done,
    })
}

impl Connection {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.send(path, body, "application/json", option).await
    }

    async fn send<Resp, E>(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: &'static str,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let resp = self
            .rpc
            .request(Method::POST, &self.addr, path, Bytes::from(body))
            .header("content-type", content_type)
            .timeout(option.hard_ttl())
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    RPCError::Unreachable(Unreachable::new(&e))
                } else {
                    RPCError::Network(NetworkError::new(&e))
                }
            })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if !status.is_success() {
            let e = std::io::Error::other(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
            return Err(RPCError::Network(NetworkError::new(&e)));
        }
        let result: Result<Resp, RaftError<NodeId, E>> =
            serde_json::from_slice(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(APPEND_PATH, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let body = encode_chunk(rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.send(SNAPSHOT_PATH, body, "application/octet-stream", &option)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(VOTE_PATH, &rpc, &option).await
    }
}
