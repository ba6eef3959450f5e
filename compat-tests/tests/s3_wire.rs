//! S3 requests built by hand: the aws-chunked encodings SDKs send over TLS,
//! and clients that misbehave (wrong digests, disconnects mid-upload).

mod common;

use std::io::Write;
use std::time::SystemTime;

use common::wire::*;
use common::*;

struct Wire {
    url: String,
    ak: String,
    sk: String,
    http: reqwest::Client,
}

impl Wire {
    fn new(c: &Cluster) -> Self {
        Self {
            url: c.gateway_url(0),
            ak: c.access_key.clone(),
            sk: c.secret_key.clone(),
            http: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        payload: &str,
        body: Vec<u8>,
    ) -> (u16, String) {
        let url = format!("{}{path}", self.url);
        let host = self.url.trim_start_matches("http://").to_string();
        let mut all = vec![("host", host.as_str())];
        all.extend_from_slice(headers);
        let (signed, _) = sign_headers(
            method,
            &url,
            &all,
            payload,
            &self.ak,
            &self.sk,
            SystemTime::now(),
        );
        self.send_signed(method, &url, signed, body).await
    }

    async fn send_signed(
        &self,
        method: &str,
        url: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> (u16, String) {
        let mut req = self.http.request(method.parse().unwrap(), url);
        for (k, v) in headers {
            if k != "host" {
                req = req.header(k, v);
            }
        }
        let resp = req.body(body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_chunked_uploads_are_decoded_and_verified() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("chunky").send().await.unwrap();
    let w = Wire::new(&c);
    let body = data((5 << 20) + 123, 3);
    let len = body.len().to_string();

    // Unsigned chunks with a CRC32C trailer (what SDKs send by default).
    let crc = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(crc32c::crc32c(&body).to_be_bytes())
    };
    let wire = unsigned_trailer_body(&body, 64 << 10, ("x-amz-checksum-crc32c", &crc));
    let headers = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", len.as_str()),
        ("x-amz-trailer", "x-amz-checksum-crc32c"),
    ];
    let (st, text) = w
        .send(
            "PUT",
            "/chunky/trailer",
            &headers,
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            wire,
        )
        .await;
    assert_eq!(st, 200, "{text}");
    assert!(get_bytes(&s3, "chunky", "trailer").await == body);

    // A wrong trailer checksum stores nothing.
    let wire = unsigned_trailer_body(&body, 64 << 10, ("x-amz-checksum-crc32c", "AAAAAA=="));
    let (st, text) = w
        .send(
            "PUT",
            "/chunky/bad-trailer",
            &headers,
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            wire,
        )
        .await;
    assert_eq!(st, 400, "{text}");
    assert!(text.contains("BadDigest"), "{text}");
    assert_eq!(
        code(
            s3.head_object()
                .bucket("chunky")
                .key("bad-trailer")
                .send()
                .await
        ),
        "NotFound"
    );

    // Signed chunks: every chunk's signature chains from the request's.
    let now = SystemTime::now();
    let url = format!("{}/chunky/signed", w.url);
    let host = w.url.trim_start_matches("http://").to_string();
    let hdrs = [
        ("host", host.as_str()),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", len.as_str()),
    ];
    let (signed, seed) = sign_headers(
        "PUT",
        &url,
        &hdrs,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        &w.ak,
        &w.sk,
        now,
    );
    let wire = signed_chunked_body(&body, 1 << 20, &seed, &w.sk, now, &amz_date(now));
    let (st, text) = w
        .send_signed("PUT", &url, signed.clone(), wire.clone())
        .await;
    assert_eq!(st, 200, "{text}");
    assert!(get_bytes(&s3, "chunky", "signed").await == body);

    // One flipped data byte breaks the chain: nothing is stored.
    let url2 = format!("{}/chunky/tampered", w.url);
    let (signed, seed) = sign_headers(
        "PUT",
        &url2,
        &hdrs,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        &w.ak,
        &w.sk,
        now,
    );
    let mut wire = signed_chunked_body(&body, 1 << 20, &seed, &w.sk, now, &amz_date(now));
    let at = wire.len() / 2;
    wire[at] ^= 1;
    let (st, text) = w.send_signed("PUT", &url2, signed, wire).await;
    assert_eq!(st, 403, "{text}");
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    assert_eq!(
        code(
            s3.head_object()
                .bucket("chunky")
                .key("tampered")
                .send()
                .await
        ),
        "NotFound"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn payload_digest_and_clock_are_enforced() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("digest").send().await.unwrap();
    let w = Wire::new(&c);
    // The signed x-amz-content-sha256 names other content.
    let (st, text) = w
        .send(
            "PUT",
            "/digest/k",
            &[],
            &hex_sha256(b"other"),
            b"hello".to_vec(),
        )
        .await;
    assert_eq!(st, 400, "{text}");
    assert!(text.contains("XAmzContentSHA256Mismatch"), "{text}");
    assert_eq!(
        code(s3.head_object().bucket("digest").key("k").send().await),
        "NotFound"
    );
    // UNSIGNED-PAYLOAD is accepted.
    let (st, text) = w
        .send(
            "PUT",
            "/digest/u",
            &[],
            "UNSIGNED-PAYLOAD",
            b"hello".to_vec(),
        )
        .await;
    assert_eq!(st, 200, "{text}");
    // A request signed 20 minutes ago is refused.
    let then = SystemTime::now() - std::time::Duration::from_secs(20 * 60);
    let url = format!("{}/digest/old", w.url);
    let host = w.url.trim_start_matches("http://").to_string();
    let (signed, _) = sign_headers(
        "PUT",
        &url,
        &[("host", host.as_str())],
        "UNSIGNED-PAYLOAD",
        &w.ak,
        &w.sk,
        then,
    );
    let (st, text) = w.send_signed("PUT", &url, signed, b"x".to_vec()).await;
    assert_eq!(st, 403, "{text}");
    assert!(text.contains("RequestTimeTooSkewed"), "{text}");
    // No signature at all.
    let resp = reqwest::get(format!("{}/digest/u", w.url)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_disconnecting_mid_upload_leaves_nothing() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("cut").send().await.unwrap();
    let addr = c.gateways[0].addr.clone();
    let url = format!("http://{addr}/cut/partial");
    let total = 20 << 20;
    let total_s = total.to_string();
    let (signed, _) = sign_headers(
        "PUT",
        &url,
        &[
            ("host", addr.as_str()),
            ("content-length", total_s.as_str()),
        ],
        "UNSIGNED-PAYLOAD",
        &c.access_key,
        &c.secret_key,
        SystemTime::now(),
    );
    {
        let mut sock = std::net::TcpStream::connect(&addr).unwrap();
        write!(sock, "PUT /cut/partial HTTP/1.1\r\n").unwrap();
        for (k, v) in &signed {
            write!(sock, "{k}: {v}\r\n").unwrap();
        }
        write!(sock, "\r\n").unwrap();
        // 9 MiB of 20: two whole blobs reach the storage nodes first.
        sock.write_all(&data(9 << 20, 1)).unwrap();
        sock.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
    } // dropped: the connection closes mid-body
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        code(s3.head_object().bucket("cut").key("partial").send().await),
        "NotFound"
    );
    let listed = s3.list_objects_v2().bucket("cut").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0));
    // The gateway is unharmed.
    s3.put_object()
        .bucket("cut")
        .key("after")
        .body(data(10, 1).into())
        .send()
        .await
        .unwrap();
}
