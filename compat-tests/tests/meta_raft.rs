//! The replicated metastore with real processes: 3 (and 5) meta nodes,
//! leader failover under write load, whole-group restarts, a lagging
//! follower catching up by snapshot, membership changes, and a minority
//! that must refuse to serve.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::primitives::ByteStream;
use common::*;

fn client_without_retries(c: &Cluster, gateway: usize) -> aws_sdk_s3::Client {
    let base = client(c, gateway);
    let conf = base
        .config()
        .to_builder()
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Writes objects through `gateway` until `stop`, recording every key whose
/// PUT was acknowledged (and when).
async fn write_until(
    s3: aws_sdk_s3::Client,
    prefix: String,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(String, Instant)>>>,
) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("{prefix}/{i:06}");
        let r = s3
            .put_object()
            .bucket("hav")
            .key(&key)
            .body(ByteStream::from(key.clone().into_bytes()))
            .send()
            .await;
        if r.is_ok() {
            acked.lock().unwrap().push((key, Instant::now()));
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        i += 1;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn leader_kill_9_under_load_loses_no_acknowledged_write() {
    let mut c = Cluster::start_with(3, 3, 2, 10_000);
    client(&c, 0)
        .create_bucket()
        .bucket("hav")
        .send()
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..2)
        .map(|g| {
            tokio::spawn(write_until(
                client(&c, g),
                format!("g{g}"),
                stop.clone(),
                acked.clone(),
            ))
        })
        .collect();
    // Kill once the writers are well under way (on a loaded machine that
    // takes longer).
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() <= 20 {
        assert!(Instant::now() < deadline, "the writers never got going");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let leader = c.wait_leader();
    c.metas[leader].kill();
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let before = acked.iter().filter(|(_, t)| *t < killed_at).count();
    let first_after = acked
        .iter()
        .map(|(_, t)| *t)
        .filter(|t| *t > killed_at)
        .min();
    let first_after = first_after.expect("writes resumed after the leader was killed");
    eprintln!(
        "failover: {before} writes before the kill, first acknowledged write {:?} after it, {} in all",
        first_after - killed_at,
        acked.len()
    );
    assert!(before > 10, "the writers were writing before the kill");
    // Every acknowledged write is there, through either gateway.
    for g in 0..2 {
        let s3 = client(&c, g);
        for (key, _) in &acked {
            assert_eq!(
                get_bytes(&s3, "hav", key).await,
                key.as_bytes(),
                "{key} via gateway {g}"
            );
        }
    }
    // The old leader rejoins as a follower and catches up.
    c.metas[leader].restart();
    c.wait_live_nodes(3);
}

#[tokio::test(flavor = "multi_thread")]
async fn whole_group_restarts_lose_nothing() {
    let mut c = Cluster::start_with(3, 3, 1, 10_000);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("hav").send().await.unwrap();
    let mut keys = Vec::new();
    let mut put = |n: usize| {
        let s3 = s3.clone();
        let start = keys.len();
        keys.extend((start..start + n).map(|i| format!("k{i:04}")));
        let batch = keys[start..].to_vec();
        async move {
            for k in batch {
                s3.put_object()
                    .bucket("hav")
                    .key(&k)
                    .body(ByteStream::from(k.clone().into_bytes()))
                    .send()
                    .await
                    .unwrap();
            }
        }
    };
    put(30).await;
    // All at once.
    for m in c.metas.iter_mut() {
        m.kill();
    }
    for m in c.metas.iter_mut() {
        m.restart();
    }
    c.wait_leader();
    wait_ready(&c.gateways[0].addr);
    put(10).await;
    // One by one, writing in between.
    for i in 0..3 {
        c.metas[i].kill();
        c.metas[i].restart();
        wait_ready(&c.metas[i].addr);
        c.wait_leader();
        put(10).await;
    }
    // Every reopening after kill -9 was a quick repair: no walk of the
    // whole file, whose time grows with the database.
    for m in &c.metas {
        assert!(
            !m.log().contains("needs a full repair"),
            "{} reopened with a full repair:\n{}",
            m.addr,
            m.log()
        );
    }
    let listed = s3.list_objects_v2().bucket("hav").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(keys.len() as i32));
    for k in &keys {
        assert_eq!(get_bytes(&s3, "hav", k).await, k.as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lagging_follower_catches_up_by_snapshot() {
    // Small snapshots, so the leader's log is compacted past the follower.
    let mut c = Cluster::start_with(3, 3, 1, 20);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("hav").send().await.unwrap();
    let leader = c.wait_leader();
    let lagging = (leader + 1) % 3;
    c.metas[lagging].kill();
    // 10,000 commands while it is down: empty objects, 32 at a time.
    let total = 10_000usize;
    let mut tasks = Vec::new();
    for t in 0..32 {
        let s3 = s3.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..total).step_by(32) {
                s3.put_object()
                    .bucket("hav")
                    .key(format!("o{i:05}"))
                    .body(ByteStream::from_static(b""))
                    .send()
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    c.metas[lagging].restart();
    // It catches up: the leader's log below its last snapshot is gone, so
    // only a snapshot can bring it there.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (leader_applied, follower_applied) = loop {
        let status = c.admin(&["status"]);
        let applied: Vec<u64> = status
            .lines()
            .skip(1)
            .take(3)
            .filter_map(|l| l.split_whitespace().last()?.parse().ok())
            .collect();
        let row = |i: usize| {
            status
                .lines()
                .find(|l| l.contains(&c.metas[i].addr))
                .and_then(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        };
        if let (Some(l), Some(f)) = (row(leader), row(lagging)) {
            if f >= l && applied.len() == 3 {
                break (l, f);
            }
        }
        assert!(
            Instant::now() < deadline,
            "follower did not catch up:\n{status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Commands travel in groups, so there are fewer log entries than commands.
    assert!(follower_applied >= leader_applied && leader_applied > 20);
    assert!(
        c.metas[lagging]
            .log()
            .contains("installed snapshot from the leader"),
        "the follower caught up without a snapshot"
    );
    // With the old leader gone, the two others serve everything.
    c.metas[leader].kill();
    c.wait_leader();
    let mut count = 0;
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("hav")
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        count += page.key_count().unwrap_or(0) as usize;
        if page.is_truncated() != Some(true) {
            break;
        }
        token = page.next_continuation_token().map(String::from);
    }
    assert_eq!(count, total);
}

#[tokio::test(flavor = "multi_thread")]
async fn members_are_added_and_the_old_leader_removed_while_serving() {
    let mut c = Cluster::start_with(3, 3, 1, 10_000);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("hav").send().await.unwrap();
    s3.put_object()
        .bucket("hav")
        .key("before")
        .body(ByteStream::from_static(b"1"))
        .send()
        .await
        .unwrap();
    let i4 = c.start_extra_meta(4);
    let i5 = c.start_extra_meta(5);
    let a4 = c.metas[i4].addr.clone();
    let a5 = c.metas[i5].addr.clone();
    c.admin(&["meta", "add", &format!("4={a4}")]);
    c.admin(&["meta", "add", &format!("5={a5}")]);
    let status = c.admin(&["status"]);
    assert!(status.contains(&a4) && status.contains(&a5), "{status}");
    s3.put_object()
        .bucket("hav")
        .key("five")
        .body(ByteStream::from_static(b"5"))
        .send()
        .await
        .unwrap();
    let leader = c.wait_leader();
    let out = c.admin(&["meta", "remove", &(leader + 1).to_string()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let voters: Vec<u64> = serde_json::from_value(v["voters"].clone()).unwrap();
    assert_eq!(voters.len(), 4, "{out}");
    assert!(!voters.contains(&(leader as u64 + 1)), "{out}");
    c.metas[leader].kill();
    let new_leader = c.wait_leader();
    assert_ne!(new_leader, leader);
    s3.put_object()
        .bucket("hav")
        .key("after")
        .body(ByteStream::from_static(b"2"))
        .send()
        .await
        .unwrap();
    for k in ["before", "five", "after"] {
        get_bytes(&s3, "hav", k).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_minority_refuses_to_serve() {
    let mut c = Cluster::start_with(3, 3, 1, 10_000);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("hav").send().await.unwrap();
    s3.put_object()
        .bucket("hav")
        .key("k")
        .body(ByteStream::from_static(b"v"))
        .send()
        .await
        .unwrap();
    c.metas[1].kill();
    c.metas[2].kill();
    let lonely = client_without_retries(&c, 0);
    let started = Instant::now();
    let w = lonely
        .put_object()
        .bucket("hav")
        .key("k2")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(w), "ServiceUnavailable");
    // No stale read either: a read must be confirmed by a majority.
    let r = lonely.get_object().bucket("hav").key("k").send().await;
    assert_eq!(code(r), "ServiceUnavailable");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "refusals come in bounded time"
    );
    c.metas[1].restart();
    c.metas[2].restart();
    c.wait_leader();
    assert_eq!(get_bytes(&s3, "hav", "k").await, b"v");
    s3.put_object()
        .bucket("hav")
        .key("k3")
        .body(ByteStream::from_static(b"y"))
        .send()
        .await
        .unwrap();
}

/// Sends `sig` (`STOP`, `CONT`) to a process.
fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("running kill")
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_leader_catches_a_follower_up_through_200_mb_of_log() {
    use metastore::api::{BlobId, BlobWrite, Command};
    let mut c = Cluster::start_with(3, 3, 1, 10_000);
    let leader = c.wait_leader();
    let behind = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let secret = troika_rpc::ClusterSecret::from_hex(&c.secret_hex).unwrap();
    let meta = metastore::MetaClient::new(
        troika_rpc::RpcClient::new(secret),
        c.metas.iter().map(|m| m.addr.clone()).collect(),
    );
    // One follower hangs while the other two commit ~200 MB of log: large
    // commands (copies of blobs nobody knows, which apply as no change),
    // each about 1 MB as it is stored.
    signal(c.metas[behind].pid().unwrap(), "STOP");
    let started = Instant::now();
    let commands = 200;
    let mut done = 0usize;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..commands {
        let meta = meta.clone();
        tasks.spawn(async move {
            let blobs = (0..9_000u32)
                .map(|j| BlobWrite {
                    id: BlobId::of(format!("{i}/{j}").as_bytes()),
                    size: 1 << 20,
                    nodes: vec![1, 2, 3],
                })
                .collect();
            let cmd = Command::RecordCopies {
                blobs,
                moves: Vec::new(),
                cutoff: 0,
            };
            // Idempotent, so a command that timed out on a loaded machine
            // is simply sent again.
            let until = Instant::now() + Duration::from_secs(60);
            loop {
                match meta.command(&cmd).await {
                    Err(e) if e.is_retryable() && Instant::now() < until => continue,
                    r => return r.map(drop),
                }
            }
        });
        if tasks.len() >= 4 {
            tasks.join_next().await.unwrap().unwrap().unwrap();
            done += 1;
        }
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
        done += 1;
    }
    assert_eq!(done, commands);
    let log_bytes: u64 = std::fs::read_dir(c.dir.path().join(format!("meta{other}/raft-log")))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(log_bytes > 180 << 20, "only {log_bytes} bytes of log");
    // The leader dies, the hung follower wakes: the survivor, which has the
    // whole log, can lead only with its vote, and commits nothing until it
    // has sent it everything.
    eprintln!("200 MB of log written in {:?}", started.elapsed());
    c.metas[leader].kill();
    signal(c.metas[behind].pid().unwrap(), "CONT");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(180);
    loop {
        match meta
            .command(&Command::CreateBucket {
                name: "after".into(),
                owner: None,
                now: 1,
            })
            .await
        {
            // A first try that applied but whose reply was lost makes the
            // retry (a new request) find the bucket.
            Ok(_) | Err(metastore::Error::BucketExists(_)) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "no write accepted 180 s after the leader died: {e}\n{}",
                c.metas[other].log()
            ),
        }
    }
    eprintln!(
        "first write accepted {:?} after the leader died",
        started.elapsed()
    );
    // The follower has the whole log (the write needed its vote), and
    // applies it soon after: within seconds, even on a loaded machine.
    let applied_by = Instant::now() + Duration::from_secs(30);
    loop {
        let status = c.admin(&["status"]);
        let applied = |i: usize| {
            status
                .lines()
                .find(|l| l.contains(&c.metas[i].addr))
                .and_then(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        };
        if applied(behind).is_some() && applied(behind) >= applied(other).map(|a| a - 1) {
            break;
        }
        assert!(
            Instant::now() < applied_by,
            "the follower has not applied the log 30 s after the first write:\n{status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A leader that hangs past its lease while another is elected and takes a
/// write must not answer a read from its own, older state when it wakes:
/// its lease ran out while it was stopped (the monotonic clock kept going).
#[tokio::test(flavor = "multi_thread")]
async fn a_hung_leader_woken_serves_no_stale_read() {
    let mut c = Cluster::start_with(3, 3, 1, 10_000);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("hav").send().await.unwrap();
    let put = |body: &'static [u8]| {
        s3.put_object()
            .bucket("hav")
            .key("k")
            .body(ByteStream::from_static(body))
            .send()
    };
    put(b"1").await.unwrap();
    let leader = c.wait_leader();
    let secret = troika_rpc::ClusterSecret::from_hex(&c.secret_hex).unwrap();
    let old_leader_only = metastore::MetaClient::new(
        troika_rpc::RpcClient::new(secret),
        vec![c.metas[leader].addr.clone()],
    );
    // Reads under the lease, before the hang, see the first write.
    for _ in 0..20 {
        let o = old_leader_only.get_object("hav", "k").await.unwrap();
        assert_eq!(o.size, 1);
    }
    let pid = c.metas[leader].pid().unwrap();
    signal(pid, "STOP");
    // The S3 client retries until the other two have elected a leader.
    put(b"22").await.unwrap();
    // Reads sent while it is stopped wait in its socket, and are the first
    // thing it sees when it wakes, before any follower tells it of the new
    // term: a lease that outlived the hang would answer them from the old
    // state.
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let meta = old_leader_only.clone();
        reads.spawn(async move { meta.get_object("hav", "k").await });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(pid, "CONT");
    let mut answers = 0;
    while let Some(r) = reads.join_next().await {
        match r.unwrap() {
            Ok(o) => {
                assert_eq!(o.size, 2, "a stale read after the new leader's write");
                answers += 1;
            }
            Err(e) => assert!(e.is_retryable(), "{e}"),
        }
    }
    // And after it has caught up.
    let o = old_leader_only.get_object("hav", "k").await.unwrap();
    assert_eq!(o.size, 2);
    eprintln!("{answers} of 4 reads sent during the hang answered");
}
