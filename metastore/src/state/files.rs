//! The namespace as a file system (what NFS does): nodes made, changed,
//! written, removed and renamed by inode, keeping S3's flat view (the
//! `objects` table) in step, so every change shows in both at once.

use redb::ReadableTable;

use super::codec::{dec, enc};
use super::namespace::{
    add_entry, create_bucket, delete_bucket, ensure_root, get_inode, is_empty_dir, link_new,
    lookup, must_inode, put_inode, remove_entry, unlink, Inode, InodeKind,
};
use super::objects::{add_refs, read_extents, record_blobs, release_refs};
use super::tables::TableSet;
use crate::api::{BlobWrite, Extent, InodeId, NodeAttr, NodeKind, MERGE_BLOB_BYTES, ROOT_INODE};
use crate::error::Error;

/// Longest name of one directory entry, as NFS servers commonly allow.
pub const NAME_MAX: usize = 255;

/// ETag of an empty body (a directory's "folder" object).
const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// The attributes of node `id` as the table has them now.
pub fn node_attr(t: &TableSet, id: InodeId) -> Result<NodeAttr, Error> {
    Ok(attr(id, &must_inode(t, id)?))
}

pub fn attr(id: InodeId, inode: &Inode) -> NodeAttr {
    NodeAttr {
        inode: id,
        kind: match inode.kind {
            InodeKind::File => NodeKind::File,
            InodeKind::Dir => NodeKind::Dir,
            InodeKind::Symlink => NodeKind::Symlink,
        },
        size: inode.size,
        mode: inode.mode,
        uid: inode.uid,
        gid: inode.gid,
        owned: inode.owned,
        atime: inode.atime,
        mtime: inode.mtime,
        ctime: inode.ctime,
        parent: inode.parent,
        target: inode.target.clone(),
    }
}

/// The inode `id`, or `Stale` if it is gone.
pub fn live_inode(t: &TableSet, id: InodeId) -> Result<Inode, Error> {
    get_inode(t, id)?.ok_or(Error::Stale(id))
}

fn dir_inode(t: &TableSet, id: InodeId) -> Result<Inode, Error> {
    let inode = live_inode(t, id)?;
    if inode.kind != InodeKind::Dir {
        return Err(Error::NotDir(inode.name));
    }
    Ok(inode)
}

/// A name that can be one directory entry and one segment of an S3 key.
pub fn check_name(name: &str) -> Result<(), Error> {
    if name.len() > NAME_MAX {
        return Err(Error::NameTooLong);
    }
    if name == "." || name == ".." {
        return Err(Error::Exists(name.to_string()));
    }
    if name.is_empty() || name.contains('/') || name.contains('\0') {
        return Err(Error::Invalid(format!("{name:?} cannot be a file name")));
    }
    Ok(())
}

/// Where `id` appears in S3's view: (bucket inode, key), or `None` for the
/// root and for buckets themselves. Directories' keys end in `/`.
fn object_key(
    t: &TableSet,
    id: InodeId,
    inode: &Inode,
) -> Result<Option<(InodeId, String)>, Error> {
    if id == ROOT_INODE || inode.parent == ROOT_INODE {
        return Ok(None);
    }
    let mut parts = vec![inode.name.clone()];
    let mut at = inode.parent;
    loop {
        let dir = must_inode(t, at)?;
        if dir.parent == ROOT_INODE {
            break;
        }
        parts.push(dir.name.clone());
        at = dir.parent;
    }
    parts.reverse();
    let mut key = parts.join("/");
    if inode.kind == InodeKind::Dir {
        key.push('/');
    }
    Ok(Some((at, key)))
}

/// Adds `id` to S3's view: files as objects, explicit directories as
/// "folder" objects. Symlinks have no S3 form.
fn index_object(t: &mut TableSet, id: InodeId, inode: &Inode) -> Result<(), Error> {
    let show = match inode.kind {
        InodeKind::File => true,
        InodeKind::Dir => !inode.implicit,
        InodeKind::Symlink => false,
    };
    if show {
        if let Some((bucket, key)) = object_key(t, id, inode)? {
            t.objects.insert((bucket, key.as_str()), id)?;
        }
    }
    Ok(())
}

