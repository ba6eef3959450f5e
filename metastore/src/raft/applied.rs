//! The applied state: the redb tables, with everything applied since their
//! last commit held in one open write transaction.
//!
//! Why: a redb commit writes every page its transaction changed (copy on
//! write: a leaf and its branches in each table touched, the table tree,
//! the freed tree) and, without fsync, cannot reuse the pages it freed.
//! Committing each applied entry cost ~100 KB of writes and ~300 µs. The
//! Raft log already makes every entry durable, so the tables need a
//! commit only as a checkpoint: every [`CHECKPOINT_ENTRIES`] entries,
//! before the log is purged, before a snapshot, and once the state has
//! been still for [`IDLE`]. A checkpoint is a durable commit; the pages a
//! run of entries changed again and again are written once.
//!
//! Reads:
//! - [`Applied::read`] (queries) sees every applied entry: through the open
//!   transaction under its lock while there is one, else through a read
//!   transaction of the last commit, which then holds everything.
//! - [`Applied::read_settled`] (scans of whole tables: repair, census)
//!   checkpoints first and reads the commit, so a long scan never holds up
//!   applies.
//!
//! Crash argument: `last_applied` is written in the same transaction as
//! the changes it covers (at its commit), so the committed tables are
//! always the state at one log index; openraft applies the log again from
//! there on start, and the log is purged only behind a checkpoint.
//!
//! A command that fails must change nothing, but redb has no savepoint in
//! a transaction that has changes. So when one fails, the transaction is
//! dropped, the entries it held are applied again (they succeeded once and
//! apply deterministically) and committed, and the failing entry is applied
//! on its own (see `StateMachine::apply_one`).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openraft::ErrorSubject;
use redb::{Database, Durability, ReadTransaction, WriteTransaction};

use super::state_machine::SM_META;
use super::TypeConfig;
use crate::error::Error;

type Entry = openraft::Entry<TypeConfig>;

/// Entries applied between two checkpoints: the pages they change are held
/// in memory and written once, at the checkpoint (two fsyncs).
pub const CHECKPOINT_ENTRIES: usize = 256;
/// Requests (commands) between two checkpoints: bounds the entries kept
/// for a replay when a group commit made the entries large.
pub const CHECKPOINT_REQUESTS: usize = 4096;
/// Commits without fsync (after failed commands) between two checkpoints:
/// until a durable commit redb cannot reuse the pages they freed.
const UNDURABLE_COMMITS: u32 = 16;
/// How long applied state stays uncommitted with nothing new applied.
pub const IDLE: Duration = Duration::from_millis(200);

/// The tables of a meta node and their open transaction. One per database;
/// every write to the database goes through it.
pub struct Applied {
    db: Arc<Database>,
    open: Mutex<Open>,
}

/// The open transaction and what it holds.
pub struct Open {
    txn: Option<WriteTransaction>,
    /// Entries applied in `txn`, for a replay after a failed command.
    entries: Vec<Entry>,
    requests: usize,
    last_change: Instant,
    undurable: u32,
}

impl Applied {
    pub fn new(db: Arc<Database>) -> Arc<Self> {
        Arc::new(Self {
            db,
            open: Mutex::new(Open {
                txn: None,
                entries: Vec::new(),
                requests: 0,
                last_change: Instant::now(),
                undurable: 0,
            }),
        })
    }

    pub fn db(&self) -> &Arc<Database> {
        &self.db
    }

