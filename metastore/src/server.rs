//! A meta node: the Raft member that holds the metadata state machine,
//! served over HTTP/2.
//!
//! - `POST /v1/command`: a [`Request`], proposed through Raft; answered once
//!   a majority has it durably and it is applied. Followers answer
//!   [`Error::NotLeader`] with the leader's address.
//! - `POST /v1/query`: answered by the leader under its lease or after a
//!   ReadIndex round (see [`crate::lease`]), so a read sees every
//!   acknowledged write.
//! - `POST /v1/heartbeat`: storage node liveness, kept by the leader in
//!   memory.
//! - `POST /v1/raft/{append,vote,snapshot}`: Raft between meta nodes;
//!   `POST /v1/raft/status`, `POST /v1/raft/members`: administration.
//! - `GET /health`, `GET /ready`.
//!
//! Everything but health and readiness is behind the cluster MAC.

use std::collections::{BTreeMap, HashMap};
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
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, ServerState};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use troika_rpc::client::{require_cluster_auth, verify_body};
use troika_rpc::health::{ready_response, Health, Ready};
use troika_rpc::{ClusterSecret, RpcClient};

use crate::api::{
    Activity, ClusterStatus, Command, Heartbeat, NodeId, NodeInfo, NodeMode, Query, RaftStatus,
    Reply, Request,
};
use crate::error::Error;
use crate::raft::log_store::LogStore;
use crate::raft::network::{Network, APPEND_PATH, SNAPSHOT_PATH, VOTE_PATH};
use crate::raft::state_machine::{open_db, StateMachine};
use crate::raft::Raft;
use crate::state::repair::{NodeView, View};
use crate::store::Store;

/// How long a storage node may go unheard before it is down (and its
/// copies are remade elsewhere) in the all-in-one server.
pub const NODE_DOWN_AFTER: Duration = Duration::from_secs(10);
/// A node unheard for this long (but less than the down timeout) is
/// suspect: shown, not acted on.
pub const NODE_SUSPECT_AFTER: Duration = Duration::from_secs(3);
/// A copy dropped by trimming or a move is deleted this long after the
/// decision (its cutoff), and only if not written since: a gateway may
/// have just stored the same bytes there, and its commit places the copy
/// again and cancels the queued deletion.
pub const DELETE_DELAY: Duration = Duration::from_secs(10);
/// How often the leader trims copies beyond their goal.
const TRIM_INTERVAL: Duration = Duration::from_secs(2);
/// Name of the database file inside the meta data directory.
pub const DB_FILE: &str = "meta.redb";
/// How long a proposal may wait for a quorum before the client is told to
/// retry (it may still commit; the retry is deduplicated).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a linearizable read may wait for the leader to confirm it still
/// leads.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);

pub struct MetaConfig {
    pub data_dir: PathBuf,
    pub secret: ClusterSecret,
    /// This node's Raft id.
    pub id: NodeId,
    /// The address other meta nodes and clients reach this one at.
    pub advertise: String,
    /// The first members of a new group (with `init`).
    pub peers: BTreeMap<NodeId, String>,
    /// Initialise a new group with `peers` if this node has no state yet.
    pub init: bool,
    /// Build a snapshot (and compact the log) after this many entries.
    pub snapshot_every: u64,
    /// The database's page cache, in bytes.
    pub cache_bytes: usize,
    /// Multipart uploads older than this are aborted (their parts freed).
    pub upload_expiry: Duration,
    /// How long a blob stays unreferenced before its copies are deleted.
    pub gc_grace: Duration,
    /// How long a storage node may go unheard before it is down.
    pub node_down: Duration,
    /// A blob file no record names is deleted once it is this old (a
    /// gateway's write may be between its copies and its commit).
    pub orphan_age: Duration,
}

pub(crate) struct Shared {
    raft: Raft,
    /// Commands waiting to be proposed together (group commit).
    proposals: tokio::sync::mpsc::Sender<Proposal>,
    store: Store,
    /// Last heartbeat of each storage node: soft state of the leader,
    /// cleared when it becomes leader.
    liveness: Mutex<Liveness>,
    node_down: Duration,
    orphan_age: Duration,
    /// Scans of the whole blobs table, and what the last ones found; see
    /// [`ScanKey`].
    pub(crate) scans: ScanCache,
    /// Commands and queries served, for `/metrics`.
    pub(crate) served: Served,
    /// Leadership confirmed recently enough to read without a round.
    lease: crate::lease::Lease,
    /// What the Raft log has written.
    pub(crate) log_stats: Arc<crate::raft::wal::WalStats>,
}

