//! The merge job: files written in pieces smaller than a blob (NFS WRITEs
//! of 1 MiB, or appends of a few KiB) end up with one small blob per
//! piece. Every gateway looks for such files in the background, once they
//! have been quiet for a while, and rewrites each run of small extents as
//! one blob of up to [`MERGE_BLOB_BYTES`] with the same bytes.
//!
//! It is safe against writers and against other gateways doing the same:
//! the metastore applies a merge only if the run's extents are still the
//! ones the job read (`MergeExtents` is a compare-and-swap), and blobs are
//! immutable, so equal extents mean equal bytes. A lost race leaves an
//! unreferenced blob for the garbage sweep.

use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use metastore::api::{Command, Extent, InodeId, Query, Reply, MERGE_BLOB_BYTES};
use metastore::client::now_ns;

use crate::data::DataPlane;
use crate::error::Error;

/// How often a gateway looks for files to merge.
pub const MERGE_INTERVAL: Duration = Duration::from_secs(2);
/// How long a file must go without small writes before it is merged.
pub const QUIET_FOR: Duration = Duration::from_secs(3);
/// Files taken per round.
const BATCH: u32 = 16;

pub fn spawn(data: DataPlane, meta: metastore::MetaClient) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(MERGE_INTERVAL).await;
            if let Err(e) = round(&data, &meta).await {
                tracing::debug!(error = %e, "merge round failed");
            }
        }
    })
}

async fn round(data: &DataPlane, meta: &metastore::MetaClient) -> Result<(), Error> {
    let before = now_ns().saturating_sub(QUIET_FOR.as_nanos() as u64);
    let marks = match meta
        .query(&Query::Fragmented {
            before,
            limit: BATCH,
        })
        .await?
    {
        Reply::Marks(m) => m,
        r => return Err(Error::Internal(format!("unexpected reply {r:?}"))),
    };
    for (inode, mark) in marks {
        match merge_file(data, meta, inode).await {
            Ok(merged) => {
                if merged > 0 {
                    tracing::info!(inode, runs = merged, "merged small blobs");
                }
                meta.command(&Command::ClearFragmented { inode, mark })
                    .await?;
            }
            // Gone, or changed under us: the next round sees it again.
            Err(Error::Meta(metastore::Error::Stale(_))) => {
                meta.command(&Command::ClearFragmented { inode, mark })
                    .await?;
            }
            Err(e) => tracing::debug!(inode, error = %e, "merge skipped"),
        }
    }
    Ok(())
}

/// Runs of adjacent extents (no hole between them) that together fit in
/// one merged blob; only runs of two or more are worth rewriting.
pub fn runs(extents: &[Extent]) -> Vec<Vec<Extent>> {
    let mut out: Vec<Vec<Extent>> = Vec::new();
    let mut run: Vec<Extent> = Vec::new();
    let mut len = 0;
    for e in extents {
        let adjacent = run.last().is_some_and(|l| l.offset + l.len == e.offset);
        if !adjacent || len + e.len > MERGE_BLOB_BYTES {
            if run.len() > 1 {
                out.push(std::mem::take(&mut run));
            }
            run.clear();
            len = 0;
        }
        len += e.len;
        run.push(e.clone());
    }
    if run.len() > 1 {
        out.push(run);
    }
    out
}

/// Merges the runs of one file; returns how many were rewritten.
async fn merge_file(
    data: &DataPlane,
    meta: &metastore::MetaClient,
    inode: InodeId,
) -> Result<usize, Error> {
    let range = match meta
        .query(&Query::ReadRange {
            inode,
            offset: 0,
            len: u64::MAX,
        })
        .await?
    {
        Reply::Range(r) => r,
        r => return Err(Error::Internal(format!("unexpected reply {r:?}"))),
    };
    let mut merged = 0;
    for run in runs(&range.extents) {
        let start = run[0].offset;
        let end = run.last().map(|e| e.offset + e.len).unwrap_or(start);
        let mut stream = Box::pin(data.read_extents(&run, &range.placements, start, end).await);
        let mut bytes = BytesMut::with_capacity((end - start) as usize);
        while let Some(piece) = stream.next().await {
            bytes.extend_from_slice(&piece?);
        }
        let blob = data.store_blob(bytes.freeze()).await?;
        match meta
            .command(&Command::MergeExtents {
                inode,
                expect: run,
                blob,
                now: now_ns(),
            })
            .await
        {
            Ok(_) => merged += 1,
            // A write came in between: leave this run to a later round.
            Err(metastore::Error::PreconditionFailed(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use metastore::api::BlobId;

    fn ext(offset: u64, len: u64) -> Extent {
        Extent {
            offset,
            len,
            blob: BlobId([offset as u8; 32]),
            blob_offset: 0,
        }
    }

    #[test]
    fn runs_stop_at_holes_and_at_the_merged_size() {
        const M: u64 = 1 << 20;
        let extents = vec![
            ext(0, M),
            ext(M, M),
            ext(2 * M, M),
            ext(3 * M, M),
            ext(4 * M, M), // would make 5 MiB: starts the next run
            ext(5 * M, M),
            ext(7 * M, M),     // after a hole: alone
            ext(8 * M, 4 * M), // a full blob, alone
        ];
        let r = runs(&extents);
        let offsets: Vec<Vec<u64>> = r
            .iter()
            .map(|run| run.iter().map(|e| e.offset / M).collect())
            .collect();
        assert_eq!(offsets, vec![vec![0, 1, 2, 3], vec![4, 5]]);
    }
}
