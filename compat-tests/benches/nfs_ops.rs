//! NFS workloads of a web host against `troika server`, with the server's
//! CPU and the metadata requests each NFS call costs:
//! `cargo bench -p compat-tests --bench nfs_ops`.
//!
//! The client is `nfs3_client` speaking the calls a kernel client makes
//! for each workload (a `tar x` is CREATE, WRITE and COMMIT per file; an
//! `ls -lR` is READDIRPLUS per directory; a `stat` storm is LOOKUP, GETATTR
//! and ACCESS per file). Sizes: TROIKA_BENCH_FILES (default 2000) 4 KiB
//! files, spread over directories of 100; TROIKA_BENCH_MIB (default 256)
//! for the sequential file, written in 1 MiB and 128 KiB WRITEs and (at
//! most 16 MiB of it) in 4 KiB WRITEs, 8 connections each. Baseline: an S3
//! PUT of the same file through the same server, and the server's CPU is
//! read from /proc. TROIKA_BENCH_METAS=3 runs it all on a cluster of real
//! processes instead (3 meta nodes, 3 storage nodes, 1 gateway); "server
//! CPU" is then all of theirs.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::nfs::{self, Nfs};
use common::*;
use nfs3_client::nfs3_types::nfs3::*;

/// Commands plus queries the meta nodes have served.
fn meta_requests(metas: &[String]) -> u64 {
    metas
        .iter()
        .map(|m| metric_sum(m, "troika_meta_requests_total"))
        .sum()
}

/// The processes measured and their meta nodes.
struct Sut {
    pids: Vec<u32>,
    metas: Vec<String>,
}

impl Sut {
    fn cpu(&self) -> f64 {
        self.pids.iter().map(|p| cpu_secs(*p)).sum()
    }
}

struct Probe<'a> {
    sut: &'a Sut,
    start: Instant,
    cpu: f64,
    reqs: u64,
}

impl<'a> Probe<'a> {
    fn new(sut: &'a Sut) -> Self {
        Self {
            sut,
            start: Instant::now(),
            cpu: sut.cpu(),
            reqs: meta_requests(&sut.metas),
        }
    }

    /// Prints a workload's line: `calls` NFS calls over `units` items.
    fn report(self, what: &str, units: usize, unit: &str, calls: usize) {
        let secs = self.start.elapsed().as_secs_f64();
        let cpu = self.sut.cpu() - self.cpu;
        let reqs = meta_requests(&self.sut.metas).saturating_sub(self.reqs);
        println!(
            "{what:<44} {secs:>7.2} s  {:>8.0} {unit}/s  server CPU {:>7.0} µs/{unit}, {:>5.0} µs/call  meta requests {:.2}/call",
            units as f64 / secs,
            cpu * 1e6 / units as f64,
            cpu * 1e6 / calls as f64,
            reqs as f64 / calls as f64,
        );
    }
}

async fn access(n: &mut Nfs, fh: &Fh) {
    let r = n
        .conn
        .access(&ACCESS3args {
            object: fh.clone(),
            access: ACCESS3_READ | ACCESS3_LOOKUP,
        })
        .await
        .expect("rpc");
    assert!(matches!(r, Nfs3Result::Ok(_)), "ACCESS failed");
}

type Fh = nfs::Fh;

