//! The Raft log and vote, in the append-only log of [`super::wal`].
//!
//! Architecture invariants:
//! - `LogFlushed` is signalled, and a vote or truncation returns, only
//!   once its records are fsynced; appends queued together share one
//!   fsync (group commit).
//! - The state machine (redb) is committed durably only at checkpoints
//!   (see [`super::applied`]): the log holds everything applied since. So a
//!   purge first makes the state machine durable (a checkpoint: its
//!   `last_applied` is then at or past the purge point, which is at or
//!   below the last snapshot), and only then drops log entries.
//!
//! A database written by a build that kept the log in redb has its log and
//! vote moved here when it is first opened.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogId, LogState, RaftLogReader, Vote};
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};

use super::applied::Applied;
use super::wal::Wal;
use super::{blocking, io_error, NodeId, StorageError, TypeConfig};

/// Where an earlier layout kept the log: log index → entry (JSON).
const OLD_RAFT_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// Where an earlier layout kept `vote` and `last_purged` (JSON).
const OLD_RAFT_META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

type Entry = openraft::Entry<TypeConfig>;

/// Name of the log's directory inside the meta data directory.
pub const LOG_DIR: &str = "raft-log";

#[derive(Clone)]
pub struct LogStore {
    wal: Arc<Wal>,
    applied: Arc<Applied>,
}

fn err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    io_error(ErrorSubject::Logs, verb, e)
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(v).map_err(|e| err(ErrorVerb::Write, e))
}

fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(b).map_err(|e| err(ErrorVerb::Read, e))
}

/// Most bytes of log (as stored) one AppendEntries carries; at least one
/// entry goes whatever its size. openraft gives every AppendEntries the
/// heartbeat interval to complete, so a catch-up batch must be small enough
/// to cross, be parsed and fsynced on the follower in that time; bounded
/// only in entries, a batch of large entries never completes and the
/// follower never catches up.
pub const REPLICATION_BATCH_BYTES: usize = 1 << 20;

impl LogStore {
    /// Opens the log in `dir`, beside the state machine's tables.
    pub fn open(dir: &Path, applied: Arc<Applied>) -> Result<Self, StorageError> {
        let wal = Wal::open(dir).map_err(|e| err(ErrorVerb::Read, e))?;
        let store = Self {
            wal: Arc::new(wal),
            applied,
        };
        store.move_old_log()?;
        Ok(store)
    }

    /// What the log has written, for `/metrics`.
    pub fn stats(&self) -> Arc<super::wal::WalStats> {
        self.wal.stats().clone()
    }

