//! Objects (files reached by an S3 key), their extent maps and the blob
//! reference counts those maps hold.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::codec::{dec, enc};
use super::keys::validate_key;
use super::namespace::{
    get_bucket, link_new, lookup, must_inode, prune_implicit, put_inode, unlink, Inode, InodeKind,
};
use super::tables::TableSet;
use crate::api::{BlobId, BlobWrite, Extent, InodeId, NodeId, ObjectMeta, WriteCondition};
use crate::error::Error;

/// What the metastore knows of one blob.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BlobRec {
    pub size: u64,
    /// Extents (of files and of multipart parts) that point into this blob.
    pub refs: u64,
    /// Nodes holding a fsynced copy.
    pub nodes: Vec<NodeId>,
    /// Copies wanted: the highest goal of the files referring to it when
    /// they took their reference (0: the default).
    #[serde(default)]
    pub goal: u8,
}

impl BlobRec {
    pub fn goal(&self) -> usize {
        super::namespace::effective_goal(self.goal) as usize
    }
}

pub fn get_blob(t: &TableSet, id: &BlobId) -> Result<Option<BlobRec>, Error> {
    t.blobs
        .get(id.0.as_slice())?
        .map(|v| dec(v.value()))
        .transpose()
}

pub fn put_blob(t: &mut TableSet, id: &BlobId, rec: &BlobRec) -> Result<(), Error> {
    t.blobs.insert(id.0.as_slice(), enc(rec).as_slice())?;
    Ok(())
}

/// Records blobs a gateway has written, merging placements with any copies
/// already known.
pub fn record_blobs(t: &mut TableSet, blobs: &[BlobWrite]) -> Result<(), Error> {
    for b in blobs {
        if b.nodes.is_empty() {
            return Err(Error::Invalid(format!("blob {} has no placement", b.id)));
        }
        let mut rec = get_blob(t, &b.id)?.unwrap_or_default();
        if rec.refs == 0 && rec.nodes.is_empty() {
            rec.size = b.size;
        } else if rec.size != b.size {
            return Err(Error::Invalid(format!("blob {} size mismatch", b.id)));
        }
        for n in &b.nodes {
            if !rec.nodes.contains(n) {
                rec.nodes.push(*n);
            }
            // Placed again: a deletion queued by trimming must not run.
            t.deletions.remove((*n, b.id.0.as_slice()))?;
        }
        put_blob(t, &b.id, &rec)?;
    }
    Ok(())
}

/// Takes one reference per extent for a file whose goal is `goal`. Every
/// extent must fall inside a known blob.
pub fn add_refs(t: &mut TableSet, extents: &[Extent], goal: u8) -> Result<(), Error> {
    for e in extents {
        let mut rec = get_blob(t, &e.blob)?
            .ok_or_else(|| Error::Invalid(format!("extent names unknown blob {}", e.blob)))?;
        if e.len == 0 || e.blob_offset.saturating_add(e.len) > rec.size {
            return Err(Error::Invalid(format!("extent outside blob {}", e.blob)));
        }
        if rec.refs == 0 {
            t.unreferenced.remove(e.blob.0.as_slice())?;
            rec.goal = goal;
        } else {
            rec.goal = rec.goal().max(goal as usize) as u8;
        }
        rec.refs += 1;
        put_blob(t, &e.blob, &rec)?;
    }
    Ok(())
}

/// Drops one reference per extent; a blob left with none is marked for the
/// garbage sweep (which deletes it only after a grace period).
pub fn release_refs(t: &mut TableSet, extents: &[Extent], now: u64) -> Result<(), Error> {
    for e in extents {
        let Some(mut rec) = get_blob(t, &e.blob)? else {
            return Err(Error::Internal(format!(
                "extent of unknown blob {}",
                e.blob
            )));
        };
        rec.refs = rec.refs.saturating_sub(1);
        if rec.refs == 0 {
            t.unreferenced.insert(e.blob.0.as_slice(), now)?;
        }
        put_blob(t, &e.blob, &rec)?;
    }
    Ok(())
}

