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
