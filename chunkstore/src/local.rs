//! Storage nodes served by this process, by the address they advertise. A
//! client in the same process (the all-in-one server's gateway, a node
//! repairing from a sibling) calls such a node's store directly: no HTTP,
//! no MAC, no copy of the body, since nothing crosses a process boundary.
//! Answers and errors are those the node's HTTP API gives.

use std::sync::Arc;

use bytes::Bytes;
use metastore::api::BlobId;
use troika_rpc::local::Registry;

use crate::client::BLOB_TIMEOUT;
use crate::error::Error;
use crate::server::Shared;

pub(crate) static NODES: Registry<Shared> = Registry::new();

/// Runs a store operation off the async threads (it reads, writes and
/// fsyncs), bounded as a remote call is; errors other than a missing blob
/// name the node, as the HTTP client's do.
async fn run<T: Send + 'static>(
    addr: &str,
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let result = match tokio::time::timeout(BLOB_TIMEOUT, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(Error::Io(std::io::Error::other(e))),
        Err(_) => {
            return Err(Error::Unreachable {
                addr: addr.to_string(),
                detail: "timed out".into(),
            })
        }
    };
    result.map_err(|e| match e {
        Error::NotFound => Error::NotFound,
        e => Error::Remote {
            addr: addr.to_string(),
            status: e.status().as_u16(),
            detail: e.to_string(),
        },
    })
}

pub(crate) async fn put(
    node: Arc<Shared>,
    addr: &str,
    id: BlobId,
    data: Bytes,
) -> Result<(), Error> {
    run(addr, move || node.store.put(&id, &data).map(drop)).await
}

pub(crate) async fn get(
    node: Arc<Shared>,
    addr: &str,
    id: BlobId,
    offset: u64,
    len: u64,
) -> Result<Bytes, Error> {
    run(addr, move || match node.store.get(&id, offset, Some(len)) {
        Ok(data) => Ok(Bytes::from(data)),
        Err(Error::Corrupt(why)) => {
            // The reader falls back to another copy; this one goes.
            node.bad_copy(&id, &why);
            Err(Error::Corrupt(why))
        }
        Err(e) => Err(e),
    })
    .await
}

pub(crate) async fn delete(node: Arc<Shared>, addr: &str, id: BlobId) -> Result<(), Error> {
    run(addr, move || node.store.delete(&id)).await
}
