//! Garbage: blobs no extent refers to any more.
//!
//! A blob whose reference count fell to zero is listed in `unreferenced`
//! with the time. Once that time is older than the grace period (the
//! cutoff), [`collect`] forgets the blob and queues its copies for deletion
//! on their nodes, each with the cutoff. A node deletes a copy only if the
//! file was not written after the cutoff: a gateway that stored the same
//! bytes again (a new object with identical content) touched the file, and
//! its commit recreates the record, so the racing write survives. Nothing
//! still referenced is ever queued: `collect` checks the count in the same
//! transaction.

use redb::ReadableTable;

use super::objects::get_blob;
use super::tables::TableSet;
use crate::api::{BlobId, NodeId};
use crate::error::Error;

/// Forgets up to `limit` blobs unreferenced since `cutoff` or earlier;
/// returns how many.
pub fn collect(t: &mut TableSet, cutoff: u64, limit: usize) -> Result<u64, Error> {
    let mut due = Vec::new();
    for entry in t.unreferenced.iter()? {
        let (k, v) = entry?;
        if v.value() <= cutoff {
            let id: [u8; 32] = k
                .value()
                .try_into()
                .map_err(|_| Error::Internal("blob key is not 32 bytes".into()))?;
            due.push(BlobId(id));
            if due.len() >= limit {
                break;
            }
        }
    }
    let mut n = 0;
    for id in due {
        t.unreferenced.remove(id.0.as_slice())?;
        let Some(rec) = get_blob(t, &id)? else {
            continue;
        };
        if rec.refs > 0 {
            continue;
        }
        for node in &rec.nodes {
            t.deletions.insert((*node, id.0.as_slice()), cutoff)?;
        }
        t.blobs.remove(id.0.as_slice())?;
        n += 1;
    }
    Ok(n)
}

pub fn deleted(t: &mut TableSet, node: NodeId, blobs: &[BlobId]) -> Result<(), Error> {
    for b in blobs {
        t.deletions.remove((node, b.0.as_slice()))?;
    }
    Ok(())
}