/// Checks that extents tile `[0, size)` in order with no gap or overlap.
pub fn check_tiling(extents: &[Extent], size: u64) -> Result<(), Error> {
    let mut at = 0u64;
    for e in extents {
        if e.offset != at || e.len == 0 {
            return Err(Error::Invalid("extents do not tile the object".into()));
        }
        at += e.len;
    }
    if at != size {
        return Err(Error::Invalid(
            "extents do not cover the object size".into(),
        ));
    }
    Ok(())
}

pub fn read_extents(t: &TableSet, inode: InodeId) -> Result<Vec<Extent>, Error> {
    let mut out = Vec::new();
    for entry in t.extents.range((inode, 0)..=(inode, u64::MAX))? {
        out.push(dec(entry?.1.value())?);
    }
    Ok(out)
}

/// Replaces an inode's extent map, moving blob references accordingly.
pub fn replace_extents(
    t: &mut TableSet,
    inode: InodeId,
    extents: &[Extent],
    now: u64,
) -> Result<(), Error> {
    // Take the new references first: a blob shared by old and new maps never
    // touches zero on the way.
    let goal = must_inode(t, inode)?.goal();
    add_refs(t, extents, goal)?;
    let old = read_extents(t, inode)?;
    release_refs(t, &old, now)?;
    for e in &old {
        t.extents.remove((inode, e.offset))?;
    }
    for e in extents {
        t.extents.insert((inode, e.offset), enc(e).as_slice())?;
    }
    Ok(())
}

/// Creates or replaces the object `bucket/key`. Directories along the key's
/// path are created as needed (implicit ones vanish again with their last
/// entry). A key ending in `/` is a "folder" object: the directory itself.
#[allow(clippy::too_many_arguments)]
pub fn put_object(
    t: &mut TableSet,
    bucket: &str,
    key: &str,
    size: u64,
    etag: &str,
    meta: &ObjectMeta,
    extents: &[Extent],
    now: u64,
) -> Result<(), Error> {
    validate_key(key)?;
    check_tiling(extents, size)?;
    let b = get_bucket(t, bucket)?;
    let folder = key.ends_with('/');
    let path = key.trim_end_matches('/');
    let mut parts: Vec<&str> = path.split('/').collect();
    let leaf = parts.pop().expect("validated key has a segment");

    let mut parent = b.inode;
    for dir in parts {
        parent = match lookup(t, parent, dir)? {
            Some(id) => {
                if must_inode(t, id)?.kind != InodeKind::Dir {
                    return Err(Error::KeyConflict(key.to_string()));
                }
                id
            }
            None => link_new(t, &mut Inode::new_dir(parent, dir, now, true))?,
        };
    }

    if folder {
        if size != 0 {
            return Err(Error::KeyConflict(format!(
                "{key}: a key ending in '/' names a directory and must be empty"
            )));
        }
        let id = match lookup(t, parent, leaf)? {
            Some(id) => id,
            None => link_new(t, &mut Inode::new_dir(parent, leaf, now, false))?,
        };
        let mut dir = must_inode(t, id)?;
        if dir.kind != InodeKind::Dir {
            return Err(Error::KeyConflict(key.to_string()));
        }
        dir.implicit = false;
        dir.etag = etag.to_string();
        dir.meta = meta.clone();
        dir.mtime = now;
        put_inode(t, id, &dir)?;
        t.objects.insert((b.inode, key), id)?;
        return Ok(());
    }

    let id = match lookup(t, parent, leaf)? {
        Some(id) => {
            if must_inode(t, id)?.kind != InodeKind::File {
                return Err(Error::KeyConflict(key.to_string()));
            }
            id
        }
        None => link_new(t, &mut Inode::new_file(parent, leaf, now))?,
    };
    let mut inode = must_inode(t, id)?;
    replace_extents(t, id, extents, now)?;
    t.fragmented.remove(id)?;
    inode.size = size;
    inode.etag = etag.to_string();
    inode.meta = meta.clone();
    inode.mtime = now;
    inode.ctime = now;
    put_inode(t, id, &inode)?;
    t.objects.insert((b.inode, key), id)?;
    Ok(())
}

