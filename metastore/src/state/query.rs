//! Read-only queries, answered from one redb read transaction (a consistent
//! snapshot).

use std::collections::BTreeMap;
use std::ops::Bound;

use redb::{ReadableTable, ReadableTableMetadata};

use super::reader::Reader;

use super::codec::dec;
use super::files;
use super::namespace::{Inode, NodeRec};
use super::objects::BlobRec;
use super::tables::*;
use super::uploads::{PartRec, UploadRec};
use crate::api::*;
use crate::error::Error;

/// Longest page a listing returns, whatever the client asks for.
pub const LIST_MAX_KEYS: u32 = 1000;

pub fn query(txn: &impl Reader, q: &Query) -> Result<Reply, Error> {
    match q {
        Query::ListNodes => {
            let nodes = txn.open_table(NODES)?;
            let mut out = Vec::new();
            for entry in nodes.iter()? {
                let (id, v) = entry?;
                let rec: NodeRec = dec(v.value())?;
                out.push(NodeInfo {
                    id: id.value(),
                    addr: rec.addr,
                    zone: rec.zone,
                    alive: false,
                    capacity_bytes: 0,
                    free_bytes: 0,
                    blob_count: 0,
                    mode: rec.mode,
                    state: String::new(),
                    used_bytes: 0,
                    placed: Default::default(),
                    scrub: Default::default(),
                    copies: Default::default(),
                });
            }
            Ok(Reply::Nodes(out))
        }
        Query::GetKey { access_key } => {
            let keys = txn.open_table(KEYS)?;
            let found = match keys.get(access_key.as_str())? {
                Some(v) => Ok(Reply::Key(dec(v.value())?)),
                None => Err(Error::NoSuchAccessKey(access_key.clone())),
            };
            found
        }
        Query::ListKeys => {
            let keys = txn.open_table(KEYS)?;
            let mut out = Vec::new();
            for entry in keys.iter()? {
                out.push(dec(entry?.1.value())?);
            }
            Ok(Reply::Keys(out))
        }
        Query::ListUploads {
            bucket: b,
            prefix,
            key_marker,
            upload_id_marker,
            max_uploads,
        } => {
            bucket(txn, b)?;
            let mut all: Vec<UploadInfo> = uploads(txn)?
                .into_iter()
                .filter(|u| u.completed.is_none())
                .filter(|u| &u.bucket == b && u.key.starts_with(prefix.as_str()))
                .filter(|u| {
                    (u.key.as_str(), u.upload_id.as_str())
                        > (key_marker.as_str(), upload_id_marker.as_str())
                })
                .collect();
            all.sort_by(|x, y| (&x.key, &x.upload_id).cmp(&(&y.key, &y.upload_id)));
            let max = (*max_uploads).clamp(1, LIST_MAX_KEYS) as usize;
            let truncated = all.len() > max;
            all.truncate(max);
            Ok(Reply::Uploads {
                uploads: all,
                truncated,
            })
        }
        Query::StaleUploads { before } => {
            let mut all = uploads(txn)?;
            // A completed upload is kept for retried completions as long
            // as an abandoned one would be kept, counted from completion.
            all.retain(|u| u.completed.as_ref().map_or(u.created, |c| c.mtime) < *before);
            Ok(Reply::Uploads {
                uploads: all,
                truncated: false,
            })
        }
        Query::ListBuckets => {
            let buckets = txn.open_table(BUCKETS)?;
            let mut out = Vec::new();
            for entry in buckets.iter()? {
                out.push(dec(entry?.1.value())?);
            }
            Ok(Reply::Buckets(out))
        }
        Query::HeadBucket { name } => Ok(Reply::Bucket(bucket(txn, name)?)),
        Query::GetObject { bucket: b, key } => {
            let b = bucket(txn, b)?;
            let objects = txn.open_table(OBJECTS)?;
            let id = objects
                .get((b.inode, key.as_str()))?
                .map(|v| v.value())
                .ok_or_else(|| Error::NoSuchKey(key.clone()))?;
            let inode = inode(txn, id)?;
            let extents = extents_of(txn, id)?;
            let placements = placements_of(txn, &extents)?;
            Ok(Reply::Object(ObjectInfo {
                key: key.clone(),
                inode: id,
                size: inode.size,
                etag: inode.etag,
                mtime: inode.mtime,
                meta: inode.meta,
                extents,
                placements,
            }))
        }
        Query::ListObjects {
            bucket: b,
            prefix,
            start_after,
            delimiter,
            max_keys,
        } => {
            let b = bucket(txn, b)?;
            list_objects(
                txn,
                b.inode,
                prefix,
                start_after,
                delimiter.as_deref().filter(|d| !d.is_empty()),
                (*max_keys).min(LIST_MAX_KEYS),
            )
        }
        Query::GetUpload { upload_id } => {
            let uploads = txn.open_table(UPLOADS)?;
            let up: UploadRec = match uploads.get(upload_id.as_str())? {
                Some(v) => dec(v.value())?,
                None => return Err(Error::NoSuchUpload(upload_id.clone())),
            };
            let parts_t = txn.open_table(PARTS)?;
            let mut parts = Vec::new();
            for entry in parts_t.range((upload_id.as_str(), 0)..=(upload_id.as_str(), u32::MAX))? {
                let (k, v) = entry?;
                let p: PartRec = dec(v.value())?;
                parts.push(PartInfo {
                    part_number: k.value().1,
                    size: p.size,
                    etag: p.etag,
                    checksum: p.checksum,
                    created: p.created,
                });
            }
            Ok(Reply::Upload(upload_info(upload_id, up, parts)))
        }
        Query::GetNode { inode } => node_attr(txn, *inode).map(Reply::Node),
        Query::Lookup { parent, name } => {
            let dir = node_attr(txn, *parent)?;
            if dir.kind != NodeKind::Dir {
                return Err(Error::NotDir(parent.to_string()));
            }
            match txn.open_table(DIRENTS)?.get((*parent, name.as_str()))? {
                Some(v) => node_attr(txn, v.value()).map(Reply::Node),
                None => Err(Error::NoEntry(name.clone())),
            }
        }
        Query::ReadDir { dir, cookie, limit } => read_dir(txn, *dir, *cookie, *limit),
        Query::ReadRange { inode, offset, len } => read_range(txn, *inode, *offset, *len),
        // Needs liveness, which only the meta server has.
        Query::RepairWork { .. }
        | Query::ClusterStatus
        | Query::Unplaced { .. }
        | Query::Placed { .. } => Err(Error::Invalid(
            "this query is answered by the meta leader".into(),
        )),
        Query::GetGoal { path } => {
            let dirents = txn.open_table(DIRENTS)?;
            let mut id = ROOT_INODE;
            for name in path.split('/').filter(|n| !n.is_empty()) {
                id = dirents
                    .get((id, name))?
                    .ok_or_else(|| Error::NoEntry(path.clone()))?
                    .value();
            }
            let inode: Inode = txn
                .open_table(INODES)?
                .get(id)?
                .map(|v| dec(v.value()))
                .transpose()?
                .ok_or_else(|| Error::NoEntry(path.clone()))?;
            Ok(Reply::Goal(inode.goal()))
        }
        Query::DeleteWork { node, limit, due } => {
            let table = txn.open_table(DELETIONS)?;
            let mut out = Vec::new();
            for entry in table.range((*node, &[][..])..)? {
                let (k, v) = entry?;
                let (n, blob) = k.value();
                if n != *node || out.len() >= *limit as usize {
                    break;
                }
                if due.is_some_and(|d| v.value() > d) {
                    continue;
                }
                let blob: [u8; 32] = blob
                    .try_into()
                    .map_err(|_| Error::Internal("blob key is not 32 bytes".into()))?;
                out.push((BlobId(blob), v.value()));
            }
            Ok(Reply::Deletions(out))
        }
        Query::Fragmented { before, limit } => {
            let mut out = Vec::new();
            for entry in txn.open_table(FRAGMENTED)?.iter()? {
                let (k, v) = entry?;
                if v.value() < *before {
                    out.push((k.value(), v.value()));
                    if out.len() >= *limit as usize {
                        break;
                    }
                }
            }
            Ok(Reply::Marks(out))
        }
        Query::Stats => {
            let blobs = txn.open_table(BLOBS)?;
            let mut blob_bytes = 0;
            for entry in blobs.iter()? {
                let rec: BlobRec = dec(entry?.1.value())?;
                blob_bytes += rec.size;
            }
            Ok(Reply::Stats(Stats {
                inodes: txn.open_table(INODES)?.len()?,
                buckets: txn.open_table(BUCKETS)?.len()?,
                objects: txn.open_table(OBJECTS)?.len()?,
                blobs: blobs.len()?,
                blob_bytes,
                unreferenced_blobs: txn.open_table(UNREFERENCED)?.len()?,
                uploads: uploads(txn)?
                    .iter()
                    .filter(|u| u.completed.is_none())
                    .count() as u64,
            }))
        }
    }
}

