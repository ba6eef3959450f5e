//! Client of the metadata service, used by gateways, storage nodes and the
//! admin CLI. It takes every meta address it knows and moves on to the next
//! when one cannot be reached.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use troika_rpc::RpcClient;

use crate::api::*;
use crate::error::Error;

/// How long one metadata request may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct MetaClient {
    rpc: RpcClient,
    addrs: Arc<Vec<String>>,
    current: Arc<AtomicUsize>,
}

impl MetaClient {
    pub fn new(rpc: RpcClient, addrs: Vec<String>) -> Self {
        assert!(!addrs.is_empty(), "at least one meta address");
        Self {
            rpc,
            addrs: Arc::new(addrs),
            current: Arc::new(AtomicUsize::new(0)),
        }
    }

    async fn call<T: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<R, Error> {
        let body = Bytes::from(serde_json::to_vec(body)?);
        let start = self.current.load(Ordering::Relaxed);
        let mut last = String::new();
        for i in 0..self.addrs.len() {
            let idx = (start + i) % self.addrs.len();
            let addr = &self.addrs[idx];
            let sent = self
                .rpc
                .request(Method::POST, addr, path, body.clone())
                .header("content-type", "application/json")
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                // Only a refused connection is safe to send elsewhere: the
                // command certainly was not applied.
                Err(e) if e.is_connect() => {
                    last = format!("{addr}: {e}");
                    continue;
                }
                Err(e) => return Err(Error::Unavailable(format!("{addr}: {e}"))),
            };
            self.current.store(idx, Ordering::Relaxed);
            let status = resp.status();
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| Error::Unavailable(format!("{addr}: {e}")))?;
            if status.is_success() {
                return Ok(serde_json::from_slice(&bytes)?);
            }
            return Err(serde_json::from_slice::<Error>(&bytes).unwrap_or_else(|_| {
                Error::Internal(format!(
                    "{addr}: {status}: {}",
                    String::from_utf8_lossy(&bytes)
                ))
            }));
        }
        Err(Error::Unavailable(format!(
            "no meta node reachable ({last})"
        )))
    }

    pub async fn command(&self, cmd: &Command) -> Result<Reply, Error> {
        self.call("/v1/command", cmd).await
    }

    pub async fn query(&self, q: &Query) -> Result<Reply, Error> {
        self.call("/v1/query", q).await
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
