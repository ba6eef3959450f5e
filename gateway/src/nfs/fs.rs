//! The namespace as an `nfs3_server` file system.
//!
//! Every call goes to the metastore (linearizable, through the leader), so
//! what another gateway or an S3 client changed shows at once; the gateway
//! caches nothing. Every WRITE is durable before its reply: its bytes are a
//! blob fsynced on at least two storage nodes, and its extent is committed.
//! WRITE therefore answers FILE_SYNC whatever the client asked, and COMMIT
//! has nothing left to do.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use metastore::api::{Command, DirEntry, InodeId, NodeAttr, NodeKind, Query, Reply};
use metastore::client::now_ns;
use nfs3_server::nfs3_types::nfs3::{
    createverf3, fattr3, filename3, ftype3, nfspath3, nfsstat3, nfstime3, sattr3, set_atime,
    set_mtime, specdata3, stable_how, Nfs3Option,
};
use nfs3_server::nfs3_types::rpc::auth_unix;
use nfs3_server::vfs::{
    DirEntryPlus, NextResult, NfsFileSystem, NfsReadFileSystem, ReadDirPlusIterator,
    VFSCapabilities,
};

use super::caller::{Caller, Callers};
use super::handle::{Handle, HandleKey};
use super::status::status;
use super::NfsConfig;
use crate::error::Error;
use crate::server::Gateway;

/// Entries fetched from the metastore per READDIR round trip.
const READDIR_BATCH: u32 = 256;

type NfsResult<T> = Result<T, nfsstat3>;

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
    callers: Callers,
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

