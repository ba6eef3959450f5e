//! NFSv3 against real clusters with the `nfs3_client` crate: the
//! procedures, bad input, S3 and NFS seeing each other's changes at once
//! on every gateway, handles valid across gateways and restarts, and a
//! gateway killed mid-write losing nothing it acknowledged (and its
//! clients resending what it held unstable).

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::nfs::*;
use common::*;
use nfs3_client::nfs3_types::nfs3::{
    createhow3, createverf3, ftype3, nfsstat3, sattr3, set_atime, set_mtime, stable_how, Nfs3Option,
};

#[tokio::test(flavor = "multi_thread")]
async fn every_procedure_and_bad_input() {
    let c = Cluster::start(3, 1);
    let mut n = mount_wait(&c.nfs[0], "/").await;
    let root = n.root();

    // A directory at the root is a bucket; a file there is refused.
    let site = n.mkdir(&root, "site").await.unwrap();
    assert_eq!(
        n.create(&root, "loose.txt").await,
        Err(nfsstat3::NFS3ERR_ACCES)
    );
    let uploads = n.mkdir(&site, "uploads").await.unwrap();
    assert_eq!(
        n.mkdir(&site, "uploads").await,
        Err(nfsstat3::NFS3ERR_EXIST)
    );

    // WRITE in 1 MiB pieces, COMMIT, READ back.
    let f = n.create(&uploads, "big.bin").await.unwrap();
    let body = data((3 << 20) + 123, 5);
    n.write_all(&f, 0, &body, 1 << 20).await.unwrap();
    assert_eq!(n.read_all(&f).await.unwrap(), body);
    let a = n.getattr(&f).await.unwrap();
    assert_eq!(a.size, body.len() as u64);
    assert_eq!(a.type_, ftype3::NF3REG);
    assert_eq!(a.mode & 0o777, 0o644);
    assert_eq!(
        (a.uid, a.gid),
        (1000, 1000),
        "a new file belongs to its caller"
    );
    let w = n.write_stable(&f, 0, b"x").await.unwrap();
    assert_eq!(
        w.committed,
        stable_how::FILE_SYNC,
        "a FILE_SYNC WRITE is durable before its reply"
    );
    // Overwrite in the middle, across a piece boundary.
    let patch = data(4096, 6);
    n.write(&f, (1 << 20) - 100, &patch).await.unwrap();
    let mut want = body.clone();
    want[0] = b'x';
    want[(1 << 20) - 100..(1 << 20) - 100 + 4096].copy_from_slice(&patch);
    assert_eq!(n.read_all(&f).await.unwrap(), want);

    // SETATTR: mode, owner, truncate, extend (a hole reads as zeros), times.
    n.setattr(
        &f,
        sattr3 {
            mode: Nfs3Option::Some(0o600),
            uid: Nfs3Option::Some(33),
            gid: Nfs3Option::Some(44),
            ..sattr3::default()
        },
    )
    .await
    .unwrap();
    let a = n.getattr(&f).await.unwrap();
    assert_eq!((a.mode & 0o7777, a.uid, a.gid), (0o600, 33, 44));
    // The same mode and owner again change nothing, not even the ctime
    // (a chmod that changes the mode does change it).
    let same = sattr3 {
        mode: Nfs3Option::Some(0o100600),
        uid: Nfs3Option::Some(33),
        gid: Nfs3Option::Some(44),
        ..sattr3::default()
    };
    n.setattr(&f, same).await.unwrap();
    let again = n.getattr(&f).await.unwrap();
    assert_eq!((again.mode & 0o7777, again.uid, again.gid), (0o600, 33, 44));
    assert_eq!(
        again.ctime, a.ctime,
        "a chmod to the same mode is no change"
    );
    n.setattr(&f, sattr_mode(0o640)).await.unwrap();
    let changed = n.getattr(&f).await.unwrap();
    assert_eq!(changed.mode & 0o7777, 0o640);
    assert_ne!(
        changed.ctime, a.ctime,
        "a chmod that changes the mode sets ctime"
    );
    n.setattr(&f, sattr_mode(0o600)).await.unwrap();
    let size = |s: u64| sattr3 {
        size: Nfs3Option::Some(s),
        ..sattr3::default()
    };
    n.setattr(&f, size(1000)).await.unwrap();
    assert_eq!(n.read_all(&f).await.unwrap(), want[..1000]);
    n.setattr(&f, size(5000)).await.unwrap();
    let got = n.read_all(&f).await.unwrap();
    assert_eq!(got.len(), 5000);
    assert_eq!(got[..1000], want[..1000]);
    assert!(
        got[1000..].iter().all(|b| *b == 0),
        "extension reads as zeros"
    );
    let t = nfs3_client::nfs3_types::nfs3::nfstime3 {
        seconds: 1_600_000_000,
        nseconds: 5,
    };
    n.setattr(
        &f,
        sattr3 {
            atime: set_atime::SET_TO_CLIENT_TIME(t),
            mtime: set_mtime::SET_TO_CLIENT_TIME(t),
            ..sattr3::default()
        },
    )
    .await
    .unwrap();
    let a = n.getattr(&f).await.unwrap();
    assert_eq!(
        (a.mtime.seconds, a.atime.seconds),
        (1_600_000_000, 1_600_000_000)
    );
    // A sparse write far beyond the end.
    n.write(&f, 10 << 20, b"tail").await.unwrap();
    let (hole, _) = n.read(&f, 8 << 20, 16).await.unwrap();
    assert_eq!(hole, vec![0; 16]);
    assert_eq!(n.getattr(&f).await.unwrap().size, (10 << 20) + 4);

    // CREATE modes.
    assert_eq!(
        n.create_how(&uploads, "big.bin", createhow3::GUARDED(sattr3::default()))
            .await,
        Err(nfsstat3::NFS3ERR_EXIST)
    );
    let verf = createverf3(*b"verifier");
    let e1 = n
        .create_how(&uploads, "excl", createhow3::EXCLUSIVE(verf))
        .await
        .unwrap();
    let e2 = n
        .create_how(&uploads, "excl", createhow3::EXCLUSIVE(verf))
        .await
        .unwrap();
    assert_eq!(e1, e2, "a retried EXCLUSIVE create finds its own file");
    assert_eq!(
        n.create_how(
            &uploads,
            "excl",
            createhow3::EXCLUSIVE(createverf3(*b"another!"))
        )
        .await,
        Err(nfsstat3::NFS3ERR_EXIST)
    );
    // UNCHECKED with size 0 over an existing file truncates it.
    n.create_how(
        &uploads,
        "big.bin",
        createhow3::UNCHECKED(sattr3 {
            size: Nfs3Option::Some(0),
            ..sattr3::default()
        }),
    )
    .await
    .unwrap();
    assert_eq!(n.getattr(&f).await.unwrap().size, 0);
    let trunc = || {
        createhow3::UNCHECKED(sattr3 {
            size: Nfs3Option::Some(0),
            ..sattr3::default()
        })
    };
    // A new file's create with size 0 (`open(O_CREAT|O_TRUNC)`) is one
    // metadata command: the size it already has is not set again.
    let commands = || meta_requests(&c, "troika_meta_requests_total{kind=\"command\"}");
    let sent = commands();
    n.create_how(&uploads, "fresh.txt", trunc()).await.unwrap();
    assert_eq!(commands() - sent, 1);

    // Symlinks.
    let l = n.symlink(&uploads, "link", "../elsewhere/x").await.unwrap();
    assert_eq!(n.readlink(&l).await.unwrap(), "../elsewhere/x");
    assert_eq!(n.getattr(&l).await.unwrap().type_, ftype3::NF3LNK);

    // RENAME: across directories, replacing an existing file atomically.
    let other = n.mkdir(&site, "other").await.unwrap();
    let g = n.create(&other, "g.txt").await.unwrap();
    n.write_all(&g, 0, b"new content", 1 << 20).await.unwrap();
    let old = n.create(&uploads, "target.txt").await.unwrap();
    n.rename(&other, "g.txt", &uploads, "target.txt")
        .await
        .unwrap();
    assert_eq!(
        n.lookup(&other, "g.txt").await,
        Err(nfsstat3::NFS3ERR_NOENT)
    );
    let moved = n.lookup(&uploads, "target.txt").await.unwrap();
    assert_eq!(moved, g, "the handle follows the file");
    assert_eq!(n.read_all(&moved).await.unwrap(), b"new content");
    assert_eq!(
        n.getattr(&old).await.map(drop),
        Err(nfsstat3::NFS3ERR_STALE)
    );
    // A directory cannot move into itself; a non-empty one is not replaced.
    let inner = n.mkdir(&other, "inner").await.unwrap();
    assert_eq!(
        n.rename(&site, "other", &inner, "x").await,
        Err(nfsstat3::NFS3ERR_INVAL)
    );
    assert_eq!(
        n.rename(&site, "other", &site, "uploads").await,
        Err(nfsstat3::NFS3ERR_NOTEMPTY)
    );

    // REMOVE / RMDIR.
    assert_eq!(
        n.rmdir(&site, "uploads").await,
        Err(nfsstat3::NFS3ERR_NOTEMPTY)
    );
    n.rmdir(&other, "inner").await.unwrap();
    assert_eq!(
        n.getattr(&inner).await.map(drop),
        Err(nfsstat3::NFS3ERR_STALE)
    );
    n.remove(&uploads, "link").await.unwrap();
    assert_eq!(
        n.remove(&uploads, "nothing").await,
        Err(nfsstat3::NFS3ERR_NOENT)
    );

    // Bad input.
    let long = "n".repeat(256);
    assert_eq!(
        n.create(&uploads, &long).await,
        Err(nfsstat3::NFS3ERR_NAMETOOLONG)
    );
    assert!(n.create(&uploads, &"n".repeat(255)).await.is_ok());
    for bad in [".", ".."] {
        assert!(n.create(&uploads, bad).await.is_err(), "{bad:?} as a name");
        assert!(n.mkdir(&uploads, bad).await.is_err(), "{bad:?} as a name");
    }
    assert_eq!(
        n.write(&uploads, 0, b"x").await.map(drop),
        Err(nfsstat3::NFS3ERR_ISDIR)
    );
    assert_eq!(n.create(&f, "x").await, Err(nfsstat3::NFS3ERR_NOTDIR));
    let mut forged = f.clone();
    let mut bytes = forged.data.to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    forged.data = nfs3_client::nfs3_types::xdr_codec::Opaque::owned(bytes);
    assert_eq!(
        n.getattr(&forged).await.map(drop),
        Err(nfsstat3::NFS3ERR_BADHANDLE)
    );

    // READDIRPLUS paginates, and its cookies stay valid while the
    // directory changes.
    let dir = n.mkdir(&site, "many").await.unwrap();
    for i in 0..300 {
        n.create(&dir, &format!("file-{i:03}")).await.unwrap();
    }
    let all = n.readdir(&dir, 4096).await.unwrap();
    let mut names: Vec<String> = all.iter().map(|e| e.0.clone()).collect();
    names.sort();
    let want: Vec<String> = (0..300).map(|i| format!("file-{i:03}")).collect();
    assert_eq!(names, want, "every entry once");
    // Resume from the 100th cookie after removing entries on both sides of
    // it: nothing is listed twice, nothing removed is listed, nothing
    // remaining after the cookie is missed.
    let cookie = all[99].1;
    for e in all.iter().take(50).chain(all.iter().skip(200).take(50)) {
        n.remove(&dir, &e.0).await.unwrap();
    }
    let rest: Vec<String> = n
        .readdir_after(&dir, cookie, 4096)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    let want_rest: Vec<String> = all[100..200]
        .iter()
        .chain(all[250..].iter())
        .map(|e| e.0.clone())
        .collect();
    assert_eq!(rest, want_rest);

    let info = n.fsinfo().await.unwrap();
    assert!(info.wtmax >= 1 << 20 && info.rtmax >= 1 << 20);
}

