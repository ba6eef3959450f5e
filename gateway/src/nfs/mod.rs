//! NFSv3 (and MOUNT, on the same TCP port) over the namespace.
//!
//! [`fs`] maps the NFS procedures onto metastore commands and the data
//! plane, [`handle`] mints and checks file handles, [`status`] turns errors
//! into NFS statuses. The `nfs3_server` crate does the wire protocol.

pub mod fs;
pub mod handle;
pub mod status;

use std::sync::Arc;

use metastore::api::{InodeId, Reply, ROOT_INODE};
use nfs3_server::tcp::{NFSTcp, NFSTcpListener};

use crate::error::Error;
use crate::server::Gateway;
use fs::TroikaFs;
use handle::{HandleKey, HANDLE_GENERATION};

/// How a gateway exports the namespace over NFS.
#[derive(Clone, Debug)]
pub struct NfsConfig {
    /// `ip:port` to serve NFS and MOUNT on.
    pub listen: String,
    /// What clients mount: `/` (every bucket) or `/BUCKET`.
    pub export: String,
    pub read_only: bool,
    /// Owner and modes shown for nodes that never had their own (objects
    /// written over S3).
    pub uid: u32,
    pub gid: u32,
    pub file_mode: u32,
    pub dir_mode: u32,
    /// All squash: every node shows, and is created with, this owner.
    pub squash: Option<(u32, u32)>,
}

impl Default for NfsConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:2049".into(),
            export: "/".into(),
            read_only: false,
            uid: 0,
            gid: 0,
            file_mode: 0o644,
            dir_mode: 0o755,
            squash: None,
        }
    }
}

/// The inode of the export's root directory.
async fn export_root(gw: &Gateway, export: &str) -> Result<InodeId, Error> {
    let bucket = export.trim_matches('/');
    if bucket.is_empty() {
        return Ok(ROOT_INODE);
    }
    if bucket.contains('/') {
        return Err(Error::InvalidArgument(format!(
            "NFS export {export:?}: export the root or one bucket"
        )));
    }
    match gw
        .ns
        .meta()
        .query(&metastore::api::Query::HeadBucket {
            name: bucket.to_string(),
        })
        .await?
    {
        Reply::Bucket(b) => Ok(b.inode),
        r => Err(Error::Internal(format!("unexpected reply {r:?}"))),
    }
}

/// Binds the NFS port and serves it in the background.
pub async fn spawn(
    gw: Arc<Gateway>,
    secret: &troika_rpc::ClusterSecret,
    config: NfsConfig,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let root = export_root(&gw, &config.export).await?;
    let export = config.export.trim_matches('/').to_string();
    let listen = config.listen.clone();
    let fs = TroikaFs::new(gw, HandleKey::new(secret, root), root, config);
    let mut listener = NFSTcpListener::bind_with_generation(&listen, fs, HANDLE_GENERATION)
        .await
        .map_err(|e| Error::Internal(format!("NFS listener on {listen}: {e}")))?;
    listener.with_export_name(&export);
    tracing::info!(addr = %listen, export = %format!("/{export}"), "serving NFSv3");
    Ok(tokio::spawn(async move {
        if let Err(e) = listener.handle_forever().await {
            tracing::error!(error = %e, "NFS listener stopped");
        }
    }))
}
