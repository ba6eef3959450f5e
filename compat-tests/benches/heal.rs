//! Repair after a node loss, against the disk it runs on, in one run:
//! `cargo bench -p compat-tests --bench heal`.
//!
//! Four storage nodes (`--node-down-secs 5`, default repair bandwidth of
//! 100 MiB/s per node) hold TROIKA_BENCH_HEAL_MIB (default 2048) of objects.
//! One node is killed; the figure is the time until every blob is back at
//! 3 copies, from the kill and from the down timeout, and the bytes copied
//! per second against the disk's fsynced write bandwidth (3 writers at
//! once, as three nodes on one disk). Client PUT throughput (4 clients, 64
//! MiB objects) is measured before the loss and while repair runs.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::*;

const OBJECT: usize = 64 << 20;
const DOWN_SECS: u64 = 5;

/// PUTs 64 MiB objects from 4 clients until `stop` says so (checked
/// between objects) or `count` objects are written; returns MiB/s.
async fn put_load(
    s3: &aws_sdk_s3::Client,
    prefix: &str,
    count: usize,
    stop: impl Fn() -> bool + Send + Sync + Clone + 'static,
) -> f64 {
    let start = Instant::now();
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (s3, prefix, stop, written) = (
            s3.clone(),
            prefix.to_string(),
            stop.clone(),
            written.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < count && !stop() {
                let body = data(OBJECT, (i as u64) << 8 | 3);
                s3.put_object()
                    .bucket("heal")
                    .key(format!("{prefix}/{i}"))
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .unwrap();
                written.fetch_add(OBJECT, std::sync::atomic::Ordering::Relaxed);
                i += 4;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    mib_per_s(
        written.load(std::sync::atomic::Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
    )
}

fn main() {
    let mib: usize = std::env::var("TROIKA_BENCH_HEAL_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    let dir = tempfile::tempdir().unwrap();
    let (_, disk_w3, _) = disk_baseline(dir.path(), 1 << 30);
    println!("baseline: disk fsynced writes, 3 writers at once: {disk_w3:.0} MiB/s");
    drop(dir);

    let down = DOWN_SECS.to_string();
    let mut c = Cluster::start_nodes(4, &["--node-down-secs", &down], &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s3 = client(&c, 0);
        s3.create_bucket().bucket("heal").send().await.unwrap();
        let objects = (mib << 20) / OBJECT;
        let before = put_load(&s3, "base", objects, || false).await;
        println!("client PUT, no repair: {before:.0} MiB/s ({objects} objects of 64 MiB)");
        let on_lost = c.chunk_bytes(0);
        let live = [1, 2, 3];
        let ids: Vec<String> = (0..objects)
            .flat_map(|i| blob_ids(&data(OBJECT, (i as u64) << 8 | 3)))
            .collect();
        let short = |c: &Cluster| {
            ids.iter()
                .filter(|id| {
                    live.iter()
                        .filter(|n| c.chunk_dir(**n).join("blobs").join(&id[..2]).join(id).exists())
                        .count()
                        < 3
                })
                .count()
        };

        c.chunks[0].kill();
        let killed = Instant::now();
        // Client load while the node is missed and repaired.
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load = tokio::spawn({
            let (s3, done) = (s3.clone(), done.clone());
            async move {
                tokio::time::sleep(Duration::from_secs(DOWN_SECS + 2)).await;
                put_load(&s3, "during", 1 << 20, move || {
                    done.load(std::sync::atomic::Ordering::Relaxed)
                })
                .await
            }
        });
        while short(&c) > 0 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let total = killed.elapsed().as_secs_f64();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let during = load.await.unwrap();
        let repair = (total - DOWN_SECS as f64).max(0.001);
        let rate = mib_per_s(on_lost as usize, repair);
        println!(
            "repair: {} MiB of copies from the lost node back in {total:.1} s after the kill, {repair:.1} s after the {DOWN_SECS} s down timeout: {rate:.0} MiB/s = {:.0}% of the 3-writer disk bandwidth",
            on_lost >> 20,
            rate / disk_w3 * 100.0
        );
        println!(
            "client PUT during repair: {during:.0} MiB/s = {:.0}% of without",
            during / before * 100.0
        );
    });
}
