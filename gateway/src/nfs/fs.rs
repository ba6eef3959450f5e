//! The namespace as NFS sees it: nodes, names and bytes, with the caller's
//! identity passed to every call that creates or changes ownership.
//!
//! Every call goes to the metastore (linearizable, through the leader), so
//! what another gateway or an S3 client changed shows at once. UNSTABLE
//! WRITEs are gathered in this gateway ([`super::buffer`]) and stored at
//! COMMIT, as blobs of the normal size; this gateway's own calls see them
//! at once (sizes in attributes; READ and SETATTR store them first).
//! FILE_SYNC and DATA_SYNC WRITEs are durable on return: the bytes are a
//! blob fsynced on at least two storage nodes, and the extent committed.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use metastore::api::{Command, DirEntry, InodeId, NodeAttr, NodeKind, Query, Reply};
use metastore::client::now_ns;
use nfs3_types::nfs3::{
    fattr3, ftype3, nfs_fh3, nfsstat3, nfstime3, sattr3, set_atime, set_mtime, specdata3,
    writeverf3, Nfs3Option,
};
use nfs3_types::xdr_codec::Opaque;

use super::buffer::{Buffers, FileBuf, GATEWAY_LIMIT, QUIET};
use super::caller::Caller;
use super::handle::{Handle, HandleKey, HANDLE_GENERATION};
use super::status::status;
use super::NfsConfig;
use crate::data::{BLOBS_IN_FLIGHT, BLOB_MAX_BYTES};
use crate::error::Error;
use crate::server::Gateway;

pub type NfsResult<T> = Result<T, nfsstat3>;

#[derive(Clone)]
pub struct TroikaFs {
    inner: Arc<Inner>,
}

struct Inner {
    gw: Arc<Gateway>,
    keys: HandleKey,
    /// The export's root directory.
    root: InodeId,
    config: NfsConfig,
    buffers: Buffers,
}

fn nfs(e: Error) -> nfsstat3 {
    status(&e)
}

fn meta_err(e: metastore::Error) -> nfsstat3 {
    status(&Error::Meta(e))
}

fn unexpected(r: Reply) -> nfsstat3 {
    tracing::error!(reply = ?r, "unexpected metastore reply");
    nfsstat3::NFS3ERR_SERVERFAULT
}

/// A name as stored: UTF-8, never `.` or `..` (those are resolved, not
/// stored).
fn name_of(name: &[u8]) -> NfsResult<String> {
    let name = String::from_utf8(name.to_vec()).map_err(|_| nfsstat3::NFS3ERR_INVAL)?;
    if name.len() > metastore::state::NAME_MAX {
        return Err(nfsstat3::NFS3ERR_NAMETOOLONG);
    }
    Ok(name)
}

/// A verifier no earlier start of this gateway used.
fn boot_verifier() -> u64 {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    ns ^ (u64::from(std::process::id()) << 48)
}

/// Only regular files have bytes to read and write.
fn regular(a: &NodeAttr) -> NfsResult<()> {
    match a.kind {
        NodeKind::File => Ok(()),
        NodeKind::Dir => Err(nfsstat3::NFS3ERR_ISDIR),
        NodeKind::Symlink => Err(nfsstat3::NFS3ERR_INVAL),
    }
}

/// A node made, and its directory's attributes after (when the metastore
/// sent them).
pub type Made = (NodeAttr, Option<NodeAttr>);

/// The directories a namespace change names (none from an older reply).
fn changed_dirs(r: Reply) -> Vec<NodeAttr> {
    match r {
        Reply::Changed { dirs, .. } => dirs,
        _ => Vec::new(),
    }
}

fn dot(name: &str) -> bool {
    name == "." || name == ".."
}

fn time(ns: u64) -> nfstime3 {
    nfstime3 {
        seconds: u32::try_from(ns / 1_000_000_000).unwrap_or(u32::MAX),
        nseconds: (ns % 1_000_000_000) as u32,
    }
}

fn ns_of(t: &nfstime3) -> u64 {
    u64::from(t.seconds) * 1_000_000_000 + u64::from(t.nseconds)
}

