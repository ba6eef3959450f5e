//! Self-healing: a storage node lost for good has its copies remade on the
//! others, while clients keep reading and writing; garbage is deleted from
//! the nodes after its grace period, and a write racing that survives.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::*;

/// How many of the storage nodes `live` hold blob `id` on disk.
fn copies(c: &Cluster, live: &[usize], id: &str) -> usize {
    live.iter()
        .filter(|i| {
            c.dir
                .path()
                .join(format!("chunk{i}/blobs/{}/{id}", &id[..2]))
                .exists()
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_node_s_copies_are_remade_while_clients_keep_going() {
    let mut c = Cluster::start(4, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("heal").send().await.unwrap();
    let mut bodies = Vec::new();
    for i in 0..6 {
        let body = data((3 << 20) + i * 4099, 100 + i as u64);
        s3.put_object()
            .bucket("heal")
            .key(format!("o{i}"))
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        bodies.push(body);
    }
    let ids: Vec<String> = bodies.iter().flat_map(|b| blob_ids(b)).collect();
    for id in &ids {
        assert_eq!(copies(&c, &[0, 1, 2, 3], id), 3, "blob {id} placed 3 times");
    }

    // Lose node 0 for good; clients keep reading and writing throughout.
    c.chunks[0].kill();
    let live = [1, 2, 3];
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut round = 0;
    loop {
        for (i, body) in bodies.iter().enumerate() {
            assert!(
                get_bytes(&s3, "heal", &format!("o{i}")).await == *body,
                "o{i} reads back"
            );
        }
        let extra = data(4096 + round, 500 + round as u64);
        s3.put_object()
            .bucket("heal")
            .key(format!("during/{round}"))
            .body(ByteStream::from(extra))
            .send()
            .await
            .unwrap();
        round += 1;
        let short: Vec<&String> = ids.iter().filter(|id| copies(&c, &live, id) < 3).collect();
        if short.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} blobs still below 3 copies",
            short.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A second node lost: every object is still readable.
    c.chunks[1].kill();
    for (i, body) in bodies.iter().enumerate() {
        assert!(
            get_bytes(&s3, "heal", &format!("o{i}")).await == *body,
            "o{i} readable with two nodes lost"
        );
    }
}

async fn put(s3: &aws_sdk_s3::Client, key: &str, body: &[u8]) {
    s3.put_object()
        .bucket("gcb")
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap();
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
    put(&s3, "a", &a).await;
    put(&s3, "b", &b1).await;
    put(&s3, "b", &b2).await; // overwrite: b1's blob is garbage
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
        put(&s3, "old", &body).await;
        s3.delete_object()
            .bucket("gcb")
            .key("old")
            .send()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1500 + 300 * round)).await;
        put(&s3, &format!("new{round}"), &body).await;
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
