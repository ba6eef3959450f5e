//! `troika server`: one meta node, three storage nodes (on `DATA/chunk1..3`,
//! in three zones) and one gateway in one process, on loopback. It keeps its
//! cluster secret and dev access key in the data directory, so a restart on
//! the same directory keeps all data and credentials.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use metastore::api::Command;
use metastore::MetaClient;
use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use troika_rpc::{ClusterSecret, RpcClient};

const SECRET_FILE: &str = "cluster.secret";
const CLUSTER_FILE: &str = "cluster.json";
const PORTS_FILE: &str = "ports.json";
const CHUNK_NODES: usize = 3;
/// Where the all-in-one server serves NFS unless told otherwise.
const DEFAULT_NFS_LISTEN: &str = "127.0.0.1:2049";
/// How long start-up waits for every storage node to report in.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Args)]
pub struct ServerArgs {
    /// Data directory (created if missing).
    #[arg(long, env = "TROIKA_DATA", default_value = "data")]
    data: PathBuf,
    /// Address of the S3 endpoint.
    #[arg(long, env = "TROIKA_S3_LISTEN", default_value = "127.0.0.1:9000")]
    s3_listen: SocketAddr,
    /// Address the internal services (meta, storage nodes) listen on; their
    /// ports are chosen by the OS.
    #[arg(long, default_value = "127.0.0.1")]
    internal_host: IpAddr,
    /// Base domain for virtual-hosted-style requests (`BUCKET.DOMAIN`).
    #[arg(long, env = "TROIKA_S3_DOMAIN")]
    s3_domain: Option<String>,
    /// Abort multipart uploads not completed within this many seconds.
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    upload_expiry_secs: u64,
    /// Delete a blob's copies once it has been unreferenced this long.
    #[arg(long, default_value_t = 600)]
    gc_grace_secs: u64,
    #[command(flatten)]
    nfs: crate::config::NfsArgs,
}

/// What `cluster.json` holds: everything a client needs to connect.
#[derive(Serialize, Deserialize)]
struct ClusterFile {
    s3_endpoint: String,
    region: String,
    access_key: String,
    secret_key: String,
    meta_endpoint: String,
    chunk_endpoints: Vec<String>,
    /// `HOST:PORT` of the NFSv3 (and MOUNT) service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nfs_endpoint: Option<String>,
}

/// How to mount the export at `listen` (`HOST:PORT`).
fn nfs_mount_hint(listen: &str) -> String {
    match listen.rsplit_once(':') {
        Some((host, port)) => format!(
            "{host}:/ (mount -o vers=3,tcp,port={port},mountport={port},nolock {host}:/ /mnt)"
        ),
        None => listen.to_string(),
    }
}

