//! NFSv3 (and MOUNT, on the same TCP port) over the namespace.
//!
//! [`rpc`] reads and writes RPC records, [`procs`] and [`mount`] serve the
//! NFS and MOUNT programs, [`fs`] maps them onto metastore commands and the
//! data plane with the caller's credential ([`caller`]) as an argument,
//! [`handle`] mints and checks file handles, [`status`] turns errors into
//! NFS statuses. The `nfs3_types` crate is the XDR.

pub mod buffer;
pub mod caller;
pub mod fs;
pub mod handle;
pub mod mount;
pub mod procs;
pub mod rpc;
pub mod status;

use std::sync::Arc;

use futures::FutureExt;
use metastore::api::{InodeId, Reply, ROOT_INODE};

use crate::error::Error;
use crate::server::Gateway;
use fs::TroikaFs;
use handle::HandleKey;

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
    /// Root squash: calls from uid 0 act as this owner.
    pub root_squash: Option<(u32, u32)>,
    /// Client networks allowed to connect; empty: any.
    pub allow: Vec<ipnet::IpNet>,
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
            root_squash: None,
            allow: Vec::new(),
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

/// The NFS, MOUNT and portmapper programs of one export.
struct Server {
    fs: TroikaFs,
    /// `/` or `/bucket`.
    export: String,
    port: u16,
}

impl rpc::Service for Server {
    async fn call(&self, call: rpc::Call) -> rpc::Reply {
        let (prog, vers) = match call.prog {
            nfs3_types::nfs3::PROGRAM => (procs::call(&self.fs, &call).boxed(), 3),
            nfs3_types::mount::PROGRAM => (mount::call(&self.fs, &self.export, &call).boxed(), 3),
            nfs3_types::portmap::PROGRAM => (
                std::future::ready(mount::portmap(self.port, &call)).boxed(),
                2,
            ),
            _ => return rpc::Reply::ProgUnavail,
        };
        if call.vers != vers {
            return rpc::Reply::ProgMismatch {
                low: vers,
                high: vers,
            };
        }
        prog.await
    }
}

/// Binds the NFS port and serves it in the background. Connections from
/// outside the allowed networks are closed at once: such a client cannot
/// MOUNT, nor make any other call.
pub async fn spawn(
    gw: Arc<Gateway>,
    secret: &troika_rpc::ClusterSecret,
    config: NfsConfig,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let root = export_root(&gw, &config.export).await?;
    let export = format!("/{}", config.export.trim_matches('/'));
    let listen = config.listen.clone();
    let allow = config.allow.clone();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| Error::Internal(format!("NFS listener on {listen}: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("NFS listener on {listen}: {e}")))?
        .port();
    tracing::info!(addr = %listen, export = %export, "serving NFSv3");
    let server = Arc::new(Server {
        fs: TroikaFs::new(gw, HandleKey::new(secret, root), root, config),
        export,
        port,
    });
    Ok(tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "NFS accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            if !allow.is_empty() && !allow.iter().any(|net| net.contains(&peer.ip())) {
                tracing::warn!(client = %peer, "NFS client outside the allowed networks refused");
                continue;
            }
            tokio::spawn(rpc::serve(stream, server.clone()));
        }
    }))
}
