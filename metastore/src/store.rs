//! Reads of the metadata tables (and, for tests, applies without Raft).
//!
//! Queries see every applied command (see [`Applied::read`]); scans of
//! whole tables read the last checkpoint, made just before.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use redb::ReadableTable;

use crate::raft::applied::Applied;

use crate::api::{BlobId, Command, NodeId, Query, Reply};
use crate::error::Error;
use crate::state;
use crate::state::reader::Reader;
use crate::state::repair::View;

pub struct Store {
    applied: Arc<Applied>,
}

/// Runs a reader function of the tables against the latest applied state.
macro_rules! latest {
    ($applied:expr, $method:ident, |$t:ident| $body:expr) => {
        $applied.$method(|$t| $body, |$t| $body)
    };
}

impl Store {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let db = crate::db::open(path, crate::db::DEFAULT_CACHE_BYTES)?;
        let applied = Applied::new(db);
        applied.write_durable(state::create_all)?;
        Ok(Self { applied })
    }

    /// A store over the tables of the Raft state machine (reads only:
    /// writes go through the log).
    pub fn from_applied(applied: Arc<Applied>) -> Self {
        Self { applied }
    }

    /// Applies one command in one durable transaction. Blocking: call from
    /// a blocking thread.
    pub fn apply(&self, cmd: &Command) -> Result<Reply, Error> {
        self.applied.write_durable(|txn| state::apply(txn, cmd))
    }

    /// The repair (or rebalancing) work of storage node `node`. Blocking.
    pub fn repair_work(
        &self,
        node: NodeId,
        view: &View,
        limit: usize,
    ) -> Result<Vec<crate::api::RepairTask>, Error> {
        state::repair::work_for(&self.applied.read_settled()?, node, view, limit)
    }

    /// Copies the leader should drop (see [`state::repair::trims`]). Blocking.
    pub fn trims(
        &self,
        view: &View,
        fill: &HashMap<NodeId, f64>,
        limit: usize,
    ) -> Result<Vec<(BlobId, NodeId)>, Error> {
        state::repair::trims(&self.applied.read_settled()?, view, fill, limit)
    }

    /// Blobs per health class and backlogs. Blocking.
    pub fn census(&self, view: &View) -> Result<state::repair::Census, Error> {
        state::repair::census(&self.applied.read_settled()?, view)
    }

    /// Which of `blobs` no record places on `node`. Blocking.
    pub fn unplaced(&self, node: NodeId, blobs: &[BlobId]) -> Result<Vec<BlobId>, Error> {
        latest!(self.applied, read, |t| Self::unplaced_in(t, node, blobs))
    }

    fn unplaced_in(
        txn: &impl Reader,
        node: NodeId,
        blobs: &[BlobId],
    ) -> Result<Vec<BlobId>, Error> {
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
        let txn = self.applied.read_settled()?;
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

    /// Answers a query from the latest applied state, or for queries
    /// that scan a whole table, from a checkpoint made now. Blocking.
    pub fn query(&self, q: &Query) -> Result<Reply, Error> {
        if matches!(q, Query::Stats | Query::Fragmented { .. }) {
            return state::query(&self.applied.read_settled()?, q);
        }
        latest!(self.applied, read, |t| state::query(t, q))
    }

    /// As [`Store::query`], for a point read on an async thread: `None`
    /// instead of waiting while an apply holds the latest state.
    pub fn try_query(&self, q: &Query) -> Option<Result<Reply, Error>> {
        latest!(self.applied, try_read, |t| state::query(t, q))
    }
}