impl TroikaFs {
    /// The file system, and (in the background, while it lives) the
    /// flushing of files whose unstable bytes have been quiet a while.
    pub fn new(gw: Arc<Gateway>, keys: HandleKey, root: InodeId, config: NfsConfig) -> Self {
        let fs = Self {
            inner: Arc::new(Inner {
                gw,
                keys,
                root,
                config,
                buffers: Buffers::new(boot_verifier()),
            }),
        };
        let weak = Arc::downgrade(&fs.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(QUIET / 4).await;
                let Some(inner) = weak.upgrade() else { return };
                let fs = TroikaFs { inner };
                let before = std::time::Instant::now() - QUIET;
                for inode in fs.inner.buffers.quiet(before) {
                    if let Err(e) = fs.flush(inode, true).await {
                        tracing::warn!(inode, status = ?e, "storing quiet unstable writes failed");
                    }
                }
            }
        });
        fs
    }

    /// The write verifier: changes when unstable bytes are lost.
    pub fn verf(&self) -> writeverf3 {
        writeverf3(self.inner.buffers.verifier().to_be_bytes())
    }

    fn meta(&self) -> &metastore::MetaClient {
        self.inner.gw.ns.meta()
    }

    pub fn root(&self) -> InodeId {
        self.inner.root
    }

    pub fn read_only(&self) -> bool {
        self.inner.config.read_only
    }

    /// The wire handle of `inode`: the handle generation (little-endian, as
    /// handles have always been minted) and the MAC'd inode id.
    pub fn fh(&self, inode: InodeId) -> nfs_fh3 {
        let h = self.inner.keys.handle(inode);
        let mut data = Vec::with_capacity(8 + h.as_bytes().len());
        data.extend_from_slice(&HANDLE_GENERATION.to_le_bytes());
        data.extend_from_slice(h.as_bytes());
        nfs_fh3 {
            data: Opaque::owned(data),
        }
    }

    /// The inode a wire handle names; `BADHANDLE` if this cluster (and
    /// export) did not mint it.
    pub fn inode(&self, fh: &nfs_fh3) -> NfsResult<InodeId> {
        let data = fh.data.as_ref();
        if data.len() < 8 || data[..8] != HANDLE_GENERATION.to_le_bytes() {
            return Err(nfsstat3::NFS3ERR_BADHANDLE);
        }
        let h = Handle::from_bytes(&data[8..]).ok_or(nfsstat3::NFS3ERR_BADHANDLE)?;
        self.inner.keys.check(&h).ok_or(nfsstat3::NFS3ERR_BADHANDLE)
    }

    fn writable(&self) -> NfsResult<()> {
        if self.inner.config.read_only {
            Err(nfsstat3::NFS3ERR_ROFS)
        } else {
            Ok(())
        }
    }

    async fn command(&self, cmd: Command) -> NfsResult<Reply> {
        self.meta().command(&cmd).await.map_err(meta_err)
    }

    /// The attributes of the node a wire handle names.
    pub async fn node_of(&self, fh: &nfs_fh3) -> NfsResult<NodeAttr> {
        self.node(self.inode(fh)?).await
    }

    pub async fn node(&self, inode: InodeId) -> NfsResult<NodeAttr> {
        match self.meta().query(&Query::GetNode { inode }).await {
            Ok(Reply::Node(a)) => Ok(a),
            Ok(r) => Err(unexpected(r)),
            Err(e) => Err(meta_err(e)),
        }
    }

    fn node_reply(r: Reply) -> NfsResult<NodeAttr> {
        match r {
            Reply::Node(a) => Ok(a),
            r => Err(unexpected(r)),
        }
    }

    /// Mode and owner as shown: the node's own once set over NFS, else the
    /// configured defaults (objects written over S3 have none).
    fn owner(&self, a: &NodeAttr) -> (u32, u32, u32) {
        let c = &self.inner.config;
        let (mode, uid, gid) = if a.owned {
            (a.mode, a.uid, a.gid)
        } else {
            let mode = match a.kind {
                NodeKind::Dir => c.dir_mode,
                NodeKind::File => c.file_mode,
                NodeKind::Symlink => 0o777,
            };
            (mode, c.uid, c.gid)
        };
        match c.squash {
            Some((u, g)) => (mode, u, g),
            None => (mode, uid, gid),
        }
    }

    /// A node's attributes as NFS shows them, buffered bytes counted.
    pub fn fattr(&self, a: &NodeAttr) -> fattr3 {
        let size = self.inner.buffers.size(a);
        let (mode, uid, gid) = self.owner(a);
        fattr3 {
            type_: match a.kind {
                NodeKind::File => ftype3::NF3REG,
                NodeKind::Dir => ftype3::NF3DIR,
                NodeKind::Symlink => ftype3::NF3LNK,
            },
            mode,
            nlink: if a.kind == NodeKind::Dir { 2 } else { 1 },
            uid,
            gid,
            size,
            used: size.div_ceil(4096) * 4096,
            rdev: specdata3::default(),
            fsid: 1,
            fileid: a.inode,
            atime: time(a.atime),
            mtime: time(a.mtime),
            ctime: time(a.ctime),
        }
    }

    /// The caller after squashing, and whether it was squashed (then it may
    /// not choose owners).
    fn effective(&self, caller: &Caller) -> (Caller, bool) {
        let c = &self.inner.config;
        let squashed_to = match (c.squash, c.root_squash) {
            (Some(owner), _) => Some(owner),
            (None, Some(owner)) if caller.uid == 0 => Some(owner),
            _ => None,
        };
        match squashed_to {
            Some((uid, gid)) => (
                Caller {
                    uid,
                    gid,
                    gids: Vec::new(),
                },
                true,
            ),
            None => (caller.clone(), false),
        }
    }

    /// What a new node's owner is: the client's choice, else the caller; a
    /// squashed caller gets the anonymous owner.
    fn new_owner(&self, caller: &Caller, attr: &sattr3, default_mode: u32) -> (u32, u32, u32) {
        let mode = match attr.mode {
            Nfs3Option::Some(m) => m & 0o7777,
            Nfs3Option::None => default_mode,
        };
        let (caller, squashed) = self.effective(caller);
        if squashed {
            return (mode, caller.uid, caller.gid);
        }
        let uid = match attr.uid {
            Nfs3Option::Some(u) => u,
            Nfs3Option::None => caller.uid,
        };
        let gid = match attr.gid {
            Nfs3Option::Some(g) => g,
            Nfs3Option::None => caller.gid,
        };
        (mode, uid, gid)
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_node(
        &self,
        parent: InodeId,
        name: &[u8],
        kind: NodeKind,
        owner: (u32, u32, u32),
        target: String,
        verifier: Option<u64>,
        now: u64,
    ) -> NfsResult<Made> {
        self.writable()?;
        let name = name_of(name)?;
        if dot(&name) {
            return Err(nfsstat3::NFS3ERR_EXIST);
        }
        let (mode, uid, gid) = owner;
        let r = self
            .command(Command::CreateNode {
                parent,
                name,
                kind,
                mode,
                uid,
                gid,
                target,
                verifier,
                now,
            })
            .await?;
        match r {
            Reply::Changed {
                node: Some(node),
                mut dirs,
            } => Ok((node, dirs.pop())),
            r => Ok((Self::node_reply(r)?, None)),
        }
    }

    /// Applies a client's `sattr3` to `inode`; `current` if the caller has
    /// the node's attributes at hand already.
    pub async fn setattr(
        &self,
        caller: &Caller,
        inode: InodeId,
        attr: &sattr3,
        current: Option<NodeAttr>,
    ) -> NfsResult<NodeAttr> {
        self.writable()?;
        if attr.size.is_some() {
            // A truncation applies after the bytes written before it.
            self.flush(inode, true).await?;
        }
        let now = now_ns();
        let owner_change = !matches!(
            (&attr.mode, &attr.uid, &attr.gid),
            (Nfs3Option::None, Nfs3Option::None, Nfs3Option::None)
        );
        let current = match current {
            None if owner_change => Some(self.node(inode).await?),
            c => c,
        };
        let owner = if let Some(current) = current.as_ref().filter(|_| owner_change) {
            let (mut mode, mut uid, mut gid) = self.owner(current);
            if let Nfs3Option::Some(m) = attr.mode {
                mode = m & 0o7777;
            }
            let chown = !matches!((&attr.uid, &attr.gid), (Nfs3Option::None, Nfs3Option::None));
            match self.effective(caller) {
                // All squash: owners are fixed, a chown changes nothing.
                _ if self.inner.config.squash.is_some() => {}
                // A squashed root may not give files away.
                (_, true) if chown => return Err(nfsstat3::NFS3ERR_PERM),
                _ => {
                    if let Nfs3Option::Some(u) = attr.uid {
                        uid = u;
                    }
                    if let Nfs3Option::Some(g) = attr.gid {
                        gid = g;
                    }
                }
            }
            Some((mode, uid, gid))
        } else {
            None
        };
        let size = match attr.size {
            Nfs3Option::Some(s) => Some(s),
            Nfs3Option::None => None,
        };
        let atime = match &attr.atime {
            set_atime::DONT_CHANGE => None,
            set_atime::SET_TO_SERVER_TIME => Some(now),
            set_atime::SET_TO_CLIENT_TIME(t) => Some(ns_of(t)),
        };
        let mtime = match &attr.mtime {
            set_mtime::DONT_CHANGE => None,
            set_mtime::SET_TO_SERVER_TIME => Some(now),
            set_mtime::SET_TO_CLIENT_TIME(t) => Some(ns_of(t)),
        };
        // A chmod or chown to what the node already has changes nothing,
        // its ctime included (`tar x` as root sends two per file).
        let unchanged = |a: &NodeAttr| a.owned && owner == Some((a.mode, a.uid, a.gid));
        let owner = owner.filter(|_| !current.as_ref().is_some_and(unchanged));
        if owner.is_none() && size.is_none() && atime.is_none() && mtime.is_none() {
            return match current {
                Some(a) => Ok(a),
                None => self.node(inode).await,
            };
        }
        let r = self
            .command(Command::SetAttr {
                inode,
                owner,
                size,
                atime,
                mtime,
                now,
            })
            .await?;
        Self::node_reply(r)
    }

    /// The node `name` names in `dir`.
    pub async fn lookup(&self, dir: InodeId, name: &[u8]) -> NfsResult<NodeAttr> {
        let Ok(name) = name_of(name) else {
            // Every stored name is UTF-8 and short enough.
            return Err(nfsstat3::NFS3ERR_NOENT);
        };
        match name.as_str() {
            "." => self.node(dir).await,
            ".." => {
                let a = self.node(dir).await?;
                // Never above the export's root.
                if dir == self.inner.root {
                    Ok(a)
                } else {
                    self.node(a.parent).await
                }
            }
            _ => match self
                .meta()
                .query(&Query::Lookup { parent: dir, name })
                .await
            {
                Ok(Reply::Node(a)) => Ok(a),
                Ok(r) => Err(unexpected(r)),
                Err(e) => Err(meta_err(e)),
            },
        }
    }

    /// Up to `count` bytes at `offset`, whether they reach the end, and
    /// the file's attributes.
    pub async fn read(
        &self,
        inode: InodeId,
        offset: u64,
        count: u32,
    ) -> NfsResult<(NodeAttr, Vec<u8>, bool)> {
        self.flush(inode, true).await?;
        let range = match self
            .meta()
            .query(&Query::ReadRange {
                inode,
                offset,
                len: u64::from(count),
            })
            .await
        {
            Ok(Reply::Range(r)) => r,
            Ok(r) => return Err(unexpected(r)),
            Err(e) => return Err(meta_err(e)),
        };
        regular(&range.attr)?;
        let size = range.attr.size;
        if offset >= size || count == 0 {
            return Ok((range.attr, Vec::new(), offset >= size));
        }
        let end = size.min(offset + u64::from(count));
        let mut stream = Box::pin(
            self.inner
                .gw
                .data
                .read_extents(&range.extents, &range.placements, offset, end)
                .await,
        );
        let mut out = Vec::with_capacity((end - offset) as usize);
        while let Some(piece) = stream.next().await {
            out.extend_from_slice(&piece.map_err(nfs)?);
        }
        Ok((range.attr, out, end >= size))
    }

    /// Up to `limit` entries of `dir` after `cookie`, whether that is the
    /// end, and the directory's attributes.
    pub async fn readdir(
        &self,
        dir: InodeId,
        cookie: u64,
        limit: u32,
    ) -> NfsResult<(Vec<DirEntry>, bool, Option<NodeAttr>)> {
        let q = Query::ReadDir { dir, cookie, limit };
        match self.meta().query(&q).await {
            Ok(Reply::Entries {
                entries,
                eof,
                dir: d,
            }) => Ok((entries, eof, d)),
            Ok(r) => Err(unexpected(r)),
            Err(e) => Err(meta_err(e)),
        }
    }

    /// Writes `data` at `offset`: durable on return.
    pub async fn write(&self, inode: InodeId, offset: u64, data: Vec<u8>) -> NfsResult<NodeAttr> {
        self.writable()?;
        // Bytes buffered earlier must not land over these later.
        self.flush(inode, true).await?;
        if data.is_empty() {
            return self.node(inode).await;
        }
        // Refuse early, before storing a blob nothing would reference.
        regular(&self.node(inode).await?)?;
        self.store_at(inode, offset, Bytes::from(data)).await
    }

    /// Stores `bytes` as one blob and places it at `offset` in `inode`.
    async fn store_at(&self, inode: InodeId, offset: u64, bytes: Bytes) -> NfsResult<NodeAttr> {
        let blob = self.inner.gw.data.store_blob(bytes).await.map_err(nfs)?;
        let r = self
            .command(Command::WriteFile {
                inode,
                offset,
                blob,
                now: now_ns(),
            })
            .await?;
        Self::node_reply(r)
    }

    /// Buffers `data` at `offset` until COMMIT; answers the file's
    /// attributes and the verifier the bytes were buffered under.
    pub async fn write_unstable(
        &self,
        inode: InodeId,
        offset: u64,
        data: Vec<u8>,
    ) -> NfsResult<(NodeAttr, writeverf3)> {
        let data = Bytes::from(data);
        self.writable()?;
        // Read before buffering: a flush that loses these bytes changes it
        // after taking them, so the client sees the change.
        let verf = self.verf();
        let bufs = &self.inner.buffers;
        let (file_bytes, attr) = loop {
            {
                let mut files = bufs.files.lock().expect("buffers lock");
                if let Some(f) = files.get_mut(&inode) {
                    let before = f.runs.bytes();
                    f.runs.insert(offset, data.clone());
                    f.last_write = std::time::Instant::now();
                    let after = f.runs.bytes();
                    if after >= before {
                        bufs.total.fetch_add(after - before, Ordering::Relaxed);
                    } else {
                        bufs.total.fetch_sub(before - after, Ordering::Relaxed);
                    }
                    break (after, f.attr());
                }
            }
            // This gateway holds nothing of the file yet: see what it is.
            let a = self.node(inode).await?;
            regular(&a)?;
            bufs.files
                .lock()
                .expect("buffers lock")
                .entry(inode)
                .or_insert_with(|| FileBuf {
                    runs: Default::default(),
                    attr: a,
                    flushing_end: 0,
                    last_write: std::time::Instant::now(),
                    flush: Default::default(),
                });
        };
        // Past the file's (or the gateway's) bound the WRITE waits for a
        // flush, which holds a writer faster than the storage back. It
        // stores the whole blobs the runs hold, as a background flush
        // would; runs cut short by a gap (WRITEs still in flight on other
        // connections) are stored as they are only if there is nothing
        // else to free, since each becomes a small blob to merge later.
        let over = |file_bytes: usize| {
            bufs.total.load(Ordering::Relaxed) > GATEWAY_LIMIT || file_bytes >= 4 * BLOB_MAX_BYTES
        };
        if over(file_bytes) {
            if self.flush(inode, false).await?.is_none() && over(self.buffered(inode)) {
                self.flush(inode, true).await?;
            }
        } else if file_bytes >= BLOB_MAX_BYTES && !self.flushing(inode) {
            // A run may fill a blob: stored behind the WRITEs, which go on
            // buffering meanwhile. A failure changes the verifier, so the
            // client resends what it lost.
            let fs = self.clone();
            tokio::spawn(async move {
                if let Err(e) = fs.flush(inode, false).await {
                    tracing::warn!(inode, error = ?e, "storing buffered NFS writes failed");
                }
            });
        }
        Ok((attr, verf))
    }

    /// Bytes of `inode` this gateway holds unstored.
    fn buffered(&self, inode: InodeId) -> usize {
        let files = self.inner.buffers.files.lock().expect("buffers lock");
        files.get(&inode).map_or(0, |f| f.runs.bytes())
    }

    /// Whether a flush of `inode` is running or waiting.
    fn flushing(&self, inode: InodeId) -> bool {
        let files = self.inner.buffers.files.lock().expect("buffers lock");
        files
            .get(&inode)
            .is_some_and(|f| Arc::strong_count(&f.flush) > 1)
    }

    /// Stores `inode`'s buffered bytes: all of them (`whole`), or the whole
    /// blobs' worth of each run. Answers the file's attributes after, if
    /// it stored anything.
    pub async fn flush(&self, inode: InodeId, whole: bool) -> NfsResult<Option<NodeAttr>> {
        let bufs = &self.inner.buffers;
        let lock = match bufs.files.lock().expect("buffers lock").get(&inode) {
            Some(f) => f.flush.clone(),
            None => return Ok(None),
        };
        let _flushing = lock.lock().await;
        let taken = {
            let mut files = bufs.files.lock().expect("buffers lock");
            let Some(f) = files.get_mut(&inode) else {
                return Ok(None);
            };
            let taken = f.runs.take(whole, BLOB_MAX_BYTES);
            let bytes: usize = taken.iter().map(|(_, d)| d.len()).sum();
            bufs.total.fetch_sub(bytes, Ordering::Relaxed);
            f.flushing_end = taken
                .iter()
                .map(|(s, d)| s + d.len() as u64)
                .max()
                .unwrap_or(0);
            if taken.is_empty() && f.runs.bytes() == 0 {
                files.remove(&inode);
            }
            taken
        };
        if taken.is_empty() {
            return Ok(None);
        }
        let stored = self.store_runs(inode, taken).await;
        let mut files = bufs.files.lock().expect("buffers lock");
        if let Some(f) = files.get_mut(&inode) {
            f.flushing_end = 0;
            if let Ok(a) = &stored {
                f.attr = a.clone();
            }
            if f.runs.bytes() == 0 {
                files.remove(&inode);
            }
        }
        match stored {
            Ok(a) => Ok(Some(a)),
            // The file is gone: so are its unstored bytes, rightly.
            Err(s @ (nfsstat3::NFS3ERR_STALE | nfsstat3::NFS3ERR_NOENT)) => Err(s),
            Err(s) => {
                bufs.lost();
                Err(s)
            }
        }
    }

    /// Stores runs of bytes as blobs of at most the normal size and places
    /// them in `inode`; answers the file's attributes after.
    async fn store_runs(&self, inode: InodeId, runs: Vec<(u64, Bytes)>) -> NfsResult<NodeAttr> {
        let mut pieces = Vec::new();
        for (start, run) in runs {
            let mut at = 0;
            while at < run.len() {
                let end = (at + BLOB_MAX_BYTES).min(run.len());
                pieces.push((start + at as u64, run.slice(at..end)));
                at = end;
            }
        }
        let stored: Vec<NfsResult<NodeAttr>> = futures::stream::iter(pieces)
            .map(|(offset, bytes)| self.store_at(inode, offset, bytes))
            .buffer_unordered(BLOBS_IN_FLIGHT)
            .collect()
            .await;
        let stored = stored.into_iter().collect::<NfsResult<Vec<_>>>()?;
        // The pieces commit in any order: the newest attributes, with the
        // size the last of them left.
        let size = stored.iter().map(|a| a.size).max();
        let newest = stored.into_iter().max_by_key(|a| a.ctime);
        Ok(NodeAttr {
            size: size.expect("at least one piece"),
            ..newest.expect("at least one piece")
        })
    }

    /// A new regular file (or, UNCHECKED, the existing one with `attr`'s
    /// size and times applied).
    pub async fn create(
        &self,
        caller: &Caller,
        dir: InodeId,
        name: &[u8],
        attr: &sattr3,
    ) -> NfsResult<Made> {
        let owner = self.new_owner(caller, attr, self.inner.config.file_mode);
        let now = now_ns();
        let (a, dir_attr) = self
            .create_node(dir, name, NodeKind::File, owner, String::new(), None, now)
            .await?;
        // UNCHECKED over an existing file applies the size (O_TRUNC) and
        // times the client sent. A file this call made (its ctime is this
        // call's time) is empty already: a size of 0 would only cost a
        // second commit.
        let size = match attr.size {
            Nfs3Option::Some(0) if a.ctime == now => Nfs3Option::None,
            size => size,
        };
        let rest = sattr3 {
            size,
            atime: attr.atime,
            mtime: attr.mtime,
            ..sattr3::default()
        };
        let a = self.setattr(caller, a.inode, &rest, Some(a)).await?;
        Ok((a, dir_attr))
    }

    /// An EXCLUSIVE create: a retry with the same verifier finds its file.
    pub async fn create_exclusive(
        &self,
        caller: &Caller,
        dir: InodeId,
        name: &[u8],
        verifier: u64,
    ) -> NfsResult<Made> {
        let owner = self.new_owner(caller, &sattr3::default(), self.inner.config.file_mode);
        self.create_node(
            dir,
            name,
            NodeKind::File,
            owner,
            String::new(),
            Some(verifier),
            now_ns(),
        )
        .await
    }

    pub async fn mkdir(
        &self,
        caller: &Caller,
        dir: InodeId,
        name: &[u8],
        attr: &sattr3,
    ) -> NfsResult<Made> {
        let owner = self.new_owner(caller, attr, self.inner.config.dir_mode);
        self.create_node(
            dir,
            name,
            NodeKind::Dir,
            owner,
            String::new(),
            None,
            now_ns(),
        )
        .await
    }

    pub async fn symlink(
        &self,
        caller: &Caller,
        dir: InodeId,
        name: &[u8],
        target: &[u8],
        attr: &sattr3,
    ) -> NfsResult<Made> {
        let target = String::from_utf8(target.to_vec()).map_err(|_| nfsstat3::NFS3ERR_INVAL)?;
        if target.is_empty() || target.len() > 4096 {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        let owner = self.new_owner(caller, attr, 0o777);
        self.create_node(dir, name, NodeKind::Symlink, owner, target, None, now_ns())
            .await
    }

    /// Removes a file, symlink or empty directory; answers the
    /// directory's attributes after.
    pub async fn remove(&self, dir: InodeId, name: &[u8]) -> NfsResult<Vec<NodeAttr>> {
        self.writable()?;
        let name = name_of(name)?;
        if dot(&name) {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        self.command(Command::RemoveNode {
            parent: dir,
            name,
            now: now_ns(),
        })
        .await
        .map(changed_dirs)
    }

    pub async fn rename(
        &self,
        from_parent: InodeId,
        from_name: &[u8],
        to_parent: InodeId,
        to_name: &[u8],
    ) -> NfsResult<Vec<NodeAttr>> {
        self.writable()?;
        let from_name = name_of(from_name)?;
        let to_name = name_of(to_name)?;
        if dot(&from_name) || dot(&to_name) {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        self.command(Command::Rename {
            from_parent,
            from_name,
            to_parent,
            to_name,
            now: now_ns(),
        })
        .await
        .map(changed_dirs)
    }
}
