//! Opening the redb database, and its durable transactions.
//!
//! Every durable commit is made with redb's quick repair: the allocator
//! state is saved with the commit and the commit is two-phase, so a node
//! reopened after a crash (`kill -9`, power loss) starts at once instead of
//! walking the whole file to rebuild it, which takes time in proportion to
//! the database (seconds per million objects). The price is a second
//! fsync per durable commit, shared by every command of a group commit.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, WriteTransaction};

/// The page cache of a meta node when none is configured.
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;

/// Opens (or creates) the database at `path` with a page cache of
/// `cache_bytes`. A file left by a crash of a build before quick repair
/// still opens, through redb's full repair, which is logged.
pub fn open(path: &Path, cache_bytes: usize) -> Result<Arc<Database>, redb::DatabaseError> {
    let mut builder = Database::builder();
    builder.set_cache_size(cache_bytes);
    builder.set_repair_callback(|session| {
        tracing::warn!(
            progress = format!("{:.0}%", session.progress() * 100.0),
            "the database was not closed cleanly and needs a full repair"
        );
    });
    builder.create(path).map(Arc::new)
}

/// A write transaction committed durably (fsynced, the default) and with
/// quick repair.
// redb's own error, as `begin_write` returns it.
#[allow(clippy::result_large_err)]
pub fn begin_durable(db: &Database) -> Result<WriteTransaction, redb::TransactionError> {
    let mut txn = db.begin_write()?;
    txn.set_quick_repair(true);
    Ok(txn)
}