#[derive(Default)]
pub(crate) struct Served {
    pub(crate) commands: std::sync::atomic::AtomicU64,
    pub(crate) queries: std::sync::atomic::AtomicU64,
}

/// What a scan of the blobs table (repair work, trims, census) depends on
/// besides the tables, which change only by applying log entries: the
/// applied index, and what the view says of each node. While it stays the
/// same, so does the scan's result, and an idle leader does not read the
/// whole table every round: with millions of blobs that is a core's work.
/// Fill ratios (for rebalancing) count in whole percents.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ScanKey(String);

impl ScanKey {
    fn of(s: &Shared, view: &View, fill: Option<&HashMap<NodeId, f64>>) -> Self {
        use std::fmt::Write;
        let applied = s.raft.metrics().borrow().last_applied.map(|l| l.index);
        let mut k = format!("{applied:?}");
        for (id, n) in &view.nodes {
            let _ = write!(
                k,
                ";{id}:{}:{}{}{}:{}",
                n.zone,
                view.counts(id) as u8,
                view.readable(id) as u8,
                view.takes(id) as u8,
                n.capacity > 0
            );
            if let Some(f) = fill.and_then(|f| f.get(id)) {
                let _ = write!(k, ":{}", (f * 100.0).round() as i64);
            }
        }
        Self(k)
    }
}

#[derive(Default)]
pub(crate) struct ScanCache {
    /// Whole-table scans made, for `/metrics`.
    pub(crate) count: std::sync::atomic::AtomicU64,
    /// Per storage node, the key at which it last had no repair work.
    idle_repair: Mutex<HashMap<NodeId, ScanKey>>,
    /// The key at which there was last nothing to trim.
    idle_trim: Mutex<Option<ScanKey>>,
    /// The last census, and its key.
    census: Mutex<Option<(ScanKey, crate::state::repair::Census)>>,
}

impl ScanCache {
    fn counted(&self) {
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Shared {
    pub(crate) fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Runs `read` against the store on a blocking thread.
    async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Store) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let s = self.clone();
        tokio::task::spawn_blocking(move || read(&s.store))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    }
}

/// A query's reply, or its error.
fn reply(r: Result<Reply, Error>) -> Response {
    match r {
        Ok(reply) => Json(reply).into_response(),
        Err(e) => error_response(e),
    }
}

/// A command waiting for its group's commit, its size as JSON, and where
/// its outcome goes.
type Proposal = (
    Request,
    usize,
    tokio::sync::oneshot::Sender<Result<crate::api::Response, Error>>,
);

/// Most commands proposed as one log entry.
const GROUP_MAX: usize = 512;
/// Most bytes (as JSON) of commands proposed as one log entry, so that an
/// entry, and the AppendEntries carrying it, stays small enough to reach a
/// follower within openraft's fixed per-RPC timeout (the heartbeat
/// interval). A single command over it still makes an entry of its own.
const GROUP_MAX_BYTES: usize = 256 << 10;
/// The largest command accepted. Every request the gateways and storage
/// nodes make is far below it (user metadata is bounded at 2 KB, a
/// 10,000-part completion is about 1 MB); what is over it is refused
/// rather than allowed to make a log entry that cannot replicate in time.
pub const MAX_REQUEST_BYTES: usize = 4 << 20;
/// Groups proposed at once: one being replicated while the next fills.
const GROUPS_IN_FLIGHT: usize = 2;

#[derive(Default)]
pub(crate) struct Liveness {
    seen: HashMap<NodeId, (Instant, Heartbeat)>,
    /// When this node last became leader: a node it has not heard from yet
    /// counts as alive for one down timeout after that.
    leader_since: Option<Instant>,
}

