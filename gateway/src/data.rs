//! Object bytes onto blobs and back.
//!
//! Writing: the body is cut into blobs of at most [`BLOB_MAX_BYTES`], each
//! hashed and sent to its target nodes in parallel, with at most
//! [`BLOBS_IN_FLIGHT`] blobs in flight per request, so memory stays bounded
//! whatever the object's size. A blob counts as written once at least
//! [`MIN_COPIES`] nodes have fsynced it.
//!
//! Reading: each blob range is fetched from one of its holders (verified by
//! the node's block checksums), falling back to the next holder on any
//! error, with [`READ_AHEAD_BLOBS`] fetched ahead of the client.

use std::collections::{BTreeMap, VecDeque};

use bytes::{Buf, Bytes, BytesMut};
use chunkstore::ChunkClient;
use futures::{Stream, StreamExt};
use md5::Digest as _;
use metastore::api::{BlobId, BlobWrite, Extent, NodeId, ObjectInfo};
use metastore::MetaClient;
use rand::seq::SliceRandom;

use crate::cluster::{place, Cluster};
use crate::error::Error;
use crate::s3::auth::BodyReader;
use crate::s3::checksum::{Algo, Hasher};

/// Largest blob the gateway writes.
pub const BLOB_MAX_BYTES: usize = 4 << 20;
/// Blobs of one request being written at once.
pub const BLOBS_IN_FLIGHT: usize = 4;
/// Blobs of one GET fetched ahead of the client.
pub const READ_AHEAD_BLOBS: usize = 4;
/// Copies a blob is placed on.
pub const GOAL_COPIES: usize = 3;
/// Copies that must be fsynced before a write is acknowledged.
pub const MIN_COPIES: usize = 2;
/// Blobs up to this size are hashed on the calling thread (~30 µs).
const HASH_INLINE_BYTES: usize = 64 << 10;

/// What writing a body produced: the extent map to commit, and what the
/// caller must check before committing it.
pub struct Written {
    pub size: u64,
    pub md5: [u8; 16],
    /// The requested checksum over the body, base64.
    pub checksum: Option<(Algo, String)>,
    pub extents: Vec<Extent>,
    pub blobs: Vec<BlobWrite>,
}

#[derive(Clone)]
pub struct DataPlane {
    chunks: ChunkClient,
    cluster: Cluster,
    meta: MetaClient,
}

impl DataPlane {
    pub fn new(chunks: ChunkClient, cluster: Cluster, meta: MetaClient) -> Self {
        Self {
            chunks,
            cluster,
            meta,
        }
    }