fn unindex_object(t: &mut TableSet, id: InodeId, inode: &Inode) -> Result<(), Error> {
    if let Some((bucket, key)) = object_key(t, id, inode)? {
        t.objects.remove((bucket, key.as_str()))?;
    }
    Ok(())
}

/// Every inode of the subtree under `id`, `id` first, parents before
/// children.
fn subtree(t: &TableSet, id: InodeId) -> Result<Vec<InodeId>, Error> {
    let mut out = vec![id];
    let mut i = 0;
    while i < out.len() {
        let dir = out[i];
        i += 1;
        for entry in t.dirents.range((dir, "")..)? {
            let (k, v) = entry?;
            if k.value().0 != dir {
                break;
            }
            out.push(v.value());
        }
    }
    Ok(out)
}

fn nfs_etag(id: InodeId, now: u64) -> String {
    // Not 32 hex digits, so no client takes it for an MD5 of the content.
    format!("nfs-{id:x}-{now:x}")
}

#[allow(clippy::too_many_arguments)]
pub fn create_node(
    t: &mut TableSet,
    parent: InodeId,
    name: &str,
    kind: NodeKind,
    mode: u32,
    uid: u32,
    gid: u32,
    target: &str,
    verifier: Option<u64>,
    now: u64,
) -> Result<NodeAttr, Error> {
    check_name(name)?;
    ensure_root(t, now)?;
    let mut dir = dir_inode(t, parent)?;
    if let Some(existing) = lookup(t, parent, name)? {
        let inode = must_inode(t, existing)?;
        let same = match (kind, inode.kind) {
            // A retried EXCLUSIVE create finds its own file.
            (NodeKind::File, InodeKind::File) => verifier.is_none() || inode.verifier == verifier,
            _ => false,
        };
        if same {
            return Ok(attr(existing, &inode));
        }
        return Err(Error::Exists(name.to_string()));
    }
    if parent == ROOT_INODE {
        if kind != NodeKind::Dir {
            return Err(Error::NotPermitted(
                "only directories (buckets) can be made at the root".into(),
            ));
        }
        create_bucket(t, name, None, now)?;
        let id = lookup(t, ROOT_INODE, name)?.expect("bucket just made");
        let mut inode = must_inode(t, id)?;
        set_owner(&mut inode, mode, uid, gid);
        put_inode(t, id, &inode)?;
        return Ok(attr(id, &inode));
    }
    let mut inode = match kind {
        NodeKind::Dir => Inode::new_dir(parent, name, now, false),
        NodeKind::File => Inode::new_file(parent, name, now),
        NodeKind::Symlink => Inode {
            kind: InodeKind::Symlink,
            size: target.len() as u64,
            target: target.to_string(),
            ..Inode::new_file(parent, name, now)
        },
    };
    set_owner(&mut inode, mode, uid, gid);
    inode.verifier = verifier;
    let id = link_new(t, &mut inode)?;
    if kind == NodeKind::File {
        inode.etag = nfs_etag(id, now);
        put_inode(t, id, &inode)?;
    } else if kind == NodeKind::Dir {
        inode.etag = EMPTY_MD5.to_string();
        put_inode(t, id, &inode)?;
    }
    index_object(t, id, &inode)?;
    touch_dir(t, parent, &mut dir, now)?;
    Ok(attr(id, &inode))
}

fn set_owner(inode: &mut Inode, mode: u32, uid: u32, gid: u32) {
    inode.mode = mode & 0o7777;
    inode.uid = uid;
    inode.gid = gid;
    inode.owned = true;
}