/// Writes `data` to `path` with mode 0600, atomically (temp file, fsync,
/// rename, fsync of the directory).
fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("file has a directory")?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::io::Write::write_all(&mut f, data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn load_or_create_secret(dir: &Path) -> anyhow::Result<ClusterSecret> {
    let path = dir.join(SECRET_FILE);
    if path.exists() {
        return Ok(ClusterSecret::load(&path)?);
    }
    let secret = ClusterSecret::generate();
    write_private(&path, secret.to_hex().as_bytes())?;
    Ok(secret)
}

fn new_access_key() -> (String, String) {
    let mut rng = rand::thread_rng();
    let ak: String = (0..18)
        .map(|_| {
            let c = rng.gen_range(0..36u8);
            (if c < 10 { b'0' + c } else { b'A' + c - 10 }) as char
        })
        .collect();
    (format!("TK{ak}"), Alphanumeric.sample_string(&mut rng, 40))
}

/// Binds the port this internal service had last time (kept in
/// `ports.json`), so addresses recorded in the metadata stay right across
/// restarts; a new port if that one is taken.
async fn bind(host: IpAddr, previous: Option<u16>) -> anyhow::Result<TcpListener> {
    if let Some(port) = previous {
        if let Ok(l) = TcpListener::bind(SocketAddr::new(host, port)).await {
            return Ok(l);
        }
    }
    Ok(TcpListener::bind(SocketAddr::new(host, 0)).await?)
}

pub async fn run(mut args: ServerArgs) -> anyhow::Result<()> {
    args.nfs
        .nfs_listen
        .get_or_insert_with(|| DEFAULT_NFS_LISTEN.into());
    let data = args.data.clone();
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))?;
    let secret = load_or_create_secret(&data)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut tasks = tokio::task::JoinSet::new();

    let ports_path = data.join(PORTS_FILE);
    let previous: Vec<u16> = std::fs::read(&ports_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let meta_listener = bind(args.internal_host, previous.first().copied()).await?;
    let meta_addr = meta_listener.local_addr()?.to_string();
    tasks.spawn({
        let cfg = metastore::server::MetaConfig {
            data_dir: data.join("meta"),
            secret: secret.clone(),
            id: 1,
            advertise: meta_addr.clone(),
            peers: [(1, meta_addr.clone())].into(),
            init: true,
            snapshot_every: 10_000,
            cache_bytes: metastore::db::DEFAULT_CACHE_BYTES,
            upload_expiry: Duration::from_secs(args.upload_expiry_secs),
            gc_grace: Duration::from_secs(args.gc_grace_secs),
            node_down: metastore::server::NODE_DOWN_AFTER,
            orphan_age: Duration::from_secs(3600),
        };
        let stop = stop();
        async move {
            metastore::server::run(meta_listener, cfg, stop)
                .await
                .context("meta node")
        }
    });

    let mut chunk_addrs = Vec::new();
    for i in 1..=CHUNK_NODES {
        let listener = bind(args.internal_host, previous.get(i).copied()).await?;
        chunk_addrs.push(listener.local_addr()?.to_string());
        let cfg = chunkstore::server::ChunkConfig {
            data_dir: data.join(format!("chunk{i}")),
            secret: secret.clone(),
            meta: vec![meta_addr.clone()],
            zone: format!("zone{i}"),
            advertise: None,
            repair_bytes_per_s: chunkstore::repair::DEFAULT_BYTES_PER_S,
            rebalance_bytes_per_s: chunkstore::repair::DEFAULT_BYTES_PER_S / 2,
            scrub_bytes_per_s: chunkstore::scrub::DEFAULT_BYTES_PER_S,
            capacity_bytes: None,
        };
        let stop = stop();
        tasks.spawn(async move {
            chunkstore::server::run(listener, cfg, stop)
                .await
                .with_context(|| format!("storage node {i}"))
        });
    }

    let ports: Vec<u16> = std::iter::once(&meta_addr)
        .chain(&chunk_addrs)
        .filter_map(|a| a.parse::<SocketAddr>().ok().map(|a| a.port()))
        .collect();
    write_private(&ports_path, &serde_json::to_vec(&ports)?)?;

    let s3_listener = TcpListener::bind(args.s3_listen)
        .await
        .with_context(|| format!("binding the S3 endpoint {}", args.s3_listen))?;
    let s3_addr = s3_listener.local_addr()?;
    tasks.spawn({
        let cfg = gateway::GatewayConfig {
            meta: vec![meta_addr.clone()],
            secret: secret.clone(),
            s3_domain: args.s3_domain.clone(),
            nfs: args.nfs.config(),
        };
        let stop = stop();
        async move {
            gateway::run(s3_listener, cfg, stop)
                .await
                .context("gateway")
        }
    });

    let meta = MetaClient::new(RpcClient::new(secret), vec![meta_addr.clone()]);
    let cluster_path = data.join(CLUSTER_FILE);
    let (access_key, secret_key) = match std::fs::read(&cluster_path) {
        Ok(bytes) => {
            let f: ClusterFile = serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", cluster_path.display()))?;
            (f.access_key, f.secret_key)
        }
        Err(_) => new_access_key(),
    };
    tokio::select! {
        r = prepare(&meta, &access_key, &secret_key) => r?,
        Some(r) = tasks.join_next() => return r?.context("a service stopped during start-up"),
    }

    let file = ClusterFile {
        s3_endpoint: format!("http://{s3_addr}"),
        region: "us-east-1".into(),
        access_key: access_key.clone(),
        secret_key: secret_key.clone(),
        meta_endpoint: format!("http://{meta_addr}"),
        chunk_endpoints: chunk_addrs.iter().map(|a| format!("http://{a}")).collect(),
        nfs_endpoint: args.nfs.nfs_listen.clone(),
    };
    write_private(&cluster_path, &serde_json::to_vec_pretty(&file)?)?;
    println!(
        "Troika is running (data in {data}).\n\
         \n  S3 endpoint:  http://{s3_addr}\n  Access key:   {access_key}\n  Secret key:   {secret_key}\n  Region:       us-east-1\n  NFS export:   {nfs}\n\
         \n  Health:       curl http://{s3_addr}/health\n\
         \nTry it:\n  export AWS_ACCESS_KEY_ID={access_key} AWS_SECRET_ACCESS_KEY={secret_key} AWS_DEFAULT_REGION=us-east-1\n  aws --endpoint-url http://{s3_addr} s3 mb s3://demo\n  aws --endpoint-url http://{s3_addr} s3 cp ./some-file s3://demo/\n\
         \nConnection details are in {cluster}. Stop with Ctrl-C.",
        data = data.display(),
        cluster = cluster_path.display(),
        nfs = nfs_mount_hint(args.nfs.nfs_listen.as_deref().unwrap_or_default()),
    );

    tokio::select! {
        _ = crate::config::shutdown_signal() => {}
        Some(r) = tasks.join_next() => {
            let _ = stop_tx.send(true);
            return r?.context("a service stopped unexpectedly");
        }
    }
    let _ = stop_tx.send(true);
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

/// Waits for the meta node and the storage nodes, and makes sure the dev
/// access key exists.
async fn prepare(meta: &MetaClient, access_key: &str, secret_key: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
    loop {
        let up = match meta.list_nodes().await {
            Ok(nodes) => nodes.iter().filter(|n| n.alive).count(),
            Err(_) => 0,
        };
        if up >= CHUNK_NODES {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("only {up} of {CHUNK_NODES} storage nodes came up");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match meta.get_key(access_key).await {
        Ok(_) => Ok(()),
        Err(metastore::Error::NoSuchAccessKey(_)) => {
            meta.command(&Command::CreateKey {
                access_key: access_key.to_string(),
                secret_key: secret_key.to_string(),
                name: "dev".into(),
                all_buckets: true,
                now: gateway::namespace::now_ns(),
            })
            .await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