    /// Streams `body` into blobs. Nothing is committed here: on error the
    /// blobs already written are unreferenced and left to the garbage sweep.
    pub async fn write(
        &self,
        body: &mut BodyReader,
        algo: Option<Algo>,
        max_size: u64,
    ) -> Result<Written, Error> {
        let mut md5 = md5::Md5::new();
        let mut checksum = algo.map(Hasher::new);
        let mut buf = BytesMut::with_capacity(BLOB_MAX_BYTES);
        let mut inflight: VecDeque<tokio::task::JoinHandle<Result<BlobWrite, Error>>> =
            VecDeque::new();
        let mut blobs = Vec::new();
        let mut size = 0u64;
        let result: Result<(), Error> = async {
            while let Some(mut piece) = body.next().await? {
                size += piece.len() as u64;
                if size > max_size {
                    return Err(Error::EntityTooLarge);
                }
                md5.update(&piece);
                if let Some(c) = &mut checksum {
                    c.update(&piece);
                }
                while !piece.is_empty() {
                    let take = (BLOB_MAX_BYTES - buf.len()).min(piece.len());
                    buf.extend_from_slice(&piece[..take]);
                    piece.advance(take);
                    if buf.len() == BLOB_MAX_BYTES {
                        if inflight.len() >= BLOBS_IN_FLIGHT {
                            blobs.push(join(inflight.pop_front().expect("non-empty")).await?);
                        }
                        inflight.push_back(self.spawn_store(buf.split().freeze()));
                        buf.reserve(BLOB_MAX_BYTES);
                    }
                }
            }
            if !buf.is_empty() {
                inflight.push_back(self.spawn_store(buf.split().freeze()));
            }
            while let Some(h) = inflight.pop_front() {
                blobs.push(join(h).await?);
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            for h in inflight {
                h.abort();
            }
            return Err(e);
        }
        let mut extents = Vec::with_capacity(blobs.len());
        let mut offset = 0;
        for b in &blobs {
            extents.push(Extent {
                offset,
                len: b.size,
                blob: b.id,
                blob_offset: 0,
            });
            offset += b.size;
        }
        Ok(Written {
            size,
            md5: md5.finalize().into(),
            checksum: algo.zip(checksum.map(Hasher::finish_base64)),
            extents,
            blobs,
        })
    }

    fn spawn_store(&self, data: Bytes) -> tokio::task::JoinHandle<Result<BlobWrite, Error>> {
        let this = self.clone();
        tokio::spawn(async move { this.store_blob(data).await })
    }

    /// Writes one blob to [`GOAL_COPIES`] nodes (falling back to further
    /// candidates when a target fails); succeeds with at least
    /// [`MIN_COPIES`].
    pub async fn store_blob(&self, data: Bytes) -> Result<BlobWrite, Error> {
        // Hashing a small blob costs less than a hand-over to a blocking
        // thread.
        let id = if data.len() <= HASH_INLINE_BYTES {
            BlobId::of(&data)
        } else {
            let hashed = data.clone();
            tokio::task::spawn_blocking(move || BlobId::of(&hashed))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
        };
        self.ensure_nodes().await;
        let nodes = self.cluster.nodes();
        let candidates = place(
            &nodes,
            GOAL_COPIES,
            data.len() as u64,
            &mut rand::thread_rng(),
        );
        let alive = nodes.iter().filter(|n| n.writable()).count();
        if candidates.len() < MIN_COPIES && alive >= MIN_COPIES {
            return Err(Error::NoSpace(format!(
                "{} of {alive} writable storage nodes have free space",
                candidates.len()
            )));
        }
        if candidates.len() < MIN_COPIES {
            return Err(Error::InsufficientNodes {
                needed: MIN_COPIES,
                detail: format!("{} live nodes with free space", candidates.len()),
            });
        }
        let (targets, spares) = candidates.split_at(GOAL_COPIES.min(candidates.len()));
        let puts = targets
            .iter()
            .map(|n| self.chunks.put(&n.addr, &id, data.clone()));
        let results = futures::future::join_all(puts).await;
        let mut stored: Vec<NodeId> = Vec::new();
        let mut errors = Vec::new();
        for (n, r) in targets.iter().zip(results) {
            match r {
                Ok(()) => stored.push(n.id),
                Err(e) => errors.push(e.to_string()),
            }
        }
        for n in spares {
            if stored.len() >= targets.len() {
                break;
            }
            match self.chunks.put(&n.addr, &id, data.clone()).await {
                Ok(()) => stored.push(n.id),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if stored.len() < MIN_COPIES {
            return Err(Error::InsufficientNodes {
                needed: MIN_COPIES,
                detail: errors.join("; "),
            });
        }
        if !errors.is_empty() {
            tracing::warn!(blob = %id, copies = stored.len(), errors = %errors.join("; "), "blob stored below goal");
        }
        Ok(BlobWrite {
            id,
            size: data.len() as u64,
            nodes: stored,
        })
    }

    /// A fresh gateway may not have its node list yet: fetch it now rather
    /// than fail the first requests.
    async fn ensure_nodes(&self) {
        if self.cluster.writable_count() < MIN_COPIES {
            let _ = self.cluster.refresh(&self.meta).await;
        }
    }

    /// The bytes `[start, end)` of an object, as a stream.
    pub async fn read(
        &self,
        info: &ObjectInfo,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'static {
        self.read_extents(&info.extents, &info.placements, start, end)
            .await
    }

    /// The bytes `[start, end)` of a file with extent map `extents` (which
    /// need only cover that range), as a stream. Bytes no extent covers (a
    /// hole left by a sparse NFS write or a size extension) read as zeros.
    pub async fn read_extents(
        &self,
        extents: &[Extent],
        placements: &BTreeMap<BlobId, Vec<NodeId>>,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'static {
        self.ensure_nodes().await;
        let mut pieces = Vec::new();
        let mut at = start;
        for e in extents {
            let (e_start, e_end) = (e.offset, e.offset + e.len);
            if e_end <= at || e_start >= end {
                continue;
            }
            push_zeros(&mut pieces, at, e_start);
            let from = at.max(e_start);
            let to = end.min(e_end);
            let holders = placements.get(&e.blob).cloned().unwrap_or_default();
            pieces.push(Piece::Blob(
                e.blob,
                e.blob_offset + (from - e_start),
                to - from,
                holders,
            ));
            at = to;
        }
        push_zeros(&mut pieces, at, end);
        let this = self.clone();
        futures::stream::iter(pieces)
            .map(move |piece| {
                let this = this.clone();
                async move {
                    match piece {
                        Piece::Blob(blob, offset, len, holders) => {
                            this.fetch(blob, offset, len, &holders).await
                        }
                        Piece::Zeros(len) => Ok(Bytes::from(vec![0u8; len as usize])),
                    }
                }
            })
            .buffered(READ_AHEAD_BLOBS)
    }

    /// The holders' current addresses, live nodes first, in random order
    /// to spread reads over the copies.
    fn holder_addrs(&self, holders: &[NodeId]) -> Vec<String> {
        let nodes = self.cluster.nodes();
        let mut found: Vec<(bool, String)> = holders
            .iter()
            .filter_map(|h| nodes.iter().find(|n| n.id == *h))
            .filter(|n| n.mode != metastore::api::NodeMode::Removed)
            .map(|n| (n.alive, n.addr.clone()))
            .collect();
        found.shuffle(&mut rand::thread_rng());
        found.sort_by_key(|(alive, _)| !alive);
        found.into_iter().map(|(_, a)| a).collect()
    }

    /// Reads a blob range from one of its holders, trying each in turn; if
    /// none answers, refreshes the node list once (a node may have come
    /// back at another address) and tries again.
    async fn fetch(
        &self,
        blob: BlobId,
        offset: u64,
        len: u64,
        holders: &[NodeId],
    ) -> Result<Bytes, Error> {
        let mut errors = Vec::new();
        for round in 0..2 {
            if round == 1 {
                let _ = self.cluster.refresh(&self.meta).await;
            }
            for addr in self.holder_addrs(holders) {
                match self.chunks.get(&addr, &blob, offset, len).await {
                    Ok(data) => return Ok(data),
                    Err(e) => {
                        tracing::warn!(%blob, node = %addr, error = %e, "blob read failed; trying another copy");
                        errors.push(format!("{addr}: {e}"));
                    }
                }
            }
        }
        Err(Error::BlobUnavailable {
            blob: blob.to_hex(),
            detail: if errors.is_empty() {
                "no known holder".into()
            } else {
                errors.join("; ")
            },
        })
    }
}

/// One stretch of a read: a blob range, or a hole.
enum Piece {
    Blob(BlobId, u64, u64, Vec<NodeId>),
    Zeros(u64),
}

/// A hole `[from, to)` as zero pieces of at most one blob's size, so a
/// huge hole is never one allocation.
fn push_zeros(pieces: &mut Vec<Piece>, mut from: u64, to: u64) {
    while from < to {
        let len = (to - from).min(BLOB_MAX_BYTES as u64);
        pieces.push(Piece::Zeros(len));
        from += len;
    }
}

async fn join(h: tokio::task::JoinHandle<Result<BlobWrite, Error>>) -> Result<BlobWrite, Error> {
    h.await.map_err(|e| Error::Internal(e.to_string()))?
}