fn raft_config(snapshot_every: u64) -> Result<openraft::Config, Error> {
    openraft::Config {
        cluster_name: "troika-meta".into(),
        heartbeat_interval: 150,
        election_timeout_min: 600,
        election_timeout_max: 1200,
        // Each snapshot chunk gets this long, and the last one includes the
        // follower's install of the whole state, which takes time in
        // proportion to it (tens of seconds per million objects). A chunk
        // that timed out is not retried: the whole snapshot is sent again,
        // so a timeout shorter than the install never lets a follower back.
        // A peer that is gone, hung or cut off is found sooner by the HTTP/2
        // keepalive (about 20 s), which fails the request.
        install_snapshot_timeout: 30 * 60 * 1000,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snapshot_every),
        // Keep a little log behind each snapshot for followers just behind.
        max_in_snapshot_log_to_keep: snapshot_every.min(500),
        purge_batch_size: 256,
        max_payload_entries: 512,
        ..Default::default()
    }
    .validate()
    .map_err(|e| Error::Internal(e.to_string()))
}

/// Opens the node's state under `config.data_dir`, joins (or starts) its
/// Raft group and serves on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: MetaConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let internal = |e: &dyn std::fmt::Display| Error::Internal(e.to_string());
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| Error::Internal(format!("{}: {e}", config.data_dir.display())))?;
    let db =
        open_db(&config.data_dir.join(DB_FILE), config.cache_bytes).map_err(|e| internal(&e))?;
    let applied = crate::raft::applied::Applied::new(db);
    let log = LogStore::open(
        &config.data_dir.join(crate::raft::log_store::LOG_DIR),
        applied.clone(),
    )
    .map_err(|e| internal(&e))?;
    let log_stats = log.stats();
    let sm = StateMachine::new(applied.clone(), config.data_dir.join("snapshots"))
        .map_err(|e| internal(&e))?;
    let raft = Raft::new(
        config.id,
        Arc::new(raft_config(config.snapshot_every)?),
        Network::new(RpcClient::new(config.secret.clone())),
        log,
        sm,
    )
    .await
    .map_err(|e| internal(&e))?;
    if config.init && !raft.is_initialized().await.map_err(|e| internal(&e))? {
        let members: BTreeMap<NodeId, BasicNode> = config
            .peers
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr)))
            .collect();
        tracing::info!(?members, "initialising a new metadata group");
        raft.initialize(members).await.map_err(|e| internal(&e))?;
    }
    let (proposals, queue) = tokio::sync::mpsc::channel(4 * GROUP_MAX);
    tokio::spawn(group_commit(raft.clone(), queue));
    let shared = Arc::new(Shared {
        raft: raft.clone(),
        proposals,
        store: Store::from_applied(applied),
        liveness: Mutex::new(Liveness::default()),
        node_down: config.node_down,
        orphan_age: config.orphan_age,
        scans: ScanCache::default(),
        served: Served::default(),
        lease: Default::default(),
        log_stats,
    });
    let _local = crate::local::NODES.register(&config.advertise, &shared);
    let watcher = tokio::spawn(watch_leadership(shared.clone()));
    let expirer = tokio::spawn(expire_uploads(shared.clone(), config.upload_expiry));
    let collector = tokio::spawn(collect_garbage(shared.clone(), config.gc_grace));
    let trimmer = tokio::spawn(trim_copies(shared.clone()));
    let internal_routes = Router::new()
        .route("/v1/command", post(command))
        .route("/v1/query", post(query))
        .route("/v1/heartbeat", post(heartbeat))
        .route(APPEND_PATH, post(raft_append))
        .route(VOTE_PATH, post(raft_vote))
        .route(SNAPSHOT_PATH, post(raft_snapshot))
        .route("/v1/raft/status", post(raft_status))
        .route("/v1/raft/members", post(raft_members))
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(shared.clone())
        .layer(axum::middleware::from_fn_with_state(
            config.secret.clone(),
            require_cluster_auth,
        ));
    let router = Router::new()
        .route("/health", get(|| async { Json(Health::ok("meta")) }))
        .route("/ready", get(ready))
        .route("/metrics", get(crate::metrics::render))
        .with_state(shared)
        .merge(internal_routes);
    tracing::info!(id = config.id, addr = %config.advertise, "meta node serving");
    let result = troika_rpc::serve::serve(listener, router, shutdown)
        .await
        .map_err(|e| Error::Internal(e.to_string()));
    watcher.abort();
    expirer.abort();
    collector.abort();
    trimmer.abort();
    let _ = raft.shutdown().await;
    result
}

