//! The replicated state machine: committed requests applied to the redb
//! tables through [`crate::state::apply`], and snapshots of those tables.
//!
//! Entries are applied in the open transaction of [`Applied`], committed
//! at checkpoints: a crash loses at most a suffix of applied entries,
//! which openraft applies again from the (durable) log, because
//! `last_applied` is stored in the same transaction as the changes it
//! covers.
//!
//! Building a snapshot is a checkpoint: a durable commit of what is
//! applied, after which the log below it may be purged. No copy of the
//! tables is made then; a snapshot's data is dumped from a read view only
//! when a follower needs it ([`super::snapshot_file`]). Installs are one
//! durable transaction. File format: see [`super::snapshot`]; dumped and
//! installed by streaming, never held whole in memory.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, SnapshotMeta,
    StoredMembership,
};
use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;

use super::applied::Applied;
use super::snapshot_file::SnapshotFile;
use super::{blocking, io_error, snapshot, NodeId, StorageError, TypeConfig};
use crate::api::{Request, Response};
use crate::state;

/// `last_applied`, `membership` → JSON.
pub const SM_META: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_meta");
/// (client, seq) → (proposer time, response JSON): replies to requests
/// already applied, so a retried request is answered, not applied again.
pub const APPLIED: TableDefinition<(u64, u64), (u64, &[u8])> =
    TableDefinition::new("applied_requests");
/// (proposer time, client, seq): the same, in time order, for expiry.
pub const APPLIED_BY_TIME: TableDefinition<(u64, u64, u64), ()> =
    TableDefinition::new("applied_requests_by_time");
/// How long a request's reply is kept for deduplication.
pub const DEDUP_WINDOW_NS: u64 = 10 * 60 * 1_000_000_000;

type Entry = openraft::Entry<TypeConfig>;
type Membership = StoredMembership<NodeId, openraft::BasicNode>;
type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

fn sm_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    io_error(ErrorSubject::StateMachine, verb, e)
}

fn snap_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    io_error(ErrorSubject::Snapshot(None), verb, e)
}

#[derive(Clone)]
pub struct StateMachine {
    applied: Arc<Applied>,
    snapshot_dir: PathBuf,
    /// The file a snapshot from the leader is being received into.
    receiving: Arc<std::sync::Mutex<Option<PathBuf>>>,
}

impl StateMachine {
    pub fn new(applied: Arc<Applied>, snapshot_dir: PathBuf) -> Result<Self, StorageError> {
        std::fs::create_dir_all(&snapshot_dir).map_err(|e| snap_err(ErrorVerb::Write, e))?;
        // Snapshots half received, and copies an earlier layout kept.
        for entry in std::fs::read_dir(&snapshot_dir).map_err(|e| snap_err(ErrorVerb::Read, e))? {
            let _ = std::fs::remove_file(entry.map_err(|e| snap_err(ErrorVerb::Read, e))?.path());
        }
        applied.write_durable(|txn| -> Result<(), StorageError> {
            state::create_all(txn).map_err(|e| sm_err(ErrorVerb::Write, e))?;
            txn.open_table(SM_META)
                .map_err(|e| sm_err(ErrorVerb::Write, e))?;
            txn.open_table(APPLIED)
                .map_err(|e| sm_err(ErrorVerb::Write, e))?;
            txn.open_table(APPLIED_BY_TIME)
                .map_err(|e| sm_err(ErrorVerb::Write, e))?;
            // The layout this build reads; a database of another is refused.
            let found: Option<u32> = {
                let t = txn
                    .open_table(SM_META)
                    .map_err(|e| sm_err(ErrorVerb::Read, e))?;
                let v = t
                    .get("schema_version")
                    .map_err(|e| sm_err(ErrorVerb::Read, e))?;
                match v {
                    Some(v) => Some(
                        serde_json::from_slice(v.value())
                            .map_err(|e| sm_err(ErrorVerb::Read, e))?,
                    ),
                    None => None,
                }
            };
            match found {
                Some(v) if v != snapshot::SCHEMA_VERSION => Err(sm_err(
                    ErrorVerb::Read,
                    format!(
                        "the database has schema version {v}; this build reads version {}",
                        snapshot::SCHEMA_VERSION
                    ),
                )),
                Some(_) => Ok(()),
                None => Self::put_meta(txn, "schema_version", &snapshot::SCHEMA_VERSION),
            }
        })?;
        Ok(Self {
            applied,
            snapshot_dir,
            receiving: Default::default(),
        })
    }

