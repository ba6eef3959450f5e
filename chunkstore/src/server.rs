//! The storage node's HTTP/2 service, its registration with the metastore
//! and its heartbeats.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use metastore::api::{BlobId, Command, CopyProgress, Heartbeat, NodeId, ScrubProgress};
use metastore::MetaClient;
use serde::Deserialize;
use tokio::net::TcpListener;
use troika_rpc::health::{ready_response, Health, Ready};
use troika_rpc::secret::BODY_SHA256_HEADER;
use troika_rpc::{ClusterSecret, RpcClient};

use crate::api::BLOB_LIMIT_BYTES;
use crate::client::ChunkClient;
use crate::error::Error;
use crate::store::{fsync_dir, BlobStore};

/// How often a storage node reports to the metastore.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
const NODE_ID_FILE: &str = "node_id";

pub struct ChunkConfig {
    pub data_dir: PathBuf,
    pub secret: ClusterSecret,
    pub meta: Vec<String>,
    pub zone: String,
    /// Address other nodes reach this one at; defaults to the listener's.
    pub advertise: Option<String>,
    /// Bandwidth repair copies may use.
    pub repair_bytes_per_s: u64,
    /// Bandwidth rebalancing moves may use.
    pub rebalance_bytes_per_s: u64,
    /// Scrubbing rate; 0: off.
    pub scrub_bytes_per_s: u64,
    /// Most bytes the node may hold (default: its file system's size).
    pub capacity_bytes: Option<u64>,
}

pub(crate) struct Shared {
    pub(crate) store: BlobStore,
    pub(crate) registered: AtomicBool,
    pub(crate) id: NodeId,
    pub(crate) progress: Progress,
    /// Bad copies found, to be reported to the metastore.
    bad: tokio::sync::mpsc::UnboundedSender<Lost>,
}

/// Counters the heartbeat reports.
#[derive(Default)]
pub(crate) struct Progress {
    pub(crate) repaired_bytes: AtomicU64,
    pub(crate) moved_bytes: AtomicU64,
    pub(crate) scrub_passes: AtomicU64,
    pub(crate) scrub_checked_blobs: AtomicU64,
    pub(crate) scrub_checked_bytes: AtomicU64,
    pub(crate) scrub_pass_bytes: AtomicU64,
    /// Checked over every pass, for the rate.
    pub(crate) scrub_total_bytes: AtomicU64,
    pub(crate) bad_found: AtomicU64,
}

impl Shared {
    /// Takes a bad copy out of service and has it reported, so the
    /// metastore forgets it and repair remakes it from a good one.
    pub(crate) fn bad_copy(&self, id: &BlobId, why: &str) {
        match self.store.quarantine(id) {
            Ok(true) => {
                tracing::error!(blob = %id, %why, "bad blob copy: quarantined, to be repaired");
                self.progress.bad_found.fetch_add(1, Ordering::Relaxed);
            }
            Ok(false) => {} // found twice at once: the first took it
            Err(e) => tracing::error!(blob = %id, error = %e, "quarantine failed"),
        }
        // Reported even if the move failed: the copy must not be read.
        let _ = self.bad.send(Lost::Bad(*id));
    }