/// Group commit: takes every command waiting, proposes them as one log
/// entry (one append, one fsync on each node) and hands each its outcome.
async fn group_commit(raft: Raft, mut queue: tokio::sync::mpsc::Receiver<Proposal>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(GROUPS_IN_FLIGHT));
    let mut held: Option<Proposal> = None;
    loop {
        let first = match held.take() {
            Some(p) => p,
            None => match queue.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // Everything that queued while the previous group was in flight,
        // up to the group's bounds; what does not fit starts the next one.
        let mut bytes = first.1;
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            let p = match held.take() {
                Some(p) => p,
                None => match queue.try_recv() {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            if bytes + p.1 > GROUP_MAX_BYTES {
                held = Some(p);
                break;
            }
            bytes += p.1;
            group.push(p);
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let (reqs, waiters): (Vec<Request>, Vec<_>) =
                group.into_iter().map(|(r, _, w)| (r, w)).unzip();
            let n = reqs.len();
            let outcome = tokio::time::timeout(WRITE_TIMEOUT, raft.client_write(reqs)).await;
            drop(slot);
            match outcome {
                Ok(Ok(resp)) if resp.data.len() == n => {
                    for (w, r) in waiters.into_iter().zip(resp.data) {
                        let _ = w.send(Ok(r));
                    }
                }
                Ok(Ok(_)) => {
                    let e = Error::Internal("group reply of the wrong size".into());
                    for w in waiters {
                        let _ = w.send(Err(e.clone()));
                    }
                }
                Ok(Err(e)) => {
                    let err = match e {
                        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                            Error::NotLeader(f.leader_node.map(|n| n.addr))
                        }
                        e => Error::Unavailable(e.to_string()),
                    };
                    for w in waiters {
                        let _ = w.send(Err(err.clone()));
                    }
                }
                Err(_) => {
                    let err = Error::Unavailable("no quorum acknowledged the write in time".into());
                    for w in waiters {
                        let _ = w.send(Err(err.clone()));
                    }
                }
            }
        });
    }
}

/// A leader task's commands: one client id, numbered in order, like any
/// other client's.
struct Proposer {
    client: u64,
    seq: u64,
}

impl Proposer {
    fn new() -> Self {
        Self {
            client: rand::random(),
            seq: 0,
        }
    }

    /// Proposes `cmd` and waits for its outcome; `None` once the node is
    /// shutting down (the task should end).
    async fn propose(
        &mut self,
        s: &Shared,
        now: u64,
        cmd: Command,
    ) -> Option<Result<Reply, Error>> {
        self.seq += 1;
        let req = Request {
            client: self.client,
            seq: self.seq,
            now,
            cmd,
        };
        let size = json_size(&req);
        let (tx, rx) = tokio::sync::oneshot::channel();
        s.proposals.send((req, size, tx)).await.ok()?;
        Some(match rx.await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Unavailable("proposal dropped".into())),
        })
    }
}

/// On the leader: forgets blobs unreferenced for longer than `grace` and
/// queues their copies for deletion (see `state::garbage`).
async fn collect_garbage(s: Arc<Shared>, grace: Duration) {
    let every = (grace / 4).clamp(Duration::from_millis(500), Duration::from_secs(30));
    let mut proposer = Proposer::new();
    loop {
        tokio::time::sleep(every).await;
        if !s.is_leader() {
            continue;
        }
        loop {
            let now = crate::client::now_ns();
            let cmd = Command::CollectGarbage {
                cutoff: now.saturating_sub(grace.as_nanos() as u64),
                limit: 1000,
            };
            let Some(outcome) = proposer.propose(&s, now, cmd).await else {
                return;
            };
            match outcome {
                Ok(Reply::Collected(n)) if n > 0 => {
                    tracing::info!(blobs = n, "collected unreferenced blobs");
                    if n < 1000 {
                        break;
                    }
                }
                _ => break,
            }
        }
    }
}

