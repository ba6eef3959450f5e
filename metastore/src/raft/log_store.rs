//! The Raft log and vote in redb.
//!
//! Architecture invariant: an append, a vote, a truncation or a purge is
//! committed with `Durability::Immediate` (fsynced) before it returns, and
//! `LogFlushed` is signalled only after that commit. The state machine's
//! non-durable commits ride along with these durable ones.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogId, LogState, RaftLogReader, Vote};
use redb::{Database, ReadableTable, TableDefinition};

use super::{blocking, io_error, NodeId, StorageError, TypeConfig};

/// log index → entry (JSON).
pub const RAFT_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// `vote`, `last_purged` → JSON.
pub const RAFT_META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

type Entry = openraft::Entry<TypeConfig>;

#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

fn err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    io_error(ErrorSubject::Logs, verb, e)
}

impl LogStore {
    pub fn new(db: Arc<Database>) -> Result<Self, StorageError> {
        let txn = crate::db::begin_durable(&db).map_err(|e| err(ErrorVerb::Write, e))?;
        txn.open_table(RAFT_LOG)
            .map_err(|e| err(ErrorVerb::Write, e))?;
        txn.open_table(RAFT_META)
            .map_err(|e| err(ErrorVerb::Write, e))?;
        txn.commit().map_err(|e| err(ErrorVerb::Write, e))?;
        Ok(Self { db })
    }

    fn read_meta<T: serde::de::DeserializeOwned>(
        db: &Database,
        key: &str,
    ) -> Result<Option<T>, StorageError> {
        super::read_json(db, RAFT_META, key, ErrorSubject::Logs)
    }

    /// Runs `f` in one durable write transaction.
    async fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), StorageError> + Send + 'static,
    ) -> Result<(), StorageError> {
        let db = self.db.clone();
        blocking(move || {
            let txn = crate::db::begin_durable(&db).map_err(|e| err(ErrorVerb::Write, e))?;
            f(&txn)?;
            txn.commit().map_err(|e| err(ErrorVerb::Write, e))
        })
        .await
    }

    fn put_meta(
        txn: &redb::WriteTransaction,
        key: &str,
        value: &impl serde::Serialize,
    ) -> Result<(), StorageError> {
        super::write_json(txn, RAFT_META, key, value, ErrorSubject::Logs)
    }
}

/// Most bytes of log (as stored) one AppendEntries carries; at least one
/// entry goes whatever its size. openraft gives every AppendEntries the
/// heartbeat interval to complete, so a catch-up batch must be small enough
/// to cross, be parsed and fsynced on the follower in that time; bounded
/// only in entries, a batch of large entries never completes and the
/// follower never catches up.
pub const REPLICATION_BATCH_BYTES: usize = 1 << 20;

impl LogStore {
    /// The entries of `range` in order, stopping before the one that would
    /// take their stored size past `budget` (never before the first).
    async fn read_entries(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
        budget: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_read().map_err(|e| err(ErrorVerb::Read, e))?;
            let t = txn
                .open_table(RAFT_LOG)
                .map_err(|e| err(ErrorVerb::Read, e))?;
            let mut out = Vec::new();
            let mut bytes = 0usize;
            for item in t
                .range::<u64>((start, end))
                .map_err(|e| err(ErrorVerb::Read, e))?
            {
                let (_, v) = item.map_err(|e| err(ErrorVerb::Read, e))?;
                bytes += v.value().len();
                if bytes > budget && !out.is_empty() {
                    break;
                }
                out.push(serde_json::from_slice(v.value()).map_err(|e| err(ErrorVerb::Read, e))?);
            }
            Ok(out)
        })
        .await
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = range.start_bound().cloned();
        let end = range.end_bound().cloned();
        self.read_entries(start, end, usize::MAX).await
    }

    /// What replication sends: bounded in bytes as well as in entries.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        use std::ops::Bound;
        self.read_entries(
            Bound::Included(start),
            Bound::Excluded(end),
            REPLICATION_BATCH_BYTES,
        )
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let db = self.db.clone();
        blocking(move || {
            let last_purged: Option<LogId<NodeId>> = Self::read_meta(&db, "last_purged")?;
            let txn = db.begin_read().map_err(|e| err(ErrorVerb::Read, e))?;
            let t = txn
                .open_table(RAFT_LOG)
                .map_err(|e| err(ErrorVerb::Read, e))?;
            let last = match t.last().map_err(|e| err(ErrorVerb::Read, e))? {
                Some((_, v)) => {
                    let e: Entry =
                        serde_json::from_slice(v.value()).map_err(|e| err(ErrorVerb::Read, e))?;
                    Some(e.log_id)
                }
                None => last_purged,
            };
            Ok(LogState {
                last_purged_log_id: last_purged,
                last_log_id: last,
            })
        })
        .await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let vote = *vote;
        self.write(move |txn| Self::put_meta(txn, "vote", &vote))
            .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        let db = self.db.clone();
        blocking(move || Self::read_meta(&db, "vote")).await
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<(u64, Vec<u8>)> = entries
            .into_iter()
            .map(|e| {
                Ok((
                    e.log_id.index,
                    serde_json::to_vec(&e).map_err(|e| err(ErrorVerb::Write, e))?,
                ))
            })
            .collect::<Result<_, StorageError>>()?;
        let result = self
            .write(move |txn| {
                let mut t = txn
                    .open_table(RAFT_LOG)
                    .map_err(|e| err(ErrorVerb::Write, e))?;
                for (i, bytes) in &entries {
                    t.insert(*i, bytes.as_slice())
                        .map_err(|e| err(ErrorVerb::Write, e))?;
                }
                Ok(())
            })
            .await;
        // Only now, after the fsync, is the append acknowledged.
        match &result {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        result
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        self.write(move |txn| {
            let mut t = txn
                .open_table(RAFT_LOG)
                .map_err(|e| err(ErrorVerb::Delete, e))?;
            t.retain_in::<u64, _>(log_id.index.., |_, _| false)
                .map_err(|e| err(ErrorVerb::Delete, e))?;
            Ok(())
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        self.write(move |txn| {
            Self::put_meta(txn, "last_purged", &log_id)?;
            let mut t = txn
                .open_table(RAFT_LOG)
                .map_err(|e| err(ErrorVerb::Delete, e))?;
            t.retain_in::<u64, _>(..=log_id.index, |_, _| false)
                .map_err(|e| err(ErrorVerb::Delete, e))?;
            Ok(())
        })
        .await
    }
}
