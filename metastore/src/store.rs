//! The redb database behind the state machine, and its durability.
//!
//! Architecture invariant: a command's reply is sent only after its redb
//! transaction has committed with `Durability::Immediate`, i.e. after fsync.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, Durability};

use crate::api::{Command, Query, Reply};
use crate::error::Error;
use crate::state;

pub struct Store {
    db: Arc<Database>,
}

impl Store {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        state::create_all(&txn)?;
        txn.commit()?;
        Ok(Self { db: Arc::new(db) })
    }

    /// A store over a database shared with the Raft state machine (reads
    /// only: writes go through the log).
    pub fn from_db(db: Arc<Database>) -> Self {
        Self { db }
    }

    /// Applies one command in one durable transaction. Blocking: call from
    /// a blocking thread.
    pub fn apply(&self, cmd: &Command) -> Result<Reply, Error> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate);
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

    /// The repair work of storage node `node`, given the nodes alive now
    /// (id → address and zone). Blocking.
    pub fn repair_work(
        &self,
        node: crate::api::NodeId,
        live: &std::collections::BTreeMap<crate::api::NodeId, state::repair::LiveNode>,
        limit: usize,
    ) -> Result<Vec<crate::api::RepairTask>, Error> {
        let txn = self.db.begin_read()?;
        state::repair::work_for(&txn, node, live, limit)
    }

    /// Answers a query from a consistent snapshot. Blocking.
    pub fn query(&self, q: &Query) -> Result<Reply, Error> {
        let txn = self.db.begin_read()?;
        state::query(&txn, q)
    }
}