/// Starts one more gateway on `c` serving NFS at `nfs_addr` with `flags`.
/// Makes `bucket` over S3 and mounts the first gateway's export: the
/// mount and the bucket's directory handle.
/// The sum over every meta node of the `/metrics` samples named `name`.
fn meta_requests(c: &Cluster, name: &str) -> u64 {
    c.metas.iter().map(|m| metric_sum(&m.addr, name)).sum()
}

async fn bucket_over_nfs(c: &Cluster, bucket: &str) -> (Nfs, Fh) {
    client(c, 0)
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let mut n = mount_wait(&c.nfs[0], "/").await;
    let dir = n.path(bucket).await.unwrap();
    (n, dir)
}

fn extra_gateway(c: &Cluster, name: &str, nfs_addr: &str, flags: &[&str]) -> Proc {
    let host = nfs_addr.rsplit_once(':').expect("ip:port").0;
    let metas: Vec<String> = c.metas.iter().map(|m| m.addr.clone()).collect();
    let mut args = vec![
        "gateway".to_string(),
        "--meta".into(),
        metas.join(","),
        "--s3-listen".into(),
        format!("{host}:{}", free_port(host)),
        "--nfs-listen".into(),
        nfs_addr.to_string(),
        "--secret-file".into(),
        c.secret_file.display().to_string(),
    ];
    args.extend(flags.iter().map(|f| f.to_string()));
    Proc::start(name, args, c.dir.path())
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_and_nfs_see_each_other_on_every_gateway() {
    let mut c = Cluster::start(3, 2);
    let s3a = client(&c, 0);
    let s3b = client(&c, 1);
    s3a.create_bucket().bucket("site").send().await.unwrap();
    let mut na = mount_wait(&c.nfs[0], "/").await;
    let mut nb = mount_wait(&c.nfs[1], "/").await;

    // Written over S3 → listed and read over NFS on the other gateway.
    let jpg = data(5 << 20, 1);
    s3a.put_object()
        .bucket("site")
        .key("img/a.jpg")
        .body(ByteStream::from(jpg.clone()))
        .send()
        .await
        .unwrap();
    let img = nb.path("site/img").await.unwrap();
    let names: Vec<String> = nb
        .readdir(&img, 8192)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(names, vec!["a.jpg"]);
    let a = nb.lookup(&img, "a.jpg").await.unwrap();
    assert_eq!(nb.read_all(&a).await.unwrap(), jpg);
    let attr = nb.getattr(&a).await.unwrap();
    assert_eq!(
        (attr.mode & 0o777, attr.uid),
        (0o644, 0),
        "S3 objects show the defaults"
    );

    // Written over NFS → HEAD and GET over S3 on the other gateway.
    let site = na.path("site").await.unwrap();
    let up = na.mkdir(&site, "uploads").await.unwrap();
    let f = na.create(&up, "b.pdf").await.unwrap();
    let pdf = data((2 << 20) + 7, 2);
    na.write_all(&f, 0, &pdf, 1 << 20).await.unwrap();
    let head = s3b
        .head_object()
        .bucket("site")
        .key("uploads/b.pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(pdf.len() as i64));
    let etag = head.e_tag().unwrap().trim_matches('"').to_string();
    assert!(
        !(etag.len() == 32 && etag.chars().all(|c| c.is_ascii_hexdigit())),
        "an NFS file's ETag is not taken for an MD5: {etag}"
    );
    assert_eq!(get_bytes(&s3b, "site", "uploads/b.pdf").await, pdf);
    // A handle minted by gateway A works on gateway B.
    assert_eq!(nb.read_all(&f).await.unwrap(), pdf);

    // The merge job rewrites the three 1 MiB-ish blobs the WRITEs made as
    // one blob of the whole file, on at least two nodes; the bytes stay.
    let merged = blob_ids(&pdf).remove(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let copies = (0..3)
            .filter(|i| {
                c.dir
                    .path()
                    .join(format!("chunk{i}/blobs/{}/{merged}", &merged[..2]))
                    .exists()
            })
            .count();
        if copies >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no merged blob appeared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(get_bytes(&s3b, "site", "uploads/b.pdf").await, pdf);
    assert_eq!(nb.read_all(&f).await.unwrap(), pdf);

    // Renaming a directory over NFS moves its objects in S3's view.
    na.rename(&site, "img", &site, "pics").await.unwrap();
    let keys: Vec<String> = s3b
        .list_objects_v2()
        .bucket("site")
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .map(|o| o.key().unwrap().to_string())
        .collect();
    assert!(keys.contains(&"pics/a.jpg".to_string()), "{keys:?}");
    assert!(!keys.iter().any(|k| k.starts_with("img/")), "{keys:?}");
    assert_eq!(get_bytes(&s3a, "site", "pics/a.jpg").await, jpg);
    assert_eq!(
        nb.read_all(&a).await.unwrap(),
        jpg,
        "the handle survives the rename"
    );

    // Deleted over S3 → the NFS handle is stale.
    s3b.delete_object()
        .bucket("site")
        .key("pics/a.jpg")
        .send()
        .await
        .unwrap();
    assert_eq!(na.getattr(&a).await.map(drop), Err(nfsstat3::NFS3ERR_STALE));
    assert_eq!(
        na.read(&a, 0, 10).await.map(drop),
        Err(nfsstat3::NFS3ERR_STALE)
    );

    // Handles survive every gateway restarting.
    drop(na);
    drop(nb);
    for g in c.gateways.iter_mut() {
        g.kill();
        g.restart();
    }
    let mut na = mount_wait(&c.nfs[0], "/").await;
    assert_eq!(na.read_all(&f).await.unwrap(), pdf);

    // A read-only export of one bucket, on an extra gateway.
    let host = "127.0.2.9";
    let nfs_addr = format!("{host}:{}", free_port(host));
    let _ro = extra_gateway(
        &c,
        "gateway-ro",
        &nfs_addr,
        &[
            "--nfs-export",
            "/site",
            "--nfs-read-only",
            "--nfs-allow",
            "10.0.0.0/8,127.0.0.1/32",
        ],
    );
    let mut ro = mount_wait(&nfs_addr, "/site").await;
    let root = ro.root();
    let up = ro.lookup(&root, "uploads").await.unwrap();
    let b = ro.lookup(&up, "b.pdf").await.unwrap();
    assert_eq!(ro.read_all(&b).await.unwrap(), pdf);
    assert_eq!(ro.create(&up, "new").await, Err(nfsstat3::NFS3ERR_ROFS));
    assert_eq!(
        ro.write(&b, 0, b"x").await.map(drop),
        Err(nfsstat3::NFS3ERR_ROFS)
    );
    assert_eq!(ro.remove(&up, "b.pdf").await, Err(nfsstat3::NFS3ERR_ROFS));
    // ".." at the export's root stays there; a handle of the whole
    // namespace's export is refused by this one.
    assert_eq!(ro.lookup(&root, "..").await.unwrap(), root);
    assert_eq!(
        ro.getattr(&f).await.map(drop),
        Err(nfsstat3::NFS3ERR_BADHANDLE)
    );

    // Root squash: root's new files are the anonymous user's, and root may
    // not give files away; other callers keep their identity.
    let squash_addr = format!("{host}:{}", free_port(host));
    let _squash = extra_gateway(&c, "gateway-squash", &squash_addr, &["--nfs-root-squash"]);
    mount_wait(&squash_addr, "/").await;
    let mut root_user = mount_as(&squash_addr, "/", 0, 0).await.unwrap();
    let up = root_user.path("site/uploads").await.unwrap();
    let r = root_user.create(&up, "by-root").await.unwrap();
    let a = root_user.getattr(&r).await.unwrap();
    assert_eq!((a.uid, a.gid), (65534, 65534), "root is squashed");
    let chown = sattr3 {
        uid: Nfs3Option::Some(0),
        ..sattr3::default()
    };
    assert_eq!(
        root_user.setattr(&r, chown).await,
        Err(nfsstat3::NFS3ERR_PERM)
    );
    let mut user = mount_as(&squash_addr, "/", 33, 33).await.unwrap();
    let w = user.create(&up, "by-www").await.unwrap();
    let a = user.getattr(&w).await.unwrap();
    assert_eq!((a.uid, a.gid), (33, 33));

    // A client outside the allowed networks cannot even mount.
    let deny_addr = format!("{host}:{}", free_port(host));
    let _deny = extra_gateway(
        &c,
        "gateway-deny",
        &deny_addr,
        &["--nfs-allow", "10.0.0.0/8"],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while tokio::net::TcpStream::connect(&deny_addr).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{deny_addr} never listened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        mount(&deny_addr, "/").await.is_err(),
        "a client outside --nfs-allow mounted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_killed_mid_write_loses_nothing_acknowledged() {
    let mut c = Cluster::start(3, 1);
    let (mut n, dir) = bucket_over_nfs(&c, "logs").await;
    let f = n.create(&dir, "big.log").await.unwrap();
    let body = data(24 << 20, 9);
    // UNSTABLE writes with a COMMIT after every 2 MiB, as a client
    // flushing its cache does: bytes are acknowledged once a COMMIT answers
    // the verifier their WRITEs got.
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let writer = tokio::spawn({
        let f = f.clone();
        let body = body.clone();
        let acked = acked.clone();
        async move {
            let mut verfs = Vec::new();
            for (i, piece) in body.chunks(1 << 20).enumerate() {
                if i == 12 {
                    let _ = tx.send(());
                }
                // Once the gateway is gone the helper panics on the
                // transport error, which ends this task.
                match n.write(&f, (i << 20) as u64, piece).await {
                    Ok(ok) => verfs.push(ok.verf),
                    Err(_) => break,
                }
                if i % 2 == 1 {
                    let Ok(verf) = n.commit_verf(&f).await else {
                        break;
                    };
                    if verfs.iter().all(|v| *v == verf) {
                        acked.store((i + 1) << 20, std::sync::atomic::Ordering::SeqCst);
                    }
                    verfs.clear();
                }
            }
        }
    });
    rx.recv().unwrap();
    c.gateways[0].kill();
    let _ = writer.await;
    let acked = acked.load(std::sync::atomic::Ordering::SeqCst);
    assert!(acked >= 10 << 20, "{acked}");
    c.gateways[0].restart();
    let mut n = mount_wait(&c.nfs[0], "/").await;
    let got = n.read_all(&f).await.unwrap();
    assert!(got.len() >= acked, "{} < {acked}", got.len());
    assert_eq!(got[..acked], body[..acked], "acknowledged bytes intact");
}

/// UNSTABLE WRITEs are buffered in the gateway until COMMIT. A gateway
/// killed before the COMMIT comes back with another write verifier, so the
/// client knows to resend; what it then commits is there for every gateway
/// and for S3.
#[tokio::test(flavor = "multi_thread")]
async fn unstable_writes_a_killed_gateway_lost_are_resent() {
    let mut c = Cluster::start(3, 2);
    let s3 = client(&c, 0);
    let (mut n, dir) = bucket_over_nfs(&c, "uploads").await;
    let f = n.create(&dir, "video.mp4").await.unwrap();
    // 3 MiB in 64 KiB WRITEs: below a blob, so all of it stays buffered.
    let body = data(3 << 20, 4);
    let mut verfs = std::collections::HashSet::new();
    for (i, piece) in body.chunks(64 << 10).enumerate() {
        let ok = n.write(&f, (i << 16) as u64, piece).await.unwrap();
        assert_eq!(ok.committed, stable_how::UNSTABLE);
        verfs.insert(ok.verf.0);
    }
    assert_eq!(verfs.len(), 1, "one verifier while the gateway lives");
    // This gateway sees its own unstable bytes at once.
    assert_eq!(n.getattr(&f).await.unwrap().size, body.len() as u64);
    let (head, _) = n.read(&f, 0, 1 << 20).await.unwrap();
    assert_eq!(head[..], body[..1 << 20]);

    c.gateways[0].kill();
    c.gateways[0].restart();
    let mut n = mount_wait(&c.nfs[0], "/").await;
    let verf = n.commit_verf(&f).await.unwrap();
    assert!(
        !verfs.contains(&verf.0),
        "a restarted gateway answers COMMIT with the verifier its lost WRITEs got"
    );
    // The client resends everything since its last good COMMIT.
    let mut resent = std::collections::HashSet::new();
    for (i, piece) in body.chunks(64 << 10).enumerate() {
        resent.insert(n.write(&f, (i << 16) as u64, piece).await.unwrap().verf.0);
    }
    let verf = n.commit_verf(&f).await.unwrap();
    assert_eq!(resent, [verf.0].into(), "the resent bytes are committed");

    // Committed: every gateway and S3 see it.
    let mut other = mount_wait(&c.nfs[1], "/").await;
    assert_eq!(other.read_all(&f).await.unwrap(), body);
    let got = s3
        .get_object()
        .bucket("uploads")
        .key("video.mp4")
        .send()
        .await
        .unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes()[..], body[..]);
    // FILE_SYNC writes are durable on return, and say so.
    let ok = n.write_stable(&f, 0, b"ftyp").await.unwrap();
    assert_eq!(ok.committed, stable_how::FILE_SYNC);
    let (got, _) = other.read(&f, 0, 4).await.unwrap();
    assert_eq!(got, b"ftyp");
}

/// Replies that change a directory carry its attributes after the change,
/// from the one metastore request the change made, so a client need not
/// ask again.
#[tokio::test(flavor = "multi_thread")]
async fn directory_changes_answer_the_directory_after() {
    use nfs3_client::nfs3_types::nfs3::{CREATE3args, Nfs3Result, REMOVE3args, RENAME3args};
    let c = Cluster::start(3, 1);
    let (mut n, dir) = bucket_over_nfs(&c, "site").await;
    let sub = n.mkdir(&dir, "sub").await.unwrap();
    let before = n.getattr(&dir).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let r = n
        .conn
        .create(&CREATE3args {
            where_: dirop(&dir, "index.php"),
            how: createhow3::UNCHECKED(sattr_mode(0o644)),
        })
        .await
        .expect("rpc");
    let Nfs3Result::Ok(ok) = r else {
        panic!("CREATE failed")
    };
    let Nfs3Option::Some(after) = ok.dir_wcc.after else {
        panic!("CREATE answered no directory attributes")
    };
    assert_eq!(after.fileid, before.fileid);
    let ns = |t: &nfs3_client::nfs3_types::nfs3::nfstime3| {
        u64::from(t.seconds) * 1_000_000_000 + u64::from(t.nseconds)
    };
    assert!(
        ns(&after.mtime) > ns(&before.mtime),
        "the directory after the create"
    );

    let r = n
        .conn
        .rename(&RENAME3args {
            from: dirop(&dir, "index.php"),
            to: dirop(&sub, "index.php"),
        })
        .await
        .expect("rpc");
    let Nfs3Result::Ok(ok) = r else {
        panic!("RENAME failed")
    };
    let (Nfs3Option::Some(from), Nfs3Option::Some(to)) = (ok.fromdir_wcc.after, ok.todir_wcc.after)
    else {
        panic!("RENAME answered no directory attributes")
    };
    assert_eq!(
        (from.fileid, to.fileid),
        (before.fileid, n.getattr(&sub).await.unwrap().fileid)
    );

    let r = n
        .conn
        .remove(&REMOVE3args {
            object: dirop(&sub, "index.php"),
        })
        .await
        .expect("rpc");
    let Nfs3Result::Ok(ok) = r else {
        panic!("REMOVE failed")
    };
    assert!(
        matches!(ok.dir_wcc.after, Nfs3Option::Some(_)),
        "REMOVE answered no directory attributes"
    );

    let r = n.readdirplus(&sub, 0, Default::default(), 8192).await;
    let Nfs3Result::Ok(ok) = r else {
        panic!("READDIRPLUS failed")
    };
    assert!(matches!(ok.dir_attributes, Nfs3Option::Some(_)));
    assert!(ok.reply.entries.0.is_empty() && ok.reply.eof);
    // A listing of a file is refused as such.
    let f = n.create(&dir, "f").await.unwrap();
    let r = n.readdirplus(&f, 0, Default::default(), 8192).await;
    assert!(matches!(r, Nfs3Result::Err((nfsstat3::NFS3ERR_NOTDIR, _))));
}

/// Eight connections writing a file in 128 KiB stripes (as a kernel
/// client's parallel WRITEs arrive) fill the gateway's bound with runs cut
/// by the gaps of WRITEs still in flight, and flushes run while later
/// WRITEs land: the file must read back exactly as written, and the
/// gateway must not make a metadata request per WRITE.
#[tokio::test(flavor = "multi_thread")]
async fn striped_writes_read_back_whole() {
    let c = Cluster::start(3, 1);
    let (mut n, dir) = bucket_over_nfs(&c, "stripes").await;
    let fh = n.create(&dir, "big.bin").await.unwrap();
    const LEN: usize = 32 << 20;
    const PIECE: usize = 128 << 10;
    let body = bytes::Bytes::from(data(LEN, 11));
    let requests = || meta_requests(&c, "troika_meta_requests_total");
    let before = requests();
    let mut writers = Vec::new();
    for k in 0..8 {
        let (addr, body, fh) = (c.nfs[0].clone(), body.clone(), fh.clone());
        writers.push(tokio::spawn(async move {
            let mut n = mount_wait(&addr, "/").await;
            for off in (k * PIECE..LEN).step_by(8 * PIECE) {
                n.write(&fh, off as u64, &body[off..off + PIECE])
                    .await
                    .unwrap();
            }
            n.commit(&fh).await.unwrap();
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let spent = requests() - before;
    // About 8 blobs' worth of commands, a few short runs and lookups, and
    // what the cluster does meanwhile; one request per WRITE would be 256.
    assert!(spent < 64, "{spent} metadata requests for 256 WRITEs");
    let mut got = Vec::with_capacity(LEN);
    while got.len() < LEN {
        let (part, _) = n.read(&fh, got.len() as u64, 1 << 20).await.unwrap();
        assert!(!part.is_empty());
        got.extend_from_slice(&part);
    }
    assert!(got == body[..], "the file reads back as written");
}