    /// Has a copy the metastore places here, but which is not on disk,
    /// reported. `counted`: already counted as bad (it was quarantined, and
    /// its report may not have landed).
    pub(crate) fn missing_copy(&self, id: &BlobId, counted: bool) {
        if !counted {
            tracing::error!(blob = %id, "placed blob copy missing from disk: to be repaired");
            self.progress.bad_found.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self.bad.send(Lost::Missing(*id));
    }
}

/// A copy to report as lost.
pub(crate) enum Lost {
    /// Failed its checksums; quarantined.
    Bad(BlobId),
    /// Placed here, but its file is not there.
    Missing(BlobId),
}

/// Opens the blob store under `config.data_dir`, registers with the
/// metastore, heartbeats, and serves blobs on `listener` until `shutdown`.
pub async fn run(
    listener: TcpListener,
    config: ChunkConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let dir = config.data_dir.clone();
    let limit = config.capacity_bytes;
    let (store, id) = tokio::task::spawn_blocking(move || -> Result<_, Error> {
        std::fs::create_dir_all(&dir)?;
        Ok((BlobStore::open_limited(&dir, limit)?, node_id(&dir)?))
    })
    .await
    .map_err(|e| Error::Io(std::io::Error::other(e)))??;
    let addr = match config.advertise {
        Some(a) => a,
        None => listener.local_addr()?.to_string(),
    };
    let (bad, bad_rx) = tokio::sync::mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        store,
        registered: AtomicBool::new(false),
        id,
        progress: Progress::default(),
        bad,
    });
    let meta = MetaClient::new(RpcClient::new(config.secret.clone()), config.meta.clone());
    let repairer = tokio::spawn(crate::repair::run(
        shared.clone(),
        meta.clone(),
        ChunkClient::new(RpcClient::new(config.secret.clone())),
        crate::repair::Pace {
            repair_bytes_per_s: config.repair_bytes_per_s,
            rebalance_bytes_per_s: config.rebalance_bytes_per_s,
        },
    ));
    let scrubber = tokio::spawn(crate::scrub::run(
        shared.clone(),
        meta.clone(),
        config.scrub_bytes_per_s,
    ));
    let bad_reporter = tokio::spawn(crate::scrub::report_bad(id, meta.clone(), bad_rx));
    let reporter = tokio::spawn(report(
        shared.clone(),
        meta,
        id,
        addr.clone(),
        config.zone.clone(),
    ));
    tracing::info!(node = id, %addr, zone = %config.zone, "storage node serving");
    let _local = crate::local::NODES.register(&addr, &shared);

    let internal = Router::new()
        .route(
            "/v1/blob/{id}",
            get(get_blob)
                .head(head_blob)
                .put(put_blob)
                .delete(delete_blob),
        )
        .layer(axum::extract::DefaultBodyLimit::max(BLOB_LIMIT_BYTES))
        .with_state(shared.clone())
        .layer(axum::middleware::from_fn_with_state(
            config.secret.clone(),
            troika_rpc::client::require_cluster_auth,
        ));
    let router = Router::new()
        .route("/health", get(|| async { Json(Health::ok("chunk")) }))
        .route("/ready", get(ready))
        .with_state(shared)
        .merge(internal);
    let result = troika_rpc::serve::serve(listener, router, shutdown).await;
    reporter.abort();
    repairer.abort();
    scrubber.abort();
    bad_reporter.abort();
    result.map_err(Error::Io)
}

/// The node's identity: random on first start, kept in the data directory.
fn node_id(dir: &Path) -> Result<NodeId, Error> {
    let path = dir.join(NODE_ID_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return text
            .trim()
            .parse()
            .map_err(|_| Error::Corrupt(format!("{}: not a node id", path.display())));
    }
    let id: NodeId = rand::random::<u64>() >> 1;
    let tmp = dir.join("node_id.tmp");
    let f = std::fs::File::create(&tmp)?;
    std::io::Write::write_all(&mut &f, id.to_string().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    fsync_dir(dir)?;
    Ok(id)
}

/// Registers (until it succeeds), then heartbeats forever.
async fn report(shared: Arc<Shared>, meta: MetaClient, id: NodeId, addr: String, zone: String) {
    let register = Command::RegisterNode {
        id,
        addr: addr.clone(),
        zone,
    };
    loop {
        match meta.command(&register).await {
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(error = %e, "registration with the metastore failed; retrying");
                tokio::time::sleep(HEARTBEAT_INTERVAL).await;
            }
        }
    }
    shared.registered.store(true, Ordering::Relaxed);
    let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
    let mut copy_rate = Rate::default();
    let mut scrub_rate = Rate::default();
    loop {
        tick.tick().await;
        let (capacity_bytes, free_bytes) = shared.store.capacity().unwrap_or((0, 0));
        let p = &shared.progress;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (repaired, moved) = (get(&p.repaired_bytes), get(&p.moved_bytes));
        let hb = Heartbeat {
            used_bytes: shared.store.used_bytes(),
            scrub: ScrubProgress {
                passes: get(&p.scrub_passes),
                checked_blobs: get(&p.scrub_checked_blobs),
                checked_bytes: get(&p.scrub_checked_bytes),
                pass_bytes: get(&p.scrub_pass_bytes),
                bad_found: get(&p.bad_found),
                bytes_per_s: scrub_rate.update(get(&p.scrub_total_bytes)),
            },
            copies: CopyProgress {
                repaired_bytes: repaired,
                moved_bytes: moved,
                bytes_per_s: copy_rate.update(repaired + moved),
            },
            id,
            // A node that stopped taking writes reports no free space, so
            // no new blobs are placed on it.
            capacity_bytes,
            free_bytes: if shared.store.writes_disabled() {
                0
            } else {
                free_bytes
            },
            blob_count: shared.store.blob_count(),
        };
        if let Err(e) = meta.heartbeat(&hb).await {
            tracing::debug!(error = %e, "heartbeat failed");
        }
    }
}