    /// The open transaction, for applying. Held, it keeps readers of the
    /// latest state waiting.
    pub fn lock(&self) -> MutexGuard<'_, Open> {
        // A panic while applying leaves the transaction in an unknown
        // state: it is dropped (aborted) and the log applies it again.
        self.open.lock().unwrap_or_else(|poisoned| {
            let mut g = poisoned.into_inner();
            g.txn = None;
            g.entries.clear();
            g.requests = 0;
            g
        })
    }

    /// Runs a read of the latest applied state: `open` against the open
    /// transaction, or `committed` against the last commit when nothing is
    /// uncommitted. The two are the same function over [`crate::state::reader::Reader`].
    pub fn read<T>(
        &self,
        open: impl FnOnce(&WriteTransaction) -> Result<T, Error>,
        committed: impl FnOnce(&ReadTransaction) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut g = self.lock();
        if g.txn.is_some() && g.last_change.elapsed() >= IDLE {
            g.checkpoint(&self.db)?;
        }
        if let Some(txn) = &g.txn {
            return open(txn);
        }
        drop(g);
        committed(&self.db.begin_read()?)
    }

    /// As [`Applied::read`], but `None` at once instead of waiting while
    /// an apply or a checkpoint holds the transaction (for reads made on an
    /// async thread, which must not block).
    pub fn try_read<T>(
        &self,
        open: impl FnOnce(&WriteTransaction) -> Result<T, Error>,
        committed: impl FnOnce(&ReadTransaction) -> Result<T, Error>,
    ) -> Option<Result<T, Error>> {
        let g = self.open.try_lock().ok()?;
        if g.txn.is_some() && g.last_change.elapsed() >= IDLE {
            return None;
        }
        if let Some(txn) = &g.txn {
            return Some(open(txn));
        }
        drop(g);
        Some(
            self.db
                .begin_read()
                .map_err(Error::from)
                .and_then(|t| committed(&t)),
        )
    }

    /// A read of the last commit, after a checkpoint of what was applied
    /// since: for scans that must not hold the open transaction.
    pub fn read_settled(&self) -> Result<ReadTransaction, Error> {
        self.checkpoint()?;
        Ok(self.db.begin_read()?)
    }

    /// Commits what is applied, durably.
    pub fn checkpoint(&self) -> Result<(), Error> {
        self.lock().checkpoint(&self.db)
    }

    /// Runs `f` in a transaction of its own, committed durably (after a
    /// checkpoint of what was applied), or dropped if `f` fails.
    pub fn write_durable<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut g = self.lock();
        g.checkpoint(&self.db)?;
        let txn = crate::db::begin_durable(&self.db).map_err(Error::from)?;
        match f(&txn) {
            Ok(v) => {
                txn.commit().map_err(Error::from)?;
                Ok(v)
            }
            Err(e) => {
                txn.abort().map_err(Error::from)?;
                Err(e)
            }
        }
    }
}

impl Open {
    /// The open transaction, begun if there is none.
    pub fn txn(&mut self, db: &Database) -> Result<&WriteTransaction, Error> {
        if self.txn.is_none() {
            self.txn = Some(db.begin_write()?);
        }
        Ok(self.txn.as_ref().expect("just begun"))
    }

    /// Records `entry` as applied in the open transaction.
    pub fn applied(&mut self, entry: Entry) {
        if let openraft::EntryPayload::Normal(reqs) = &entry.payload {
            self.requests += reqs.len();
        }
        self.entries.push(entry);
        self.last_change = Instant::now();
    }

    /// Whether the open transaction holds enough for a checkpoint.
    pub fn full(&self) -> bool {
        self.entries.len() >= CHECKPOINT_ENTRIES
            || self.requests >= CHECKPOINT_REQUESTS
            || self.undurable >= UNDURABLE_COMMITS
    }

    /// Drops the open transaction and everything applied in it; returns
    /// those entries, to be applied again.
    pub fn abort(&mut self) -> Result<Vec<Entry>, Error> {
        if let Some(txn) = self.txn.take() {
            txn.abort()?;
        }
        self.requests = 0;
        Ok(std::mem::take(&mut self.entries))
    }

    /// Commits the open transaction (durably, or not), with `last_applied`
    /// at its last entry.
    pub fn commit(&mut self, durable: bool) -> Result<(), Error> {
        let Some(mut txn) = self.txn.take() else {
            return Ok(());
        };
        if let Some(last) = self.entries.last() {
            let (table, subject) = (SM_META, ErrorSubject::StateMachine);
            super::write_json(&txn, table, "last_applied", &last.log_id, subject)
                .map_err(|e| Error::Internal(e.to_string()))?;
        }
        if durable {
            txn.set_quick_repair(true);
            self.undurable = 0;
        } else {
            txn.set_durability(Durability::None);
            self.undurable += 1;
        }
        txn.commit()?;
        self.entries.clear();
        self.requests = 0;
        Ok(())
    }

    /// A commit without fsync made outside the open transaction (a failed
    /// command applied on its own): counted toward the next checkpoint.
    pub fn committed_undurably(&mut self) {
        self.undurable += 1;
    }

    /// Commits what is applied, durably.
    pub fn checkpoint(&mut self, db: &Database) -> Result<(), Error> {
        if self.txn.is_some() || self.undurable > 0 {
            // A commit without changes is enough to make earlier commits
            // without fsync durable.
            self.txn(db)?;
            self.commit(true)?;
        }
        Ok(())
    }
}