/// Where each blob of `extents` is stored.
fn placements_of(
    txn: &impl Reader,
    extents: &[Extent],
) -> Result<BTreeMap<BlobId, Vec<NodeId>>, Error> {
    let blobs = txn.open_table(BLOBS)?;
    let mut placements = BTreeMap::new();
    for e in extents {
        if placements.contains_key(&e.blob) {
            continue;
        }
        let rec: BlobRec = match blobs.get(e.blob.0.as_slice())? {
            Some(v) => dec(v.value())?,
            None => return Err(Error::Internal(format!("blob {} unknown", e.blob))),
        };
        placements.insert(e.blob, rec.nodes);
    }
    Ok(placements)
}

/// The attributes of `id`; `Stale` if it is gone. The root exists before
/// its first bucket does.
fn node_attr(txn: &impl Reader, id: InodeId) -> Result<NodeAttr, Error> {
    match txn.open_table(INODES)?.get(id)? {
        Some(v) => Ok(files::attr(id, &dec(v.value())?)),
        None if id == ROOT_INODE => Ok(files::attr(id, &Inode::new_dir(ROOT_INODE, "", 0, false))),
        None => Err(Error::Stale(id)),
    }
}

/// Longest page of a directory listing.
pub const READDIR_MAX: u32 = 1024;