/// A counter's recent rate: the change over the last few seconds.
#[derive(Default)]
struct Rate {
    samples: std::collections::VecDeque<(std::time::Instant, u64)>,
}

impl Rate {
    const WINDOW: Duration = Duration::from_secs(5);

    fn update(&mut self, total: u64) -> u64 {
        let now = std::time::Instant::now();
        self.samples.push_back((now, total));
        while self.samples.len() > 2 && now - self.samples[0].0 > Self::WINDOW {
            self.samples.pop_front();
        }
        let (t0, v0) = self.samples[0];
        let secs = (now - t0).as_secs_f64();
        if secs <= 0.0 {
            return 0;
        }
        (total.saturating_sub(v0) as f64 / secs) as u64
    }
}

async fn ready(State(s): State<Arc<Shared>>) -> Response {
    let (ready, detail) = if s.store.writes_disabled() {
        (false, "writes disabled after an fsync failure")
    } else if !s.registered.load(Ordering::Relaxed) {
        (false, "not yet registered with the metastore")
    } else {
        (true, "registered, taking writes")
    };
    ready_response(Ready {
        ready,
        role: "chunk".into(),
        detail: detail.into(),
    })
}

fn bad_id() -> Response {
    (StatusCode::BAD_REQUEST, "a blob id is 64 hex characters").into_response()
}

fn error_response(e: Error) -> Response {
    (e.status(), e.to_string()).into_response()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?
}

async fn put_blob(
    State(s): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(id) = BlobId::from_hex(&id) else {
        return bad_id();
    };
    // The signed body digest must be the blob's name; `put` then checks the
    // body against it.
    let digest = headers
        .get(BODY_SHA256_HEADER)
        .and_then(|v| v.to_str().ok());
    if digest != Some(id.to_hex().as_str()) {
        return error_response(Error::HashMismatch);
    }
    match blocking(move || s.store.put(&id, &body)).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => {
            tracing::warn!(blob = %id, error = %e, "blob put failed");
            error_response(e)
        }
    }
}

#[derive(Deserialize)]
struct RangeQuery {
    offset: Option<u64>,
    len: Option<u64>,
}

async fn get_blob(
    State(s): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let Some(id) = BlobId::from_hex(&id) else {
        return bad_id();
    };
    let store = s.clone();
    match blocking(move || store.store.get(&id, q.offset.unwrap_or(0), q.len)).await {
        Ok(data) => Bytes::from(data).into_response(),
        Err(e) => {
            if let Error::Corrupt(why) = &e {
                // The reader falls back to another copy; this one goes.
                let (s, why) = (s.clone(), why.clone());
                let _ = blocking(move || {
                    s.bad_copy(&id, &why);
                    Ok(())
                })
                .await;
            }
            error_response(e)
        }
    }
}

async fn head_blob(State(s): State<Arc<Shared>>, UrlPath(id): UrlPath<String>) -> Response {
    let Some(id) = BlobId::from_hex(&id) else {
        return bad_id();
    };
    match blocking(move || s.store.len(&id)).await {
        Ok(len) => ([(http::header::CONTENT_LENGTH, len.to_string())], ()).into_response(),
        Err(e) => e.status().into_response(),
    }
}

async fn delete_blob(State(s): State<Arc<Shared>>, UrlPath(id): UrlPath<String>) -> Response {
    let Some(id) = BlobId::from_hex(&id) else {
        return bad_id();
    };
    match blocking(move || s.store.delete(&id)).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => error_response(e),
    }
}
