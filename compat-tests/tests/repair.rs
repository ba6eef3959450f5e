//! Self-healing: a storage node lost for good has its copies remade on the
//! others, while clients keep reading and writing.

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
