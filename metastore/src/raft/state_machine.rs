//! The replicated state machine: committed requests applied to the redb
//! tables through [`crate::state::apply`], and snapshots of those tables.
//!
//! Each applied entry is its own redb transaction committed without fsync:
//! a crash loses at most a suffix of applied entries, which openraft applies
//! again from the (durable) log, because `last_applied` is stored in the
//! same transaction as the changes it covers. Snapshots and installs are
//! committed durably before the log below them may be purged.
//!
//! Snapshot file: see [`super::snapshot`]. Built and installed by
//! streaming, never held whole in memory.

use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, SnapshotMeta,
    StoredMembership,
};
use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;

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

const CURRENT_SNAPSHOT: &str = "current.snap";

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
    db: Arc<Database>,
    snapshot_dir: PathBuf,
    /// The file a snapshot from the leader is being received into.
    receiving: Arc<std::sync::Mutex<Option<PathBuf>>>,
}

impl StateMachine {
    pub fn new(db: Arc<Database>, snapshot_dir: PathBuf) -> Result<Self, StorageError> {
        std::fs::create_dir_all(&snapshot_dir).map_err(|e| snap_err(ErrorVerb::Write, e))?;
        for entry in std::fs::read_dir(&snapshot_dir).map_err(|e| snap_err(ErrorVerb::Read, e))? {
            let path = entry.map_err(|e| snap_err(ErrorVerb::Read, e))?.path();
            if path.file_name().is_some_and(|n| n != CURRENT_SNAPSHOT) {
                let _ = std::fs::remove_file(path);
            }
        }
        let txn = crate::db::begin_durable(&db).map_err(|e| sm_err(ErrorVerb::Write, e))?;
        state::create_all(&txn).map_err(|e| sm_err(ErrorVerb::Write, e))?;
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
                    serde_json::from_slice(v.value()).map_err(|e| sm_err(ErrorVerb::Read, e))?,
                ),
                None => None,
            }
        };
        match found {
            Some(v) if v != snapshot::SCHEMA_VERSION => {
                return Err(sm_err(
                    ErrorVerb::Read,
                    format!(
                        "the database has schema version {v}; this build reads version {}",
                        snapshot::SCHEMA_VERSION
                    ),
                ))
            }
            Some(_) => {}
            None => Self::put_meta(&txn, "schema_version", &snapshot::SCHEMA_VERSION)?,
        }
        txn.commit().map_err(|e| sm_err(ErrorVerb::Write, e))?;
        Ok(Self {
            db,
            snapshot_dir,
            receiving: Default::default(),
        })
    }

    pub fn db(&self) -> &Arc<Database> {
        &self.db
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

    /// Applies a batch of entries (each a group of requests) in one
    /// transaction. If any command fails (which must change nothing), the
    /// whole transaction is dropped and the batch applied again request by
    /// request, so the failed command's partial changes cannot leak.
    fn apply_batch(db: &Database, entries: &[Entry]) -> Result<Vec<Vec<Response>>, StorageError> {
        let Some(last) = entries.last() else {
            return Ok(Vec::new());
        };
        let mut txn = db.begin_write().map_err(|e| sm_err(ErrorVerb::Write, e))?;
        txn.set_durability(Durability::None);
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            match &entry.payload {
                EntryPayload::Blank => out.push(Vec::new()),
                EntryPayload::Membership(m) => {
                    Self::put_meta(
                        &txn,
                        "membership",
                        &Membership::new(Some(entry.log_id), m.clone()),
                    )?;
                    out.push(Vec::new());
                }
                EntryPayload::Normal(reqs) => {
                    let mut replies = Vec::with_capacity(reqs.len());
                    for req in reqs {
                        match Self::already_applied(&txn, req)? {
                            Some(done) => replies.push(done),
                            None => {
                                let result = state::apply(&txn, &req.cmd);
                                if result.is_err() {
                                    txn.abort().map_err(|e| sm_err(ErrorVerb::Write, e))?;
                                    return entries
                                        .iter()
                                        .map(|e| Self::apply_one(db, e))
                                        .collect();
                                }
                                Self::remember(&txn, req, &result)?;
                                replies.push(result);
                            }
                        }
                    }
                    out.push(replies);
                }
            }
        }
        Self::put_meta(&txn, "last_applied", &last.log_id)?;
        txn.commit().map_err(|e| sm_err(ErrorVerb::Write, e))?;
        Ok(out)
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

    fn current_path(&self) -> PathBuf {
        self.snapshot_dir.join(CURRENT_SNAPSHOT)
    }

    /// Writes every table to a new snapshot file, then makes it current.
    fn build(db: &Database, dir: &Path) -> Result<Meta, StorageError> {
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
        let membership: Membership = match read_meta("membership")? {
            Some(b) => serde_json::from_slice(&b).map_err(|e| snap_err(ErrorVerb::Read, e))?,
            None => Membership::default(),
        };
        let meta = Meta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id: format!(
                "{}-{:016x}",
                last_applied.map(|l| l.index).unwrap_or(0),
                rand::random::<u64>()
            ),
        };
        let tmp = dir.join(format!("build-{}.snap", meta.snapshot_id));
        let write = || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let file = std::fs::File::create(&tmp)?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            snapshot::write(&txn, &serde_json::to_vec(&meta)?, &mut w)?;
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            std::fs::rename(&tmp, dir.join(CURRENT_SNAPSHOT))?;
            std::fs::File::open(dir)?.sync_all()?;
            Ok(())
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            snap_err(ErrorVerb::Write, e)
        })?;
        Ok(meta)
    }

    /// Replaces every carried table with the rows of the snapshot file at
    /// `path`, in one durable transaction, and keeps the file (under
    /// `meta`) as the current snapshot. Nothing changes unless the whole
    /// file is read and its checksum matches.
    fn install(db: &Database, dir: &Path, path: &Path, meta: &Meta) -> Result<(), StorageError> {
        let restore = || -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
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
            if empty {
                let mut w = BufWriter::new(std::fs::File::create(path)?);
                snapshot::write(&db.begin_read()?, &serde_json::to_vec(meta)?, &mut w)?;
                w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            }
            std::fs::rename(path, dir.join(CURRENT_SNAPSHOT))?;
            std::fs::File::open(dir)?.sync_all()?;
            Ok(rows)
        };
        let rows = restore().map_err(|e| snap_err(ErrorVerb::Write, e))?;
        tracing::debug!(rows, "snapshot rows installed");
        Ok(())
    }

    fn read_current_meta(path: &Path) -> Result<Option<Meta>, StorageError> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(snap_err(ErrorVerb::Read, e)),
        };
        let meta = snapshot::read_header(&mut BufReader::new(file))
            .map_err(|e| snap_err(ErrorVerb::Read, e))?;
        serde_json::from_slice(&meta)
            .map(Some)
            .map_err(|e| snap_err(ErrorVerb::Read, e))
    }

    async fn open_current(&self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let path = self.current_path();
        let p = path.clone();
        let Some(meta) = blocking(move || Self::read_current_meta(&p)).await? else {
            return Ok(None);
        };
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| snap_err(ErrorVerb::Read, e))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(file),
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let db = self.db.clone();
        let dir = self.snapshot_dir.clone();
        blocking(move || Self::build(&db, &dir)).await?;
        self.open_current()
            .await?
            .ok_or_else(|| snap_err(ErrorVerb::Read, "snapshot vanished after it was built"))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, Membership), StorageError> {
        let db = self.db.clone();
        blocking(move || {
            let applied = Self::read_meta::<Option<LogId<NodeId>>>(&db, "last_applied")?.flatten();
            let membership = Self::read_meta(&db, "membership")?.unwrap_or_default();
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
        let db = self.db.clone();
        blocking(move || Self::apply_batch(&db, &entries)).await
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = self
            .snapshot_dir
            .join(format!("incoming-{:016x}.snap", rand::random::<u64>()));
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| snap_err(ErrorVerb::Write, e))?;
        *self.receiving.lock().expect("receiving lock") = Some(path);
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let mut file = *snapshot;
        use tokio::io::AsyncWriteExt;
        file.flush()
            .await
            .map_err(|e| snap_err(ErrorVerb::Write, e))?;
        file.sync_all()
            .await
            .map_err(|e| snap_err(ErrorVerb::Write, e))?;
        drop(file);
        let path = self
            .receiving
            .lock()
            .expect("receiving lock")
            .take()
            .ok_or_else(|| snap_err(ErrorVerb::Read, "no snapshot is being received"))?;
        let dir = self.snapshot_dir.clone();
        let db = self.db.clone();
        let meta = meta.clone();
        let id = meta.snapshot_id.clone();
        let index = meta.last_log_id.map(|l| l.index);
        blocking(move || Self::install(&db, &dir, &path, &meta)).await?;
        tracing::info!(snapshot = %id, ?index, "installed snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        self.open_current().await
    }
}

/// Opens the one redb database of a meta node, with a page cache of
/// `cache_bytes`.
pub fn open_db(path: &Path, cache_bytes: usize) -> Result<Arc<Database>, StorageError> {
    crate::db::open(path, cache_bytes).map_err(|e| sm_err(ErrorVerb::Read, e))
}