/// Whether an `If-Match`/`If-None-Match` value (`*`, one ETag or a list)
/// names `etag`.
pub fn etag_matches(condition: &str, etag: &str) -> bool {
    condition
        .split(',')
        .map(|c| c.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|c| c == "*" || c == etag)
}

/// Checks a conditional write against the object now at `bucket/key`.
pub fn check_condition(
    t: &TableSet,
    bucket: &str,
    key: &str,
    cond: &WriteCondition,
) -> Result<(), Error> {
    if cond.is_empty() {
        return Ok(());
    }
    let b = get_bucket(t, bucket)?;
    let current = match t.objects.get((b.inode, key))?.map(|v| v.value()) {
        Some(id) => Some(must_inode(t, id)?.etag),
        None => None,
    };
    if let Some(m) = &cond.if_match {
        match &current {
            None => return Err(Error::NoSuchKey(key.to_string())),
            Some(etag) if !etag_matches(m, etag) => {
                return Err(Error::PreconditionFailed(format!(
                    "{key}: If-Match does not match the current ETag"
                )))
            }
            Some(_) => {}
        }
    }
    if let (Some(n), Some(etag)) = (&cond.if_none_match, &current) {
        if etag_matches(n, etag) {
            return Err(Error::PreconditionFailed(format!(
                "{key}: If-None-Match matches the current object"
            )));
        }
    }
    Ok(())
}

/// The inode and extent map of `bucket/key`, which must still have ETag
/// `etag` when one is given.
pub fn source(
    t: &TableSet,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
) -> Result<(Inode, Vec<Extent>), Error> {
    let b = get_bucket(t, bucket)?;
    let id = t
        .objects
        .get((b.inode, key))?
        .map(|v| v.value())
        .ok_or_else(|| Error::NoSuchKey(key.to_string()))?;
    let inode = must_inode(t, id)?;
    if etag.is_some_and(|e| e != inode.etag) {
        return Err(Error::PreconditionFailed(format!(
            "{key} changed during the copy"
        )));
    }
    Ok((inode, read_extents(t, id)?))
}

/// Makes `bucket/key` a copy of `src_bucket/src_key` sharing its blobs;
/// returns the new object's ETag.
#[allow(clippy::too_many_arguments)]
pub fn copy_object(
    t: &mut TableSet,
    src_bucket: &str,
    src_key: &str,
    src_etag: Option<&str>,
    bucket: &str,
    key: &str,
    meta: Option<&ObjectMeta>,
    now: u64,
) -> Result<String, Error> {
    let (src, extents) = source(t, src_bucket, src_key, src_etag)?;
    let mut new_meta = meta.cloned().unwrap_or_else(|| src.meta.clone());
    // The bytes are the same, so their checksum and part layout are too.
    new_meta.checksum = src.meta.checksum.clone();
    new_meta.parts = src.meta.parts.clone();
    put_object(
        t, bucket, key, src.size, &src.etag, &new_meta, &extents, now,
    )?;
    Ok(src.etag)
}

/// Deletes `bucket/key`. Deleting a key that does not exist succeeds, as S3
/// does.
pub fn delete_object(t: &mut TableSet, bucket: &str, key: &str, now: u64) -> Result<(), Error> {
    let b = get_bucket(t, bucket)?;
    let Some(id) = t.objects.remove((b.inode, key))?.map(|v| v.value()) else {
        return Ok(());
    };
    let mut inode = must_inode(t, id)?;
    match inode.kind {
        InodeKind::Dir => {
            // A folder object: the directory stays while it has entries.
            inode.implicit = true;
            inode.etag.clear();
            inode.meta = ObjectMeta::default();
            put_inode(t, id, &inode)?;
            prune_implicit(t, id, b.inode)
        }
        InodeKind::File | InodeKind::Symlink => {
            t.fragmented.remove(id)?;
            let old = read_extents(t, id)?;
            release_refs(t, &old, now)?;
            for e in &old {
                t.extents.remove((id, e.offset))?;
            }
            unlink(t, id, &inode)?;
            prune_implicit(t, inode.parent, b.inode)
        }
    }
}
