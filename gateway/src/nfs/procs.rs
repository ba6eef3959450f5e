//! The NFSv3 procedures (RFC 1813): arguments decoded, the file system
//! called with the caller's credential, results encoded.
//!
//! Attributes a reply may omit (pre-operation attributes, a directory's
//! attributes beside a LOOKUP) are omitted when they would cost another
//! metastore request; attributes the call's own request returns are
//! always sent.

use metastore::api::NodeKind;
use nfs3_types::nfs3::*;
use nfs3_types::xdr_codec::{List, Opaque, Void};

use super::caller::Caller;
use super::fs::{Made, NfsResult, TroikaFs};
use super::rpc::{Call, Reply};

/// Largest READ and WRITE, and the preferred size of both.
pub const IO_MAX: u32 = 1 << 20;
/// Preferred READDIR reply size.
const DIR_PREF: u32 = 64 * 1024;
/// Directory entries fetched from the metastore per READDIR reply, at most.
const DIR_BATCH_MAX: u32 = 1024;
/// Reply bytes besides the entries: RPC header, status, directory
/// attributes, verifier, list end and eof.
const DIR_OVERHEAD: usize = 160;

fn attr(fs: &TroikaFs, a: &metastore::api::NodeAttr) -> post_op_attr {
    post_op_attr::Some(fs.fattr(a))
}

fn after(fs: &TroikaFs, a: &metastore::api::NodeAttr) -> wcc_data {
    wcc_data {
        before: pre_op_attr::None,
        after: attr(fs, a),
    }
}

