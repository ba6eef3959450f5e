//! Cluster behaviour with real processes: storage nodes going down during
//! writes, kill -9 and restart of every role, node-to-node authentication,
//! health endpoints, and the all-in-one `troika server`.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn writes_survive_one_storage_node_down_and_refuse_below_two() {
    let mut c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("down").send().await.unwrap();
    let before = data(9 << 20, 1);
    s3.put_object()
        .bucket("down")
        .key("before")
        .body(ByteStream::from(before.clone()))
        .send()
        .await
        .unwrap();

    c.chunks[2].kill();
    let during = data(9 << 20, 2);
    s3.put_object()
        .bucket("down")
        .key("during")
        .body(ByteStream::from(during.clone()))
        .send()
        .await
        .expect("a PUT succeeds with two of three storage nodes");
    for id in blob_ids(&during) {
        assert_eq!(c.copies_on_disk(&id), 2, "blob {id} on the two live nodes");
    }
    // Reads fall back to a live copy.
    assert!(get_bytes(&s3, "down", "before").await == before);
    assert!(get_bytes(&s3, "down", "during").await == during);

    c.chunks[1].kill();
    let r = s3
        .put_object()
        .bucket("down")
        .key("refused")
        .body(ByteStream::from(data(1000, 3)))
        .send()
        .await;
    assert_eq!(code(r), "ServiceUnavailable");
    assert_eq!(
        code(s3.head_object().bucket("down").key("refused").send().await),
        "NotFound"
    );
    // One copy left is still enough to read.
    assert!(get_bytes(&s3, "down", "before").await == before);

    c.chunks[1].restart();
    c.chunks[2].restart();
    c.wait_live_nodes(3);
    let after = data(5 << 20, 4);
    s3.put_object()
        .bucket("down")
        .key("after")
        .body(ByteStream::from(after.clone()))
        .send()
        .await
        .unwrap();
    for id in blob_ids(&after) {
        assert_eq!(c.copies_on_disk(&id), 3);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_and_restart_of_every_role_loses_nothing_acknowledged() {
    let mut c = Cluster::start(3, 2);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("crash").send().await.unwrap();
    let mut written = Vec::new();
    for i in 0..20u64 {
        let body = data(((i as usize) * 377_003) % (6 << 20), i);
        let key = format!("k/{i}");
        s3.put_object()
            .bucket("crash")
            .key(&key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        written.push((key, body));
    }
    // kill -9 everything at once, then bring it back.
    c.metas[0].kill();
    for p in c.chunks.iter_mut().chain(c.gateways.iter_mut()) {
        p.kill();
    }
    c.metas[0].restart();
    for p in c.chunks.iter_mut().chain(c.gateways.iter_mut()) {
        p.restart();
    }
    for g in &c.gateways {
        wait_ready(&g.addr);
    }
    // Through the other gateway too: gateways hold no state.
    for g in 0..2 {
        let s3 = client(&c, g);
        for (key, body) in &written {
            assert!(
                get_bytes(&s3, "crash", key).await == *body,
                "{key} via gateway {g}"
            );
        }
    }
    // The metastore alone restarting under load.
    c.metas[0].kill();
    c.metas[0].restart();
    wait_ready(&c.metas[0].addr);
    s3.put_object()
        .bucket("crash")
        .key("post")
        .body(ByteStream::from_static(b"ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&client(&c, 1), "crash", "post").await, b"ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_services_refuse_requests_without_the_cluster_secret() {
    let c = Cluster::start(3, 1);
    let http = reqwest::Client::new();
    let blob = format!("/v1/blob/{}", "ab".repeat(32));
    for (addr, path, method) in [
        (&c.chunks[0].addr, blob.as_str(), "GET"),
        (&c.chunks[0].addr, blob.as_str(), "PUT"),
        (&c.chunks[0].addr, blob.as_str(), "DELETE"),
        (&c.metas[0].addr, "/v1/query", "POST"),
        (&c.metas[0].addr, "/v1/command", "POST"),
        (&c.metas[0].addr, "/v1/raft/append", "POST"),
        (&c.metas[0].addr, "/v1/raft/members", "POST"),
    ] {
        let url = format!("http://{addr}{path}");
        let resp = http
            .request(method.parse().unwrap(), &url)
            .body(r#"{"q":"list_buckets"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{method} {url} without MAC");
        // A MAC under another secret is no better.
        let forged = format!("{}.{}", now_secs(), "00".repeat(32));
        let resp = http
            .request(method.parse().unwrap(), &url)
            .header("x-troika-auth", forged)
            .header("x-troika-body-sha256", "00")
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            401,
            "{method} {url} with a forged MAC"
        );
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn every_role_answers_health_and_ready() {
    let c = Cluster::start(3, 1);
    for (p, role) in [
        (&c.metas[0], "meta"),
        (&c.chunks[0], "chunk"),
        (&c.gateways[0], "gateway"),
    ] {
        let (st, body) = http_get(&p.addr, "/health").expect("health answers");
        assert_eq!(st, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "ok");
        assert_eq!(v["role"], role);
        let (st, body) = http_get(&p.addr, "/ready").expect("ready answers");
        assert_eq!(st, 200, "{role}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["ready"], true);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn all_in_one_server_keeps_data_and_keys_across_kill_9() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut server = start_server(&data_dir, dir.path());
    let addr = server.addr.clone();
    let cluster_json = data_dir.join("cluster.json");
    let info = read_cluster_json(&data_dir);
    wait_live_nodes(&addr, 3);
    assert_eq!(info["s3_endpoint"], format!("http://{addr}"));
    let mode = std::fs::metadata(&cluster_json)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "cluster.json holds credentials");
    let ak = info["access_key"].as_str().unwrap().to_string();
    let sk = info["secret_key"].as_str().unwrap().to_string();

    let s3c = s3(&format!("http://{addr}"), &ak, &sk);
    s3c.create_bucket().bucket("aio").send().await.unwrap();
    let body = data((4 << 20) + 1, 77);
    s3c.put_object()
        .bucket("aio")
        .key("x/y.bin")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    for id in blob_ids(&body) {
        let copies = (1..=3)
            .filter(|i| {
                data_dir
                    .join(format!("chunk{i}/blobs/{}/{id}", &id[..2]))
                    .exists()
            })
            .count();
        assert_eq!(copies, 3, "blob {id}");
    }
    // The operator's view, with the address and secret the server wrote
    // (the address as a URL, as `cluster.json` has it).
    let out = std::process::Command::new(troika_bin())
        .args(["admin", "status", "--json"])
        .env("TROIKA_META", info["meta_endpoint"].as_str().unwrap())
        .env("TROIKA_SECRET_FILE", data_dir.join("cluster.secret"))
        .env_remove("TROIKA_SECRET")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let states: Vec<&str> = st["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["up"; 3], "{st}");
    assert_eq!(st["health"]["ok"]["blobs"], 2, "{st}");

    server.kill();
    server.restart();
    wait_ready(&addr);
    let again = read_cluster_json(&data_dir);
    assert_eq!(
        again["access_key"], info["access_key"],
        "the dev key survives restarts"
    );
    let s3c = s3(&format!("http://{addr}"), &ak, &sk);
    assert!(get_bytes(&s3c, "aio", "x/y.bin").await == body);
    let (st, _) = http_get(&addr, "/health").unwrap();
    assert_eq!(st, 200);
}

/// The all-in-one server's gateway reads its storage nodes by direct call,
/// not HTTP: a copy that fails its checksum must still be passed over for
/// another and quarantined, as over the network.
#[tokio::test(flavor = "multi_thread")]
async fn all_in_one_server_reads_past_flipped_bits_and_quarantines_them() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = start_server(&data_dir, dir.path());
    let info = read_cluster_json(&data_dir);
    wait_live_nodes(&server.addr, 3);
    let s3c = s3(
        &format!("http://{}", server.addr),
        info["access_key"].as_str().unwrap(),
        info["secret_key"].as_str().unwrap(),
    );
    s3c.create_bucket().bucket("flip").send().await.unwrap();
    let body = data(100_000, 5);
    put(&s3c, "flip", "a.bin", &body).await;
    let [id] = &blob_ids(&body)[..] else {
        panic!("one blob expected");
    };
    // Two of the three copies go bad: whichever a read tries first, it must
    // end on the good one.
    let copy = |i: usize| data_dir.join(format!("chunk{i}/blobs/{}/{id}", &id[..2]));
    for i in [1, 2] {
        let mut bytes = std::fs::read(copy(i)).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(copy(i), bytes).unwrap();
    }
    for _ in 0..50 {
        assert!(get_bytes(&s3c, "flip", "a.bin").await == body);
    }
    let quarantined = |i: usize| data_dir.join(format!("chunk{i}/quarantine/{id}")).exists();
    assert!(
        quarantined(1) || quarantined(2),
        "a bad copy read is quarantined"
    );
    assert!(!quarantined(3), "the good copy stays");
}