fn read_dir(txn: &impl Reader, dir: InodeId, cookie: u64, limit: u32) -> Result<Reply, Error> {
    let attr = node_attr(txn, dir)?;
    if attr.kind != NodeKind::Dir {
        return Err(Error::NotDir(dir.to_string()));
    }
    let cookies = txn.open_table(DIRCOOKIES)?;
    let dirents = txn.open_table(DIRENTS)?;
    let limit = limit.clamp(1, READDIR_MAX) as usize;
    let mut entries = Vec::new();
    let mut eof = true;
    let start = cookie.saturating_add(1);
    for entry in cookies.range((dir, start)..=(dir, u64::MAX))? {
        if entries.len() == limit {
            eof = false;
            break;
        }
        let (k, name) = entry?;
        let name = name.value().to_string();
        let Some(child) = dirents.get((dir, name.as_str()))?.map(|v| v.value()) else {
            return Err(Error::Internal(format!("cookie without entry: {name}")));
        };
        entries.push(DirEntry {
            cookie: k.value().1,
            name,
            attr: node_attr(txn, child)?,
        });
    }
    Ok(Reply::Entries {
        entries,
        eof,
        dir: Some(attr),
    })
}

fn read_range(txn: &impl Reader, id: InodeId, offset: u64, len: u64) -> Result<Reply, Error> {
    let attr = node_attr(txn, id)?;
    let table = txn.open_table(EXTENTS)?;
    let end = offset.saturating_add(len);
    let mut extents: Vec<Extent> = Vec::new();
    if let Some(prev) = table.range((id, 0)..(id, offset))?.next_back() {
        let e: Extent = dec(prev?.1.value())?;
        if e.offset + e.len > offset {
            extents.push(e);
        }
    }
    for entry in table.range((id, offset)..(id, end))? {
        extents.push(dec(entry?.1.value())?);
    }
    let placements = placements_of(txn, &extents)?;
    Ok(Reply::Range(FileRange {
        attr,
        extents,
        placements,
    }))
}

/// Every upload record, in progress or completed, without its parts.
fn uploads(txn: &impl Reader) -> Result<Vec<UploadInfo>, Error> {
    let table = txn.open_table(UPLOADS)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (id, v) = entry?;
        let up: UploadRec = dec(v.value())?;
        out.push(upload_info(id.value(), up, Vec::new()));
    }
    Ok(out)
}

fn upload_info(upload_id: &str, up: UploadRec, parts: Vec<PartInfo>) -> UploadInfo {
    UploadInfo {
        upload_id: upload_id.to_string(),
        bucket: up.bucket,
        key: up.key,
        created: up.created,
        parts,
        checksum: up.checksum,
        completed: up.completed,
    }
}

fn bucket(txn: &impl Reader, name: &str) -> Result<BucketInfo, Error> {
    match txn.open_table(BUCKETS)?.get(name)? {
        Some(v) => dec(v.value()),
        None => Err(Error::NoSuchBucket(name.to_string())),
    }
}

