//! The redb database behind the state machine, and its durability.
//!
//! Architecture invariant: a command's reply is sent only after its redb
//! transaction has committed with `Durability::Immediate`, i.e. after fsync.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use redb::Database;

use crate::api::{BlobId, Command, NodeId, Query, Reply};
use crate::error::Error;
use crate::state;
use crate::state::repair::View;

pub struct Store {
    db: Arc<Database>,
}

impl Store {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let db = crate::db::open(path, crate::db::DEFAULT_CACHE_BYTES)?;
        let txn = crate::db::begin_durable(&db)?;
        state::create_all(&txn)?;
        txn.commit()?;
        Ok(Self { db })
    }

    /// A store over a database shared with the Raft state machine (reads
    /// only: writes go through the log).
    pub fn from_db(db: Arc<Database>) -> Self {
        Self { db }
    }

    /// Applies one command in one durable transaction. Blocking: call from
    /// a blocking thread.
    pub fn apply(&self, cmd: &Command) -> Result<Reply, Error> {
        let txn = crate::db::begin_durable(&self.db)?;
        match state::apply(&txn, cmd) {
            Ok(reply) => {
                txn.commit()?;
                Ok(reply)
            }
            Err(e) => {
                txn.abort()?;
                Err(e)
            }
        }
    }

    /// The repair (or rebalancing) work of storage node `node`. Blocking.
    pub fn repair_work(
        &self,
        node: NodeId,
        view: &View,
        limit: usize,
    ) -> Result<Vec<crate::api::RepairTask>, Error> {
        state::repair::work_for(&self.db.begin_read()?, node, view, limit)
    }

    /// Copies the leader should drop (see [`state::repair::trims`]). Blocking.
    pub fn trims(
        &self,
        view: &View,
        fill: &HashMap<NodeId, f64>,
        limit: usize,
    ) -> Result<Vec<(BlobId, NodeId)>, Error> {
        state::repair::trims(&self.db.begin_read()?, view, fill, limit)
    }

    /// Blobs per health class and backlogs. Blocking.
    pub fn census(&self, view: &View) -> Result<state::repair::Census, Error> {
        state::repair::census(&self.db.begin_read()?, view)
    }

    /// Which of `blobs` no record places on `node`. Blocking.
    pub fn unplaced(&self, node: NodeId, blobs: &[BlobId]) -> Result<Vec<BlobId>, Error> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(state::tables::BLOBS)?;
        let mut out = Vec::new();
        for b in blobs {
            let placed = match table.get(b.0.as_slice())? {
                Some(v) => state::placed_on(v.value(), node)?,
                None => false,
            };
            if !placed {
                out.push(*b);
            }
        }
        Ok(out)
    }

    /// Up to `limit` blobs placed on `node`, in id order after `after`.
    /// Blocking; one pass over the `blobs` table across all pages.
    pub fn placed(
        &self,
        node: NodeId,
        after: Option<BlobId>,
        limit: usize,
    ) -> Result<Vec<BlobId>, Error> {
        use std::ops::Bound;
        let txn = self.db.begin_read()?;
        let table = txn.open_table(state::tables::BLOBS)?;
        let start = match &after {
            Some(a) => Bound::Excluded(a.0.as_slice()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for entry in table.range::<&[u8]>((start, Bound::Unbounded))? {
            let (k, v) = entry?;
            if state::placed_on(v.value(), node)? {
                let id = k
                    .value()
                    .try_into()
                    .map_err(|_| Error::Internal("a blob key is not 32 bytes".into()))?;
                out.push(BlobId(id));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Answers a query from a consistent snapshot. Blocking.
    pub fn query(&self, q: &Query) -> Result<Reply, Error> {
        let txn = self.db.begin_read()?;
        state::query(&txn, q)
    }
}
