//! MOUNT v3 (RFC 1813, appendix I) and the one portmapper call clients
//! make on the NFS port: GETPORT, answered with this port.

use nfs3_types::mount::{
    dirpath, export_node, exports, fhandle3, mountres3, mountres3_ok, mountstat3, MOUNT_PROGRAM,
};
use nfs3_types::portmap::{mapping, PMAP_PROG};
use nfs3_types::rpc::auth_flavor;
use nfs3_types::xdr_codec::{List, Opaque, Void};

use super::fs::TroikaFs;
use super::rpc::{Call, Reply};

/// Serves a MOUNT call for the export `export` (`/` or `/bucket`).
pub async fn call(fs: &TroikaFs, export: &str, call: &Call) -> Reply {
    use MOUNT_PROGRAM::*;
    let Ok(proc) = MOUNT_PROGRAM::try_from(call.proc) else {
        return Reply::ProcUnavail;
    };
    match proc {
        MOUNTPROC3_NULL | MOUNTPROC3_UMNTALL => Reply::of(&Void),
        MOUNTPROC3_UMNT => match call.args::<dirpath<'static>>() {
            Some(_) => Reply::of(&Void),
            None => Reply::GarbageArgs,
        },
        // Mounts are not tracked: a gateway keeps no client state.
        MOUNTPROC3_DUMP => Reply::of(&List::<Void>(Vec::new())),
        MOUNTPROC3_EXPORT => {
            let list: exports<'static, 'static> = List(vec![export_node {
                ex_dir: dirpath(Opaque::owned(export.as_bytes().to_vec())),
                ex_groups: List::default(),
            }]);
            Reply::of(&list)
        }
        MOUNTPROC3_MNT => match call.args::<dirpath<'static>>() {
            Some(path) => Reply::of(&mnt(fs, export, &path.0).await),
            None => Reply::GarbageArgs,
        },
    }
}

/// The handle of `path`: the export itself or a directory below it.
async fn mnt(fs: &TroikaFs, export: &str, path: &[u8]) -> mountres3<'static> {
    let Ok(path) = std::str::from_utf8(path) else {
        return mountres3::Err(mountstat3::MNT3ERR_INVAL);
    };
    let path = format!("/{}", path.trim_matches('/'));
    let rest = if path == export {
        ""
    } else if export == "/" {
        &path[1..]
    } else if let Some(rest) = path.strip_prefix(&format!("{export}/")) {
        rest
    } else {
        return mountres3::Err(mountstat3::MNT3ERR_NOENT);
    };
    let mut inode = fs.root();
    for part in rest.split('/').filter(|p| !p.is_empty()) {
        match fs.lookup(inode, part.as_bytes()).await {
            Ok(n) if n.kind == metastore::api::NodeKind::Dir => inode = n.inode,
            Ok(_) => return mountres3::Err(mountstat3::MNT3ERR_NOTDIR),
            Err(_) => return mountres3::Err(mountstat3::MNT3ERR_NOENT),
        }
    }
    mountres3::Ok(mountres3_ok {
        fhandle: fhandle3(fs.fh(inode).data),
        auth_flavors: vec![auth_flavor::AUTH_UNIX as u32, auth_flavor::AUTH_NULL as u32],
    })
}

/// Serves a portmapper call: NULL, and GETPORT for NFS and MOUNT over TCP.
pub fn portmap(port: u16, call: &Call) -> Reply {
    match PMAP_PROG::try_from(call.proc) {
        Ok(PMAP_PROG::PMAPPROC_NULL) => Reply::of(&Void),
        Ok(PMAP_PROG::PMAPPROC_GETPORT) => match call.args::<mapping>() {
            Some(m) => {
                let ours = [nfs3_types::nfs3::PROGRAM, nfs3_types::mount::PROGRAM];
                let tcp = m.prot == nfs3_types::portmap::IPPROTO_TCP;
                let port = if ours.contains(&m.prog) && tcp {
                    u32::from(port)
                } else {
                    0
                };
                Reply::of(&port)
            }
            None => Reply::GarbageArgs,
        },
        _ => Reply::ProcUnavail,
    }
}
