//! Size limits and memory: a 5 GiB object streams through a gateway with
//! bounded memory; a body over the single-PUT limit is refused before it
//! is read.

mod common;

use std::io::{Read, Write};
use std::time::SystemTime;

use bytes::Bytes;
use common::*;
use futures::StreamExt;

/// The most resident memory a gateway process may use while a 5 GiB object
/// goes through it, either way.
const GATEWAY_RSS_LIMIT: u64 = 256 << 20;

/// Peak resident memory of a process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib << 10
}

/// A reqwest request signed for an unsigned body, with `extra` headers.
fn signed_request(
    http: &reqwest::Client,
    c: &Cluster,
    method: &str,
    url: &str,
    extra: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let mut req = http.request(method.parse().unwrap(), url);
    for (k, v) in signed(c, method, url, extra) {
        // reqwest sets Host from the URL.
        if k != "host" {
            req = req.header(k, v);
        }
    }
    req
}

/// Signed headers for a raw request with an unsigned body.
fn signed(c: &Cluster, method: &str, url: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    // The signer adds x-amz-content-sha256 itself.
    let mut headers = vec![("host", host.as_str())];
    headers.extend_from_slice(extra);
    wire::sign_headers(
        method,
        url,
        &headers,
        "UNSIGNED-PAYLOAD",
        &c.access_key,
        &c.secret_key,
        SystemTime::now(),
    )
    .0
}

#[tokio::test(flavor = "multi_thread")]
async fn five_gib_object_streams_through_bounded_gateway_memory() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("huge").send().await.unwrap();
    let url = format!("{}/huge/five.bin", c.gateway_url(0));
    let len: u64 = 5 << 30;
    // Every 4 MiB blob of this body is the same, so the storage nodes keep
    // one (content addressing): the test needs no 15 GiB of disk, while the
    // gateway still receives, hashes and forwards every byte.
    let block = Bytes::from(vec![0x5au8; 1 << 20]);
    let body =
        futures::stream::iter((0..len >> 20).map(move |_| Ok::<_, std::io::Error>(block.clone())));
    let http = reqwest::Client::new();
    let len_text = len.to_string();
    let req = signed_request(&http, &c, "PUT", &url, &[("content-length", &len_text)])
        .body(reqwest::Body::wrap_stream(body));
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let gw_pid = c.gateways[0].pid().expect("gateway pid");
    let after_put = peak_rss(gw_pid);

    let req = signed_request(&http, &c, "GET", &url, &[]);
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some(len));
    let mut stream = r.bytes_stream();
    let mut got = 0u64;
    while let Some(piece) = stream.next().await {
        let piece = piece.expect("body");
        assert!(
            piece.iter().all(|&b| b == 0x5a),
            "wrong bytes near offset {got}"
        );
        got += piece.len() as u64;
    }
    assert_eq!(got, len);
    let after_get = peak_rss(gw_pid);
    println!(
        "gateway peak RSS: {} MiB after the 5 GiB PUT, {} MiB after the GET",
        after_put >> 20,
        after_get >> 20
    );
    assert!(
        after_put < GATEWAY_RSS_LIMIT && after_get < GATEWAY_RSS_LIMIT,
        "gateway peak RSS {} MiB after PUT, {} MiB after GET",
        after_put >> 20,
        after_get >> 20
    );
    let head = s3
        .head_object()
        .bucket("huge")
        .key("five.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(len as i64));
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_put_is_refused_before_its_body() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("lim").send().await.unwrap();
    let url = format!("{}/lim/too-big", c.gateway_url(0));
    let too_big = ((5u64 << 30) + 1).to_string();
    let headers = signed(&c, "PUT", &url, &[("content-length", &too_big)]);
    // Raw HTTP: send the headers of a 5 GiB + 1 body and none of it.
    let addr = c.gateway_url(0).trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut head = "PUT /lim/too-big HTTP/1.1\r\n".to_string();
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&[0u8; 4096]).unwrap();
    let mut answer = vec![0u8; 4096];
    let n = conn.read(&mut answer).expect("an answer before the body");
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("EntityTooLarge"), "{text}");
    let r = s3.head_object().bucket("lim").key("too-big").send().await;
    assert_eq!(code(r), "NotFound");
}
