//! Client of the metadata service, used by gateways, storage nodes and the
//! admin CLI. It takes every meta address it knows, follows the leader
//! hints of followers, and retries through elections. Every command carries
//! this client's id and a sequence number, so a retry after a lost reply is
//! answered from the state machine instead of being applied twice.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use troika_rpc::RpcClient;

use crate::api::*;
use crate::error::Error;

/// How long one attempt may take before it counts as failed: the
/// administrative calls and the queries that scan tables.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The same for a command: the node answers one within its 5 s write
/// timeout, so a node silent past this (hung, cut off) is given up on and
/// the next one tried, inside [`RETRY_FOR`].
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(6);
/// The same for a point read or a listing page: answered within the node's
/// 2 s read timeout.
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a call keeps retrying through elections before it gives up
/// with a retryable error.
pub const RETRY_FOR: Duration = Duration::from_secs(8);

#[derive(Clone, Debug)]
pub struct MetaClient {
    rpc: RpcClient,
    addrs: Arc<Vec<String>>,
    current: Arc<AtomicUsize>,
    /// The leader a follower named last: tried first.
    leader: Arc<Mutex<Option<String>>>,
    client_id: u64,
    seq: Arc<AtomicU64>,
}

/// What [`MetaClient::serve`] sends.
#[derive(Clone, Copy)]
enum Op<'a> {
    Command(&'a Request),
    Query(&'a Query),
}

impl Op<'_> {
    /// How long one attempt may wait for its answer.
    fn timeout(&self) -> Duration {
        match self {
            Op::Command(_) => COMMAND_TIMEOUT,
            Op::Query(
                Query::RepairWork { .. }
                | Query::DeleteWork { .. }
                | Query::ClusterStatus
                | Query::Unplaced { .. }
                | Query::Placed { .. }
                | Query::Stats
                | Query::Fragmented { .. }
                | Query::StaleUploads { .. },
            ) => REQUEST_TIMEOUT,
            Op::Query(_) => READ_TIMEOUT,
        }
    }
}