/// Serves one NFS call.
pub async fn call(fs: &TroikaFs, call: &Call) -> Reply {
    use NFS_PROGRAM::*;
    let caller = call.caller.clone().unwrap_or_else(Caller::anonymous);
    let Ok(proc) = NFS_PROGRAM::try_from(call.proc) else {
        return Reply::ProcUnavail;
    };
    macro_rules! run {
        ($args:ty, $f:expr) => {
            match call.args::<$args>() {
                Some(a) => Reply::of(&$f(a).await),
                None => Reply::GarbageArgs,
            }
        };
    }
    match proc {
        NFSPROC3_NULL => Reply::of(&Void),
        NFSPROC3_GETATTR => run!(GETATTR3args, |a| getattr(fs, a)),
        NFSPROC3_SETATTR => run!(SETATTR3args, |a| setattr(fs, &caller, a)),
        NFSPROC3_LOOKUP => run!(LOOKUP3args<'static>, |a| lookup(fs, a)),
        NFSPROC3_ACCESS => run!(ACCESS3args, |a| access(fs, a)),
        NFSPROC3_READLINK => run!(READLINK3args, |a| readlink(fs, a)),
        NFSPROC3_READ => run!(READ3args, |a| read(fs, a)),
        NFSPROC3_WRITE => run!(WRITE3args<'static>, |a| write(fs, a)),
        NFSPROC3_CREATE => run!(CREATE3args<'static>, |a| create(fs, &caller, a)),
        NFSPROC3_MKDIR => run!(MKDIR3args<'static>, |a| mkdir(fs, &caller, a)),
        NFSPROC3_SYMLINK => run!(SYMLINK3args<'static>, |a| symlink(fs, &caller, a)),
        NFSPROC3_MKNOD => run!(MKNOD3args<'static>, |_| async {
            MKNOD3res::Err((
                nfsstat3::NFS3ERR_NOTSUPP,
                MKNOD3resfail {
                    dir_wcc: wcc_data::default(),
                },
            ))
        }),
        NFSPROC3_REMOVE | NFSPROC3_RMDIR => run!(REMOVE3args<'static>, |a| remove(fs, a)),
        NFSPROC3_RENAME => run!(RENAME3args<'static, 'static>, |a| rename(fs, a)),
        NFSPROC3_LINK => run!(LINK3args<'static>, |_| async {
            LINK3res::Err((
                nfsstat3::NFS3ERR_NOTSUPP,
                LINK3resfail {
                    file_attributes: post_op_attr::None,
                    linkdir_wcc: wcc_data::default(),
                },
            ))
        }),
        NFSPROC3_READDIR => run!(READDIR3args, |a| readdir(fs, a)),
        NFSPROC3_READDIRPLUS => run!(READDIRPLUS3args, |a| readdirplus(fs, a)),
        NFSPROC3_FSSTAT => run!(FSSTAT3args, |a| fsstat(fs, a)),
        NFSPROC3_FSINFO => run!(FSINFO3args, |a| fsinfo(fs, a)),
        NFSPROC3_PATHCONF => run!(PATHCONF3args, |a| pathconf(fs, a)),
        NFSPROC3_COMMIT => run!(COMMIT3args, |a| commit(fs, a)),
    }
}

async fn getattr(fs: &TroikaFs, a: GETATTR3args) -> GETATTR3res {
    let r = fs.node_of(&a.object).await;
    match r {
        Ok(n) => GETATTR3res::Ok(GETATTR3resok {
            obj_attributes: fs.fattr(&n),
        }),
        Err(s) => GETATTR3res::Err((s, Void)),
    }
}

async fn setattr(fs: &TroikaFs, caller: &Caller, a: SETATTR3args) -> SETATTR3res {
    let r = async {
        let none = |s| (s, pre_op_attr::None);
        let inode = fs.inode(&a.object).map_err(none)?;
        let mut before = pre_op_attr::None;
        let mut current = None;
        if let sattrguard3::Some(guard) = &a.guard {
            let n = fs.node(inode).await.map_err(none)?;
            let f = fs.fattr(&n);
            before = pre_op_attr::Some(wcc_attr {
                size: f.size,
                mtime: f.mtime,
                ctime: f.ctime,
            });
            if f.ctime != *guard {
                return Err((nfsstat3::NFS3ERR_NOT_SYNC, before));
            }
            current = Some(n);
        }
        fs.setattr(caller, inode, &a.new_attributes, current)
            .await
            .map(|n| (n, before))
            .map_err(|s| (s, pre_op_attr::None))
    }
    .await;
    match r {
        Ok((n, before)) => SETATTR3res::Ok(SETATTR3resok {
            obj_wcc: wcc_data {
                before,
                after: attr(fs, &n),
            },
        }),
        Err((s, before)) => SETATTR3res::Err((
            s,
            SETATTR3resfail {
                obj_wcc: wcc_data {
                    before,
                    after: post_op_attr::None,
                },
            },
        )),
    }
}

async fn lookup(fs: &TroikaFs, a: LOOKUP3args<'static>) -> LOOKUP3res {
    let r = async {
        let dir = fs.inode(&a.what.dir)?;
        fs.lookup(dir, a.what.name.as_ref()).await
    }
    .await;
    match r {
        Ok(n) => LOOKUP3res::Ok(LOOKUP3resok {
            object: fs.fh(n.inode),
            obj_attributes: attr(fs, &n),
            dir_attributes: post_op_attr::None,
        }),
        Err(s) => LOOKUP3res::Err((s, LOOKUP3resfail::default())),
    }
}

async fn access(fs: &TroikaFs, a: ACCESS3args) -> ACCESS3res {
    let r = fs.node_of(&a.object).await;
    match r {
        Ok(n) => {
            let mut access = a.access;
            if fs.read_only() {
                access &= ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_EXECUTE;
            }
            ACCESS3res::Ok(ACCESS3resok {
                obj_attributes: attr(fs, &n),
                access,
            })
        }
        Err(s) => ACCESS3res::Err((s, ACCESS3resfail::default())),
    }
}

async fn readlink(fs: &TroikaFs, a: READLINK3args) -> READLINK3res<'static> {
    let r = fs.node_of(&a.symlink).await;
    match r {
        Ok(n) if n.kind == NodeKind::Symlink => READLINK3res::Ok(READLINK3resok {
            symlink_attributes: attr(fs, &n),
            data: nfspath3(Opaque::owned(n.target.into_bytes())),
        }),
        Ok(n) => READLINK3res::Err((
            nfsstat3::NFS3ERR_INVAL,
            READLINK3resfail {
                symlink_attributes: attr(fs, &n),
            },
        )),
        Err(s) => READLINK3res::Err((s, READLINK3resfail::default())),
    }
}

async fn read(fs: &TroikaFs, a: READ3args) -> READ3res<'static> {
    let r = async {
        let inode = fs.inode(&a.file)?;
        fs.read(inode, a.offset, a.count.min(IO_MAX)).await
    }
    .await;
    match r {
        Ok((n, data, eof)) => READ3res::Ok(READ3resok {
            file_attributes: attr(fs, &n),
            count: data.len() as u32,
            eof,
            data: Opaque::owned(data),
        }),
        Err(s) => READ3res::Err((s, READ3resfail::default())),
    }
}

async fn write(fs: &TroikaFs, a: WRITE3args<'static>) -> WRITE3res {
    let r = async {
        let inode = fs.inode(&a.file)?;
        let mut data = a.data.into_owned();
        if (a.count as usize) < data.len() {
            data.truncate(a.count as usize);
        }
        let count = data.len() as u32;
        if a.stable == stable_how::UNSTABLE {
            let (n, verf) = fs.write_unstable(inode, a.offset, data).await?;
            return Ok((n, count, stable_how::UNSTABLE, verf));
        }
        let n = fs.write(inode, a.offset, data).await?;
        Ok((n, count, stable_how::FILE_SYNC, fs.verf()))
    }
    .await;
    match r {
        Ok((n, count, committed, verf)) => WRITE3res::Ok(WRITE3resok {
            file_wcc: after(fs, &n),
            count,
            committed,
            verf,
        }),
        Err(s) => WRITE3res::Err((s, WRITE3resfail::default())),
    }
}

/// A created node's reply parts, or the status.
fn created(fs: &TroikaFs, r: NfsResult<Made>) -> NfsResult<(post_op_fh3, post_op_attr, wcc_data)> {
    r.map(|(n, dir)| {
        (
            post_op_fh3::Some(fs.fh(n.inode)),
            attr(fs, &n),
            dir_wcc(fs, dir.as_ref()),
        )
    })
}

/// A changed directory's after-attributes, when at hand.
fn dir_wcc(fs: &TroikaFs, dir: Option<&metastore::api::NodeAttr>) -> wcc_data {
    match dir {
        Some(d) => after(fs, d),
        None => wcc_data::default(),
    }
}

async fn create(fs: &TroikaFs, caller: &Caller, a: CREATE3args<'static>) -> CREATE3res {
    let dir = match fs.inode(&a.where_.dir) {
        Ok(d) => d,
        Err(s) => return CREATE3res::Err((s, CREATE3resfail::default())),
    };
    let name = a.where_.name.as_ref();
    let r = match &a.how {
        createhow3::EXCLUSIVE(v) => {
            fs.create_exclusive(caller, dir, name, u64::from_be_bytes(v.0))
                .await
        }
        createhow3::GUARDED(attr) => match fs.lookup(dir, name).await {
            Ok(_) => Err(nfsstat3::NFS3ERR_EXIST),
            Err(nfsstat3::NFS3ERR_NOENT) => fs.create(caller, dir, name, attr).await,
            Err(s) => Err(s),
        },
        createhow3::UNCHECKED(attr) => fs.create(caller, dir, name, attr).await,
    };
    match created(fs, r) {
        Ok((obj, obj_attributes, dir_wcc)) => CREATE3res::Ok(CREATE3resok {
            obj,
            obj_attributes,
            dir_wcc,
        }),
        Err(s) => CREATE3res::Err((s, CREATE3resfail::default())),
    }
}

async fn mkdir(fs: &TroikaFs, caller: &Caller, a: MKDIR3args<'static>) -> MKDIR3res {
    let dir = match fs.inode(&a.where_.dir) {
        Ok(d) => d,
        Err(s) => return MKDIR3res::Err((s, MKDIR3resfail::default())),
    };
    let r = fs
        .mkdir(caller, dir, a.where_.name.as_ref(), &a.attributes)
        .await;
    match created(fs, r) {
        Ok((obj, obj_attributes, dir_wcc)) => MKDIR3res::Ok(MKDIR3resok {
            obj,
            obj_attributes,
            dir_wcc,
        }),
        Err(s) => MKDIR3res::Err((s, MKDIR3resfail::default())),
    }
}

async fn symlink(fs: &TroikaFs, caller: &Caller, a: SYMLINK3args<'static>) -> SYMLINK3res {
    let dir = match fs.inode(&a.where_.dir) {
        Ok(d) => d,
        Err(s) => return SYMLINK3res::Err((s, SYMLINK3resfail::default())),
    };
    let r = fs
        .symlink(
            caller,
            dir,
            a.where_.name.as_ref(),
            a.symlink.symlink_data.as_ref(),
            &a.symlink.symlink_attributes,
        )
        .await;
    match created(fs, r) {
        Ok((obj, obj_attributes, dir_wcc)) => SYMLINK3res::Ok(SYMLINK3resok {
            obj,
            obj_attributes,
            dir_wcc,
        }),
        Err(s) => SYMLINK3res::Err((s, SYMLINK3resfail::default())),
    }
}

async fn remove(fs: &TroikaFs, a: REMOVE3args<'static>) -> REMOVE3res {
    let dir = match fs.inode(&a.object.dir) {
        Ok(d) => d,
        Err(s) => return REMOVE3res::Err((s, REMOVE3resfail::default())),
    };
    match fs.remove(dir, a.object.name.as_ref()).await {
        Ok(dirs) => REMOVE3res::Ok(REMOVE3resok {
            dir_wcc: dir_wcc(fs, dirs.first()),
        }),
        Err(s) => REMOVE3res::Err((s, REMOVE3resfail::default())),
    }
}

async fn rename(fs: &TroikaFs, a: RENAME3args<'static, 'static>) -> RENAME3res {
    let dirs = (|| Ok::<_, nfsstat3>((fs.inode(&a.from.dir)?, fs.inode(&a.to.dir)?)))();
    let (from, to) = match dirs {
        Ok(d) => d,
        Err(s) => return RENAME3res::Err((s, RENAME3resfail::default())),
    };
    match fs
        .rename(from, a.from.name.as_ref(), to, a.to.name.as_ref())
        .await
    {
        Ok(dirs) => {
            let fromdir_wcc = dir_wcc(fs, dirs.first());
            let todir_wcc = dir_wcc(fs, dirs.get(1).or(dirs.first()));
            RENAME3res::Ok(RENAME3resok {
                fromdir_wcc,
                todir_wcc,
            })
        }
        Err(s) => RENAME3res::Err((s, RENAME3resfail::default())),
    }
}

/// How many entries to ask the metastore for, for a reply of `bytes`.
fn batch(bytes: u32, per_entry: u32) -> u32 {
    (bytes / per_entry).clamp(1, DIR_BATCH_MAX)
}

async fn readdir(fs: &TroikaFs, a: READDIR3args) -> READDIR3res<'static> {
    let r = async {
        let dir = fs.inode(&a.dir)?;
        let (entries, eof, d) = fs.readdir(dir, a.cookie, batch(a.count, 32)).await?;
        Ok((d, entries, eof))
    }
    .await;
    let (d, entries, mut eof) = match r {
        Ok(x) => x,
        Err(s) => return READDIR3res::Err((s, READDIR3resfail::default())),
    };
    let budget = (a.count as usize).saturating_sub(DIR_OVERHEAD);
    let mut used = 0;
    let mut out = Vec::with_capacity(entries.len());
    let total = entries.len();
    for e in entries {
        let entry = entry3 {
            fileid: e.attr.inode,
            name: filename3(Opaque::owned(e.name.into_bytes())),
            cookie: e.cookie,
        };
        let size = 4 + nfs3_types::xdr_codec::Pack::packed_size(&entry);
        if used + size > budget && !out.is_empty() {
            eof = false;
            break;
        }
        used += size;
        out.push(entry);
    }
    if out.is_empty() && total > 0 {
        return READDIR3res::Err((nfsstat3::NFS3ERR_TOOSMALL, READDIR3resfail::default()));
    }
    READDIR3res::Ok(READDIR3resok {
        dir_attributes: d.map_or(post_op_attr::None, |d| attr(fs, &d)),
        cookieverf: cookieverf3::default(),
        reply: dirlist3 {
            entries: List(out),
            eof,
        },
    })
}

async fn readdirplus(fs: &TroikaFs, a: READDIRPLUS3args) -> READDIRPLUS3res<'static> {
    let r = async {
        let dir = fs.inode(&a.dir)?;
        let (entries, eof, d) = fs.readdir(dir, a.cookie, batch(a.maxcount, 160)).await?;
        Ok((d, entries, eof))
    }
    .await;
    let (d, entries, mut eof) = match r {
        Ok(x) => x,
        Err(s) => return READDIRPLUS3res::Err((s, READDIRPLUS3resfail::default())),
    };
    let budget = (a.maxcount as usize).saturating_sub(DIR_OVERHEAD);
    let dir_budget = a.dircount as usize;
    let (mut used, mut dir_used) = (0, 0);
    let mut out = Vec::with_capacity(entries.len());
    let total = entries.len();
    for e in entries {
        let entry = entryplus3 {
            fileid: e.attr.inode,
            name: filename3(Opaque::owned(e.name.into_bytes())),
            cookie: e.cookie,
            name_attributes: attr(fs, &e.attr),
            name_handle: post_op_fh3::Some(fs.fh(e.attr.inode)),
        };
        let size = 4 + nfs3_types::xdr_codec::Pack::packed_size(&entry);
        let dir_size = 8 + 4 + entry.name.0.len().next_multiple_of(4) + 8;
        let over = used + size > budget || (dir_budget > 0 && dir_used + dir_size > dir_budget);
        if over && !out.is_empty() {
            eof = false;
            break;
        }
        used += size;
        dir_used += dir_size;
        out.push(entry);
    }
    if out.is_empty() && total > 0 {
        return READDIRPLUS3res::Err((nfsstat3::NFS3ERR_TOOSMALL, READDIRPLUS3resfail::default()));
    }
    READDIRPLUS3res::Ok(READDIRPLUS3resok {
        dir_attributes: d.map_or(post_op_attr::None, |d| attr(fs, &d)),
        cookieverf: cookieverf3::default(),
        reply: dirlistplus3 {
            entries: List(out),
            eof,
        },
    })
}