/// Runs `work(connection, c)` for `c` in 0..8, each on its own NFS
/// connection (mounted inside the measured time, as a client would), and
/// waits for all eight.
async fn on_eight_connections<F, Fut>(addr: &str, work: F)
where
    F: Fn(Nfs, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let mut tasks = Vec::new();
    for c in 0..8 {
        let (addr, work) = (addr.to_string(), work.clone());
        tasks.push(tokio::spawn(async move {
            let n = nfs::mount_wait(&addr, "/").await;
            work(n, c).await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn main() {
    let files: usize = env_or("TROIKA_BENCH_FILES", 2000);
    let mib: usize = env_or("TROIKA_BENCH_MIB", 256);
    let metas: usize = env_or("TROIKA_BENCH_METAS", 0);
    let dir = tempfile::tempdir().unwrap();
    let mut _server = None;
    let mut _cluster = None;
    let (sut, nfs_addr, s3_url, access_key, secret_key) = if metas == 0 {
        let data_dir = dir.path().join("data");
        let server = start_server(&data_dir, dir.path());
        wait_ready(&server.addr);
        let info = read_cluster_json(&data_dir);
        let meta = info["meta_endpoint"].as_str().unwrap();
        let sut = Sut {
            pids: vec![server.pid().unwrap()],
            metas: vec![meta.trim_start_matches("http://").to_string()],
        };
        let found = (
            sut,
            info["nfs_endpoint"].as_str().unwrap().to_string(),
            format!("http://{}", server.addr),
            info["access_key"].as_str().unwrap().to_string(),
            info["secret_key"].as_str().unwrap().to_string(),
        );
        _server = Some(server);
        found
    } else {
        let c = Cluster::start_with(metas, 3, 1, 10_000);
        let sut = Sut {
            pids: c
                .metas
                .iter()
                .chain(&c.chunks)
                .chain(&c.gateways)
                .filter_map(|p| p.pid())
                .collect(),
            metas: c.metas.iter().map(|m| m.addr.clone()).collect(),
        };
        let found = (
            sut,
            c.nfs[0].clone(),
            c.gateway_url(0),
            c.access_key.clone(),
            c.secret_key.clone(),
        );
        _cluster = Some(c);
        found
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s3 = s3(&s3_url, &access_key, &secret_key);
        s3.create_bucket().bucket("bench").send().await.unwrap();
        println!(
            "{}",
            if metas == 0 {
                "troika server (all in one process)".to_string()
            } else {
                format!("{metas} meta nodes, 3 storage nodes, 1 gateway (separate processes)")
            }
        );
        let mut n = nfs::mount_wait(&nfs_addr, "/").await;
        let bucket = n.path("bench").await.unwrap();
        println!("{files} files of 4 KiB in directories of 100; {mib} MiB sequential file");

        // Small files, one writer: CREATE, WRITE, COMMIT each.
        let one = n.mkdir(&bucket, "one").await.unwrap();
        let p = Probe::new(&sut);
        let mut dirs = Vec::new();
        for i in 0..files {
            if i % 100 == 0 {
                dirs.push(n.mkdir(&one, &format!("d{}", i / 100)).await.unwrap());
            }
            let fh = n
                .create(dirs.last().unwrap(), &format!("f{i}"))
                .await
                .unwrap();
            n.write(&fh, 0, &small_file(i)).await.unwrap();
            n.commit(&fh).await.unwrap();
        }
        p.report(
            "4 KiB files, 1 writer",
            files,
            "file",
            files * 3 + dirs.len(),
        );

        // Eight writers, each its own connection and directories.
        let eight = n.mkdir(&bucket, "eight").await.unwrap();
        let p = Probe::new(&sut);
        on_eight_connections(&nfs_addr, move |mut n, w| {
            let eight = eight.clone();
            async move {
                let mut dir = None;
                for (k, i) in (w..files).step_by(8).enumerate() {
                    if k % 100 == 0 {
                        dir = Some(n.mkdir(&eight, &format!("w{w}d{}", k / 100)).await.unwrap());
                    }
                    let fh = n
                        .create(dir.as_ref().unwrap(), &format!("f{i}"))
                        .await
                        .unwrap();
                    n.write(&fh, 0, &small_file(files + i)).await.unwrap();
                    n.commit(&fh).await.unwrap();
                }
            }
        })
        .await;
        p.report("4 KiB files, 8 writers", files, "file", files * 3);

        // ls -lR: READDIRPLUS of every directory (attributes come with it).
        let p = Probe::new(&sut);
        let mut entries = 0;
        let mut calls = 0;
        let mut stack = vec![bucket.clone()];
        while let Some(d) = stack.pop() {
            let list = n.readdir(&d, 64 * 1024).await.unwrap();
            calls += 1 + list.len() * 160 / (64 * 1024);
            for (name, _, a) in list {
                entries += 1;
                if a.type_ == ftype3::NF3DIR {
                    stack.push(n.lookup(&d, &name).await.unwrap());
                    calls += 1;
                }
            }
        }
        p.report("ls -lR (READDIRPLUS)", entries, "entry", calls);

        // stat storm: LOOKUP, GETATTR, ACCESS of every file.
        let p = Probe::new(&sut);
        for (i, d) in dirs.iter().enumerate() {
            for j in 0..100.min(files - i * 100) {
                let fh = n.lookup(d, &format!("f{}", i * 100 + j)).await.unwrap();
                n.getattr(&fh).await.unwrap();
                access(&mut n, &fh).await;
            }
        }
        p.report("stat (LOOKUP, GETATTR, ACCESS)", files, "file", files * 3);

        // rm -rf of the one-writer tree.
        let p = Probe::new(&sut);
        for (i, d) in dirs.iter().enumerate() {
            for j in 0..100.min(files - i * 100) {
                n.remove(d, &format!("f{}", i * 100 + j)).await.unwrap();
            }
            n.rmdir(&one, &format!("d{i}")).await.unwrap();
        }
        p.report("rm -rf", files, "file", files + dirs.len());

        // Sequential writes, 8 connections, stripes of `piece` bytes.
        let body = bytes::Bytes::from(data(mib << 20, 5));
        let p = Probe::new(&sut);
        s3.put_object()
            .bucket("bench")
            .key("s3.bin")
            .body(aws_sdk_s3::primitives::ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        p.report(&format!("S3 PUT {mib} MiB (baseline)"), mib, "MiB", 1);
        for piece in [1 << 20, 128 << 10, 4 << 10] {
            let len = if piece == 4096 {
                (mib << 20).min(16 << 20)
            } else {
                mib << 20
            };
            let name = format!("seq{piece}");
            let fh = n.create(&bucket, &name).await.unwrap();
            let p = Probe::new(&sut);
            let stripes = body.clone();
            on_eight_connections(&nfs_addr, move |mut n, c| {
                let (body, fh) = (stripes.clone(), fh.clone());
                async move {
                    for off in (c * piece..len).step_by(8 * piece) {
                        let end = (off + piece).min(len);
                        n.write(&fh, off as u64, &body[off..end]).await.unwrap();
                    }
                    n.commit(&fh).await.unwrap();
                }
            })
            .await;
            p.report(
                &format!("write {} MiB in {} KiB WRITEs", len >> 20, piece >> 10),
                len >> 20,
                "MiB",
                len / piece + 8,
            );
        }

        // Read the 1 MiB-written file back, 8 connections.
        let fh = n.lookup(&bucket, &format!("seq{}", 1 << 20)).await.unwrap();
        let p = Probe::new(&sut);
        let len = mib << 20;
        on_eight_connections(&nfs_addr, move |mut n, c| {
            let (body, fh) = (body.clone(), fh.clone());
            async move {
                for off in (c << 20..len).step_by(8 << 20) {
                    let (got, _) = n.read(&fh, off as u64, 1 << 20).await.unwrap();
                    assert_eq!(got[..], body[off..(off + (1 << 20)).min(len)]);
                }
            }
        })
        .await;
        p.report(
            &format!("read {mib} MiB in 1 MiB READs"),
            mib,
            "MiB",
            len >> 20,
        );
    });
}