fn touch_dir(t: &mut TableSet, id: InodeId, dir: &mut Inode, now: u64) -> Result<(), Error> {
    dir.mtime = now;
    dir.ctime = now;
    put_inode(t, id, dir)
}

#[allow(clippy::too_many_arguments)]
pub fn set_attr(
    t: &mut TableSet,
    id: InodeId,
    owner: Option<(u32, u32, u32)>,
    size: Option<u64>,
    atime: Option<u64>,
    mtime: Option<u64>,
    now: u64,
) -> Result<NodeAttr, Error> {
    let mut inode = live_inode(t, id)?;
    if let Some((mode, uid, gid)) = owner {
        set_owner(&mut inode, mode, uid, gid);
        inode.ctime = now;
    }
    if let Some(size) = size {
        if inode.kind != InodeKind::File {
            return Err(Error::Invalid("only a file has a size to set".into()));
        }
        if size != inode.size {
            truncate(t, id, size, now)?;
            inode.size = size;
            inode.mtime = now;
            inode.ctime = now;
            changed_content(id, &mut inode, now);
        }
    }
    if let Some(a) = atime {
        inode.atime = a;
        inode.ctime = now;
    }
    if let Some(m) = mtime {
        inode.mtime = m;
        inode.ctime = now;
    }
    put_inode(t, id, &inode)?;
    Ok(attr(id, &inode))
}

/// The bytes changed: the S3 ETag, checksum and part layout no longer hold.
fn changed_content(id: InodeId, inode: &mut Inode, now: u64) {
    inode.etag = nfs_etag(id, now);
    inode.meta.checksum = None;
    inode.meta.parts.clear();
}

/// Drops the extents at and beyond `size` (trimming the one across it).
fn truncate(t: &mut TableSet, id: InodeId, size: u64, now: u64) -> Result<(), Error> {
    let goal = must_inode(t, id)?.goal();
    let old: Vec<Extent> = read_extents(t, id)?
        .into_iter()
        .filter(|e| e.offset + e.len > size)
        .collect();
    for e in &old {
        t.extents.remove((id, e.offset))?;
        if e.offset < size {
            let kept = Extent {
                len: size - e.offset,
                ..e.clone()
            };
            add_refs(t, std::slice::from_ref(&kept), goal)?;
            t.extents.insert((id, kept.offset), enc(&kept).as_slice())?;
        }
    }
    release_refs(t, &old, now)
}

/// Whether the extent at `offset..end` of file `id` touches another that
/// the merge job could join it with: a file written in one small piece
/// (most files a web host holds) has nothing to merge, and marking it
/// would cost a query and a command per file.
fn has_small_neighbour(t: &TableSet, id: InodeId, offset: u64, end: u64) -> Result<bool, Error> {
    let fits = |e: &Extent| e.len + (end - offset) <= MERGE_BLOB_BYTES;
    if let Some(row) = t.extents.range((id, 0)..(id, offset))?.next_back() {
        let prev: Extent = dec(row?.1.value())?;
        if prev.offset + prev.len == offset && fits(&prev) {
            return Ok(true);
        }
    }
    match t.extents.get((id, end))? {
        Some(v) => Ok(fits(&dec::<Extent>(v.value())?)),
        None => Ok(false),
    }
}

