//! Repair, rebalancing and garbage on the storage node. The node asks the
//! meta leader which blobs it should copy (below their goal, or moves to
//! even out fill), pulls each from a live holder (whose block checksums
//! verify the read; `put` then checks the SHA-256 against the name), stores
//! it durably, and records the new copies; a move's old copy is dropped in
//! the same command. Copying is paced to bandwidth limits so client traffic
//! keeps priority. The node also deletes the copies the metastore dropped.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metastore::api::{BlobWrite, Command, NodeId, Query, Reply};
use metastore::MetaClient;

use crate::client::ChunkClient;
use crate::server::Shared;

/// Default repair bandwidth per node.
pub const DEFAULT_BYTES_PER_S: u64 = 100 << 20;
/// How often a node asks for repair work when it had none.
pub const IDLE_INTERVAL: Duration = Duration::from_secs(2);
/// Blobs asked for at once.
const BATCH: u32 = 16;
/// Queued deletions handled at once.
const DELETE_BATCH: u32 = 512;

/// Bandwidth limits for copying.
#[derive(Clone, Copy)]
pub struct Pace {
    pub repair_bytes_per_s: u64,
    pub rebalance_bytes_per_s: u64,
}

pub(crate) async fn run(shared: Arc<Shared>, meta: MetaClient, peers: ChunkClient, pace: Pace) {
    let id = shared.id;
    loop {
        tokio::time::sleep(IDLE_INTERVAL).await;
        if !shared.registered.load(Ordering::SeqCst) || shared.store.writes_disabled() {
            continue;
        }
        if let Err(e) = delete_garbage(&shared, &meta, id).await {
            tracing::debug!(error = %e, "garbage deletion failed");
        }
        // Keep going while there is work.
        loop {
            match round(&shared, &meta, &peers, id, pace).await {
                Ok(0) => break,
                Ok(n) => tracing::info!(copies = n, "repaired blobs"),
                Err(e) => {
                    tracing::debug!(error = %e, "repair round failed");
                    break;
                }
            }
        }
    }
}

/// One batch: returns how many copies were made and recorded.
async fn round(
    shared: &Arc<Shared>,
    meta: &MetaClient,
    peers: &ChunkClient,
    id: NodeId,
    pace: Pace,
) -> Result<usize, metastore::Error> {
    let tasks = match meta
        .query(&Query::RepairWork {
            node: id,
            limit: BATCH,
        })
        .await?
    {
        Reply::Repairs(t) => t,
        r => {
            return Err(metastore::Error::Internal(format!(
                "unexpected reply {r:?}"
            )))
        }
    };
    let mut made = Vec::new();
    let mut moves = Vec::new();
    for task in tasks {
        let start = Instant::now();
        let mut copied = false;
        for src in &task.sources {
            let data = match peers.get(src, &task.blob, 0, task.size).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(blob = %task.blob, from = %src, error = %e, "repair read failed");
                    continue;
                }
            };
            let store = shared.clone();
            let blob = task.blob;
            match tokio::task::spawn_blocking(move || store.store.put(&blob, &data)).await {
                Ok(Ok(_)) => {
                    copied = true;
                    break;
                }
                Ok(Err(e)) => {
                    tracing::warn!(blob = %task.blob, from = %src, error = %e, "repair copy refused")
                }
                Err(e) => tracing::warn!(error = %e, "repair task failed"),
            }
        }
        if copied {
            made.push(BlobWrite {
                id: task.blob,
                size: task.size,
                nodes: vec![id],
            });
            let counter = match task.move_from {
                Some(from) => {
                    moves.push((task.blob, from));
                    &shared.progress.moved_bytes
                }
                None => &shared.progress.repaired_bytes,
            };
            counter.fetch_add(task.size, Ordering::Relaxed);
        }
        // Pace to the bandwidth limit.
        let bytes_per_s = match task.move_from {
            Some(_) => pace.rebalance_bytes_per_s,
            None => pace.repair_bytes_per_s,
        };
        let due = Duration::from_secs_f64(task.size as f64 / bytes_per_s.max(1) as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    let n = made.len();
    if n > 0 {
        meta.command(&Command::RecordCopies {
            blobs: made,
            moves,
            cutoff: metastore::client::now_ns(),
        })
        .await?;
    }
    Ok(n)
}

/// Deletes the copies the metastore queued for this node (blobs collected
/// as garbage), sparing any written after its cutoff, and reports them
/// handled.
async fn delete_garbage(
    shared: &Arc<Shared>,
    meta: &MetaClient,
    id: NodeId,
) -> Result<(), metastore::Error> {
    loop {
        let work = match meta
            .query(&Query::DeleteWork {
                node: id,
                limit: DELETE_BATCH,
                due: Some(
                    metastore::client::now_ns()
                        .saturating_sub(metastore::server::DELETE_DELAY.as_nanos() as u64),
                ),
            })
            .await?
        {
            Reply::Deletions(d) => d,
            r => {
                return Err(metastore::Error::Internal(format!(
                    "unexpected reply {r:?}"
                )))
            }
        };
        if work.is_empty() {
            return Ok(());
        }
        let full = work.len() >= DELETE_BATCH as usize;
        let store = shared.clone();
        let done = tokio::task::spawn_blocking(move || {
            let mut done = Vec::new();
            let mut freed = 0;
            for (blob, cutoff) in work {
                match store.store.delete_unless_written_since(&blob, cutoff) {
                    Ok(gone) => {
                        freed += usize::from(gone);
                        done.push(blob);
                    }
                    Err(e) => tracing::warn!(%blob, error = %e, "garbage deletion failed"),
                }
            }
            (done, freed)
        })
        .await
        .map_err(|e| metastore::Error::Internal(e.to_string()))?;
        let (done, freed) = done;
        if freed > 0 {
            tracing::info!(blobs = freed, "deleted garbage copies");
        }
        meta.command(&Command::DeletedBlobs {
            node: id,
            blobs: done,
        })
        .await?;
        if !full {
            return Ok(());
        }
    }
}
