//! Self-healing, with real processes: a storage node lost for good has its
//! copies remade on the others while clients keep reading and writing; a
//! new node receives its share; a node in maintenance starts no repair; a
//! drained node can leave; goals add and drop copies; flipped bits and
//! deleted files are found and repaired; garbage and crash orphans are
//! deleted, and a write racing the sweep survives.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::*;

/// How many of the storage nodes `live` hold blob `id` on disk.
fn copies(c: &Cluster, live: &[usize], id: &str) -> usize {
    live.iter()
        .filter(|&&i| c.blob_path(i, id).exists())
        .count()
}

/// `troika admin status --json`.
fn status(c: &Cluster) -> serde_json::Value {
    serde_json::from_str(&c.admin(&["status", "--json"])).expect("status JSON")
}

/// Blobs in a health class (`ok`, `under_goal`, `one_copy`, `lost`, ...).
fn class(st: &serde_json::Value, name: &str) -> u64 {
    st["health"][name]["blobs"].as_u64().expect("health class")
}

/// Polls `done` every 300 ms until it holds, failing after `secs`.
async fn wait_for(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Bytes of objects the lost-node test writes: enough for repair to take
/// several rounds on every node (the 2 GiB figure is in the benchmark).
const HEAL_BYTES: usize = 512 << 20;

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_node_s_copies_are_remade_while_clients_keep_going() {
    let mut c = Cluster::start_nodes(4, &["--node-down-secs", "5"], &[]);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("heal").send().await.unwrap();
    let mut bodies = Vec::new();
    let size = 32 << 20;
    for i in 0..HEAL_BYTES / size {
        let body = data(size + i * 4099, 100 + i as u64);
        put(&s3, "heal", &format!("o{i}"), &body).await;
        bodies.push(body);
    }
    let ids: Vec<String> = bodies.iter().flat_map(|b| blob_ids(b)).collect();
    // Three copies each (once rebalancing moves, if any, have settled).
    wait_for(60, "3 copies of every blob", || {
        ids.iter().all(|id| copies(&c, &[0, 1, 2, 3], id) == 3)
    })
    .await;

    // Lose node 0 for good; clients keep reading and writing throughout.
    c.chunks[0].kill();
    let live = [1, 2, 3];
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut round = 0;
    loop {
        let i = round % bodies.len();
        assert!(
            get_bytes(&s3, "heal", &format!("o{i}")).await == bodies[i],
            "o{i} reads back"
        );
        let extra = data(4096 + round, 500 + round as u64);
        put(&s3, "heal", &format!("during/{round}"), &extra).await;
        round += 1;
        let short = ids.iter().filter(|id| copies(&c, &live, id) < 3).count();
        if short == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{short} blobs still below 3 copies"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let st = status(&c);
    assert_eq!(class(&st, "under_goal") + class(&st, "one_copy"), 0, "{st}");
    assert_eq!(class(&st, "lost"), 0);

    // A second node lost: every object is still readable.
    c.chunks[1].kill();
    for (i, body) in bodies.iter().enumerate() {
        assert!(
            get_bytes(&s3, "heal", &format!("o{i}")).await == *body,
            "o{i} readable with two nodes lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_node_fills_to_its_share() {
    let mut c = Cluster::start_nodes(4, &[], &[]);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("grow").send().await.unwrap();
    // 48 blobs of 4 MiB: 144 copies, 36 per node; 28.8 each on five.
    let bodies: Vec<Vec<u8>> = (0..12).map(|i| data(16 << 20, 900 + i)).collect();
    for (i, b) in bodies.iter().enumerate() {
        put(&s3, "grow", &format!("b{i}"), b).await;
    }
    let ids: Vec<String> = bodies.iter().flat_map(|b| blob_ids(b)).collect();

    let new = c.add_chunk();
    let all = [0, 1, 2, 3, 4];
    let balanced = |c: &Cluster| {
        let others: Vec<u64> = (0..4).map(|i| c.chunk_bytes(i)).collect();
        let mean = others.iter().sum::<u64>() as f64 / 4.0;
        let mine = c.chunk_bytes(new) as f64;
        (mine - mean).abs() <= mean * 0.05
            && others
                .iter()
                .all(|o| (*o as f64 - mean).abs() <= mean * 0.05)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut round = 0;
    while !balanced(&c) {
        assert!(
            Instant::now() < deadline,
            "not balanced: {:?}",
            (0..5).map(|i| c.chunk_bytes(i) >> 20).collect::<Vec<_>>()
        );
        // Clients keep going meanwhile.
        let i = round % bodies.len();
        assert!(get_bytes(&s3, "grow", &format!("b{i}")).await == bodies[i]);
        round += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for id in &ids {
        assert_eq!(copies(&c, &all, id), 3, "blob {id} keeps exactly 3 copies");
    }
    assert!(c.chunk_bytes(new) > 0);
    for (i, b) in bodies.iter().enumerate() {
        assert!(get_bytes(&s3, "grow", &format!("b{i}")).await == *b);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_in_maintenance_starts_no_repair_and_comes_back_current() {
    let mut c = Cluster::start_nodes(4, &["--node-down-secs", "3", "--gc-grace-secs", "1"], &[]);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("mnt").send().await.unwrap();
    let keep = data(24 << 20, 7);
    let doomed = data(8 << 20, 8);
    put(&s3, "mnt", "keep", &keep).await;
    put(&s3, "mnt", "doomed", &doomed).await;
    let all = [0, 1, 2, 3];
    let on0: Vec<String> = blob_ids(&keep)
        .into_iter()
        .filter(|id| copies(&c, &[0], id) == 1)
        .collect();
    assert!(!on0.is_empty(), "node 0 holds some of keep's blobs");

    let id0 = c.chunk_id(0);
    c.admin(&["node", "maintenance", &id0, "--for", "10m"]);
    c.chunks[0].kill();
    // Deleted while the node is away: its copies must go when it is back.
    s3.delete_object()
        .bucket("mnt")
        .key("doomed")
        .send()
        .await
        .unwrap();
    // Well past the down timeout: no repair, and writes go on.
    for round in 0..6 {
        put(
            &s3,
            "mnt",
            &format!("while/{round}"),
            &data(1 << 20, 50 + round),
        )
        .await;
        assert!(get_bytes(&s3, "mnt", "keep").await == keep);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    for id in &on0 {
        assert_eq!(
            copies(&c, &[1, 2, 3], id),
            2,
            "no repair of {id} during maintenance"
        );
    }
    let states = c.node_states();
    let st0 = states
        .iter()
        .find(|(id, _)| *id == id0)
        .expect("node 0 listed");
    assert_eq!(st0.1, "maintenance", "{states:?}");
    let st = status(&c);
    assert_eq!(class(&st, "lost"), 0, "{st}");

    c.chunks[0].restart();
    c.admin(&["node", "activate", &id0]);
    c.wait_live_nodes(4);
    let doomed_ids = blob_ids(&doomed);
    wait_for(60, "node 0 to catch up on deletions", || {
        doomed_ids.iter().all(|id| copies(&c, &all, id) == 0)
    })
    .await;
    // Node 0 came back emptier than the others, so rebalancing may be
    // moving a blob onto it: the copy lands before the source's is
    // deleted, a fourth copy for a moment.
    wait_for(60, "node 0's blobs back at 3 copies", || {
        on0.iter().all(|id| copies(&c, &all, id) == 3)
    })
    .await;
    assert!(get_bytes(&s3, "mnt", "keep").await == keep);

    // Maintenance is bounded: when its time is up the node is active again.
    c.admin(&["node", "maintenance", &id0, "--for", "2s"]);
    wait_for(30, "the maintenance window to end", || {
        c.node_states()
            .iter()
            .any(|(id, s)| *id == id0 && s == "up")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn goals_add_and_drop_copies_and_a_drained_node_leaves() {
    let c = Cluster::start_nodes(4, &[], &[]);
    let s3 = client(&c, 0);
    let all = [0, 1, 2, 3];
    s3.create_bucket().bucket("goals").send().await.unwrap();
    let a = data(6 << 20, 31);
    put(&s3, "goals", "a", &a).await;
    put(&s3, "goals", "deep/x", &data(3 << 20, 32)).await;

    // Down to 2 copies for the bucket, then 4 for one directory.
    c.admin(&["goal", "set", "/goals", "2"]);
    wait_for(60, "goal 2", || {
        blob_ids(&a).iter().all(|id| copies(&c, &all, id) == 2)
    })
    .await;
    c.admin(&["goal", "set", "/goals/deep", "4"]);
    let x = data(3 << 20, 32);
    wait_for(60, "goal 4", || copies(&c, &all, &blob_ids(&x)[0]) == 4).await;
    // Inherited by what is created below.
    let y = data(2 << 20, 33);
    put(&s3, "goals", "deep/y", &y).await;
    wait_for(60, "goal 4 inherited", || {
        copies(&c, &all, &blob_ids(&y)[0]) == 4
    })
    .await;
    assert!(c.admin(&["goal", "get", "/goals/deep"]).contains("goal 4"));
    assert!(c.admin(&["goal", "get", "/goals"]).contains("goal 2"));
    let bad = Command::new(compat_tests::troika_bin())
        .args(["admin", "--meta", &c.meta_list(), "--secret-file"])
        .arg(&c.secret_file)
        .args(["goal", "set", "/goals", "9"])
        .output()
        .unwrap();
    assert!(!bad.status.success(), "goal 9 refused");

    // Drain node 0 back to goal 3 everywhere: it ends up empty, and no
    // blob drops below its goal on the way.
    c.admin(&["goal", "set", "/goals", "3"]);
    let b = data(20 << 20, 34);
    put(&s3, "goals", "b", &b).await;
    let ids: Vec<String> = [&a, &b, &x, &y].iter().flat_map(|d| blob_ids(d)).collect();
    wait_for(60, "goal 3 everywhere", || {
        ids.iter().all(|id| copies(&c, &all, id) == 3)
    })
    .await;
    let id0 = c.chunk_id(0);
    c.admin(&["node", "drain", &id0]);
    wait_for(90, "node 0 drained", || {
        for id in &ids {
            assert!(
                copies(&c, &[1, 2, 3], id) + copies(&c, &[0], id) >= 3,
                "{id} below goal"
            );
        }
        c.chunk_bytes(0) == 0
    })
    .await;
    for id in &ids {
        assert_eq!(copies(&c, &[1, 2, 3], id), 3, "{id} on the other three");
    }
    c.admin(&["node", "remove", &id0]);
    let states = c.node_states();
    assert!(
        states.iter().any(|(id, s)| *id == id0 && s == "removed"),
        "{states:?}"
    );
    for (k, d) in [("a", &a), ("b", &b), ("deep/x", &x), ("deep/y", &y)] {
        assert!(get_bytes(&s3, "goals", k).await == *d, "{k}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn flipped_bits_and_missing_files_are_found_and_repaired() {
    let c = Cluster::start_nodes(3, &[], &["--scrub-mib-per-s", "64"]);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("rot").send().await.unwrap();
    let body = data(3 << 20, 77);
    put(&s3, "rot", "o", &body).await;
    // A second object whose copy on node 1 is deleted behind Troika's back.
    let other = data(1 << 20, 78);
    put(&s3, "rot", "gone", &other).await;
    let gone_id = blob_ids(&other).remove(0);
    let gone = c.blob_path(1, &gone_id);
    let gone_bytes = std::fs::read(&gone).unwrap();
    std::fs::remove_file(&gone).unwrap();
    let id = blob_ids(&body).remove(0);
    let path = c.blob_path(0, &id);
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    for b in &mut bad[good.len() - 1000..good.len() - 990] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bad).unwrap();

    // Every read is right, whichever copy it meets.
    for _ in 0..10 {
        assert!(get_bytes(&s3, "rot", "o").await == body);
    }
    // Found (by a read or the scrubber), quarantined, and copied back.
    let quarantined = c.chunk_dir(0).join("quarantine").join(&id);
    wait_for(60, "the bad copy repaired", || {
        quarantined.exists() && std::fs::read(&path).is_ok_and(|now| now == good)
    })
    .await;
    // The missing file is noticed by its node's scrubber (at the end of a
    // pass, at most once a minute) and copied back.
    wait_for(150, "the missing copy remade", || {
        std::fs::read(&gone).is_ok_and(|now| now == gone_bytes)
    })
    .await;
    assert!(get_bytes(&s3, "rot", "gone").await == other);
    // The status catches up with the next heartbeat and commit.
    let bad_found = |st: &serde_json::Value| -> u64 {
        st["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["scrub"]["bad_found"].as_u64().unwrap())
            .sum()
    };
    wait_for(
        30,
        "the status to show both copies found and repaired",
        || {
            let st = status(&c);
            bad_found(&st) >= 2 && class(&st, "ok") == 2
        },
    )
    .await;
    let st = status(&c);
    assert_eq!(bad_found(&st), 2, "one corrupt and one missing copy: {st}");
}

#[tokio::test(flavor = "multi_thread")]
async fn orphans_of_a_crashed_upload_are_deleted() {
    let mut c = Cluster::start_nodes(
        3,
        &["--orphan-age-secs", "2"],
        &["--scrub-mib-per-s", "256"],
    );
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("orph").send().await.unwrap();
    let kept = data(5 << 20, 61);
    put(&s3, "orph", "kept", &kept).await;
    // A large upload whose gateway dies part way: its blobs reach the
    // nodes, its commit never happens.
    let big = data(160 << 20, 62);
    let big_ids = blob_ids(&big);
    let upload = tokio::spawn({
        let s3 = s3.clone();
        let big = big.clone();
        async move {
            let _ = s3
                .put_object()
                .bucket("orph")
                .key("big")
                .body(ByteStream::from(big))
                .send()
                .await;
        }
    });
    let all = [0, 1, 2];
    // Killed as soon as its first blob is on disk, long before its last.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !big_ids.iter().any(|id| copies(&c, &all, id) > 0) {
        assert!(
            Instant::now() < deadline,
            "the upload never reached the nodes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.gateways[0].kill();
    // What the dead upload left on disk. The sweep may delete it at any
    // time from here on, even before the gateway is back.
    let left = big_ids.iter().filter(|id| copies(&c, &all, id) > 0).count();
    assert!(left > 0, "the killed upload left no blob on disk");
    let _ = upload.await;
    c.gateways[0].restart();
    wait_ready(&c.gateways[0].addr);
    wait_for(90, "the orphans deleted", || {
        big_ids.iter().all(|id| copies(&c, &all, id) == 0)
    })
    .await;
    assert_eq!(
        code(s3.head_object().bucket("orph").key("big").send().await),
        "NotFound"
    );
    for id in blob_ids(&kept) {
        assert_eq!(copies(&c, &all, &id), 3, "a placed blob is never an orphan");
    }
    assert!(get_bytes(&s3, "orph", "kept").await == kept);
}

async fn put_gc(s3: &aws_sdk_s3::Client, key: &str, body: &[u8]) {
    put(s3, "gcb", key, body).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_is_deleted_after_its_grace_and_a_racing_write_survives() {
    let c = Cluster::start_args(3, 1, &["--gc-grace-secs", "2"], &[]);
    let all = [0, 1, 2];
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("gcb").send().await.unwrap();
    let a = data((5 << 20) + 11, 1);
    let b1 = data(300_000, 2);
    let b2 = data(200_000, 3);
    put_gc(&s3, "a", &a).await;
    put_gc(&s3, "b", &b1).await;
    put_gc(&s3, "b", &b2).await; // overwrite: b1's blob is garbage
    s3.delete_object()
        .bucket("gcb")
        .key("a")
        .send()
        .await
        .unwrap();
    let garbage: Vec<String> = blob_ids(&a).into_iter().chain(blob_ids(&b1)).collect();
    let kept = blob_ids(&b2).remove(0);

    let deadline = Instant::now() + Duration::from_secs(60);
    while garbage.iter().any(|id| copies(&c, &all, id) > 0) {
        assert!(Instant::now() < deadline, "garbage copies were not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(copies(&c, &all, &kept), 3, "a live blob is never deleted");
    assert!(get_bytes(&s3, "gcb", "b").await == b2);

    // Writes of bytes that just became garbage, racing the collection:
    // each new object must survive, whenever the sweep runs.
    for round in 0..4u64 {
        let body = data(100_000, 10 + round);
        let id = blob_ids(&body).remove(0);
        put_gc(&s3, "old", &body).await;
        s3.delete_object()
            .bucket("gcb")
            .key("old")
            .send()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1500 + 300 * round)).await;
        put_gc(&s3, &format!("new{round}"), &body).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(
            get_bytes(&s3, "gcb", &format!("new{round}")).await == body,
            "round {round}: the racing write's object reads back"
        );
        assert!(
            copies(&c, &all, &id) >= 2,
            "round {round}: its copies are kept"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn full_nodes_refuse_writes_with_insufficient_storage() {
    // Room for one 4 MiB blob (and its header) per node.
    let c = Cluster::start_nodes(3, &[], &["--capacity-mib", "6"]);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("full").send().await.unwrap();
    let first = data(4 << 20, 81);
    put(&s3, "full", "first", &first).await;
    // Nodes refuse what would pass their limit; once the gateway has their
    // free space from the next heartbeats, it refuses before sending.
    let second = data(4 << 20, 82);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let put = s3
            .put_object()
            .bucket("full")
            .key("second")
            .body(ByteStream::from(second.clone()))
            .send()
            .await;
        match code(put).as_str() {
            "InsufficientStorage" => break,
            "ServiceUnavailable" => {}
            other => panic!("unexpected {other}"),
        }
        assert!(Instant::now() < deadline, "never InsufficientStorage");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        code(s3.head_object().bucket("full").key("second").send().await),
        "NotFound"
    );
    assert!(
        get_bytes(&s3, "full", "first").await == first,
        "nothing lost"
    );
    let st = status(&c);
    for n in st["nodes"].as_array().unwrap() {
        assert_eq!(n["capacity_bytes"].as_u64(), Some(6 << 20), "{n}");
    }
}

/// The meta node's count of whole scans of the blobs table.
fn blob_scans(c: &Cluster) -> u64 {
    let (status, body) = http_get(&c.metas[0].addr, "/metrics").expect("meta /metrics");
    assert_eq!(status, 200);
    body.lines()
        .find_map(|l| l.strip_prefix("troika_meta_blob_scans_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("troika_meta_blob_scans_total in /metrics")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_leader_does_not_rescan_its_blobs() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("idle").send().await.unwrap();
    for i in 0..20u8 {
        put(
            &s3,
            "idle",
            &format!("o{i}"),
            &data(1000 + i as usize, i as u64),
        )
        .await;
    }
    // Storage nodes poll for repair work every 2 s and the leader looks for
    // copies to trim every 2 s; once a round has found nothing to do, the
    // next ones are answered without reading the table again.
    let mut last = blob_scans(&c);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_secs(6)).await;
        let now = blob_scans(&c);
        if now == last && now > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the leader keeps scanning while idle: {last} then {now} scans"
        );
        last = now;
    }
    // New work is still seen: a write makes the next rounds look again.
    put(&s3, "idle", "new", &data(5000, 99)).await;
    wait_for(20, "a scan after the write", || blob_scans(&c) > last).await;
}
