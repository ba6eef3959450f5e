//! What gateways and repairing nodes use to talk to storage nodes: HTTP/2,
//! or a direct call when the node runs in this process ([`crate::local`]).

use std::time::Duration;

use bytes::Bytes;
use metastore::api::BlobId;
use reqwest::Method;
use troika_rpc::RpcClient;

use crate::api::blob_path;
use crate::error::Error;
use crate::local;

/// How long one blob transfer may take before the node counts as failed.
pub const BLOB_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct ChunkClient {
    rpc: RpcClient,
}

impl ChunkClient {
    pub fn new(rpc: RpcClient) -> Self {
        Self { rpc }
    }

    /// Stores `data` as blob `id` on the node at `addr`; returns once the
    /// node has fsynced it.
    pub async fn put(&self, addr: &str, id: &BlobId, data: Bytes) -> Result<(), Error> {
        if let Some(node) = local::NODES.find(addr) {
            return local::put(node, addr, *id, data).await;
        }
        let resp = self
            .rpc
            .request_with_digest(Method::PUT, addr, &blob_path(id), &id.to_hex())
            .body(data)
            .timeout(BLOB_TIMEOUT)
            .send()
            .await
            .map_err(|e| unreachable(addr, e))?;
        check(addr, resp).await.map(drop)
    }

    /// Reads `len` bytes from `offset` of blob `id`, verified by the node.
    pub async fn get(
        &self,
        addr: &str,
        id: &BlobId,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, Error> {
        if let Some(node) = local::NODES.find(addr) {
            return local::get(node, addr, *id, offset, len).await;
        }
        let path = format!("{}?offset={offset}&len={len}", blob_path(id));
        let resp = self
            .rpc
            .request_empty(Method::GET, addr, &path)
            .timeout(BLOB_TIMEOUT)
            .send()
            .await
            .map_err(|e| unreachable(addr, e))?;
        let data = check(addr, resp).await?;
        if data.len() as u64 != len {
            return Err(Error::Remote {
                addr: addr.to_string(),
                status: 200,
                detail: format!("short read: {} of {len} bytes", data.len()),
            });
        }
        Ok(data)
    }

    pub async fn delete(&self, addr: &str, id: &BlobId) -> Result<(), Error> {
        if let Some(node) = local::NODES.find(addr) {
            return local::delete(node, addr, *id).await;
        }
        let resp = self
            .rpc
            .request_empty(Method::DELETE, addr, &blob_path(id))
            .timeout(BLOB_TIMEOUT)
            .send()
            .await
            .map_err(|e| unreachable(addr, e))?;
        check(addr, resp).await.map(drop)
    }
}

fn unreachable(addr: &str, e: reqwest::Error) -> Error {
    Error::Unreachable {
        addr: addr.to_string(),
        detail: e.to_string(),
    }
}

async fn check(addr: &str, resp: reqwest::Response) -> Result<Bytes, Error> {
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| unreachable(addr, e))?;
    match status.as_u16() {
        200..=299 => Ok(body),
        404 => Err(Error::NotFound),
        code => Err(Error::Remote {
            addr: addr.to_string(),
            status: code,
            detail: String::from_utf8_lossy(&body).into_owned(),
        }),
    }
}