/// Places `blob` at `offset` of file `id`, trimming or splitting the
/// extents it covers.
pub fn write_file(
    t: &mut TableSet,
    id: InodeId,
    offset: u64,
    blob: &BlobWrite,
    now: u64,
) -> Result<NodeAttr, Error> {
    let mut inode = live_inode(t, id)?;
    match inode.kind {
        InodeKind::File => {}
        InodeKind::Dir => return Err(Error::IsDir(inode.name)),
        InodeKind::Symlink => return Err(Error::Invalid("cannot write to a symlink".into())),
    }
    if blob.size == 0 {
        return Ok(attr(id, &inode));
    }
    // New references first, so a blob shared by old and new extents never
    // touches zero on the way.
    let new = take_blob(t, blob, offset, inode.goal())?;
    let end = offset + blob.size;
    let covered = covering(t, id, offset, end)?;
    for e in &covered {
        t.extents.remove((id, e.offset))?;
        let mut kept = Vec::new();
        if e.offset < offset {
            kept.push(Extent {
                len: offset - e.offset,
                ..e.clone()
            });
        }
        let e_end = e.offset + e.len;
        if e_end > end {
            kept.push(Extent {
                offset: end,
                len: e_end - end,
                blob: e.blob,
                blob_offset: e.blob_offset + (end - e.offset),
            });
        }
        add_refs(t, &kept, inode.goal())?;
        for k in &kept {
            t.extents.insert((id, k.offset), enc(k).as_slice())?;
        }
    }
    release_refs(t, &covered, now)?;
    t.extents.insert((id, offset), enc(&new).as_slice())?;
    if blob.size < MERGE_BLOB_BYTES && has_small_neighbour(t, id, offset, end)? {
        t.fragmented.insert(id, now)?;
    }
    inode.size = inode.size.max(end);
    inode.mtime = now;
    inode.ctime = now;
    changed_content(id, &mut inode, now);
    put_inode(t, id, &inode)?;
    Ok(attr(id, &inode))
}

/// Removes a file, symlink or empty directory, and its blob references.
pub fn remove_node(t: &mut TableSet, parent: InodeId, name: &str, now: u64) -> Result<(), Error> {
    let mut dir = dir_inode(t, parent)?;
    let id = lookup(t, parent, name)?.ok_or_else(|| Error::NoEntry(name.to_string()))?;
    if parent == ROOT_INODE {
        return delete_bucket(t, name).map_err(|e| match e {
            Error::BucketNotEmpty(b) => Error::NotEmpty(b),
            e => e,
        });
    }
    let inode = must_inode(t, id)?;
    drop_node(t, id, &inode, now)?;
    touch_dir(t, parent, &mut dir, now)
}

/// Unlinks one node (an empty directory or not a directory) everywhere.
fn drop_node(t: &mut TableSet, id: InodeId, inode: &Inode, now: u64) -> Result<(), Error> {
    if inode.kind == InodeKind::Dir && !is_empty_dir(t, id)? {
        return Err(Error::NotEmpty(inode.name.clone()));
    }
    unindex_object(t, id, inode)?;
    t.fragmented.remove(id)?;
    let old = read_extents(t, id)?;
    release_refs(t, &old, now)?;
    for e in &old {
        t.extents.remove((id, e.offset))?;
    }
    unlink(t, id, inode)
}

pub fn rename(
    t: &mut TableSet,
    from_parent: InodeId,
    from_name: &str,
    to_parent: InodeId,
    to_name: &str,
    now: u64,
) -> Result<(), Error> {
    check_name(to_name)?;
    dir_inode(t, from_parent)?;
    dir_inode(t, to_parent)?;
    let id =
        lookup(t, from_parent, from_name)?.ok_or_else(|| Error::NoEntry(from_name.to_string()))?;
    if from_parent == ROOT_INODE || to_parent == ROOT_INODE {
        return Err(Error::NotPermitted(
            "buckets cannot be renamed, nor entries moved to the root".into(),
        ));
    }
    let mut inode = must_inode(t, id)?;
    if inode.kind == InodeKind::Dir {
        // A directory cannot move into its own subtree.
        let mut at = to_parent;
        while at != ROOT_INODE {
            if at == id {
                return Err(Error::Invalid(
                    "cannot move a directory inside itself".into(),
                ));
            }
            at = must_inode(t, at)?.parent;
        }
    }
    if let Some(target) = lookup(t, to_parent, to_name)? {
        if target == id {
            return Ok(());
        }
        let existing = must_inode(t, target)?;
        match (
            inode.kind == InodeKind::Dir,
            existing.kind == InodeKind::Dir,
        ) {
            (true, true) | (false, false) => drop_node(t, target, &existing, now)?,
            (false, true) => return Err(Error::IsDir(to_name.to_string())),
            (true, false) => return Err(Error::NotDir(to_name.to_string())),
        }
    }
    let moved = subtree(t, id)?;
    for m in &moved {
        let node = must_inode(t, *m)?;
        unindex_object(t, *m, &node)?;
    }
    remove_entry(t, from_parent, from_name)?;
    add_entry(t, to_parent, to_name, id)?;
    inode.parent = to_parent;
    inode.name = to_name.to_string();
    inode.ctime = now;
    put_inode(t, id, &inode)?;
    for m in &moved {
        let node = must_inode(t, *m)?;
        index_object(t, *m, &node)?;
    }
    for dir in [from_parent, to_parent] {
        let mut d = must_inode(t, dir)?;
        touch_dir(t, dir, &mut d, now)?;
    }
    Ok(())
}