fn json(v: &impl Serialize) -> Result<Bytes, serde_json::Error> {
    serde_json::to_vec(v).map(Bytes::from)
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl MetaClient {
    pub fn new(rpc: RpcClient, addrs: Vec<String>) -> Self {
        assert!(!addrs.is_empty(), "at least one meta address");
        // `HOST:PORT`, also when given as a URL (`cluster.json` has them so).
        let addrs = addrs
            .into_iter()
            .map(|a| {
                let a = a.trim();
                let a = a.strip_prefix("http://").unwrap_or(a);
                a.trim_end_matches('/').to_owned()
            })
            .collect();
        Self {
            rpc,
            addrs: Arc::new(addrs),
            current: Arc::new(AtomicUsize::new(0)),
            leader: Arc::new(Mutex::new(None)),
            client_id: rand::random(),
            seq: Arc::new(AtomicU64::new(1)),
        }
    }

    fn target(&self) -> String {
        if let Some(l) = self.leader.lock().expect("leader lock").clone() {
            return l;
        }
        self.addrs[self.current.load(Ordering::Relaxed) % self.addrs.len()].clone()
    }

    fn move_on(&self) {
        *self.leader.lock().expect("leader lock") = None;
        self.current.fetch_add(1, Ordering::Relaxed);
    }

    async fn attempt(
        &self,
        addr: &str,
        path: &str,
        body: &Bytes,
        timeout: Duration,
    ) -> Result<Bytes, Error> {
        let resp = self
            .rpc
            .request(Method::POST, addr, path, body.clone())
            .header("content-type", "application/json")
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("{addr}: {e}")))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::Unavailable(format!("{addr}: {e}")))?;
        if status.is_success() {
            return Ok(bytes);
        }
        Err(serde_json::from_slice::<Error>(&bytes).unwrap_or_else(|_| {
            Error::Internal(format!(
                "{addr}: {status}: {}",
                String::from_utf8_lossy(&bytes)
            ))
        }))
    }

    /// Runs `attempt` against the leader (each time with the address to
    /// try), following redirects and retrying retryable failures for up
    /// to [`RETRY_FOR`].
    async fn with_retries<T, F, Fut>(&self, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let deadline = Instant::now() + RETRY_FOR;
        let mut backoff = Duration::from_millis(20);
        loop {
            let addr = self.target();
            let err = match attempt(addr.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            match &err {
                Error::NotLeader(Some(leader)) if *leader != addr => {
                    *self.leader.lock().expect("leader lock") = Some(leader.clone());
                    continue;
                }
                e if e.is_retryable() => self.move_on(),
                _ => return Err(err),
            }
            if Instant::now() + backoff > deadline {
                return Err(match err {
                    Error::NotLeader(_) => Error::Unavailable("no metadata leader".into()),
                    e => e,
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    /// Sends `body` to the leader over HTTP, with [`Self::with_retries`].
    async fn call_at<R: DeserializeOwned>(&self, path: &str, body: Bytes) -> Result<R, Error> {
        self.with_retries(|addr| {
            let body = body.clone();
            async move {
                let bytes = self.attempt(&addr, path, &body, REQUEST_TIMEOUT).await?;
                Ok(serde_json::from_slice(&bytes)?)
            }
        })
        .await
    }

    async fn call<T: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<R, Error> {
        let body = Bytes::from(serde_json::to_vec(body)?);
        self.call_at(path, body).await
    }

    /// Applies a command through the leader. Retries reuse the request's
    /// id, so the command applies at most once.
    pub async fn command(&self, cmd: &Command) -> Result<Reply, Error> {
        let req = Request {
            client: self.client_id,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            now: now_ns(),
            cmd: cmd.clone(),
        };
        self.serve(Op::Command(&req)).await
    }

    /// A command or query, to a node of this process directly or else
    /// over HTTP, with [`Self::with_retries`].
    async fn serve(&self, op: Op<'_>) -> Result<Reply, Error> {
        let body = std::sync::OnceLock::new();
        let body = &body;
        self.with_retries(|addr| async move {
            if let Some(node) = crate::local::NODES.find(&addr) {
                let served = async {
                    match op {
                        Op::Command(req) => {
                            let size = crate::server::json_size(req);
                            crate::server::serve_command(&node, req.clone(), size).await
                        }
                        Op::Query(q) => crate::server::serve_query(&node, q.clone()).await,
                    }
                };
                return tokio::time::timeout(op.timeout(), served)
                    .await
                    .unwrap_or_else(|_| Err(Error::Unavailable(format!("{addr}: timed out"))));
            }
            let (path, body) = match op {
                Op::Command(req) => ("/v1/command", body.get_or_init(|| json(req))),
                Op::Query(q) => ("/v1/query", body.get_or_init(|| json(q))),
            };
            let body = body.as_ref().map_err(|e| Error::Internal(e.to_string()))?;
            let bytes = self.attempt(&addr, path, body, op.timeout()).await?;
            Ok(serde_json::from_slice(&bytes)?)
        })
        .await
    }

    /// The Raft view of the node at `addr` (not redirected).
    pub async fn raft_status_of(&self, addr: &str) -> Result<RaftStatus, Error> {
        let bytes = self
            .attempt(
                addr,
                "/v1/raft/status",
                &Bytes::from_static(b"{}"),
                REQUEST_TIMEOUT,
            )
            .await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// Adds or removes a meta node (on the leader).
    pub async fn change_members<T: Serialize>(&self, change: &T) -> Result<RaftStatus, Error> {
        self.call("/v1/raft/members", change).await
    }

    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }

    pub async fn query(&self, q: &Query) -> Result<Reply, Error> {
        self.serve(Op::Query(q)).await
    }

    pub async fn heartbeat(&self, hb: &Heartbeat) -> Result<(), Error> {
        self.call::<_, Reply>("/v1/heartbeat", hb).await.map(drop)
    }

    pub async fn list_nodes(&self) -> Result<Vec<NodeInfo>, Error> {
        match self.query(&Query::ListNodes).await? {
            Reply::Nodes(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    pub async fn get_key(&self, access_key: &str) -> Result<KeyInfo, Error> {
        match self
            .query(&Query::GetKey {
                access_key: access_key.to_string(),
            })
            .await?
        {
            Reply::Key(k) => Ok(k),
            other => Err(unexpected(other)),
        }
    }

    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo, Error> {
        match self
            .query(&Query::GetObject {
                bucket: bucket.to_string(),
                key: key.to_string(),
            })
            .await?
        {
            Reply::Object(o) => Ok(o),
            other => Err(unexpected(other)),
        }
    }

    pub async fn head_bucket(&self, name: &str) -> Result<BucketInfo, Error> {
        match self
            .query(&Query::HeadBucket {
                name: name.to_string(),
            })
            .await?
        {
            Reply::Bucket(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    pub async fn list_buckets(&self) -> Result<Vec<BucketInfo>, Error> {
        match self.query(&Query::ListBuckets).await? {
            Reply::Buckets(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    pub async fn get_upload(&self, upload_id: &str) -> Result<UploadInfo, Error> {
        match self
            .query(&Query::GetUpload {
                upload_id: upload_id.to_string(),
            })
            .await?
        {
            Reply::Upload(u) => Ok(u),
            other => Err(unexpected(other)),
        }
    }

    /// The storage layer's health (answered by the leader).
    pub async fn cluster_status(&self) -> Result<crate::api::ClusterStatus, Error> {
        match self.query(&Query::ClusterStatus).await? {
            Reply::Status(s) => Ok(*s),
            other => Err(unexpected(other)),
        }
    }

    /// Which of `blobs` no record places on `node`, and the cutoff (ns)
    /// before which such files may be deleted (see [`Query::Unplaced`]).
    pub async fn unplaced(
        &self,
        node: NodeId,
        blobs: Vec<BlobId>,
    ) -> Result<(Vec<BlobId>, u64), Error> {
        match self.query(&Query::Unplaced { node, blobs }).await? {
            Reply::Unplaced { blobs, cutoff } => Ok((blobs, cutoff)),
            other => Err(unexpected(other)),
        }
    }

    /// A page of the blobs placed on `node` (see [`Query::Placed`]).
    pub async fn placed(
        &self,
        node: NodeId,
        after: Option<BlobId>,
        limit: u32,
    ) -> Result<Vec<BlobId>, Error> {
        match self.query(&Query::Placed { node, after, limit }).await? {
            Reply::Placed(blobs) => Ok(blobs),
            other => Err(unexpected(other)),
        }
    }

    pub async fn stats(&self) -> Result<Stats, Error> {
        match self.query(&Query::Stats).await? {
            Reply::Stats(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        delimiter: Option<&str>,
        max_keys: u32,
    ) -> Result<ObjectList, Error> {
        match self
            .query(&Query::ListObjects {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
                start_after: start_after.to_string(),
                delimiter: delimiter.map(str::to_string),
                max_keys,
            })
            .await?
        {
            Reply::Objects(l) => Ok(l),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(reply: Reply) -> Error {
    Error::Internal(format!("unexpected reply {reply:?}"))
}
