//! Scrubbing: the node re-reads every blob in the background, at a set
//! rate, and checks each block's CRC32C and the whole blob's SHA-256
//! against its name. A bad copy (found here or by a client's read) is moved
//! to `quarantine/` and reported, so the metastore forgets it and repair
//! remakes it from a good copy.
//!
//! A pass ends (at most once a minute) by asking which blobs the metastore
//! places here and reporting those whose file is gone (deleted or lost
//! outside Troika), so they are remade too. A copy's file is written before
//! its placement is recorded, and its placement dropped before the file is
//! deleted, so a placed copy with no file is lost. A report that lands late
//! can still drop a copy placed again meanwhile, which costs one needless
//! repair; the metastore never drops a blob's last placement for a missing
//! file, since the file may come back with its disk.
//!
//! The same walk finds orphans: blob files no metadata record places on
//! this node (a crash between a blob's write and its commit, a copy
//! recorded after its blob was collected). The metastore says which files
//! are orphans and gives a cutoff; a file written after it is kept, since a
//! write may still be on its way to its commit.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metastore::api::{BlobId, Command};
use metastore::MetaClient;

use crate::error::Error;
use crate::server::{Lost, Shared};

/// Default scrub rate per node.
pub const DEFAULT_BYTES_PER_S: u64 = 16 << 20;
/// Pause between passes (a small store is checked again at most this
/// often).
const PASS_PAUSE: Duration = Duration::from_secs(10);
/// Each blob is paced as if at least this large, so a node of many tiny
/// blobs is not read (and asked about) flat out.
const MIN_PACED_BYTES: u64 = 64 << 10;
/// Blobs asked about at once in the orphan sweep.
const ORPHAN_BATCH: usize = 512;
/// Placed blobs listed at once when checking for missing files.
const PLACED_PAGE: u32 = 1024;
/// Least time between checks for missing files (each one reads the
/// leader's whole `blobs` table).
const PLACED_CHECK_EVERY: Duration = Duration::from_secs(60);

pub(crate) async fn run(shared: Arc<Shared>, meta: MetaClient, bytes_per_s: u64) {
    if bytes_per_s == 0 {
        return;
    }
    let p = &shared.progress;
    let mut last_check: Option<Instant> = None;
    let mut known_missing = HashSet::new();
    loop {
        tokio::time::sleep(PASS_PAUSE).await;
        if !shared.registered.load(Ordering::SeqCst) {
            continue;
        }
        p.scrub_checked_blobs.store(0, Ordering::Relaxed);
        p.scrub_checked_bytes.store(0, Ordering::Relaxed);
        p.scrub_pass_bytes
            .store(shared.store.used_bytes(), Ordering::Relaxed);
        let mut good = Vec::new();
        for prefix in 0..=255u8 {
            let store = shared.clone();
            let Ok(Ok(blobs)) = tokio::task::spawn_blocking(move || store.store.list(prefix)).await
            else {
                continue;
            };
            for (id, len, mtime) in blobs {
                let start = Instant::now();
                let store = shared.clone();
                let checked = tokio::task::spawn_blocking(move || store.store.verify(&id)).await;
                match checked {
                    Ok(Ok(())) => good.push((id, mtime)),
                    Ok(Err(Error::NotFound)) => {} // deleted meanwhile
                    Ok(Err(Error::Corrupt(why))) => {
                        let s = shared.clone();
                        let _ = tokio::task::spawn_blocking(move || s.bad_copy(&id, &why)).await;
                    }
                    Ok(Err(e)) => tracing::warn!(blob = %id, error = %e, "scrub read failed"),
                    Err(e) => tracing::warn!(error = %e, "scrub task failed"),
                }
                p.scrub_checked_blobs.fetch_add(1, Ordering::Relaxed);
                p.scrub_checked_bytes.fetch_add(len, Ordering::Relaxed);
                p.scrub_total_bytes.fetch_add(len, Ordering::Relaxed);
                let paced = len.max(MIN_PACED_BYTES);
                let due = Duration::from_secs_f64(paced as f64 / bytes_per_s as f64);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
            if good.len() >= ORPHAN_BATCH || prefix == 255 {
                if let Err(e) = sweep_orphans(&shared, &meta, std::mem::take(&mut good)).await {
                    tracing::debug!(error = %e, "orphan sweep failed");
                }
            }
        }
        if last_check.is_none_or(|t| t.elapsed() >= PLACED_CHECK_EVERY) {
            last_check = Some(Instant::now());
            if let Err(e) = check_placed(&shared, &meta, &mut known_missing).await {
                tracing::debug!(error = %e, "checking placed copies failed");
            }
        }
        p.scrub_passes.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reports the copies the metastore places on this node whose file is
/// missing. `known` holds those found missing by the last check, which are
/// reported again (the metastore keeps a blob's last placement) but not
/// counted or logged again; it is replaced by this check's.
async fn check_placed(
    shared: &Arc<Shared>,
    meta: &MetaClient,
    known: &mut HashSet<BlobId>,
) -> Result<(), metastore::Error> {
    let mut after = None;
    let mut found = HashSet::new();
    loop {
        let placed = meta.placed(shared.id, after, PLACED_PAGE).await?;
        let Some(last) = placed.last().copied() else {
            break;
        };
        let full_page = placed.len() >= PLACED_PAGE as usize;
        let store = shared.clone();
        let missing = tokio::task::spawn_blocking(move || {
            placed
                .into_iter()
                .filter(|id| matches!(store.store.len(id), Err(Error::NotFound)))
                .map(|id| (id, store.store.quarantined(&id)))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (id, quarantined) in missing {
            shared.missing_copy(&id, quarantined || known.contains(&id));
            found.insert(id);
        }
        if !full_page {
            break;
        }
        after = Some(last);
    }
    *known = found;
    Ok(())
}

/// Deletes those of `blobs` (id, mtime) the metastore places nowhere on
/// this node, unless written after its cutoff.
async fn sweep_orphans(
    shared: &Arc<Shared>,
    meta: &MetaClient,
    blobs: Vec<(BlobId, u64)>,
) -> Result<(), metastore::Error> {
    for batch in blobs.chunks(ORPHAN_BATCH) {
        let ids = batch.iter().map(|(id, _)| *id).collect();
        let (orphans, cutoff) = meta.unplaced(shared.id, ids).await?;
        let store = shared.clone();
        let deleted = tokio::task::spawn_blocking(move || {
            orphans
                .iter()
                .filter(|id| {
                    matches!(
                        store.store.delete_unless_written_since(id, cutoff),
                        Ok(true)
                    )
                })
                .count()
        })
        .await
        .unwrap_or(0);
        if deleted > 0 {
            tracing::info!(blobs = deleted, "deleted orphan blob files");
        }
    }
    Ok(())
}

/// Reports bad and missing copies to the metastore (retrying until it
/// hears), so it stops placing reads there and repair remakes them.
pub(crate) async fn report_bad(
    node: metastore::api::NodeId,
    meta: MetaClient,
    mut lost: tokio::sync::mpsc::UnboundedReceiver<Lost>,
) {
    while let Some(first) = lost.recv().await {
        let (mut blobs, mut missing) = (Vec::new(), Vec::new());
        let mut next = Some(first);
        while let Some(l) = next {
            match l {
                Lost::Bad(id) => blobs.push(id),
                Lost::Missing(id) => missing.push(id),
            }
            next = lost.try_recv().ok();
        }
        let cmd = Command::LostCopies {
            node,
            blobs,
            missing,
        };
        while let Err(e) = meta.command(&cmd).await {
            tracing::warn!(error = %e, "reporting bad copies failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