fn inode(txn: &impl Reader, id: InodeId) -> Result<Inode, Error> {
    match txn.open_table(INODES)?.get(id)? {
        Some(v) => dec(v.value()),
        None => Err(Error::Internal(format!("dangling inode {id}"))),
    }
}

fn extents_of(txn: &impl Reader, id: InodeId) -> Result<Vec<Extent>, Error> {
    let table = txn.open_table(EXTENTS)?;
    let mut out = Vec::new();
    for entry in table.range((id, 0)..=(id, u64::MAX))? {
        out.push(dec(entry?.1.value())?);
    }
    Ok(out)
}

/// The smallest string greater than every string starting with `prefix`,
/// if incrementing its last byte keeps it UTF-8.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            return String::from_utf8(bytes).ok();
        }
    }
    None
}

/// The common prefix `key` rolls up into under `prefix` and `delimiter`.
fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: &str) -> Option<&'k str> {
    let rest = key.strip_prefix(prefix)?;
    let at = rest.find(delimiter)?;
    Some(&key[..prefix.len() + at + delimiter.len()])
}

/// One page of S3 keys in exact key order: a range scan of OBJECTS. With a
/// delimiter, each common prefix is reported once and the scan jumps past it.
fn list_objects(
    txn: &impl Reader,
    bucket: InodeId,
    prefix: &str,
    start_after: &str,
    delimiter: Option<&str>,
    max_keys: u32,
) -> Result<Reply, Error> {
    let objects = txn.open_table(OBJECTS)?;
    let inodes = txn.open_table(INODES)?;
    let mut entries = Vec::new();
    let mut truncated = false;
    // Where the scan resumes: strictly after `start_after` (or after its
    // whole common prefix), but never before `prefix`.
    let mut lower: Bound<String> = if start_after >= prefix {
        match delimiter.and_then(|d| common_prefix(start_after, prefix, d)) {
            Some(cp) => match prefix_successor(cp) {
                Some(next) => Bound::Included(next),
                None => Bound::Excluded(start_after.to_string()),
            },
            None => Bound::Excluded(start_after.to_string()),
        }
    } else {
        Bound::Included(prefix.to_string())
    };
    'scan: loop {
        let range_start = match &lower {
            Bound::Included(k) => Bound::Included((bucket, k.as_str())),
            Bound::Excluded(k) => Bound::Excluded((bucket, k.as_str())),
            Bound::Unbounded => unreachable!("lower bound is always set"),
        };
        let range =
            objects.range::<(u64, &str)>((range_start, Bound::Included((bucket + 1, ""))))?;
        for entry in range {
            let (k, v) = entry?;
            let (b, key) = k.value();
            if b != bucket || !key.starts_with(prefix) {
                break 'scan;
            }
            let cp = delimiter.and_then(|d| common_prefix(key, prefix, d));
            if let (Some(cp), Some(ListEntry::CommonPrefix(last))) = (cp, entries.last()) {
                if cp == last {
                    continue;
                }
            }
            if entries.len() as u32 >= max_keys {
                truncated = true;
                break 'scan;
            }
            match cp {
                Some(cp) => {
                    entries.push(ListEntry::CommonPrefix(cp.to_string()));
                    if let Some(next) = prefix_successor(cp) {
                        // Jump over every key under this prefix.
                        lower = Bound::Included(next);
                        continue 'scan;
                    }
                }
                None => {
                    let inode: Inode = match inodes.get(v.value())? {
                        Some(i) => dec(i.value())?,
                        None => return Err(Error::Internal(format!("dangling object {key}"))),
                    };
                    entries.push(ListEntry::Object(ObjectSummary {
                        key: key.to_string(),
                        size: inode.size,
                        etag: inode.etag,
                        mtime: inode.mtime,
                    }));
                }
            }
        }
        break;
    }
    Ok(Reply::Objects(ObjectList { entries, truncated }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_and_common_prefix() {
        assert_eq!(prefix_successor("a/").as_deref(), Some("a0"));
        assert_eq!(prefix_successor("").as_deref(), None);
        assert_eq!(common_prefix("p/a/b", "p/", "/"), Some("p/a/"));
        assert_eq!(common_prefix("p/a", "p/", "/"), None);
        assert_eq!(common_prefix("q/a", "p/", "/"), None);
    }
}
