//! The gateway process: shared state and the HTTP listener for S3.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use chunkstore::ChunkClient;
use metastore::api::KeyInfo;
use metastore::MetaClient;
use tokio::net::TcpListener;
use troika_rpc::{ClusterSecret, RpcClient};

use crate::cluster::Cluster;
use crate::data::DataPlane;
use crate::error::Error;
use crate::namespace::Namespace;

/// How long an access key's secret is cached before it is looked up again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(10);

pub struct GatewayConfig {
    pub meta: Vec<String>,
    pub secret: ClusterSecret,
    /// Base domain of virtual-hosted-style requests (`BUCKET.DOMAIN`).
    pub s3_domain: Option<String>,
    /// Serve NFSv3 too.
    pub nfs: Option<crate::nfs::NfsConfig>,
}

/// Everything a request handler needs. Holds no state that must survive a
/// restart: caches only.
pub struct Gateway {
    pub ns: Namespace,
    pub data: DataPlane,
    pub cluster: Cluster,
    /// Base domain of virtual-hosted-style requests, lowercase.
    pub s3_domain: Option<String>,
    keys: Mutex<HashMap<String, (KeyInfo, Instant)>>,
}

impl Gateway {
    pub fn new(config: &GatewayConfig) -> Self {
        let rpc = RpcClient::new(config.secret.clone());
        let meta = MetaClient::new(rpc.clone(), config.meta.clone());
        let cluster = Cluster::default();
        Self {
            ns: Namespace::new(meta.clone()),
            data: DataPlane::new(ChunkClient::new(rpc), cluster.clone(), meta),
            cluster,
            s3_domain: config.s3_domain.as_ref().map(|d| d.to_ascii_lowercase()),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The access key as the metastore has it now, bypassing the cache: a
    /// grant given a moment ago counts at once (a revocation may take up to
    /// [`KEY_CACHE_TTL`]).
    pub async fn access_key_fresh(&self, access_key: &str) -> Result<KeyInfo, Error> {
        self.keys.lock().expect("key cache").remove(access_key);
        self.access_key(access_key).await
    }

    /// An access key (secret and bucket rights), from a short-lived cache.
    pub async fn access_key(&self, access_key: &str) -> Result<KeyInfo, Error> {
        if let Some((k, at)) = self.keys.lock().expect("key cache").get(access_key) {
            if at.elapsed() < KEY_CACHE_TTL {
                return Ok(k.clone());
            }
        }
        let key = match self.ns.meta().get_key(access_key).await {
            Ok(k) => k,
            Err(metastore::Error::NoSuchAccessKey(_)) => return Err(Error::InvalidAccessKeyId),
            Err(e) => return Err(e.into()),
        };
        self.keys
            .lock()
            .expect("key cache")
            .insert(access_key.to_string(), (key.clone(), Instant::now()));
        Ok(key)
    }
}

/// Serves S3 on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let gw = Arc::new(Gateway::new(&config));
    let refresh = gw.cluster.spawn_refresh(gw.ns.meta().clone());
    let merge = crate::merge::spawn(gw.data.clone(), gw.ns.meta().clone());
    let nfs = match config.nfs.clone() {
        Some(nfs) => Some(crate::nfs::spawn(gw.clone(), &config.secret, nfs).await?),
        None => None,
    };
    let router = Router::new()
        .fallback(crate::s3::router::handle)
        .with_state(gw);
    let result = troika_rpc::serve::serve(listener, router, shutdown).await;
    refresh.abort();
    merge.abort();
    if let Some(nfs) = nfs {
        nfs.abort();
    }
    result.map_err(|e| Error::Internal(e.to_string()))
}
