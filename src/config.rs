//! Start-up plumbing shared by the roles: the cluster secret, listeners,
//! and the shutdown signal.

use std::net::SocketAddr;

use anyhow::{bail, Context};
use tokio::net::TcpListener;
use troika_rpc::ClusterSecret;

use crate::SecretArgs;

/// The cluster secret from `--secret-file` / `TROIKA_SECRET_FILE`, or from
/// `TROIKA_SECRET` itself.
pub fn load_secret(args: &SecretArgs) -> anyhow::Result<ClusterSecret> {
    if let Some(path) = &args.secret_file {
        return ClusterSecret::load(path).context("--secret-file");
    }
    match std::env::var("TROIKA_SECRET") {
        Ok(hex) => ClusterSecret::from_hex(&hex).context("TROIKA_SECRET"),
        Err(_) => bail!(
            "no cluster secret: pass --secret-file FILE or set TROIKA_SECRET \
             (create one with `troika admin gen-secret`)"
        ),
    }
}

/// `ID=ADDR` pairs, as `--peers` takes them.
pub fn parse_peers(peers: &[String]) -> anyhow::Result<std::collections::BTreeMap<u64, String>> {
    peers
        .iter()
        .map(|p| {
            let (id, addr) = p
                .split_once('=')
                .with_context(|| format!("--peers: {p:?} is not ID=ADDR"))?;
            let id: u64 = id
                .parse()
                .with_context(|| format!("--peers: {id:?} is not a node id"))?;
            Ok((id, addr.to_string()))
        })
        .collect()
}

/// Binds `addr` and announces the bound address on stdout as one JSON line,
/// so scripts and tests can use port 0 and learn the real port.
pub async fn bind(addr: SocketAddr, role: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    println!(
        "{}",
        serde_json::json!({ "role": role, "listen": local.to_string() })
    );
    tracing::info!(%local, role, "listening");
    Ok(listener)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

/// How a gateway serves NFS (`troika gateway` and `troika server`).
#[derive(clap::Args, Clone, Debug)]
pub struct NfsArgs {
    /// Serve NFSv3 and MOUNT on this address (one TCP port, no portmapper
    /// needed).
    #[arg(long, env = "TROIKA_NFS_LISTEN")]
    pub nfs_listen: Option<String>,
    /// What NFS clients mount: `/` (every bucket) or `/BUCKET`.
    #[arg(long, default_value = "/")]
    pub nfs_export: String,
    /// Refuse every change over NFS (NFS3ERR_ROFS).
    #[arg(long)]
    pub nfs_read_only: bool,
    /// Owner shown for files and directories written over S3.
    #[arg(long, default_value_t = 0)]
    pub nfs_uid: u32,
    #[arg(long, default_value_t = 0)]
    pub nfs_gid: u32,
    /// Mode (octal) shown for files written over S3.
    #[arg(long, default_value = "644", value_parser = octal)]
    pub nfs_file_mode: u32,
    /// Mode (octal) shown for directories made implicitly by S3 keys.
    #[arg(long, default_value = "755", value_parser = octal)]
    pub nfs_dir_mode: u32,
    /// All squash: every file is owned by the anonymous user and group.
    #[arg(long)]
    pub nfs_all_squash: bool,
    /// Root squash: calls from uid 0 act as the anonymous user (their new
    /// files are the anonymous user's; they may not chown).
    #[arg(long)]
    pub nfs_root_squash: bool,
    #[arg(long, default_value_t = 65534)]
    pub nfs_anon_uid: u32,
    #[arg(long, default_value_t = 65534)]
    pub nfs_anon_gid: u32,
    /// Client networks allowed to use NFS (CIDR, comma-separated, e.g.
    /// 10.0.0.0/8,192.168.1.5/32); others are refused at connection. Default:
    /// any.
    #[arg(long, value_delimiter = ',')]
    pub nfs_allow: Vec<ipnet::IpNet>,
}

fn octal(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{s:?} is not an octal mode such as 644"))
}

impl NfsArgs {
    /// The gateway's NFS configuration, if NFS is to be served.
    pub fn config(&self) -> Option<gateway::nfs::NfsConfig> {
        let listen = self.nfs_listen.clone()?;
        Some(gateway::nfs::NfsConfig {
            listen,
            export: self.nfs_export.clone(),
            read_only: self.nfs_read_only,
            uid: self.nfs_uid,
            gid: self.nfs_gid,
            file_mode: self.nfs_file_mode,
            dir_mode: self.nfs_dir_mode,
            squash: self
                .nfs_all_squash
                .then_some((self.nfs_anon_uid, self.nfs_anon_gid)),
            root_squash: self
                .nfs_root_squash
                .then_some((self.nfs_anon_uid, self.nfs_anon_gid)),
            allow: self.nfs_allow.clone(),
        })
    }
}
