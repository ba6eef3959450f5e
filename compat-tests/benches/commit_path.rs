//! What one metadata commit costs on a 3-node group of real processes:
//! `cargo bench -p compat-tests --bench commit_path`.
//!
//! Creates of empty objects over S3 (one command each, no blob) by 1 and by
//! 32 clients, then a HEAD of each key by 1 client. Printed per meta node:
//! Raft log fsyncs per create (its `/metrics`), and the disk bytes written
//! per create by the three together (`/proc/diskstats`: the machine's
//! other writes count too, so run it on a quiet machine); and the 1-client
//! create latency p50/p99 beside the HEAD's in the same run: the commit's
//! share is their difference.
//! Baselines in the same run: one fsync of a small write on the same disk,
//! and, when `etcd` is installed (Debian's `etcd-server`), three etcd
//! members on loopback: a put and a linearizable range of one key by one
//! client, sent to the leader, whose difference is etcd's commit share.
//! Size: TROIKA_BENCH_CREATES (default 2000 per round).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::*;

/// Bytes written to the disk that holds `path`, from /proc/diskstats: what
/// reached the device, whoever wrote it. (A process's own `write_bytes` in
/// /proc/PID/io counts a whole file's range at each `fdatasync` of a file
/// overwritten in place, as the Raft log is: not what reached the disk.)
fn disk_written(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).map(|m| m.dev()).unwrap_or(0);
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let stats = std::fs::read_to_string("/proc/diskstats").unwrap_or_default();
    stats
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 9 && f[0] == major.to_string() && f[1] == minor.to_string())
        .and_then(|f| f[9].parse::<u64>().ok())
        .map_or(0, |sectors| sectors * 512)
}

struct Sample {
    disk: u64,
    syncs: Vec<u64>,
}

fn sample(c: &Cluster) -> Sample {
    Sample {
        disk: disk_written(c.dir.path()),
        syncs: c
            .metas
            .iter()
            .map(|m| metric_sum(&m.addr, "troika_meta_log_syncs_total"))
            .collect(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// `n` creates by `clients` clients; the latency of each.
async fn creates(s3: &aws_sdk_s3::Client, round: &str, n: usize, clients: usize) -> Vec<Duration> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (s3, next, round) = (s3.clone(), next.clone(), round.to_string());
        tasks.spawn(async move {
            let mut times = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return times;
                }
                let t = Instant::now();
                s3.put_object()
                    .bucket("commit")
                    .key(format!("{round}/{i:07}"))
                    .body(ByteStream::from_static(b""))
                    .send()
                    .await
                    .unwrap();
                times.push(t.elapsed());
            }
        });
    }
    let mut all = Vec::new();
    while let Some(t) = tasks.join_next().await {
        all.extend(t.unwrap());
    }
    all.sort();
    all
}

async fn heads(s3: &aws_sdk_s3::Client, round: &str, n: usize) -> Vec<Duration> {
    let mut all = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        s3.head_object()
            .bucket("commit")
            .key(format!("{round}/{i:07}"))
            .send()
            .await
            .unwrap();
        all.push(t.elapsed());
    }
    all.sort();
    all
}

/// Three etcd members on loopback, stopped on drop.
struct Etcd {
    members: Vec<std::process::Child>,
    clients: Vec<String>,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for m in &mut self.members {
            let _ = m.kill();
            let _ = m.wait();
        }
    }
}