/// On the leader: aborts multipart uploads older than `max_age`, so
/// abandoned parts do not hold their blobs forever.
async fn expire_uploads(s: Arc<Shared>, max_age: Duration) {
    let every = (max_age / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut proposer = Proposer::new();
    loop {
        tokio::time::sleep(every).await;
        if !s.is_leader() {
            continue;
        }
        let now = crate::client::now_ns();
        let before = now.saturating_sub(max_age.as_nanos() as u64);
        let stale = s.read(move |st| st.query(&Query::StaleUploads { before }));
        let Ok(Reply::Uploads { uploads, .. }) = stale.await else {
            continue;
        };
        for up in uploads {
            let cmd = Command::AbortUpload {
                upload_id: up.upload_id.clone(),
                now,
            };
            let Some(outcome) = proposer.propose(&s, now, cmd).await else {
                return;
            };
            match outcome {
                Ok(_) => {
                    tracing::info!(upload = %up.upload_id, bucket = %up.bucket, key = %up.key, "aborted an abandoned multipart upload")
                }
                other => {
                    tracing::debug!(upload = %up.upload_id, ?other, "abandoned upload not aborted")
                }
            }
        }
    }
}

/// Resets storage node liveness whenever this node becomes leader.
async fn watch_leadership(s: Arc<Shared>) {
    let mut metrics = s.raft.metrics();
    let mut was_leader = false;
    loop {
        let is_leader = metrics.borrow().state == ServerState::Leader;
        if is_leader && !was_leader {
            let mut live = s.liveness.lock().expect("liveness lock");
            live.seen.clear();
            live.leader_since = Some(Instant::now());
        }
        was_leader = is_leader;
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

fn leader_addr(s: &Shared) -> Option<String> {
    let m = s.raft.metrics().borrow().clone();
    let leader = m.current_leader?;
    m.membership_config
        .membership()
        .get_node(&leader)
        .map(|n| n.addr.clone())
}

fn status(s: &Shared) -> RaftStatus {
    let m = s.raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    RaftStatus {
        id: m.id,
        state: format!("{:?}", m.state).to_lowercase(),
        leader: m.current_leader,
        leader_addr: leader_addr(s),
        term: m.current_term,
        last_log_index: m.last_log_index,
        applied_index: m.last_applied.map(|l| l.index),
        voters: membership.voter_ids().collect(),
        members: membership
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect(),
    }
}

async fn ready(State(s): State<Arc<Shared>>) -> Response {
    let st = status(&s);
    let (ready, detail) = match st.leader {
        Some(l) if l == st.id => (true, format!("leader (term {})", st.term)),
        Some(l) => (true, format!("follower of {l} (term {})", st.term)),
        None => (false, format!("no leader known ({})", st.state)),
    };
    ready_response(Ready {
        ready,
        role: "meta".into(),
        detail,
    })
}

/// The length of `value` as JSON, without building it.
pub(crate) fn json_size(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, value);
    c.0
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

/// Maps a Raft refusal to the client-facing error: a redirect to the leader
/// when there is one, else "retry later".
fn not_leader<E: std::fmt::Display>(s: &Shared, forward: bool, e: E) -> Error {
    if forward {
        Error::NotLeader(leader_addr(s))
    } else {
        Error::Unavailable(e.to_string())
    }
}

async fn command(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let req: Request = match parse(&headers, &body) {
        Ok(r) => r,
        Err(e) => return error_response(e),
    };
    reply(serve_command(&s, req, body.len()).await)
}

/// Proposes `req` (of `size` bytes as JSON) and waits for its outcome.
pub(crate) async fn serve_command(s: &Shared, req: Request, size: usize) -> Result<Reply, Error> {
    s.served
        .commands
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if size > MAX_REQUEST_BYTES {
        return Err(Error::Invalid(format!(
            "a command of {size} bytes is over the {MAX_REQUEST_BYTES} a log entry may hold"
        )));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    if s.proposals.send((req, size, tx)).await.is_err() {
        return Err(Error::Unavailable("meta node shutting down".into()));
    }
    match rx.await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::Unavailable("proposal dropped".into())),
    }
}

async fn query(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let q: Query = match parse(&headers, &body) {
        Ok(q) => q,
        Err(e) => return error_response(e),
    };
    reply(serve_query(&s, q).await)
}

/// Returns once this node is sure it leads and has applied everything
/// acknowledged before the call: under its lease at once, else after a
/// ReadIndex round (which renews the lease).
async fn confirm_leadership(s: &Shared) -> Result<(), Error> {
    if s.lease.valid(&s.raft) {
        return Ok(());
    }
    let start = s.lease.start(&s.raft);
    match tokio::time::timeout(READ_TIMEOUT, s.raft.ensure_linearizable()).await {
        Err(_) => Err(Error::Unavailable(
            "leadership could not be confirmed".into(),
        )),
        Ok(Err(e)) => {
            let forward = e.forward_to_leader::<BasicNode>().is_some();
            Err(not_leader(s, forward, e))
        }
        Ok(Ok(_)) => {
            s.lease.confirmed(&s.raft, start);
            Ok(())
        }
    }
}

/// Answers `q` once this node is sure it leads (see [`confirm_leadership`]).
pub(crate) async fn serve_query(s: &Arc<Shared>, q: Query) -> Result<Reply, Error> {
    s.served
        .queries
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    confirm_leadership(s).await?;
    match q {
        Query::RepairWork { node, limit } => {
            return repair_work(s, node, limit as usize).await;
        }
        Query::ClusterStatus => {
            return cluster_status(s)
                .await
                .map(|st| Reply::Status(Box::new(st)));
        }
        Query::Unplaced { node, blobs } => {
            let found = s.read(move |st| st.unplaced(node, &blobs)).await;
            let cutoff = crate::client::now_ns().saturating_sub(s.orphan_age.as_nanos() as u64);
            return found.map(|blobs| Reply::Unplaced { blobs, cutoff });
        }
        Query::Placed { node, after, limit } => {
            let limit = (limit as usize).clamp(1, 10_000);
            let found = s.read(move |st| st.placed(node, after, limit)).await;
            return found.map(Reply::Placed);
        }
        _ => {}
    }
    // Point reads take microseconds: a thread hop would cost more.
    let point = matches!(
        q,
        Query::GetNode { .. }
            | Query::Lookup { .. }
            | Query::HeadBucket { .. }
            | Query::GetKey { .. }
            | Query::GetObject { .. }
            | Query::GetGoal { .. }
    );
    let result = match point.then(|| s.store.try_query(&q)).flatten() {
        Some(r) => r,
        None => s.read(move |st| st.query(&q)).await,
    };
    result.map(|r| match r {
        Reply::Nodes(mut nodes) => {
            annotate(s, &mut nodes);
            Reply::Nodes(nodes)
        }
        other => other,
    })
}

/// Fills in what the leader knows of each node from its heartbeats: whether
/// it is alive, its state, capacity and progress. A node not heard from
/// yet counts as alive for one down timeout after this node became leader.
pub(crate) fn annotate(s: &Shared, nodes: &mut [NodeInfo]) {
    let live = s.liveness.lock().expect("liveness lock");
    let grace = live.leader_since.is_some_and(|t| t.elapsed() < s.node_down);
    let now = crate::client::now_ns();
    for n in nodes {
        let quiet = match live.seen.get(&n.id) {
            Some((seen, hb)) => {
                n.capacity_bytes = hb.capacity_bytes;
                n.free_bytes = hb.free_bytes;
                n.blob_count = hb.blob_count;
                n.used_bytes = hb.used_bytes;
                n.scrub = hb.scrub.clone();
                n.copies = hb.copies.clone();
                Some(seen.elapsed())
            }
            None => None,
        };
        n.alive = quiet.map_or(grace, |q| q < s.node_down);
        let health = match quiet {
            Some(q) if q >= s.node_down => "down",
            None if !grace => "down",
            Some(q) if q >= NODE_SUSPECT_AFTER => "suspect",
            _ => "up",
        };
        n.state = match n.mode {
            NodeMode::Active => health.to_string(),
            NodeMode::Maintenance { until } if until > now => format!("maintenance ({health})"),
            NodeMode::Maintenance { .. } => format!("{health} (maintenance ended)"),
            NodeMode::Draining => format!("draining ({health})"),
            NodeMode::Removed => "removed".to_string(),
        };
    }
}

/// Every registered node with the leader's knowledge of it, as a [`View`]
/// for repair decisions too.
async fn nodes_and_view(s: &Arc<Shared>) -> Result<(Vec<NodeInfo>, View), Error> {
    let Reply::Nodes(mut nodes) = s.read(|st| st.query(&Query::ListNodes)).await? else {
        return Err(Error::Internal("node list".into()));
    };
    annotate(s, &mut nodes);
    let view = View {
        now: crate::client::now_ns(),
        nodes: nodes
            .iter()
            .map(|n| {
                (
                    n.id,
                    NodeView {
                        addr: n.addr.clone(),
                        zone: n.zone.clone(),
                        alive: n.alive,
                        mode: n.mode,
                        capacity: n.capacity_bytes,
                    },
                )
            })
            .collect(),
    };
    Ok((nodes, view))
}

/// This node has led for a whole down timeout, so it has heard from every
/// live storage node: a node it has not heard from is really down.
fn settled(s: &Shared) -> bool {
    s.liveness
        .lock()
        .expect("liveness lock")
        .leader_since
        .is_some_and(|t| t.elapsed() >= s.node_down)
}

/// Answers `RepairWork`. Right after an election the leader has not heard
/// from every node yet, so it hands out no work until it is settled.
async fn repair_work(s: &Arc<Shared>, node: NodeId, limit: usize) -> Result<Reply, Error> {
    if !settled(s) {
        return Ok(Reply::Repairs(Vec::new()));
    }
    let result = async {
        let (_, view) = nodes_and_view(s).await?;
        let key = ScanKey::of(s, &view, None);
        let idle = s
            .scans
            .idle_repair
            .lock()
            .expect("scan cache lock")
            .get(&node)
            == Some(&key);
        if idle {
            return Ok(Vec::new());
        }
        s.scans.counted();
        let work = s.read(move |st| st.repair_work(node, &view, limit)).await?;
        {
            let mut idle = s.scans.idle_repair.lock().expect("scan cache lock");
            if work.is_empty() {
                idle.insert(node, key);
            } else {
                idle.remove(&node);
            }
        }
        Ok(work)
    }
    .await;
    result.map(Reply::Repairs)
}

/// The storage layer's health, for `troika admin status` and the metrics.
pub(crate) async fn cluster_status(s: &Arc<Shared>) -> Result<ClusterStatus, Error> {
    let (mut nodes, view) = nodes_and_view(s).await?;
    let key = ScanKey::of(s, &view, None);
    let cached = s.scans.census.lock().expect("scan cache lock").clone();
    let census = match cached {
        Some((k, c)) if k == key => c,
        _ => {
            s.scans.counted();
            let c = s.read(move |st| st.census(&view)).await?;
            *s.scans.census.lock().expect("scan cache lock") = Some((key, c.clone()));
            c
        }
    };
    let mut copy_rate = 0;
    let (mut scrub_left, mut scrub_rate) = (0, 0);
    for n in &mut nodes {
        n.placed = census.placed.get(&n.id).copied().unwrap_or_default();
        if n.alive {
            copy_rate += n.copies.bytes_per_s;
            scrub_left += n.scrub.pass_bytes.saturating_sub(n.scrub.checked_bytes);
            scrub_rate += n.scrub.bytes_per_s;
        }
    }
    Ok(ClusterStatus {
        nodes,
        health: census.health,
        repair: Activity::new(census.repair_bytes, copy_rate),
        rebalance: Activity::new(census.rebalance_bytes, copy_rate),
        drain: Activity::new(census.drain_bytes, copy_rate),
        scrub: Activity::new(scrub_left, scrub_rate),
    })
}

/// On the leader: ends maintenance windows that are over, and drops copies
/// beyond their goal and those left on draining and removed nodes once
/// their blobs are at goal without them.
async fn trim_copies(s: Arc<Shared>) {
    let mut proposer = Proposer::new();
    loop {
        tokio::time::sleep(TRIM_INTERVAL).await;
        if !s.is_leader() || !settled(&s) {
            continue;
        }
        let Ok((nodes, view)) = nodes_and_view(&s).await else {
            continue;
        };
        // Maintenance is bounded: once its time is up the node is active
        // again (and, if still down, its copies are remade).
        for n in &nodes {
            if matches!(n.mode, NodeMode::Maintenance { until } if until <= view.now) {
                let cmd = Command::SetNodeMode {
                    id: n.id,
                    mode: NodeMode::Active,
                };
                if proposer.propose(&s, view.now, cmd).await.is_none() {
                    return;
                }
                tracing::info!(node = n.id, "maintenance ended");
            }
        }
        let fill: HashMap<NodeId, f64> = nodes.iter().map(|n| (n.id, n.fill())).collect();
        let key = ScanKey::of(&s, &view, Some(&fill));
        let idle = s.scans.idle_trim.lock().expect("scan cache lock").as_ref() == Some(&key);
        if idle {
            continue;
        }
        s.scans.counted();
        let Ok(copies) = s.read(move |st| st.trims(&view, &fill, 1000)).await else {
            continue;
        };
        if copies.is_empty() {
            *s.scans.idle_trim.lock().expect("scan cache lock") = Some(key);
            continue;
        }
        let now = crate::client::now_ns();
        let n = copies.len();
        let cmd = Command::TrimCopies {
            copies,
            cutoff: now,
        };
        match proposer.propose(&s, now, cmd).await {
            None => return,
            Some(Ok(_)) => tracing::info!(copies = n, "dropped copies beyond their goal"),
            Some(Err(e)) => tracing::debug!(error = %e, "trimming failed"),
        }
    }
}

async fn heartbeat(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let hb: Heartbeat = match parse(&headers, &body) {
        Ok(h) => h,
        Err(e) => return error_response(e),
    };
    let st = status(&s);
    if st.leader != Some(st.id) {
        return error_response(Error::NotLeader(st.leader_addr));
    }
    s.liveness
        .lock()
        .expect("liveness lock")
        .seen
        .insert(hb.id, (Instant::now(), hb));
    Json(Reply::Done).into_response()
}

async fn raft_append(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    match parse(&headers, &body) {
        Ok(req) => Json(s.raft.append_entries(req).await).into_response(),
        Err(e) => error_response(e),
    }
}

async fn raft_vote(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    match parse(&headers, &body) {
        Ok(req) => Json(s.raft.vote(req).await).into_response(),
        Err(e) => error_response(e),
    }
}

async fn raft_snapshot(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !verify_body(&headers, &body) {
        return error_response(Error::Invalid(
            "body does not match its signed digest".into(),
        ));
    }
    match crate::raft::network::decode_chunk(&body) {
        Ok(req) => Json(s.raft.install_snapshot(req).await).into_response(),
        Err(e) => error_response(Error::Invalid(e)),
    }
}

async fn raft_status(State(s): State<Arc<Shared>>) -> Response {
    Json(status(&s)).into_response()
}

/// A change to the group's membership.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MemberChange {
    /// Add a voter: it first catches up as a learner.
    Add {
        id: NodeId,
        addr: String,
    },
    Remove {
        id: NodeId,
    },
}

async fn raft_members(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let change: MemberChange = match parse(&headers, &body) {
        Ok(c) => c,
        Err(e) => return error_response(e),
    };
    let to_error = |e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>| {
        let forward = matches!(e, RaftError::APIError(ClientWriteError::ForwardToLeader(_)));
        not_leader(&s, forward, e)
    };
    let result = match change {
        MemberChange::Add { id, addr } => {
            match s.raft.add_learner(id, BasicNode::new(addr), true).await {
                Ok(_) => s
                    .raft
                    .change_membership(ChangeMembers::AddVoterIds([id].into()), false)
                    .await
                    .map(drop),
                Err(e) => Err(e),
            }
        }
        MemberChange::Remove { id } => s
            .raft
            .change_membership(ChangeMembers::RemoveVoters([id].into()), false)
            .await
            .map(drop),
    };
    match result {
        Ok(()) => Json(status(&s)).into_response(),
        Err(e) => error_response(to_error(e)),
    }
}
