//! Inodes and directory entries: the tree both S3 and NFS see.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::codec::{dec, enc};
use super::keys::validate_bucket_name;
use super::tables::TableSet;
use crate::api::{
    BucketInfo, CorsRule, Grant, InodeId, KeyInfo, NodeId, NodeMode, ObjectMeta, ROOT_INODE,
};
use crate::error::Error;

pub const DIR_MODE: u32 = 0o755;
pub const FILE_MODE: u32 = 0o644;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InodeKind {
    File,
    Dir,
    Symlink,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Inode {
    pub kind: InodeKind,
    /// The directory holding this inode's (primary) entry, and its name there.
    pub parent: InodeId,
    pub name: String,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Nanoseconds since the Unix epoch.
    pub mtime: u64,
    pub ctime: u64,
    #[serde(default)]
    pub etag: String,
    #[serde(default)]
    pub meta: ObjectMeta,
    /// A directory that exists only because object keys pass through it; it
    /// is removed when its last entry goes.
    #[serde(default)]
    pub implicit: bool,
    #[serde(default)]
    pub atime: u64,
    /// Mode and owner were set over NFS (otherwise gateways show defaults).
    #[serde(default)]
    pub owned: bool,
    /// A symlink's target.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// The verifier of the EXCLUSIVE create that made this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<u64>,
    /// Replication goal (copies); 0: the default. Set by `SetGoal`,
    /// inherited from the directory at creation.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub goal: u8,
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

impl Inode {
    /// The goal in copies, the default filled in.
    pub fn goal(&self) -> u8 {
        effective_goal(self.goal)
    }
}

/// A stored goal (0: unset) as copies.
pub fn effective_goal(goal: u8) -> u8 {
    if goal == 0 {
        crate::api::GOAL_COPIES as u8
    } else {
        goal
    }
}

impl Inode {
    pub fn new_dir(parent: InodeId, name: &str, now: u64, implicit: bool) -> Self {
        Self {
            kind: InodeKind::Dir,
            parent,
            name: name.to_string(),
            size: 0,
            mode: DIR_MODE,
            uid: 0,
            gid: 0,
            mtime: now,
            ctime: now,
            etag: String::new(),
            meta: ObjectMeta::default(),
            implicit,
            atime: now,
            owned: false,
            target: String::new(),
            verifier: None,
            goal: 0,
        }
    }

    pub fn new_file(parent: InodeId, name: &str, now: u64) -> Self {
        Self {
            kind: InodeKind::File,
            mode: FILE_MODE,
            ..Self::new_dir(parent, name, now, false)
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeRec {
    pub addr: String,
    pub zone: String,
    #[serde(default)]
    pub mode: NodeMode,
}

pub fn get_inode(t: &TableSet, id: InodeId) -> Result<Option<Inode>, Error> {
    t.inodes.get(id)?.map(|v| dec(v.value())).transpose()
}

pub fn must_inode(t: &TableSet, id: InodeId) -> Result<Inode, Error> {
    get_inode(t, id)?.ok_or_else(|| Error::Internal(format!("dangling inode {id}")))
}

pub fn put_inode(t: &mut TableSet, id: InodeId, inode: &Inode) -> Result<(), Error> {
    t.inodes.insert(id, enc(inode).as_slice())?;
    Ok(())
}

pub fn lookup(t: &TableSet, parent: InodeId, name: &str) -> Result<Option<InodeId>, Error> {
    Ok(t.dirents.get((parent, name))?.map(|v| v.value()))
}

/// Inode ids are never reused, so a stale NFS handle can never name
/// another file.
pub fn alloc_inode(t: &mut TableSet) -> Result<InodeId, Error> {
    let next = t
        .counters
        .get("next_inode")?
        .map(|v| v.value())
        .unwrap_or(ROOT_INODE + 1);
    t.counters.insert("next_inode", next + 1)?;
    Ok(next)
}

pub fn is_empty_dir(t: &TableSet, dir: InodeId) -> Result<bool, Error> {
    let mut range = t.dirents.range((dir, "")..)?;
    Ok(match range.next() {
        Some(entry) => entry?.0.value().0 != dir,
        None => true,
    })
}

pub fn ensure_root(t: &mut TableSet, now: u64) -> Result<(), Error> {
    if get_inode(t, ROOT_INODE)?.is_none() {
        put_inode(t, ROOT_INODE, &Inode::new_dir(ROOT_INODE, "", now, false))?;
    }
    Ok(())
}

/// The READDIR cookie `name` hashes to before probing: never 0 (the start
/// of a listing), and the same on every meta node.
fn cookie_of(name: &str) -> u64 {
    use sha2::Digest;
    let h = sha2::Sha256::digest(name.as_bytes());
    let v = u64::from_be_bytes(h[..8].try_into().expect("8 bytes")) >> 2;
    v.max(1)
}

/// Adds the entry `parent/name → id` with its READDIR cookie.
pub fn add_entry(t: &mut TableSet, parent: InodeId, name: &str, id: InodeId) -> Result<(), Error> {
    t.dirents.insert((parent, name), id)?;
    let mut cookie = cookie_of(name);
    while t.dircookies.get((parent, cookie))?.is_some() {
        cookie += 1;
    }
    t.dircookies.insert((parent, cookie), name)?;
    Ok(())
}

/// Removes the entry `parent/name` and its cookie.
pub fn remove_entry(t: &mut TableSet, parent: InodeId, name: &str) -> Result<(), Error> {
    t.dirents.remove((parent, name))?;
    let mut cookie = cookie_of(name);
    loop {
        let found = match t.dircookies.get((parent, cookie))? {
            Some(v) => v.value() == name,
            None => return Ok(()),
        };
        if found {
            t.dircookies.remove((parent, cookie))?;
            return Ok(());
        }
        cookie += 1;
    }
}

/// Makes `name` an entry of `parent` pointing at a new inode.
/// Links a new inode under its parent, which gives it its goal unless it
/// has one.
pub fn link_new(t: &mut TableSet, inode: &mut Inode) -> Result<InodeId, Error> {
    let id = alloc_inode(t)?;
    if inode.goal == 0 {
        inode.goal = get_inode(t, inode.parent)?.map_or(0, |p| p.goal);
    }
    put_inode(t, id, inode)?;
    add_entry(t, inode.parent, &inode.name, id)?;
    Ok(id)
}

/// Removes `id`'s entry and inode record. Extents are the caller's.
pub fn unlink(t: &mut TableSet, id: InodeId, inode: &Inode) -> Result<(), Error> {
    remove_entry(t, inode.parent, &inode.name)?;
    t.inodes.remove(id)?;
    Ok(())
}

/// Removes implicit directories left empty, from `dir` upwards, stopping at
/// `stop` (the bucket).
pub fn prune_implicit(t: &mut TableSet, mut dir: InodeId, stop: InodeId) -> Result<(), Error> {
    while dir != stop {
        let inode = must_inode(t, dir)?;
        if !inode.implicit || !is_empty_dir(t, dir)? {
            break;
        }
        unlink(t, dir, &inode)?;
        dir = inode.parent;
    }
    Ok(())
}

pub fn register_node(t: &mut TableSet, id: NodeId, addr: &str, zone: &str) -> Result<(), Error> {
    // A node registering again keeps the mode an operator gave it.
    let mode = match t.nodes.get(id)? {
        Some(v) => dec::<NodeRec>(v.value())?.mode,
        None => NodeMode::Active,
    };
    let rec = NodeRec {
        addr: addr.to_string(),
        zone: zone.to_string(),
        mode,
    };
    t.nodes.insert(id, enc(&rec).as_slice())?;
    Ok(())
}

pub fn set_node_mode(t: &mut TableSet, id: NodeId, mode: NodeMode) -> Result<(), Error> {
    let mut rec: NodeRec = match t.nodes.get(id)? {
        Some(v) => dec(v.value())?,
        None => return Err(Error::Invalid(format!("no storage node {id}"))),
    };
    rec.mode = mode;
    t.nodes.insert(id, enc(&rec).as_slice())?;
    Ok(())
}

pub fn create_key(
    t: &mut TableSet,
    access_key: &str,
    secret_key: &str,
    name: &str,
    all_buckets: bool,
    now: u64,
) -> Result<(), Error> {
    if access_key.is_empty() || secret_key.is_empty() {
        return Err(Error::Invalid(
            "access and secret key must not be empty".into(),
        ));
    }
    if t.keys.get(access_key)?.is_some() {
        return Err(Error::AccessKeyExists(access_key.to_string()));
    }
    let info = KeyInfo {
        access_key: access_key.to_string(),
        secret_key: secret_key.to_string(),
        name: name.to_string(),
        created: now,
        all_buckets,
        grants: Default::default(),
    };
    t.keys.insert(access_key, enc(&info).as_slice())?;
    Ok(())
}

fn get_key(t: &TableSet, access_key: &str) -> Result<KeyInfo, Error> {
    match t.keys.get(access_key)? {
        Some(v) => dec(v.value()),
        None => Err(Error::NoSuchAccessKey(access_key.to_string())),
    }
}

pub fn delete_key(t: &mut TableSet, access_key: &str) -> Result<(), Error> {
    get_key(t, access_key)?;
    t.keys.remove(access_key)?;
    Ok(())
}

/// Sets `access_key`'s rights on `bucket` (which must exist); no rights at
/// all removes the grant.
pub fn allow_key(
    t: &mut TableSet,
    access_key: &str,
    bucket: &str,
    grant: Grant,
) -> Result<(), Error> {
    let mut key = get_key(t, access_key)?;
    if grant.read || grant.write {
        get_bucket(t, bucket)?;
        key.grants.insert(bucket.to_string(), grant);
    } else {
        key.grants.remove(bucket);
    }
    t.keys.insert(access_key, enc(&key).as_slice())?;
    Ok(())
}

/// Forgets every grant on a bucket that is being deleted, so a later
/// bucket of the same name starts with none.
fn revoke_all(t: &mut TableSet, bucket: &str) -> Result<(), Error> {
    let mut changed = Vec::new();
    for entry in t.keys.iter()? {
        let mut key: KeyInfo = dec(entry?.1.value())?;
        if key.grants.remove(bucket).is_some() {
            changed.push(key);
        }
    }
    for key in changed {
        t.keys
            .insert(key.access_key.as_str(), enc(&key).as_slice())?;
    }
    Ok(())
}

pub fn put_bucket_cors(
    t: &mut TableSet,
    bucket: &str,
    rules: Option<&Vec<CorsRule>>,
) -> Result<(), Error> {
    let mut info = get_bucket(t, bucket)?;
    info.cors = rules.cloned();
    t.buckets.insert(bucket, enc(&info).as_slice())?;
    Ok(())
}

pub fn get_bucket(t: &TableSet, name: &str) -> Result<BucketInfo, Error> {
    match t.buckets.get(name)? {
        Some(v) => dec(v.value()),
        None => Err(Error::NoSuchBucket(name.to_string())),
    }
}

pub fn create_bucket(
    t: &mut TableSet,
    name: &str,
    owner: Option<&str>,
    now: u64,
) -> Result<(), Error> {
    validate_bucket_name(name)?;
    if t.buckets.get(name)?.is_some() {
        return Err(Error::BucketExists(name.to_string()));
    }
    ensure_root(t, now)?;
    if lookup(t, ROOT_INODE, name)?.is_some() {
        return Err(Error::KeyConflict(format!("/{name} exists")));
    }
    let inode = link_new(t, &mut Inode::new_dir(ROOT_INODE, name, now, false))?;
    let info = BucketInfo {
        name: name.to_string(),
        inode,
        created: now,
        cors: None,
        owner: owner.map(str::to_string),
    };
    t.buckets.insert(name, enc(&info).as_slice())?;
    if let Some(owner) = owner {
        let key = get_key(t, owner)?;
        if !key.all_buckets {
            let all = Grant {
                read: true,
                write: true,
            };
            allow_key(t, owner, name, all)?;
        }
    }
    Ok(())
}

pub fn delete_bucket(t: &mut TableSet, name: &str) -> Result<(), Error> {
    let info = get_bucket(t, name)?;
    if !is_empty_dir(t, info.inode)? {
        return Err(Error::BucketNotEmpty(name.to_string()));
    }
    let inode = must_inode(t, info.inode)?;
    unlink(t, info.inode, &inode)?;
    t.buckets.remove(name)?;
    revoke_all(t, name)
}