    pub fn applied(&self) -> &Arc<Applied> {
        &self.applied
    }

    pub fn db(&self) -> &Arc<Database> {
        self.applied.db()
    }

    fn read_meta<T: serde::de::DeserializeOwned>(
        db: &Database,
        key: &str,
    ) -> Result<Option<T>, StorageError> {
        super::read_json(db, SM_META, key, ErrorSubject::StateMachine)
    }

    fn put_meta(
        txn: &WriteTransaction,
        key: &str,
        value: &impl Serialize,
    ) -> Result<(), StorageError> {
        super::write_json(txn, SM_META, key, value, ErrorSubject::StateMachine)
    }

    /// Applies a batch of entries in the open transaction (see
    /// [`super::applied`]). If a command fails (which must change nothing),
    /// the transaction is dropped, the entries it held are applied again
    /// and committed, and the failing entry is applied request by request,
    /// so the failed command's partial changes cannot leak.
    fn apply_batch(
        applied: &Applied,
        entries: Vec<Entry>,
    ) -> Result<Vec<Vec<Response>>, StorageError> {
        let db = applied.db();
        let werr = |e: crate::error::Error| sm_err(ErrorVerb::Write, e);
        let mut open = applied.lock();
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let result = Self::apply_entry(open.txn(db).map_err(werr)?, &entry)?;
            if let Some(replies) = result {
                out.push(replies);
                open.applied(entry);
                continue;
            }
            let before = open.abort().map_err(werr)?;
            for e in before {
                if Self::apply_entry(open.txn(db).map_err(werr)?, &e)?.is_none() {
                    return Err(sm_err(
                        ErrorVerb::Write,
                        format!("entry {} failed when applied again", e.log_id),
                    ));
                }
                open.applied(e);
            }
            open.commit(false).map_err(werr)?;
            out.push(Self::apply_one(db, &entry)?);
            open.committed_undurably();
        }
        if open.full() {
            open.commit(true).map_err(werr)?;
        }
        Ok(out)
    }

    /// Applies one entry in `txn`: its replies, or `None` if a command
    /// failed (leaving `txn` with partial changes: drop it).
    fn apply_entry(
        txn: &WriteTransaction,
        entry: &Entry,
    ) -> Result<Option<Vec<Response>>, StorageError> {
        match &entry.payload {
            EntryPayload::Blank => Ok(Some(Vec::new())),
            EntryPayload::Membership(m) => {
                Self::put_meta(
                    txn,
                    "membership",
                    &Membership::new(Some(entry.log_id), m.clone()),
                )?;
                Ok(Some(Vec::new()))
            }
            EntryPayload::Normal(reqs) => {
                let mut replies = Vec::with_capacity(reqs.len());
                for req in reqs {
                    match Self::already_applied(txn, req)? {
                        Some(done) => replies.push(done),
                        None => {
                            let result = state::apply(txn, &req.cmd);
                            if result.is_err() {
                                return Ok(None);
                            }
                            Self::remember(txn, req, &result)?;
                            replies.push(result);
                        }
                    }
                }
                Ok(Some(replies))
            }
        }
    }

    /// Applies one entry one request per transaction. `last_applied` moves
    /// to the entry only with its last request: after a crash in between,
    /// the entry is applied again and its first requests are answered from
    /// the deduplication table.
    fn apply_one(db: &Database, entry: &Entry) -> Result<Vec<Response>, StorageError> {
        let begin = || -> Result<WriteTransaction, StorageError> {
            let mut txn = db.begin_write().map_err(|e| sm_err(ErrorVerb::Write, e))?;
            txn.set_durability(Durability::None);
            Ok(txn)
        };
        let commit = |txn: WriteTransaction| -> Result<(), StorageError> {
            Self::put_meta(&txn, "last_applied", &entry.log_id)?;
            txn.commit().map_err(|e| sm_err(ErrorVerb::Write, e))
        };
        let reqs = match &entry.payload {
            EntryPayload::Normal(reqs) if !reqs.is_empty() => reqs,
            EntryPayload::Membership(m) => {
                let txn = begin()?;
                Self::put_meta(
                    &txn,
                    "membership",
                    &Membership::new(Some(entry.log_id), m.clone()),
                )?;
                commit(txn)?;
                return Ok(Vec::new());
            }
            _ => {
                commit(begin()?)?;
                return Ok(Vec::new());
            }
        };
        let mut replies = Vec::with_capacity(reqs.len());
        for (i, req) in reqs.iter().enumerate() {
            let mut txn = begin()?;
            let result = match Self::already_applied(&txn, req)? {
                Some(done) => done,
                None => {
                    let result = state::apply(&txn, &req.cmd);
                    if result.is_err() {
                        // A failed command changes nothing: start over with
                        // only the bookkeeping below.
                        txn.abort().map_err(|e| sm_err(ErrorVerb::Write, e))?;
                        txn = begin()?;
                    }
                    Self::remember(&txn, req, &result)?;
                    result
                }
            };
            replies.push(result);
            if i + 1 == reqs.len() {
                commit(txn)?;
            } else {
                txn.commit().map_err(|e| sm_err(ErrorVerb::Write, e))?;
            }
        }
        Ok(replies)
    }

    fn already_applied(
        txn: &WriteTransaction,
        req: &Request,
    ) -> Result<Option<Response>, StorageError> {
        let t = txn
            .open_table(APPLIED)
            .map_err(|e| sm_err(ErrorVerb::Read, e))?;
        let found = t
            .get((req.client, req.seq))
            .map_err(|e| sm_err(ErrorVerb::Read, e))?;
        match found {
            Some(v) => {
                let (_, bytes) = v.value();
                Ok(Some(
                    serde_json::from_slice(bytes).map_err(|e| sm_err(ErrorVerb::Read, e))?,
                ))
            }
            None => Ok(None),
        }
    }

    fn remember(
        txn: &WriteTransaction,
        req: &Request,
        result: &Response,
    ) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(result).map_err(|e| sm_err(ErrorVerb::Write, e))?;
        let mut t = txn
            .open_table(APPLIED)
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        let mut by_time = txn
            .open_table(APPLIED_BY_TIME)
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        t.insert((req.client, req.seq), (req.now, bytes.as_slice()))
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        by_time
            .insert((req.now, req.client, req.seq), ())
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        // Expire old replies, by the proposer's clock: deterministic.
        let cutoff = req.now.saturating_sub(DEDUP_WINDOW_NS);
        let old: Vec<(u64, u64, u64)> = by_time
            .range((0, 0, 0)..(cutoff, 0, 0))
            .map_err(|e| sm_err(ErrorVerb::Read, e))?
            .take(64)
            .map(|r| r.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()
            .map_err(|e| sm_err(ErrorVerb::Read, e))?;
        for (time, client, seq) in old {
            by_time
                .remove((time, client, seq))
                .map_err(|e| sm_err(ErrorVerb::Delete, e))?;
            t.remove((client, seq))
                .map_err(|e| sm_err(ErrorVerb::Delete, e))?;
        }
        Ok(())
    }

    /// The state as it is now, as a snapshot whose data is dumped from this
    /// read view when first read; `None` before anything is applied unless
    /// `even_empty`.
    fn current(
        db: &Database,
        dir: &Path,
        even_empty: bool,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let txn = db.begin_read().map_err(|e| snap_err(ErrorVerb::Read, e))?;
        let read_meta = |key: &str| -> Result<Option<Vec<u8>>, StorageError> {
            let t = txn
                .open_table(SM_META)
                .map_err(|e| snap_err(ErrorVerb::Read, e))?;
            Ok(t.get(key)
                .map_err(|e| snap_err(ErrorVerb::Read, e))?
                .map(|v| v.value().to_vec()))
        };
        let last_applied: Option<LogId<NodeId>> = match read_meta("last_applied")? {
            Some(b) => serde_json::from_slice(&b).map_err(|e| snap_err(ErrorVerb::Read, e))?,
            None => None,
        };
        if last_applied.is_none() && !even_empty {
            return Ok(None);
        }
        let membership: Membership = match read_meta("membership")? {
            Some(b) => serde_json::from_slice(&b).map_err(|e| snap_err(ErrorVerb::Read, e))?,
            None => Membership::default(),
        };
        let meta = Meta {
            last_log_id: last_applied,
            last_membership: membership,
            // The state at a log id is the same on every node and every
            // time: so is its snapshot, byte for byte.
            snapshot_id: last_applied.map_or("empty".into(), |l| {
                format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index)
            }),
        };
        let header = serde_json::to_vec(&meta).map_err(|e| snap_err(ErrorVerb::Read, e))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(SnapshotFile::lazy(txn, header, dir.to_path_buf())),
        }))
    }

    /// Replaces every carried table with the rows of the snapshot file at
    /// `path`, in one durable transaction. Nothing changes unless the whole
    /// file is read and its checksum matches.
    fn install(applied: &Applied, path: &Path, meta: &Meta) -> Result<(), StorageError> {
        // Held throughout: nothing else writes while the tables are replaced.
        let mut open = applied.lock();
        let db = applied.db();
        let mut restore = || -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
            open.checkpoint(db)?;
            let file = std::fs::File::open(path)?;
            // No bytes at all: the empty state machine (what a leader with
            // nothing applied yet sends).
            let empty = file.metadata()?.len() == 0;
            let txn = crate::db::begin_durable(db)?;
            let rows = if empty {
                for t in snapshot::CARRIED {
                    t.clear(&txn)?;
                }
                0
            } else {
                snapshot::load(&txn, BufReader::with_capacity(1 << 20, file))?
            };
            Self::put_meta(&txn, "last_applied", &meta.last_log_id)?;
            Self::put_meta(&txn, "membership", &meta.last_membership)?;
            txn.commit()?;
            Ok(rows)
        };
        let rows = restore().map_err(|e| snap_err(ErrorVerb::Write, e));
        let _ = std::fs::remove_file(path);
        let rows = rows?;
        tracing::debug!(rows, "snapshot rows installed");
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    /// A checkpoint: what is applied is committed durably, and the log
    /// below it may go.
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let applied = self.applied.clone();
        let dir = self.snapshot_dir.clone();
        blocking(move || {
            applied
                .checkpoint()
                .map_err(|e| snap_err(ErrorVerb::Write, e))?;
            Self::current(applied.db(), &dir, true)?
                .ok_or_else(|| snap_err(ErrorVerb::Read, "no snapshot of the state"))
        })
        .await
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, Membership), StorageError> {
        let applied = self.applied.clone();
        blocking(move || {
            applied
                .checkpoint()
                .map_err(|e| sm_err(ErrorVerb::Write, e))?;
            let db = applied.db();
            let applied = Self::read_meta::<Option<LogId<NodeId>>>(db, "last_applied")?.flatten();
            let membership = Self::read_meta(db, "membership")?.unwrap_or_default();
            Ok((applied, membership))
        })
        .await
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<Response>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let applied = self.applied.clone();
        blocking(move || Self::apply_batch(&applied, entries)).await
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFile>, StorageError> {
        let path = self
            .snapshot_dir
            .join(format!("incoming-{:016x}.snap", rand::random::<u64>()));
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| snap_err(ErrorVerb::Write, e))?;
        *self.receiving.lock().expect("receiving lock") = Some(path);
        Ok(Box::new(SnapshotFile::ready(file)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError> {
        use tokio::io::AsyncWriteExt;
        let mut snapshot = *snapshot;
        let (path, mut file) = if snapshot.is_received() {
            let path = self
                .receiving
                .lock()
                .expect("receiving lock")
                .take()
                .ok_or_else(|| snap_err(ErrorVerb::Read, "no snapshot is being received"))?;
            let file = snapshot
                .into_file()
                .ok_or_else(|| snap_err(ErrorVerb::Read, "no snapshot file"))?;
            (path, file)
        } else {
            // Another store's snapshot, handed over whole: copied in first.
            let path = self
                .snapshot_dir
                .join(format!("incoming-{:016x}.snap", rand::random::<u64>()));
            let mut file = tokio::fs::File::create(&path)
                .await
                .map_err(|e| snap_err(ErrorVerb::Write, e))?;
            tokio::io::copy(&mut snapshot, &mut file)
                .await
                .map_err(|e| snap_err(ErrorVerb::Write, e))?;
            (path, file)
        };
        file.flush()
            .await
            .map_err(|e| snap_err(ErrorVerb::Write, e))?;
        file.sync_all()
            .await
            .map_err(|e| snap_err(ErrorVerb::Write, e))?;
        drop(file);
        let applied = self.applied.clone();
        let meta = meta.clone();
        let id = meta.snapshot_id.clone();
        let index = meta.last_log_id.map(|l| l.index);
        blocking(move || Self::install(&applied, &path, &meta)).await?;
        tracing::info!(snapshot = %id, ?index, "installed snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let applied = self.applied.clone();
        let dir = self.snapshot_dir.clone();
        blocking(move || Self::current(applied.db(), &dir, false)).await
    }
}

/// Opens the one redb database of a meta node, with a page cache of
/// `cache_bytes`.
pub fn open_db(path: &Path, cache_bytes: usize) -> Result<Arc<Database>, StorageError> {
    crate::db::open(path, cache_bytes).map_err(|e| sm_err(ErrorVerb::Read, e))
}