fn name_of(name: &filename3<'_>) -> NfsResult<String> {
    String::from_utf8(name.as_ref().to_vec()).map_err(|_| nfsstat3::NFS3ERR_INVAL)
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
                callers: Callers::default(),
            }),
        }
    }

    fn meta(&self) -> &metastore::MetaClient {
        self.inner.gw.ns.meta()
    }

    fn handle(&self, inode: InodeId) -> Handle {
        self.inner.keys.handle(inode)
    }

    /// The inode a handle names; `BADHANDLE` if this cluster (and export)
    /// did not mint it.
    fn inode(&self, h: &Handle) -> NfsResult<InodeId> {
        self.inner.keys.check(h).ok_or(nfsstat3::NFS3ERR_BADHANDLE)
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

    async fn node(&self, inode: InodeId) -> NfsResult<NodeAttr> {
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

    fn fattr(&self, a: &NodeAttr) -> fattr3 {
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

    /// The caller of the current RPC after squashing, and whether it was
    /// squashed (then it may not choose owners).
    fn caller(&self) -> (Option<Caller>, bool) {
        let c = &self.inner.config;
        let caller = self.inner.callers.get();
        if let Some((uid, gid)) = c.squash {
            return (Some(Caller { uid, gid }), true);
        }
        match (caller, c.root_squash) {
            (Some(Caller { uid: 0, .. }), Some((uid, gid))) => (Some(Caller { uid, gid }), true),
            (caller, _) => (caller, false),
        }
    }

    /// What a new node's owner is: the client's choice, else the caller,
    /// else the defaults; a squashed caller gets the anonymous owner.
    fn new_owner(&self, attr: &sattr3, default_mode: u32) -> (u32, u32, u32) {
        let c = &self.inner.config;
        let mode = match attr.mode {
            Nfs3Option::Some(m) => m,
            Nfs3Option::None => default_mode,
        };
        let (caller, squashed) = self.caller();
        let fallback = caller.unwrap_or(Caller {
            uid: c.uid,
            gid: c.gid,
        });
        if squashed {
            return (mode, fallback.uid, fallback.gid);
        }
        let uid = match attr.uid {
            Nfs3Option::Some(u) => u,
            Nfs3Option::None => fallback.uid,
        };
        let gid = match attr.gid {
            Nfs3Option::Some(g) => g,
            Nfs3Option::None => fallback.gid,
        };
        (mode, uid, gid)
    }

    async fn create_node(
        &self,
        dir: &Handle,
        name: &filename3<'_>,
        kind: NodeKind,
        owner: (u32, u32, u32),
        target: String,
        verifier: Option<u64>,
    ) -> NfsResult<NodeAttr> {
        self.writable()?;
        let parent = self.inode(dir)?;
        let name = name_of(name)?;
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

    /// Applies a client's `sattr3` to `inode`.
    async fn apply_sattr(&self, inode: InodeId, attr: &sattr3) -> NfsResult<NodeAttr> {
        let now = now_ns();
        let owner_change = !matches!(
            (&attr.mode, &attr.uid, &attr.gid),
            (Nfs3Option::None, Nfs3Option::None, Nfs3Option::None)
        );
        let owner = if owner_change {
            let current = self.node(inode).await?;
            let (mut mode, mut uid, mut gid) = self.owner(&current);
            if let Nfs3Option::Some(m) = attr.mode {
                mode = m;
            }
            let chown = !matches!((&attr.uid, &attr.gid), (Nfs3Option::None, Nfs3Option::None));
            match self.caller() {
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
            return self.node(inode).await;
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
}

impl NfsReadFileSystem for TroikaFs {
    type Handle = Handle;

    fn root_dir(&self) -> Handle {
        self.handle(self.inner.root)
    }

    fn authorize(&self, auth: Option<&auth_unix>) -> bool {
        if let Some(a) = auth {
            self.inner.callers.set(Caller {
                uid: a.uid,
                gid: a.gid,
            });
        }
        true
    }

    async fn lookup(&self, dirid: &Handle, filename: &filename3<'_>) -> NfsResult<Handle> {
        let dir = self.inode(dirid)?;
        let Ok(name) = name_of(filename) else {
            // Every stored name is UTF-8.
            return Err(nfsstat3::NFS3ERR_NOENT);
        };
        match name.as_str() {
            "." => {
                self.node(dir).await?;
                return Ok(*dirid);
            }
            ".." => {
                let a = self.node(dir).await?;
                // Never above the export's root.
                let up = if dir == self.inner.root {
                    dir
                } else {
                    a.parent
                };
                return Ok(self.handle(up));
            }
            _ => {}
        }
        if name.len() > metastore::state::NAME_MAX {
            return Err(nfsstat3::NFS3ERR_NAMETOOLONG);
        }
        match self
            .meta()
            .query(&Query::Lookup { parent: dir, name })
            .await
        {
            Ok(Reply::Node(a)) => Ok(self.handle(a.inode)),
            Ok(r) => Err(unexpected(r)),
            Err(e) => Err(meta_err(e)),
        }
    }

    async fn getattr(&self, id: &Handle) -> NfsResult<fattr3> {
        let inode = self.inode(id)?;
        Ok(self.fattr(&self.node(inode).await?))
    }

    async fn read(&self, id: &Handle, offset: u64, count: u32) -> NfsResult<(Vec<u8>, bool)> {
        let inode = self.inode(id)?;
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
        if offset >= size {
            return Ok((Vec::new(), true));
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
        Ok((out.to_vec(), end >= size))
    }

    async fn readdirplus(
        &self,
        dirid: &Handle,
        cookie: u64,
    ) -> NfsResult<impl ReadDirPlusIterator<Handle>> {
        let dir = self.inode(dirid)?;
        let a = self.node(dir).await?;
        if a.kind != NodeKind::Dir {
            return Err(nfsstat3::NFS3ERR_NOTDIR);
        }
        Ok(DirIter {
            fs: self.clone(),
            dir,
            cookie,
            buffer: VecDeque::new(),
            eof: false,
        })
    }

    async fn readlink(&self, id: &Handle) -> NfsResult<nfspath3<'_>> {
        let a = self.node(self.inode(id)?).await?;
        if a.kind != NodeKind::Symlink {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        Ok(nfspath3::from(a.target.into_bytes()))
    }
}

impl NfsFileSystem for TroikaFs {
    fn capabilities(&self) -> VFSCapabilities {
        if self.inner.config.read_only {
            VFSCapabilities::ReadOnly
        } else {
            VFSCapabilities::ReadWrite
        }
    }

    async fn setattr(&self, id: &Handle, setattr: sattr3) -> NfsResult<fattr3> {
        self.writable()?;
        let inode = self.inode(id)?;
        let a = self.apply_sattr(inode, &setattr).await?;
        Ok(self.fattr(&a))
    }

    async fn write(
        &self,
        id: &Handle,
        offset: u64,
        data: &[u8],
        _stable: stable_how,
    ) -> NfsResult<(fattr3, stable_how)> {
        self.writable()?;
        let inode = self.inode(id)?;
        if data.is_empty() {
            return Ok((self.getattr(id).await?, stable_how::FILE_SYNC));
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
            .store_blob(Bytes::copy_from_slice(data))
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
        Ok((self.fattr(&Self::node_reply(r)?), stable_how::FILE_SYNC))
    }

    async fn create(
        &self,
        dirid: &Handle,
        filename: &filename3<'_>,
        attr: sattr3,
    ) -> NfsResult<(Handle, fattr3)> {
        let owner = self.new_owner(&attr, self.inner.config.file_mode);
        let a = self
            .create_node(dirid, filename, NodeKind::File, owner, String::new(), None)
            .await?;
        // UNCHECKED over an existing file applies the size (O_TRUNC) and
        // times the client sent.
        let rest = sattr3 {
            size: attr.size,
            atime: attr.atime,
            mtime: attr.mtime,
            ..sattr3::default()
        };
        let a = self.apply_sattr(a.inode, &rest).await?;
        Ok((self.handle(a.inode), self.fattr(&a)))
    }

    async fn create_exclusive(
        &self,
        dirid: &Handle,
        filename: &filename3<'_>,
        createverf: createverf3,
    ) -> NfsResult<Handle> {
        let owner = self.new_owner(&sattr3::default(), self.inner.config.file_mode);
        let a = self
            .create_node(
                dirid,
                filename,
                NodeKind::File,
                owner,
                String::new(),
                Some(u64::from_be_bytes(createverf.0)),
            )
            .await?;
        Ok(self.handle(a.inode))
    }

    async fn mkdir(&self, dirid: &Handle, dirname: &filename3<'_>) -> NfsResult<(Handle, fattr3)> {
        let owner = self.new_owner(&sattr3::default(), self.inner.config.dir_mode);
        let a = self
            .create_node(dirid, dirname, NodeKind::Dir, owner, String::new(), None)
            .await?;
        Ok((self.handle(a.inode), self.fattr(&a)))
    }

    async fn remove(&self, dirid: &Handle, filename: &filename3<'_>) -> NfsResult<()> {
        self.writable()?;
        let parent = self.inode(dirid)?;
        let name = name_of(filename)?;
        if name == "." || name == ".." {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        self.command(Command::RemoveNode {
            parent,
            name,
            now: now_ns(),
        })
        .await
        .map(drop)
    }

    async fn rename<'a>(
        &self,
        from_dirid: &Handle,
        from_filename: &filename3<'a>,
        to_dirid: &Handle,
        to_filename: &filename3<'a>,
    ) -> NfsResult<()> {
        self.writable()?;
        let from_parent = self.inode(from_dirid)?;
        let to_parent = self.inode(to_dirid)?;
        let from_name = name_of(from_filename)?;
        let to_name = name_of(to_filename)?;
        if [&from_name, &to_name]
            .iter()
            .any(|n| *n == "." || *n == "..")
        {
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

    async fn symlink<'a>(
        &self,
        dirid: &Handle,
        linkname: &filename3<'a>,
        symlink: &nfspath3<'a>,
        attr: &sattr3,
    ) -> NfsResult<(Handle, fattr3)> {
        let target =
            String::from_utf8(symlink.as_ref().to_vec()).map_err(|_| nfsstat3::NFS3ERR_INVAL)?;
        if target.is_empty() || target.len() > 4096 {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        let owner = self.new_owner(attr, 0o777);
        let a = self
            .create_node(dirid, linkname, NodeKind::Symlink, owner, target, None)
            .await?;
        Ok((self.handle(a.inode), self.fattr(&a)))
    }

    async fn commit(&self, id: &Handle, _offset: u64, _count: u32) -> NfsResult<()> {
        // Every WRITE was durable before its reply.
        self.node(self.inode(id)?).await.map(drop)
    }
}

/// A directory listing, fetched from the metastore in batches as the
/// NFS layer consumes it.
struct DirIter {
    fs: TroikaFs,
    dir: InodeId,
    cookie: u64,
    buffer: VecDeque<DirEntry>,
    eof: bool,
}

impl ReadDirPlusIterator<Handle> for DirIter {
    async fn next(&mut self) -> NextResult<DirEntryPlus<Handle>> {
        if self.buffer.is_empty() && !self.eof {
            let q = Query::ReadDir {
                dir: self.dir,
                cookie: self.cookie,
                limit: READDIR_BATCH,
            };
            match self.fs.meta().query(&q).await {
                Ok(Reply::Entries { entries, eof }) => {
                    self.buffer.extend(entries);
                    self.eof = eof;
                }
                Ok(r) => return NextResult::Err(unexpected(r)),
                Err(e) => return NextResult::Err(meta_err(e)),
            }
        }
        match self.buffer.pop_front() {
            Some(e) => {
                self.cookie = e.cookie;
                NextResult::Ok(DirEntryPlus {
                    fileid: e.attr.inode,
                    name: filename3::from(e.name.into_bytes()),
                    cookie: e.cookie,
                    name_attributes: Some(self.fs.fattr(&e.attr)),
                    name_handle: Some(self.fs.handle(e.attr.inode)),
                })
            }
            None => NextResult::Eof,
        }
    }
}
