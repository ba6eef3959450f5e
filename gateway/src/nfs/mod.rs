//! NFSv3 (and MOUNT, on the same TCP port) over the namespace.
//!
//! [`fs`] maps the NFS procedures onto metastore commands and the data
//! plane, [`handle`] mints and checks file handles, [`status`] turns errors
//! into NFS statuses. The `nfs3_server` crate does the wire protocol.

pub mod caller;
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

/// Binds the NFS port and serves it in the background.
///
/// With an allow list, the NFS layer listens on an internal loopback port
/// and the public port admits only connections from allowed networks: a
/// client outside them cannot MOUNT, nor make any other call.
pub async fn spawn(
    gw: Arc<Gateway>,
    secret: &troika_rpc::ClusterSecret,
    config: NfsConfig,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let root = export_root(&gw, &config.export).await?;
    let export = config.export.trim_matches('/').to_string();
    let listen = config.listen.clone();
    let allow = config.allow.clone();
    let inner = if allow.is_empty() {
        listen.clone()
    } else {
        "127.0.0.1:0".to_string()
    };
    let fs = TroikaFs::new(gw, HandleKey::new(secret, root), root, config);
    let mut listener = NFSTcpListener::bind_with_generation(&inner, fs, HANDLE_GENERATION)
        .await
        .map_err(|e| Error::Internal(format!("NFS listener on {inner}: {e}")))?;
    listener.with_export_name(&export);
    let gate = if allow.is_empty() {
        None
    } else {
        let public = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| Error::Internal(format!("NFS listener on {listen}: {e}")))?;
        let to = std::net::SocketAddr::from(([127, 0, 0, 1], listener.get_listen_port()));
        Some(tokio::spawn(admit(public, to, allow)))
    };
    tracing::info!(addr = %listen, export = %format!("/{export}"), "serving NFSv3");
    Ok(tokio::spawn(async move {
        if let Err(e) = listener.handle_forever().await {
            tracing::error!(error = %e, "NFS listener stopped");
        }
        if let Some(g) = gate {
            g.abort();
        }
    }))
}

/// Accepts NFS connections from allowed networks and relays them to the
/// NFS layer at `to`; closes every other connection at once.
async fn admit(
    public: tokio::net::TcpListener,
    to: std::net::SocketAddr,
    allow: Vec<ipnet::IpNet>,
) {
    loop {
        let (mut client, peer) = match public.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "NFS accept failed");
                continue;
            }
        };
        if !allow.iter().any(|net| net.contains(&peer.ip())) {
            tracing::warn!(client = %peer, "NFS client outside the allowed networks refused");
            continue;
        }
        tokio::spawn(async move {
            let Ok(mut server) = tokio::net::TcpStream::connect(to).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
    }
}
