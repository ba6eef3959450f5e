//! The namespace as NFS sees it: nodes, names and bytes, with the caller's
//! identity passed to every call that creates or changes ownership.
//!
//! Every call goes to the metastore (linearizable, through the leader), so
//! what another gateway or an S3 client changed shows at once; the gateway
//! caches nothing. Every WRITE is durable before its reply: its bytes are a
//! blob fsynced on at least two storage nodes, and its extent is committed.
//! WRITE therefore answers FILE_SYNC whatever the client asked, and COMMIT
//! has nothing left to do.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use metastore::api::{Command, DirEntry, InodeId, NodeAttr, NodeKind, Query, Reply};
use metastore::client::now_ns;
use nfs3_types::nfs3::{
    fattr3, ftype3, nfs_fh3, nfsstat3, nfstime3, sattr3, set_atime, set_mtime, specdata3,
    Nfs3Option,
};
use nfs3_types::xdr_codec::Opaque;

use super::caller::Caller;
use super::handle::{Handle, HandleKey, HANDLE_GENERATION};
use super::status::status;
use super::NfsConfig;
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
    pub fn new(gw: Arc<Gateway>, keys: HandleKey, root: InodeId, config: NfsConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                gw,
                keys,
                root,
                config,
            }),
        }
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

    pub fn fattr(&self, a: &NodeAttr) -> fattr3 {
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
            size: a.size,
            used: a.size.div_ceil(4096) * 4096,
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
        if let Some((uid, gid)) = c.squash {
            return (
                Caller {
                    uid,
                    gid,
                    gids: Vec::new(),
                },
                true,
            );
        }
        match c.root_squash {
            Some((uid, gid)) if caller.uid == 0 => (
                Caller {
                    uid,
                    gid,
                    gids: Vec::new(),
                },
                true,
            ),
            _ => (caller.clone(), false),
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

    async fn create_node(
        &self,
        parent: InodeId,
        name: &[u8],
        kind: NodeKind,
        owner: (u32, u32, u32),
        target: String,
        verifier: Option<u64>,
    ) -> NfsResult<NodeAttr> {
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
                now: now_ns(),
            })
            .await?;
        Self::node_reply(r)
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
        let now = now_ns();
        let owner_change = !matches!(
            (&attr.mode, &attr.uid, &attr.gid),
            (Nfs3Option::None, Nfs3Option::None, Nfs3Option::None)
        );
        let owner = if owner_change {
            let current = match &current {
                Some(a) => a.clone(),
                None => self.node(inode).await?,
            };
            let (mut mode, mut uid, mut gid) = self.owner(&current);
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
        match range.attr.kind {
            NodeKind::File => {}
            NodeKind::Dir => return Err(nfsstat3::NFS3ERR_ISDIR),
            NodeKind::Symlink => return Err(nfsstat3::NFS3ERR_INVAL),
        }
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
        let mut out = BytesMut::with_capacity((end - offset) as usize);
        while let Some(piece) = stream.next().await {
            out.extend_from_slice(&piece.map_err(nfs)?);
        }
        Ok((range.attr, out.to_vec(), end >= size))
    }

    /// Up to `limit` entries of `dir` after `cookie`, and whether that is
    /// the end.
    pub async fn readdir(
        &self,
        dir: InodeId,
        cookie: u64,
        limit: u32,
    ) -> NfsResult<(Vec<DirEntry>, bool)> {
        let q = Query::ReadDir { dir, cookie, limit };
        match self.meta().query(&q).await {
            Ok(Reply::Entries { entries, eof }) => Ok((entries, eof)),
            Ok(r) => Err(unexpected(r)),
            Err(e) => Err(meta_err(e)),
        }
    }

    /// Writes `data` at `offset`: durable on return.
    pub async fn write(&self, inode: InodeId, offset: u64, data: Vec<u8>) -> NfsResult<NodeAttr> {
        self.writable()?;
        if data.is_empty() {
            return self.node(inode).await;
        }
        // Refuse early, before storing a blob nothing would reference.
        let current = self.node(inode).await?;
        match current.kind {
            NodeKind::File => {}
            NodeKind::Dir => return Err(nfsstat3::NFS3ERR_ISDIR),
            NodeKind::Symlink => return Err(nfsstat3::NFS3ERR_INVAL),
        }
        let blob = self
            .inner
            .gw
            .data
            .store_blob(Bytes::from(data))
            .await
            .map_err(nfs)?;
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

    /// A new regular file (or, UNCHECKED, the existing one with `attr`'s
    /// size and times applied).
    pub async fn create(
        &self,
        caller: &Caller,
        dir: InodeId,
        name: &[u8],
        attr: &sattr3,
    ) -> NfsResult<NodeAttr> {
        let owner = self.new_owner(caller, attr, self.inner.config.file_mode);
        let a = self
            .create_node(dir, name, NodeKind::File, owner, String::new(), None)
            .await?;
        // UNCHECKED over an existing file applies the size (O_TRUNC) and
        // times the client sent.
        let rest = sattr3 {
            size: attr.size,
            atime: attr.atime,
            mtime: attr.mtime,
            ..sattr3::default()
        };
        self.setattr(caller, a.inode, &rest, Some(a)).await
    }

    /// An EXCLUSIVE create: a retry with the same verifier finds its file.
    pub async fn create_exclusive(
        &self,
        caller: &Caller,
        dir: InodeId,
        name: &[u8],
        verifier: u64,
    ) -> NfsResult<NodeAttr> {
        let owner = self.new_owner(caller, &sattr3::default(), self.inner.config.file_mode);
        self.create_node(
            dir,
            name,
            NodeKind::File,
            owner,
            String::new(),
            Some(verifier),
        )
        .await
    }

    pub async fn mkdir(
        &self,
        caller: &Caller,
        dir: InodeId,
        name: &[u8],
        attr: &sattr3,
    ) -> NfsResult<NodeAttr> {
        let owner = self.new_owner(caller, attr, self.inner.config.dir_mode);
        self.create_node(dir, name, NodeKind::Dir, owner, String::new(), None)
            .await
    }

    pub async fn symlink(
        &self,
        caller: &Caller,
        dir: InodeId,
        name: &[u8],
        target: &[u8],
        attr: &sattr3,
    ) -> NfsResult<NodeAttr> {
        let target = String::from_utf8(target.to_vec()).map_err(|_| nfsstat3::NFS3ERR_INVAL)?;
        if target.is_empty() || target.len() > 4096 {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        let owner = self.new_owner(caller, attr, 0o777);
        self.create_node(dir, name, NodeKind::Symlink, owner, target, None)
            .await
    }

    /// Removes a file, symlink or empty directory.
    pub async fn remove(&self, dir: InodeId, name: &[u8]) -> NfsResult<()> {
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
        .map(drop)
    }

    pub async fn rename(
        &self,
        from_parent: InodeId,
        from_name: &[u8],
        to_parent: InodeId,
        to_name: &[u8],
    ) -> NfsResult<()> {
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
        .map(drop)
    }
}
