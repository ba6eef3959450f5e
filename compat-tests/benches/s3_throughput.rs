//! S3 throughput of `troika server` against the disk it runs on, measured
//! in one run: `cargo bench -p compat-tests --bench s3_throughput`.
//!
//! Baseline: fsynced sequential writes (4 MiB, then fdatasync) and reads of
//! a file in the same file system. Troika writes every byte three times,
//! each fsynced, so the ceiling for PUT is a third of the baseline.
//! Sizes: TROIKA_BENCH_MIB (default 1024) per object, for one client and
//! for each of 8 concurrent clients. Then small objects: PUT, GET and HEAD
//! of 4 KiB objects from 32 concurrent clients (TROIKA_BENCH_SMALL objects,
//! default 4000). Then NFS on the same server: a file of the same size
//! written and read in 1 MiB WRITEs/READs over 8 connections (a kernel
//! client keeps as many in flight), and creates of 4 KiB files (CREATE,
//! WRITE, COMMIT) from 32 connections.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use common::*;

/// VmHWM: the most resident memory the process has had.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

fn main() {
    let mib: usize = std::env::var("TROIKA_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let bytes = mib << 20;
    let dir = tempfile::tempdir().unwrap();
    let (disk_w, disk_w3, disk_r) = disk_baseline(dir.path(), bytes);
    println!(
        "baseline: disk fsynced sequential write {disk_w:.0} MiB/s (/3 = {:.0}), 3 writers at once {disk_w3:.0} MiB/s (/3 = {:.0}), read {disk_r:.0} MiB/s",
        disk_w / 3.0,
        disk_w3 / 3.0
    );

    let data_dir = dir.path().join("data");
    let server = start_server(&data_dir, dir.path());
    let addr = server.addr.clone();
    wait_ready(&addr);
    let info = read_cluster_json(&data_dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s3 = s3(
            &format!("http://{addr}"),
            info["access_key"].as_str().unwrap(),
            info["secret_key"].as_str().unwrap(),
        );
        s3.create_bucket().bucket("bench").send().await.unwrap();
        let body = bytes::Bytes::from(data(bytes, 7));

        let start = Instant::now();
        s3.put_object()
            .bucket("bench")
            .key("one")
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        let put = mib_per_s(bytes, start.elapsed().as_secs_f64());

        let start = Instant::now();
        let got = s3.get_object().bucket("bench").key("one").send().await.unwrap();
        let mut stream = got.body;
        let mut n = 0;
        while let Some(chunk) = stream.try_next().await.unwrap() {
            n += chunk.len();
        }
        assert_eq!(n, bytes);
        let get = mib_per_s(bytes, start.elapsed().as_secs_f64());

        let rss_single = peak_rss_mib(server.pid().unwrap());

        // 8 clients at once, each with its own object of the same size.
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s3 = s3.clone();
            let body = body.clone();
            tasks.push(tokio::spawn(async move {
                s3.put_object()
                    .bucket("bench")
                    .key(format!("par/{i}"))
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let put8 = mib_per_s(bytes * 8, start.elapsed().as_secs_f64());
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s3 = s3.clone();
            tasks.push(tokio::spawn(async move {
                let got = s3
                    .get_object()
                    .bucket("bench")
                    .key(format!("par/{i}"))
                    .send()
                    .await
                    .unwrap();
                let mut stream = got.body;
                let mut n = 0;
                while let Some(chunk) = stream.try_next().await.unwrap() {
                    n += chunk.len();
                }
                n
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), bytes);
        }
        let get8 = mib_per_s(bytes * 8, start.elapsed().as_secs_f64());
        let rss_8 = peak_rss_mib(server.pid().unwrap());
        for i in 0..8 {
            s3.delete_object().bucket("bench").key(format!("par/{i}")).send().await.unwrap();
        }

        // Small objects: 32 clients, each its share of the objects.
        let small: usize = std::env::var("TROIKA_BENCH_SMALL")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(4000);
        let four_k = bytes::Bytes::from(data(4096, 9));
        let mut rates = Vec::new();
        for op in ["PUT", "GET", "HEAD"] {
            let start = Instant::now();
            let mut tasks = Vec::new();
            for c in 0..32 {
                let s3 = s3.clone();
                let four_k = four_k.clone();
                tasks.push(tokio::spawn(async move {
                    for i in (c..small).step_by(32) {
                        let key = format!("small/{i:06}");
                        match op {
                            "PUT" => {
                                s3.put_object()
                                    .bucket("bench")
                                    .key(key)
                                    .body(ByteStream::from(four_k.clone()))
                                    .send()
                                    .await
                                    .unwrap();
                            }
                            "GET" => {
                                let got = s3.get_object().bucket("bench").key(key).send().await.unwrap();
                                assert_eq!(got.body.collect().await.unwrap().into_bytes().len(), 4096);
                            }
                            _ => {
                                s3.head_object().bucket("bench").key(key).send().await.unwrap();
                            }
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            rates.push((op, small as f64 / start.elapsed().as_secs_f64()));
        }

        let nfs = nfs_figures(info["nfs_endpoint"].as_str().unwrap(), &body, small).await;

        println!("troika server, {mib} MiB object:");
        println!("  PUT x1  {put:7.0} MiB/s  = {:.0}% of disk/3", 100.0 * put / (disk_w / 3.0));
        println!(
            "  PUT x8  {put8:7.0} MiB/s  = {:.0}% of disk/3, {:.0}% of (3 writers)/3",
            100.0 * put8 / (disk_w / 3.0),
            100.0 * put8 / (disk_w3 / 3.0)
        );
        println!("  GET x1  {get:7.0} MiB/s  = {:.0}% of disk read", 100.0 * get / disk_r);
        println!("  GET x8  {get8:7.0} MiB/s  = {:.0}% of disk read", 100.0 * get8 / disk_r);
        println!(
            "  peak resident memory of the server process (gateway + meta + 3 storage nodes): {rss_single} MiB after one client, {rss_8} MiB after 8"
        );
        println!("4 KiB objects, 32 clients, {small} objects:");
        for (op, rate) in rates {
            println!("  {op:<4} {rate:7.0} ops/s");
        }
        let (w, r, creates) = nfs;
        println!("NFS, {mib} MiB file, 1 MiB WRITE/READ, 8 connections:");
        println!(
            "  WRITE   {w:7.0} MiB/s  = {:.0}% of disk/3, {:.0}% of S3 PUT x8",
            100.0 * w / (disk_w / 3.0),
            100.0 * w / put8
        );
        println!(
            "  READ    {r:7.0} MiB/s  = {:.0}% of disk read, {:.0}% of S3 GET x8",
            100.0 * r / disk_r,
            100.0 * r / get8
        );
        println!("  creates of 4 KiB files, 32 connections: {creates:.0}/s");
    });
}

/// NFS write and read MiB/s of `body` as one file, and creates/s of 4 KiB
/// files, against the export at `addr`.
async fn nfs_figures(addr: &str, body: &bytes::Bytes, small: usize) -> (f64, f64, f64) {
    const PIECE: usize = 1 << 20;
    const CONNS: usize = 8;
    let mut first = nfs::mount_wait(addr, "/").await;
    let root = first.root();
    let dir = first.mkdir(&root, "nfsbench").await.unwrap();
    let file = first.create(&dir, "big").await.unwrap();
    let pieces = body.len().div_ceil(PIECE);

    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNS {
        let (addr, body, file) = (addr.to_string(), body.clone(), file.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = nfs::mount_wait(&addr, "/").await;
            for i in (c..pieces).step_by(CONNS) {
                let end = ((i + 1) * PIECE).min(body.len());
                n.write(&file, (i * PIECE) as u64, &body[i * PIECE..end])
                    .await
                    .unwrap();
            }
            n.commit(&file).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let write = mib_per_s(body.len(), start.elapsed().as_secs_f64());

    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNS {
        let (addr, file) = (addr.to_string(), file.clone());
        let len = body.len();
        tasks.push(tokio::spawn(async move {
            let mut n = nfs::mount_wait(&addr, "/").await;
            let mut got = 0;
            for i in (c..pieces).step_by(CONNS) {
                let (data, _) = n
                    .read(&file, (i * PIECE) as u64, PIECE as u32)
                    .await
                    .unwrap();
                assert_eq!(data.len(), PIECE.min(len - i * PIECE));
                got += data.len();
            }
            got
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, body.len());
    let read = mib_per_s(body.len(), start.elapsed().as_secs_f64());

    let four_k = data(4096, 11);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..32 {
        let (addr, dir, four_k) = (addr.to_string(), dir.clone(), four_k.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = nfs::mount_wait(&addr, "/").await;
            for i in (c..small).step_by(32) {
                let f = n.create(&dir, &format!("small-{i:06}")).await.unwrap();
                n.write(&f, 0, &four_k).await.unwrap();
                n.commit(&f).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let creates = small as f64 / start.elapsed().as_secs_f64();
    (write, read, creates)
}
