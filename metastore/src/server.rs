//! The metadata service over HTTP/2: `POST /v1/command`, `POST /v1/query`,
//! `POST /v1/heartbeat` (all behind the cluster MAC), and `GET /health`,
//! `GET /ready`.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use http::HeaderMap;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use troika_rpc::client::{require_cluster_auth, verify_body};
use troika_rpc::health::{ready_response, Health, Ready};
use troika_rpc::ClusterSecret;

use crate::api::{Command, Heartbeat, NodeId, Query, Reply};
use crate::error::Error;
use crate::store::Store;

/// A storage node not heard from for this long is reported down.
pub const NODE_DOWN_AFTER: Duration = Duration::from_secs(10);
/// Name of the database file inside the meta data directory.
pub const DB_FILE: &str = "meta.redb";

pub struct MetaConfig {
    pub data_dir: PathBuf,
    pub secret: ClusterSecret,
}

struct Shared {
    store: Store,
    /// Last heartbeat of each storage node: soft state, rebuilt within one
    /// heartbeat interval after a restart.
    liveness: Mutex<HashMap<NodeId, (Instant, Heartbeat)>>,
}

/// Opens the store under `config.data_dir` and serves it on `listener`
/// until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: MetaConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| Error::Internal(format!("{}: {e}", config.data_dir.display())))?;
    let path = config.data_dir.join(DB_FILE);
    let store = tokio::task::spawn_blocking(move || Store::open(&path))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    let shared = Arc::new(Shared {
        store,
        liveness: Mutex::new(HashMap::new()),
    });
    let internal = Router::new()
        .route("/v1/command", post(command))
        .route("/v1/query", post(query))
        .route("/v1/heartbeat", post(heartbeat))
        .with_state(shared.clone())
        .layer(axum::middleware::from_fn_with_state(
            config.secret.clone(),
            require_cluster_auth,
        ));
    let router = Router::new()
        .route("/health", get(|| async { Json(Health::ok("meta")) }))
        .route("/ready", get(ready))
        .with_state(shared)
        .merge(internal);
    troika_rpc::serve::serve(listener, router, shutdown)
        .await
        .map_err(|e| Error::Internal(e.to_string()))
}

async fn ready() -> Response {
    ready_response(Ready {
        ready: true,
        role: "meta".into(),
        detail: "single meta node: leader".into(),
    })
}

fn error_response(e: Error) -> Response {
    (e.status(), Json(e)).into_response()
}

fn parse<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, Error> {
    if !verify_body(headers, body) {
        return Err(Error::Invalid(
            "body does not match its signed digest".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| Error::Invalid(format!("malformed request: {e}")))
}

async fn command(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let cmd: Command = match parse(&headers, &body) {
        Ok(c) => c,
        Err(e) => return error_response(e),
    };
    let result = tokio::task::spawn_blocking(move || s.store.apply(&cmd)).await;
    match result {
        Ok(Ok(reply)) => Json(reply).into_response(),
        Ok(Err(e)) => error_response(e),
        Err(e) => error_response(Error::Internal(e.to_string())),
    }
}

async fn query(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let q: Query = match parse(&headers, &body) {
        Ok(q) => q,
        Err(e) => return error_response(e),
    };
    let s2 = s.clone();
    let result = tokio::task::spawn_blocking(move || s2.store.query(&q)).await;
    match result {
        Ok(Ok(Reply::Nodes(mut nodes))) => {
            let live = s.liveness.lock().expect("liveness lock");
            for n in &mut nodes {
                if let Some((seen, hb)) = live.get(&n.id) {
                    n.alive = seen.elapsed() < NODE_DOWN_AFTER;
                    n.capacity_bytes = hb.capacity_bytes;
                    n.free_bytes = hb.free_bytes;
                    n.blob_count = hb.blob_count;
                }
            }
            Json(Reply::Nodes(nodes)).into_response()
        }
        Ok(Ok(reply)) => Json(reply).into_response(),
        Ok(Err(e)) => error_response(e),
        Err(e) => error_response(Error::Internal(e.to_string())),
    }
}

async fn heartbeat(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let hb: Heartbeat = match parse(&headers, &body) {
        Ok(h) => h,
        Err(e) => return error_response(e),
    };
    s.liveness
        .lock()
        .expect("liveness lock")
        .insert(hb.id, (Instant::now(), hb));
    Json(Reply::Done).into_response()
}