    /// Runs a log operation that answers through a callback, and waits for
    /// it to be durable.
    async fn durable(&self, f: impl FnOnce(&Wal, super::wal::Done)) -> Result<(), StorageError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        f(
            &self.wal,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(err(ErrorVerb::Write, e)),
            Err(_) => Err(err(ErrorVerb::Write, "the log writer stopped")),
        }
    }

    fn wait(wal: &Wal, f: impl FnOnce(&Wal, super::wal::Done)) -> Result<(), StorageError> {
        let (tx, rx) = std::sync::mpsc::channel();
        f(
            wal,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(err(ErrorVerb::Write, e)),
            Err(_) => Err(err(ErrorVerb::Write, "the log writer stopped")),
        }
    }

    /// Moves a log and vote kept in redb by an earlier layout into the
    /// log, then drops them from redb.
    fn move_old_log(&self) -> Result<(), StorageError> {
        let rtxn = self
            .applied
            .db()
            .begin_read()
            .map_err(|e| err(ErrorVerb::Read, e))?;
        let (entries, vote, purged) = {
            let log = match rtxn.open_table(OLD_RAFT_LOG) {
                Ok(t) => Some(t),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(err(ErrorVerb::Read, e)),
            };
            let meta = match rtxn.open_table(OLD_RAFT_META) {
                Ok(t) => Some(t),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(err(ErrorVerb::Read, e)),
            };
            if log.is_none() && meta.is_none() {
                return Ok(());
            }
            let mut entries = Vec::new();
            if let Some(t) = &log {
                tracing::info!(
                    entries = t.len().unwrap_or(0),
                    "moving the Raft log out of the database"
                );
                for row in t.iter().map_err(|e| err(ErrorVerb::Read, e))? {
                    let (k, v) = row.map_err(|e| err(ErrorVerb::Read, e))?;
                    entries.push((k.value(), v.value().to_vec()));
                }
            }
            let get = |key: &str| -> Result<Option<Vec<u8>>, StorageError> {
                let Some(t) = &meta else { return Ok(None) };
                Ok(t.get(key)
                    .map_err(|e| err(ErrorVerb::Read, e))?
                    .map(|v| v.value().to_vec()))
            };
            (entries, get("vote")?, get("last_purged")?)
        };
        drop(rtxn);
        if let Some(v) = vote {
            Self::wait(&self.wal, |w, d| w.save_vote(v, d))?;
        }
        if let Some(p) = purged {
            let id: Option<LogId<NodeId>> = decode(&p)?;
            if let Some(id) = id {
                Self::wait(&self.wal, |w, d| w.purge(id.index, p, d))?;
            }
        }
        for chunk in entries.chunks(1024) {
            Self::wait(&self.wal, |w, d| w.append(chunk.to_vec(), d))?;
        }
        self.applied
            .write_durable(|txn| -> Result<(), StorageError> {
                txn.delete_table(OLD_RAFT_LOG)
                    .map_err(|e| err(ErrorVerb::Write, e))?;
                txn.delete_table(OLD_RAFT_META)
                    .map_err(|e| err(ErrorVerb::Write, e))?;
                Ok(())
            })
    }

    /// The entries of `range` in order, stopping before the one that would
    /// take their stored size past `budget` (never before the first).
    async fn read_entries(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
        budget: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match start {
            Bound::Included(s) => s,
            Bound::Excluded(s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = match end {
            Bound::Included(e) => e.saturating_add(1),
            Bound::Excluded(e) => e,
            Bound::Unbounded => u64::MAX,
        };
        let wal = self.wal.clone();
        blocking(move || {
            wal.read(start, end, budget)
                .map_err(|e| err(ErrorVerb::Read, e))?
                .into_iter()
                .map(|(_, b)| decode(&b))
                .collect()
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
        let last_purged: Option<LogId<NodeId>> = match self.wal.purged() {
            Some(b) => decode(&b)?,
            None => None,
        };
        let last = match self.wal.last().map_err(|e| err(ErrorVerb::Read, e))? {
            Some((_, b)) => Some(decode::<Entry>(&b)?.log_id),
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let bytes = encode(vote)?;
        self.durable(|w, d| w.save_vote(bytes, d)).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.wal.vote().map(|b| decode(&b)).transpose()
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
            .map(|e| Ok((e.log_id.index, encode(&e)?)))
            .collect::<Result<_, StorageError>>()?;
        // Acknowledged only from the writer, after the fsync.
        self.wal
            .append(entries, Box::new(move |r| callback.log_io_completed(r)));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        self.durable(|w, d| w.truncate(log_id.index, d)).await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        // The checkpoint: everything applied so far made durable before the
        // log that could replay it is dropped.
        let applied = self.applied.clone();
        blocking(move || applied.checkpoint().map_err(|e| err(ErrorVerb::Write, e))).await?;
        let bytes = encode(&Some(log_id))?;
        self.durable(|w, d| w.purge(log_id.index, bytes, d)).await
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(2, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    /// A data directory from a build that kept the log in redb opens with
    /// its log, vote and purge point, and the old tables are gone.
    #[tokio::test]
    async fn a_log_kept_in_the_database_is_moved_to_the_log_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(&dir.path().join("meta.redb"), 16 << 20).unwrap();
        let vote = Vote::new_committed(2, 1);
        let purged = LogId::new(CommittedLeaderId::new(2, 1), 4);
        {
            let txn = crate::db::begin_durable(&db).unwrap();
            {
                let mut log = txn.open_table(OLD_RAFT_LOG).unwrap();
                for i in 5..=9 {
                    let bytes = serde_json::to_vec(&entry(i)).unwrap();
                    log.insert(i, bytes.as_slice()).unwrap();
                }
                let mut meta = txn.open_table(OLD_RAFT_META).unwrap();
                let v = serde_json::to_vec(&vote).unwrap();
                meta.insert("vote", v.as_slice()).unwrap();
                let p = serde_json::to_vec(&Some(purged)).unwrap();
                meta.insert("last_purged", p.as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        for _ in 0..2 {
            let mut store =
                LogStore::open(&dir.path().join(LOG_DIR), Applied::new(db.clone())).unwrap();
            assert_eq!(store.read_vote().await.unwrap(), Some(vote));
            let state = store.get_log_state().await.unwrap();
            assert_eq!(state.last_purged_log_id, Some(purged));
            assert_eq!(state.last_log_id.map(|l| l.index), Some(9));
            let got = store.try_get_log_entries(0..100).await.unwrap();
            let indexes: Vec<u64> = got.iter().map(|e| e.log_id.index).collect();
            assert_eq!(indexes, vec![5, 6, 7, 8, 9]);
        }
        let txn = db.begin_read().unwrap();
        assert!(matches!(
            txn.open_table(OLD_RAFT_LOG),
            Err(redb::TableError::TableDoesNotExist(_))
        ));
    }
}
