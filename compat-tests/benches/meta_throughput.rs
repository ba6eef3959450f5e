//! Metadata throughput and failover of a real cluster:
//! `cargo bench -p compat-tests --bench meta_throughput`.
//!
//! Creates of empty objects (one metadata command each, no blob) by 64
//! concurrent S3 clients through one gateway, on a 1-node and a 3-node
//! metadata group; then the time from `kill -9` of the 3-node group's
//! leader to the first write acknowledged after it. Baseline in the same
//! run: fsyncs per second of one small file on the same disk, the unit a
//! commit costs.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::*;

const CLIENTS: usize = 64;

async fn creates_per_second(c: &Cluster, secs: u64) -> f64 {
    let s3 = client(c, 0);
    s3.create_bucket()
        .bucket("meta-bench")
        .send()
        .await
        .unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (s3, done, stop) = (s3.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    s3.put_object()
                        .bucket("meta-bench")
                        .key(format!("c{t}/{i}"))
                        .body(ByteStream::from_static(b""))
                        .send()
                        .await
                        .unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

async fn failover(c: &mut Cluster) -> Duration {
    let s3 = client(c, 0);
    let leader = c.wait_leader();
    c.metas[leader].kill();
    let killed = Instant::now();
    let mut i = 0;
    loop {
        let r = s3
            .put_object()
            .bucket("meta-bench")
            .key(format!("after/{i}"))
            .body(ByteStream::from_static(b""))
            .send()
            .await;
        if r.is_ok() {
            return killed.elapsed();
        }
        i += 1;
    }
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let probe = tempfile::tempdir().unwrap();
    let fsync = small_fsync_time(probe.path());
    println!(
        "baseline: {:.0} fsyncs/s on this disk",
        1.0 / fsync.as_secs_f64()
    );
    let one = Cluster::start_with(1, 3, 1, 10_000);
    let r1 = rt.block_on(creates_per_second(&one, 10));
    drop(one);
    let mut three = Cluster::start_with(3, 3, 1, 10_000);
    let r3 = rt.block_on(creates_per_second(&three, 10));
    println!("creates of empty objects, {CLIENTS} clients through one gateway:");
    println!("  1 meta node:  {r1:7.0}/s");
    println!(
        "  3 meta nodes: {r3:7.0}/s ({:.0}% of one node)",
        100.0 * r3 / r1
    );
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = rt.block_on(failover(&mut three));
        times.push(t);
        // Bring the killed node back before the next round.
        for m in three.metas.iter_mut() {
            if !m.is_running() {
                m.restart();
            }
        }
        three.wait_leader();
        std::thread::sleep(Duration::from_secs(2));
    }
    println!("leader kill -9 to first acknowledged write: {times:?}");
}