/// Records `blob` (just written) and takes a reference on it for an extent
/// of all its bytes at file offset `offset`.
fn take_blob(t: &mut TableSet, blob: &BlobWrite, offset: u64, goal: u8) -> Result<Extent, Error> {
    record_blobs(t, std::slice::from_ref(blob))?;
    let new = Extent {
        offset,
        len: blob.size,
        blob: blob.id,
        blob_offset: 0,
    };
    add_refs(t, std::slice::from_ref(&new), goal)?;
    Ok(new)
}

/// The extents of file `id` that cover `[offset, end)`, including one that
/// starts before `offset` and reaches into it.
fn covering(t: &TableSet, id: InodeId, offset: u64, end: u64) -> Result<Vec<Extent>, Error> {
    let mut out = Vec::new();
    if let Some(prev) = t.extents.range((id, 0)..(id, offset))?.next_back() {
        let e: Extent = dec(prev?.1.value())?;
        if e.offset + e.len > offset {
            out.push(e);
        }
    }
    for entry in t.extents.range((id, offset)..(id, end))? {
        out.push(dec(entry?.1.value())?);
    }
    Ok(out)
}

/// Replaces the run `expect` of file `id`'s extents by one extent of
/// `blob`, which holds the same bytes, if the run is unchanged.
pub fn merge_extents(
    t: &mut TableSet,
    id: InodeId,
    expect: &[Extent],
    blob: &BlobWrite,
    now: u64,
) -> Result<(), Error> {
    let inode = live_inode(t, id)?;
    let (Some(first), Some(last)) = (expect.first(), expect.last()) else {
        return Err(Error::Invalid("nothing to merge".into()));
    };
    if inode.kind != InodeKind::File {
        return Err(Error::IsDir(inode.name));
    }
    let (offset, end) = (first.offset, last.offset + last.len);
    if end - offset != blob.size || check_run(expect).is_err() {
        return Err(Error::Invalid("merged blob does not match the run".into()));
    }
    if covering(t, id, offset, end)? != expect {
        return Err(Error::PreconditionFailed(format!(
            "inode {id} changed during the merge"
        )));
    }
    let new = take_blob(t, blob, offset, inode.goal())?;
    for e in expect {
        t.extents.remove((id, e.offset))?;
    }
    release_refs(t, expect, now)?;
    t.extents.insert((id, offset), enc(&new).as_slice())?;
    Ok(())
}

/// Checks that extents follow each other with no gap.
fn check_run(run: &[Extent]) -> Result<(), Error> {
    for w in run.windows(2) {
        if w[0].offset + w[0].len != w[1].offset {
            return Err(Error::Invalid("the run has a gap".into()));
        }
    }
    Ok(())
}

pub fn clear_fragmented(t: &mut TableSet, id: InodeId, mark: u64) -> Result<(), Error> {
    let current = t.fragmented.get(id)?.map(|v| v.value());
    if current == Some(mark) || get_inode(t, id)?.is_none() {
        t.fragmented.remove(id)?;
    }
    Ok(())
}
