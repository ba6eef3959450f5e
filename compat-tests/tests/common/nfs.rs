//! A small NFSv3 client for tests, over the `nfs3_client` crate: each call
//! answers `Ok` or the NFS status the server sent.
#![allow(dead_code)]

use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::{TokioConnector, TokioIo};
use nfs3_client::{Nfs3Connection, Nfs3ConnectionBuilder};

pub type Fh = nfs_fh3;
pub type NfsResult<T> = Result<T, nfsstat3>;

pub struct Nfs {
    pub conn: Nfs3Connection<TokioIo<tokio::net::TcpStream>>,
}

fn res<T, E>(r: Nfs3Result<T, E>) -> NfsResult<T> {
    match r {
        Nfs3Result::Ok(v) => Ok(v),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

fn name(n: &str) -> filename3<'_> {
    filename3(Opaque::borrowed(n.as_bytes()))
}

pub fn dirop<'a>(dir: &Fh, n: &'a str) -> diropargs3<'a> {
    diropargs3 {
        dir: dir.clone(),
        name: name(n),
    }
}

/// How long one MOUNT may take before it counts as failed.
const MOUNT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Mounts `export` from the NFS service at `addr` (`ip:port`, MOUNT on the
/// same port), as uid/gid 1000.
pub async fn mount(addr: &str, export: &str) -> Result<Nfs, String> {
    mount_as(addr, export, 1000, 1000).await
}

/// [`mount`] with the AUTH_SYS identity `uid`/`gid`.
pub async fn mount_as(addr: &str, export: &str, uid: u32, gid: u32) -> Result<Nfs, String> {
    let (host, port) = addr.rsplit_once(':').expect("ip:port");
    let port: u16 = port.parse().expect("port");
    let auth = auth_unix {
        stamp: 1,
        machinename: Opaque::borrowed(b"test"),
        uid,
        gid,
        gids: vec![],
    };
    let mounting = Nfs3ConnectionBuilder::new(TokioConnector, host, export)
        .connect_from_privileged_port(false)
        .mount_port(port)
        .nfs3_port(port)
        .credential(opaque_auth::auth_unix(&auth))
        .mount();
    // The client reads a connection the server closed as an endless run of
    // empty reads instead of an error, so a refused mount is bounded here.
    let conn = tokio::time::timeout(MOUNT_TIMEOUT, mounting)
        .await
        .map_err(|_| format!("MOUNT of {export} at {addr}: no reply in {MOUNT_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    Ok(Nfs { conn })
}

/// [`mount`], retried for a while: a gateway announces its S3 address
/// before its NFS listener is up.
pub async fn mount_wait(addr: &str, export: &str) -> Nfs {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match mount(addr, export).await {
            Ok(n) => return n,
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "mount {addr}{export}: {e}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

pub fn sattr_mode(mode: u32) -> sattr3 {
    sattr3 {
        mode: Nfs3Option::Some(mode),
        ..sattr3::default()
    }
}

impl Nfs {
    pub fn root(&self) -> Fh {
        self.conn.root_nfs_fh3()
    }

    pub async fn lookup(&mut self, dir: &Fh, n: &str) -> NfsResult<Fh> {
        let r = self
            .conn
            .lookup(&LOOKUP3args {
                what: dirop(dir, n),
            })
            .await
            .expect("rpc");
        res(r).map(|ok| ok.object)
    }

    /// Walks a `/`-separated path from the root.
    pub async fn path(&mut self, path: &str) -> NfsResult<Fh> {
        let mut fh = self.root();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            fh = self.lookup(&fh, part).await?;
        }
        Ok(fh)
    }

    pub async fn getattr(&mut self, fh: &Fh) -> NfsResult<fattr3> {
        let r = self
            .conn
            .getattr(&GETATTR3args { object: fh.clone() })
            .await
            .expect("rpc");
        res(r).map(|ok| ok.obj_attributes)
    }

    pub async fn setattr(&mut self, fh: &Fh, attr: sattr3) -> NfsResult<()> {
        let r = self
            .conn
            .setattr(&SETATTR3args {
                object: fh.clone(),
                new_attributes: attr,
                guard: Nfs3Option::None,
            })
            .await
            .expect("rpc");
        res(r).map(drop)
    }

    pub async fn create_how(&mut self, dir: &Fh, n: &str, how: createhow3) -> NfsResult<Fh> {
        let r = self
            .conn
            .create(&CREATE3args {
                where_: dirop(dir, n),
                how,
            })
            .await
            .expect("rpc");
        match res(r)?.obj {
            Nfs3Option::Some(fh) => Ok(fh),
            Nfs3Option::None => self.lookup(dir, n).await,
        }
    }

    pub async fn create(&mut self, dir: &Fh, n: &str) -> NfsResult<Fh> {
        self.create_how(dir, n, createhow3::UNCHECKED(sattr_mode(0o644)))
            .await
    }

    pub async fn mkdir(&mut self, dir: &Fh, n: &str) -> NfsResult<Fh> {
        let r = self
            .conn
            .mkdir(&MKDIR3args {
                where_: dirop(dir, n),
                attributes: sattr_mode(0o755),
            })
            .await
            .expect("rpc");
        match res(r)?.obj {
            Nfs3Option::Some(fh) => Ok(fh),
            Nfs3Option::None => self.lookup(dir, n).await,
        }
    }

    pub async fn symlink(&mut self, dir: &Fh, n: &str, target: &str) -> NfsResult<Fh> {
        let r = self
            .conn
            .symlink(&SYMLINK3args {
                where_: dirop(dir, n),
                symlink: symlinkdata3 {
                    symlink_attributes: sattr3::default(),
                    symlink_data: nfspath3(Opaque::borrowed(target.as_bytes())),
                },
            })
            .await
            .expect("rpc");
        match res(r)?.obj {
            Nfs3Option::Some(fh) => Ok(fh),
            Nfs3Option::None => self.lookup(dir, n).await,
        }
    }

    pub async fn readlink(&mut self, fh: &Fh) -> NfsResult<String> {
        let r = self
            .conn
            .readlink(&READLINK3args {
                symlink: fh.clone(),
            })
            .await
            .expect("rpc");
        res(r).map(|ok| String::from_utf8(ok.data.0.to_vec()).expect("utf-8"))
    }

    /// An UNSTABLE WRITE: durable only once a COMMIT answers its verifier.
    pub async fn write(&mut self, fh: &Fh, offset: u64, data: &[u8]) -> NfsResult<WRITE3resok> {
        self.write_how(fh, offset, data, stable_how::UNSTABLE).await
    }

    /// A FILE_SYNC WRITE: durable on return.
    pub async fn write_stable(
        &mut self,
        fh: &Fh,
        offset: u64,
        data: &[u8],
    ) -> NfsResult<WRITE3resok> {
        self.write_how(fh, offset, data, stable_how::FILE_SYNC)
            .await
    }

    pub async fn write_how(
        &mut self,
        fh: &Fh,
        offset: u64,
        data: &[u8],
        stable: stable_how,
    ) -> NfsResult<WRITE3resok> {
        let r = self
            .conn
            .write(&WRITE3args {
                file: fh.clone(),
                offset,
                count: data.len() as u32,
                stable,
                data: Opaque::borrowed(data),
            })
            .await
            .expect("rpc");
        res(r)
    }

    /// Writes `data` from `offset` in pieces of `piece` bytes, then COMMITs.
    pub async fn write_all(
        &mut self,
        fh: &Fh,
        offset: u64,
        data: &[u8],
        piece: usize,
    ) -> NfsResult<()> {
        for (i, chunk) in data.chunks(piece).enumerate() {
            let ok = self.write(fh, offset + (i * piece) as u64, chunk).await?;
            assert_eq!(ok.count as usize, chunk.len());
        }
        self.commit(fh).await
    }

    pub async fn read(&mut self, fh: &Fh, offset: u64, count: u32) -> NfsResult<(Vec<u8>, bool)> {
        let r = self
            .conn
            .read(&READ3args {
                file: fh.clone(),
                offset,
                count,
            })
            .await
            .expect("rpc");
        res(r).map(|ok| (ok.data.to_vec(), ok.eof))
    }

    /// The whole file, read in 1 MiB pieces.
    pub async fn read_all(&mut self, fh: &Fh) -> NfsResult<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let (data, eof) = self.read(fh, out.len() as u64, 1 << 20).await?;
            out.extend_from_slice(&data);
            if eof || data.is_empty() {
                return Ok(out);
            }
        }
    }

    pub async fn commit(&mut self, fh: &Fh) -> NfsResult<()> {
        self.commit_verf(fh).await.map(drop)
    }

    /// COMMIT, answering the verifier.
    pub async fn commit_verf(&mut self, fh: &Fh) -> NfsResult<writeverf3> {
        let r = self
            .conn
            .commit(&COMMIT3args {
                file: fh.clone(),
                offset: 0,
                count: 0,
            })
            .await
            .expect("rpc");
        res(r).map(|ok| ok.verf)
    }

    pub async fn remove(&mut self, dir: &Fh, n: &str) -> NfsResult<()> {
        let r = self
            .conn
            .remove(&REMOVE3args {
                object: dirop(dir, n),
            })
            .await
            .expect("rpc");
        res(r).map(drop)
    }

    pub async fn rmdir(&mut self, dir: &Fh, n: &str) -> NfsResult<()> {
        let r = self
            .conn
            .rmdir(&RMDIR3args {
                object: dirop(dir, n),
            })
            .await
            .expect("rpc");
        res(r).map(drop)
    }

    pub async fn rename(&mut self, from: &Fh, fname: &str, to: &Fh, tname: &str) -> NfsResult<()> {
        let r = self
            .conn
            .rename(&RENAME3args {
                from: dirop(from, fname),
                to: dirop(to, tname),
            })
            .await
            .expect("rpc");
        res(r).map(drop)
    }

    /// One READDIRPLUS reply, as the server gave it: the entries after
    /// `cookie`, at most `maxcount` bytes of them.
    pub async fn readdirplus(
        &mut self,
        dir: &Fh,
        cookie: u64,
        cookieverf: cookieverf3,
        maxcount: u32,
    ) -> READDIRPLUS3res<'static> {
        self.conn
            .readdirplus(&READDIRPLUS3args {
                dir: dir.clone(),
                cookie,
                cookieverf,
                dircount: maxcount,
                maxcount,
            })
            .await
            .expect("rpc")
    }

    /// Every entry of a directory (READDIRPLUS, paginated by cookie with
    /// `maxcount` bytes per reply): (name, cookie, attributes).
    pub async fn readdir(
        &mut self,
        dir: &Fh,
        maxcount: u32,
    ) -> NfsResult<Vec<(String, u64, fattr3)>> {
        self.readdir_after(dir, 0, maxcount).await
    }

    /// The entries listed after `cookie` (0: from the start), in listing
    /// order, as [`Nfs::readdir`] gives them.
    pub async fn readdir_after(
        &mut self,
        dir: &Fh,
        mut cookie: u64,
        maxcount: u32,
    ) -> NfsResult<Vec<(String, u64, fattr3)>> {
        let mut out = Vec::new();
        let mut verf = cookieverf3::default();
        loop {
            let ok = res(self.readdirplus(dir, cookie, verf, maxcount).await)?;
            verf = ok.cookieverf;
            for e in ok.reply.entries.0 {
                cookie = e.cookie;
                let attr = match e.name_attributes {
                    Nfs3Option::Some(a) => a,
                    Nfs3Option::None => panic!("READDIRPLUS without attributes"),
                };
                out.push((
                    String::from_utf8(e.name.0.to_vec()).unwrap(),
                    e.cookie,
                    attr,
                ));
            }
            if ok.reply.eof {
                return Ok(out);
            }
        }
    }

    pub async fn fsinfo(&mut self) -> NfsResult<FSINFO3resok> {
        let root = self.root();
        let r = self
            .conn
            .fsinfo(&FSINFO3args { fsroot: root })
            .await
            .expect("rpc");
        res(r)
    }
}