async fn fsstat(fs: &TroikaFs, a: FSSTAT3args) -> FSSTAT3res {
    const TIB: u64 = 1 << 40;
    const GI: u64 = 1 << 30;
    match fs.node_of(&a.fsroot).await {
        Ok(n) => FSSTAT3res::Ok(FSSTAT3resok {
            obj_attributes: attr(fs, &n),
            tbytes: TIB,
            fbytes: TIB,
            abytes: TIB,
            tfiles: GI,
            ffiles: GI,
            afiles: GI,
            invarsec: 0,
        }),
        Err(s) => FSSTAT3res::Err((s, FSSTAT3resfail::default())),
    }
}

async fn fsinfo(fs: &TroikaFs, a: FSINFO3args) -> FSINFO3res {
    match fs.node_of(&a.fsroot).await {
        Ok(n) => FSINFO3res::Ok(FSINFO3resok {
            obj_attributes: attr(fs, &n),
            rtmax: IO_MAX,
            rtpref: IO_MAX,
            rtmult: 4096,
            wtmax: IO_MAX,
            wtpref: IO_MAX,
            wtmult: 4096,
            dtpref: DIR_PREF,
            maxfilesize: 1 << 50,
            time_delta: nfstime3 {
                seconds: 0,
                nseconds: 1,
            },
            properties: FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME,
        }),
        Err(s) => FSINFO3res::Err((s, FSINFO3resfail::default())),
    }
}

async fn pathconf(fs: &TroikaFs, a: PATHCONF3args) -> PATHCONF3res {
    match fs.node_of(&a.object).await {
        Ok(n) => PATHCONF3res::Ok(PATHCONF3resok {
            obj_attributes: attr(fs, &n),
            linkmax: 1,
            name_max: metastore::state::NAME_MAX as u32,
            no_trunc: true,
            chown_restricted: true,
            case_insensitive: false,
            case_preserving: true,
        }),
        Err(s) => PATHCONF3res::Err((s, PATHCONF3resfail::default())),
    }
}

async fn commit(fs: &TroikaFs, a: COMMIT3args) -> COMMIT3res {
    let r = async {
        let inode = fs.inode(&a.file)?;
        match fs.flush(inode, true).await? {
            Some(n) => Ok(n),
            None => fs.node(inode).await,
        }
    }
    .await;
    match r {
        // Read after the flush: a flush that lost bytes changed it.
        Ok(n) => COMMIT3res::Ok(COMMIT3resok {
            file_wcc: after(fs, &n),
            verf: fs.verf(),
        }),
        Err(s) => COMMIT3res::Err((
            s,
            COMMIT3resfail {
                file_wcc: wcc_data::default(),
            },
        )),
    }
}