fn start_etcd(dir: &std::path::Path) -> Option<Etcd> {
    let host = "127.0.0.1";
    let peers: Vec<u16> = (0..3).map(|_| free_port(host)).collect();
    let clients: Vec<u16> = (0..3).map(|_| free_port(host)).collect();
    let cluster = (0..3)
        .map(|i| format!("m{i}=http://{host}:{}", peers[i]))
        .collect::<Vec<_>>()
        .join(",");
    let mut etcd = Etcd {
        members: Vec::new(),
        clients: clients.iter().map(|p| format!("{host}:{p}")).collect(),
    };
    for i in 0..3 {
        let child = std::process::Command::new("etcd")
            .args(["--name", &format!("m{i}")])
            .arg("--data-dir")
            .arg(dir.join(format!("etcd{i}")))
            .args([
                "--listen-client-urls",
                &format!("http://{host}:{}", clients[i]),
            ])
            .args([
                "--advertise-client-urls",
                &format!("http://{host}:{}", clients[i]),
            ])
            .args(["--listen-peer-urls", &format!("http://{host}:{}", peers[i])])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://{host}:{}", peers[i]),
            ])
            .args([
                "--initial-cluster",
                &cluster,
                "--initial-cluster-state",
                "new",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        etcd.members.push(child);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !etcd
        .clients
        .iter()
        .all(|c| http_get(c, "/health").is_some_and(|(s, b)| s == 200 && b.contains("true")))
    {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(etcd)
}

/// etcd's put and linearizable range p50 (and p99) over its JSON gateway,
/// one client, `n` keys, sent to the leader.
async fn etcd_latencies(etcd: &Etcd, n: usize) -> Option<[Duration; 4]> {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let http = reqwest::Client::new();
    let mut leader = None;
    for c in &etcd.clients {
        let st: serde_json::Value = http
            .post(format!("http://{c}/v3/maintenance/status"))
            .body("{}")
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        if st["leader"] == st["header"]["member_id"] {
            leader = Some(c.clone());
        }
    }
    let leader = leader?;
    let mut times = [Vec::new(), Vec::new()];
    for (op, path) in [(0, "put"), (1, "range")] {
        for i in 0..n {
            let body = serde_json::json!({"key": b64(&format!("k{i:07}")), "value": b64("")});
            let t = Instant::now();
            let r = http
                .post(format!("http://{leader}/v3/kv/{path}"))
                .body(body.to_string())
                .send()
                .await
                .ok()?;
            r.bytes().await.ok()?;
            times[op].push(t.elapsed());
        }
        times[op].sort();
    }
    Some([
        percentile(&times[0], 0.5),
        percentile(&times[0], 0.99),
        percentile(&times[1], 0.5),
        percentile(&times[1], 0.99),
    ])
}

fn main() {
    let n = env_or("TROIKA_BENCH_CREATES", 2000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = Cluster::start_with(3, 3, 1, 10_000);
    let leader = c.wait_leader();
    println!(
        "baseline: one fsync of a small write {:?} on this disk",
        small_fsync_time(c.dir.path())
    );
    let s3 = client(&c, 0);
    rt.block_on(async {
        s3.create_bucket().bucket("commit").send().await.unwrap();
    });
    // Warm up connections and caches.
    rt.block_on(creates(&s3, "warm", 200, 8));
    println!("{n} creates of empty objects per round, 3 meta nodes (leader: meta{leader})");
    for clients in [1, 32] {
        let round = format!("c{clients}");
        let before = sample(&c);
        let start = Instant::now();
        let times = rt.block_on(creates(&s3, &round, n, clients));
        let secs = start.elapsed().as_secs_f64();
        let after = sample(&c);
        println!(
            "{clients:>2} clients: {:.0} creates/s, p50 {:.2} ms, p99 {:.2} ms",
            n as f64 / secs,
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
        );
        let disk = (after.disk - before.disk) as f64 / n as f64;
        println!(
            "    disk bytes written per create, all {} meta nodes together (/proc/diskstats): {disk:.0} ({:.0} per node)",
            c.metas.len(),
            disk / c.metas.len() as f64
        );
        for i in 0..c.metas.len() {
            let role = if i == leader { "leader  " } else { "follower" };
            println!(
                "    meta{i} {role}: {:.3} log fsyncs/create",
                (after.syncs[i] - before.syncs[i]) as f64 / n as f64,
            );
        }
        if clients == 1 {
            let h = rt.block_on(heads(&s3, &round, n));
            let (cp50, hp50) = (percentile(&times, 0.5), percentile(&h, 0.5));
            let share = cp50.saturating_sub(hp50);
            println!(
                "    HEAD of the same keys, 1 client: p50 {:.2} ms, p99 {:.2} ms; create p50 / HEAD p50 = {:.1}; the commit's share {:.2} ms",
                hp50.as_secs_f64() * 1e3,
                percentile(&h, 0.99).as_secs_f64() * 1e3,
                cp50.as_secs_f64() / hp50.as_secs_f64(),
                share.as_secs_f64() * 1e3,
            );
            let etcd = start_etcd(c.dir.path());
            match etcd.as_ref() {
                None => println!(
                    "    etcd: not installed or did not start (apt-get install etcd-server)"
                ),
                Some(e) => match rt.block_on(etcd_latencies(e, n)) {
                    Some([put50, put99, get50, get99]) => {
                        let theirs = put50.saturating_sub(get50);
                        println!(
                            "    etcd, 3 members, 1 client: put p50 {:.2} ms (p99 {:.2}), range p50 {:.2} ms (p99 {:.2}); its commit's share {:.2} ms; Troika's / etcd's = {:.1}",
                            put50.as_secs_f64() * 1e3,
                            put99.as_secs_f64() * 1e3,
                            get50.as_secs_f64() * 1e3,
                            get99.as_secs_f64() * 1e3,
                            theirs.as_secs_f64() * 1e3,
                            share.as_secs_f64() / theirs.as_secs_f64().max(1e-6),
                        );
                    }
                    None => println!("    etcd: measurement failed"),
                },
            }
            drop(etcd);
        }
    }
}
