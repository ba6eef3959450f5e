//! The S3 surface web applications use beyond plain PUT/GET: copies, batch
//! deletes, conditional requests, response overrides, presigned URLs, CORS,
//! multipart listing and part copies, per-key bucket grants and
//! virtual-hosted-style addressing. A real cluster, `aws-sdk-s3` as the
//! client, plain HTTP (reqwest) where a browser or `curl` would be.

mod common;

use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, CorsConfiguration, CorsRule, Delete, EncodingType,
    MetadataDirective, ObjectIdentifier, Tag, Tagging,
};
use common::*;

/// The HTTP status of a failed SDK call.
fn status<E: std::fmt::Debug>(
    r: Result<
        impl std::fmt::Debug,
        aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    >,
) -> u16 {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e
            .raw_response()
            .map(|r| r.status().as_u16())
            .unwrap_or_else(|| panic!("no HTTP response: {e:?}")),
    }
}

/// A PutObject of a small static body, for a test to add conditions to.
fn put_req(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: &'static [u8],
) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(body))
}

/// A CopyObject of `source` (`bucket/key`), for a test to add options to.
fn copy_req(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    source: &str,
) -> aws_sdk_s3::operation::copy_object::builders::CopyObjectFluentBuilder {
    s3.copy_object().bucket(bucket).key(key).copy_source(source)
}

async fn bucket(s3: &aws_sdk_s3::Client, name: &str) {
    s3.create_bucket()
        .bucket(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_batch_deletes_conditions_and_headers() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    bucket(&s3, "src").await;
    bucket(&s3, "dst").await;
    let body = data(6 << 20, 1);
    s3.put_object()
        .bucket("src")
        .key("a/photo.jpg")
        .body(ByteStream::from(body.clone()))
        .content_type("image/jpeg")
        .content_disposition("inline")
        .cache_control("max-age=60")
        .content_encoding("identity")
        .expires(DateTime::from_secs(2_000_000_000))
        .metadata("camera", "x100")
        .send()
        .await
        .unwrap();
    let stats_before = c.admin(&["status"]);

    // Metadata and content headers round-trip.
    let head = s3
        .head_object()
        .bucket("src")
        .key("a/photo.jpg")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/jpeg"));
    assert_eq!(head.content_disposition(), Some("inline"));
    assert_eq!(head.cache_control(), Some("max-age=60"));
    assert_eq!(head.content_encoding(), Some("identity"));
    assert_eq!(head.metadata().unwrap()["camera"], "x100");
    let etag = head.e_tag().unwrap().to_string();

    // COPY keeps metadata, to another bucket; the bytes are shared, not
    // rewritten: no new blob appears.
    let copied = copy_req(&s3, "dst", "b/copy.jpg", "src/a/photo.jpg")
        .send()
        .await
        .unwrap();
    assert_eq!(
        copied.copy_object_result().unwrap().e_tag(),
        Some(etag.as_str())
    );
    let head = s3
        .head_object()
        .bucket("dst")
        .key("b/copy.jpg")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/jpeg"));
    assert_eq!(head.metadata().unwrap()["camera"], "x100");
    assert_eq!(get_bytes(&s3, "dst", "b/copy.jpg").await, body);
    let blobs = |status: &str| {
        status
            .lines()
            .find(|l| l.contains("\"blobs\""))
            .map(str::to_string)
    };
    assert_eq!(
        blobs(&c.admin(&["status"])),
        blobs(&stats_before),
        "a copy stores no new blob"
    );

    // REPLACE takes the request's metadata; copying onto itself needs it.
    copy_req(&s3, "src", "a/photo.jpg", "src/a/photo.jpg")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("image/png")
        .metadata("camera", "z9")
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("src")
        .key("a/photo.jpg")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/png"));
    assert_eq!(head.metadata().unwrap()["camera"], "z9");
    assert_eq!(head.cache_control(), None, "REPLACE drops the old headers");
    assert_eq!(head.e_tag(), Some(etag.as_str()), "same bytes, same ETag");
    let self_copy = copy_req(&s3, "src", "a/photo.jpg", "src/a/photo.jpg")
        .send()
        .await;
    assert_eq!(code(self_copy), "InvalidRequest");
    let stale = copy_req(&s3, "dst", "c", "src/a/photo.jpg")
        .copy_source_if_match("\"0123\"")
        .send()
        .await;
    assert_eq!(code(stale), "PreconditionFailed");
    let missing = copy_req(&s3, "dst", "c", "src/nope").send().await;
    assert_eq!(code(missing), "NoSuchKey");
    let escape = copy_req(&s3, "dst", "c", "src/a/../../etc/passwd")
        .send()
        .await;
    assert_eq!(code(escape), "InvalidArgument");
    // Deleting the source leaves the copy intact.
    s3.delete_object()
        .bucket("src")
        .key("a/photo.jpg")
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s3, "dst", "b/copy.jpg").await, body);

    // Conditional PUT: create-only, and compare-and-swap on the ETag.
    let e1 = put(&s3, "src", "cfg.json", b"{\"v\":1}").await;
    let again = put_req(&s3, "src", "cfg.json", b"{\"v\":2}")
        .if_none_match("*")
        .send()
        .await;
    assert_eq!(code(again), "PreconditionFailed");
    put_req(&s3, "src", "new.json", b"{}")
        .if_none_match("*")
        .send()
        .await
        .unwrap();
    let wrong = put_req(&s3, "src", "cfg.json", b"{\"v\":2}")
        .if_match("\"ffff\"")
        .send()
        .await;
    assert_eq!(code(wrong), "PreconditionFailed");
    put_req(&s3, "src", "cfg.json", b"{\"v\":2}")
        .if_match(&e1)
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s3, "src", "cfg.json").await, b"{\"v\":2}");

    // A subresource the gateway does not keep is refused, never taken for
    // a plain PUT that would overwrite the object.
    let tags = Tagging::builder()
        .tag_set(Tag::builder().key("k").value("v").build().unwrap())
        .build()
        .unwrap();
    let r = s3
        .put_object_tagging()
        .bucket("src")
        .key("cfg.json")
        .tagging(tags)
        .send()
        .await;
    assert_eq!(code(r), "NotImplemented");
    assert_eq!(get_bytes(&s3, "src", "cfg.json").await, b"{\"v\":2}");

    // Conditional GET/HEAD.
    let cur = s3
        .head_object()
        .bucket("src")
        .key("cfg.json")
        .send()
        .await
        .unwrap();
    let (etag, modified) = (
        cur.e_tag().unwrap().to_string(),
        *cur.last_modified().unwrap(),
    );
    let r = s3
        .get_object()
        .bucket("src")
        .key("cfg.json")
        .if_none_match(&etag)
        .send()
        .await;
    assert_eq!(status(r), 304);
    let r = s3
        .get_object()
        .bucket("src")
        .key("cfg.json")
        .if_match("\"x\"")
        .send()
        .await;
    assert_eq!(status(r), 412);
    let r = s3
        .get_object()
        .bucket("src")
        .key("cfg.json")
        .if_modified_since(modified)
        .send()
        .await;
    assert_eq!(status(r), 304);
    let past = DateTime::from_secs(modified.secs() - 3600);
    let r = s3
        .head_object()
        .bucket("src")
        .key("cfg.json")
        .if_unmodified_since(past)
        .send()
        .await;
    assert_eq!(status(r), 412);
    s3.get_object()
        .bucket("src")
        .key("cfg.json")
        .if_modified_since(past)
        .if_match(&etag)
        .send()
        .await
        .unwrap();

    // Response header overrides.
    let got = s3
        .get_object()
        .bucket("src")
        .key("cfg.json")
        .response_content_type("application/json")
        .response_content_disposition("attachment; filename=\"cfg.json\"")
        .response_cache_control("no-store")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/json"));
    assert_eq!(
        got.content_disposition(),
        Some("attachment; filename=\"cfg.json\"")
    );
    assert_eq!(got.cache_control(), Some("no-store"));

    // DeleteObjects: per-key results, quiet mode, bad keys reported alone.
    for k in ["d/1", "d/2", "d/3"] {
        put(&s3, "src", k, b"x").await;
    }
    let ids = |keys: &[&str]| {
        keys.iter()
            .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
            .collect::<Vec<_>>()
    };
    let out = s3
        .delete_objects()
        .bucket("src")
        .delete(
            Delete::builder()
                .set_objects(Some(ids(&["d/1", "d/2", "never/existed", "bad//key"])))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let deleted: Vec<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    assert_eq!(deleted, ["d/1", "d/2", "never/existed"]);
    assert_eq!(out.errors().len(), 1);
    assert_eq!(out.errors()[0].key(), Some("bad//key"));
    assert_eq!(out.errors()[0].code(), Some("InvalidArgument"));
    let out = s3
        .delete_objects()
        .bucket("src")
        .delete(
            Delete::builder()
                .set_objects(Some(ids(&["d/3"])))
                .quiet(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        out.deleted().is_empty() && out.errors().is_empty(),
        "quiet mode lists nothing"
    );
    let left = s3
        .list_objects_v2()
        .bucket("src")
        .prefix("d/")
        .send()
        .await
        .unwrap();
    assert_eq!(left.key_count(), Some(0));

    // Listing: start-after and encoding-type=url.
    put(&s3, "dst", "sp ace/ü+1", b"1").await;
    let l = s3
        .list_objects_v2()
        .bucket("dst")
        .start_after("b/copy.jpg")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = l.contents().iter().filter_map(|o| o.key()).collect();
    // Keys come back URL-encoded (the SDK leaves them so).
    assert_eq!(keys, ["sp%20ace/%C3%BC%2B1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_listing_part_copies_and_part_reads() {
    let c = Cluster::start_args(3, 1, &["--upload-expiry-secs", "30"], &[]);
    let s3 = client(&c, 0);
    bucket(&s3, "mpu").await;
    let part = 5 << 20;
    let body = data(5 * part + 1000, 7);
    let up = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("big.bin")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let other = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("a-first")
        .send()
        .await
        .unwrap();
    let mut parts = Vec::new();
    for (i, chunk) in body.chunks(part).enumerate() {
        let n = i as i32 + 1;
        let r = s3
            .upload_part()
            .bucket("mpu")
            .key("big.bin")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(chunk.to_vec()))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    assert_eq!(parts.len(), 6, "five full parts and a short last one");

    let listed = s3
        .list_parts()
        .bucket("mpu")
        .key("big.bin")
        .upload_id(&id)
        .max_parts(4)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.parts().len(), 4);
    assert_eq!(listed.is_truncated(), Some(true));
    assert_eq!(listed.parts()[1].size(), Some(part as i64));
    let rest = s3
        .list_parts()
        .bucket("mpu")
        .key("big.bin")
        .upload_id(&id)
        .part_number_marker(listed.next_part_number_marker().unwrap())
        .send()
        .await
        .unwrap();
    let numbers: Vec<i32> = rest
        .parts()
        .iter()
        .filter_map(|p| p.part_number())
        .collect();
    assert_eq!(numbers, [5, 6]);
    let uploads = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = uploads.uploads().iter().filter_map(|u| u.key()).collect();
    assert_eq!(keys, ["a-first", "big.bin"]);

    // Complete refuses a wrong ETag and a short part that is not the last.
    let bad = parts
        .iter()
        .map(|p| {
            CompletedPart::builder()
                .part_number(p.part_number().unwrap())
                .e_tag(if p.part_number() == Some(2) {
                    "\"00\""
                } else {
                    p.e_tag().unwrap()
                })
                .build()
        })
        .collect();
    let r = s3
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big.bin")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(bad))
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(r), "InvalidPart");
    let short_first = vec![parts[5].clone(), parts[0].clone()];
    let r = s3
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big.bin")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(short_first))
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(r), "InvalidPartOrder");

    s3.complete_multipart_upload()
        .bucket("mpu")
        .key("big.bin")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts.clone()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s3, "mpu", "big.bin").await, body);

    // GET/HEAD ?partNumber=N serve one part.
    let p2 = s3
        .get_object()
        .bucket("mpu")
        .key("big.bin")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(p2.parts_count(), Some(6));
    assert_eq!(p2.content_length(), Some(part as i64));
    let got = p2.body.collect().await.unwrap().into_bytes();
    assert!(got[..] == body[part..2 * part], "part 2 bytes");
    let h6 = s3
        .head_object()
        .bucket("mpu")
        .key("big.bin")
        .part_number(6)
        .send()
        .await
        .unwrap();
    assert_eq!(h6.content_length(), Some(1000));
    let r = s3
        .get_object()
        .bucket("mpu")
        .key("big.bin")
        .part_number(7)
        .send()
        .await;
    assert_eq!(status(r), 416);

    // UploadPartCopy: a new object made of ranges of the old one, sharing
    // its blobs; each part's ETag is the MD5 of its bytes.
    let cp = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("spliced")
        .send()
        .await
        .unwrap();
    let cid = cp.upload_id().unwrap().to_string();
    let ranges = [(part, 2 * part), (0, 1000)];
    let mut cparts = Vec::new();
    for (i, (a, b)) in ranges.iter().enumerate() {
        let n = i as i32 + 1;
        let r = s3
            .upload_part_copy()
            .bucket("mpu")
            .key("spliced")
            .upload_id(&cid)
            .part_number(n)
            .copy_source("mpu/big.bin")
            .copy_source_range(format!("bytes={a}-{}", b - 1))
            .send()
            .await
            .unwrap();
        let etag = r.copy_part_result().unwrap().e_tag().unwrap().to_string();
        assert_eq!(etag, format!("\"{:x}\"", md5::compute(&body[*a..*b])));
        cparts.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
    }
    let r = s3
        .upload_part_copy()
        .bucket("mpu")
        .key("spliced")
        .upload_id(&cid)
        .part_number(3)
        .copy_source("mpu/big.bin")
        .copy_source_range(format!("bytes=0-{}", body.len()))
        .send()
        .await;
    assert_eq!(code(r), "InvalidRange", "a range past the source's end");
    s3.complete_multipart_upload()
        .bucket("mpu")
        .key("spliced")
        .upload_id(&cid)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(cparts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut expect = body[part..2 * part].to_vec();
    expect.extend_from_slice(&body[..1000]);
    assert_eq!(get_bytes(&s3, "mpu", "spliced").await, expect);

    // The upload left open is aborted once older than --upload-expiry-secs.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = s3
            .list_parts()
            .bucket("mpu")
            .key("a-first")
            .upload_id(other.upload_id().unwrap())
            .send()
            .await;
        if r.is_err() {
            assert_eq!(code(r), "NoSuchUpload");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "abandoned upload never expired"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let uploads = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn presigned_urls_and_cors_for_browsers() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    bucket(&s3, "web").await;
    let http = reqwest::Client::new();
    let cfg = |secs| PresigningConfig::expires_in(Duration::from_secs(secs)).unwrap();

    // A presigned PUT and GET, used by a plain HTTP client.
    let put_url = s3
        .put_object()
        .bucket("web")
        .key("up/a.txt")
        .presigned(cfg(300))
        .await
        .unwrap();
    let r = http
        .put(put_url.uri())
        .body("hello browser")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let get_url = s3
        .get_object()
        .bucket("web")
        .key("up/a.txt")
        .presigned(cfg(300))
        .await
        .unwrap();
    let r = http.get(get_url.uri()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello browser");

    // A tampered URL, another method, an expired URL, an over-long one.
    let tampered = get_url.uri().replace("up/a.txt", "up/b.txt");
    assert_eq!(http.get(&tampered).send().await.unwrap().status(), 403);
    assert_eq!(
        http.delete(get_url.uri()).send().await.unwrap().status(),
        403
    );
    let short = s3
        .get_object()
        .bucket("web")
        .key("up/a.txt")
        .presigned(cfg(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = http.get(short.uri()).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("expired"));
    let long = get_url
        .uri()
        .replace("X-Amz-Expires=300", "X-Amz-Expires=604801");
    let r = http.get(&long).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("AuthorizationQueryParametersError"));
    assert!(get_bytes(&s3, "web", "up/a.txt").await == b"hello browser");

    // CORS: no configuration yet.
    let r = s3.get_bucket_cors().bucket("web").send().await;
    assert_eq!(code(r), "NoSuchCORSConfiguration");
    let preflight = |origin: &str, method: &str| {
        http.request(
            reqwest::Method::OPTIONS,
            format!("{}/web/up/a.txt", c.gateway_url(0)),
        )
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "content-type, x-amz-date")
        .send()
    };
    assert_eq!(
        preflight("https://app.example", "PUT")
            .await
            .unwrap()
            .status(),
        403
    );

    let rule = CorsRule::builder()
        .allowed_origins("https://app.example")
        .allowed_methods("PUT")
        .allowed_methods("GET")
        .allowed_headers("*")
        .expose_headers("ETag")
        .max_age_seconds(600)
        .build()
        .unwrap();
    s3.put_bucket_cors()
        .bucket("web")
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(rule)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let got = s3.get_bucket_cors().bucket("web").send().await.unwrap();
    assert_eq!(got.cors_rules()[0].allowed_methods(), ["PUT", "GET"]);
    assert_eq!(got.cors_rules()[0].max_age_seconds(), Some(600));

    let ok = preflight("https://app.example", "PUT").await.unwrap();
    assert_eq!(ok.status(), 200);
    let h = ok.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert!(h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("PUT"));
    assert_eq!(
        h["access-control-allow-headers"],
        "content-type, x-amz-date"
    );
    assert_eq!(h["access-control-max-age"], "600");
    assert_eq!(
        preflight("https://evil.example", "PUT")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        preflight("https://app.example", "DELETE")
            .await
            .unwrap()
            .status(),
        403
    );

    // The actual request carries the allow-origin header too.
    let r = http
        .get(get_url.uri())
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(r.headers()["access-control-expose-headers"], "ETag");
    let r = http
        .get(get_url.uri())
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));

    s3.delete_bucket_cors().bucket("web").send().await.unwrap();
    assert_eq!(
        preflight("https://app.example", "PUT")
            .await
            .unwrap()
            .status(),
        403
    );
    let bad = http
        .put(format!("{}/web?cors", c.gateway_url(0)))
        .body("<CORSConfiguration><CORSRule>")
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad.status(),
        403,
        "unsigned configuration changes are refused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_see_and_touch_only_their_buckets() {
    let c = Cluster::start(3, 1);
    let admin = client(&c, 0);
    bucket(&admin, "shared").await;
    put(&admin, "shared", "doc.txt", b"shared doc").await;

    let out = c.admin(&["key", "create", "--name", "app"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (ak, sk) = (
        v["access_key"].as_str().unwrap(),
        v["secret_key"].as_str().unwrap(),
    );
    let app = s3(&c.gateway_url(0), ak, sk);

    // Nothing granted yet: invisible and untouchable.
    let listed = app.list_buckets().send().await.unwrap();
    assert!(listed.buckets().is_empty());
    let r = app
        .get_object()
        .bucket("shared")
        .key("doc.txt")
        .send()
        .await;
    assert_eq!(code(r), "AccessDenied");
    let r = app.list_objects_v2().bucket("shared").send().await;
    assert_eq!(code(r), "AccessDenied");
    let r = copy_req(&app, "shared", "x", "shared/doc.txt").send().await;
    assert_eq!(code(r), "AccessDenied");

    // A bucket the key creates is its own.
    bucket(&app, "appdata").await;
    put(&app, "appdata", "k", b"mine").await;
    let names: Vec<String> = app
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect();
    assert_eq!(names, ["appdata"]);
    // A copy out of a readable bucket into one it may not write is refused.
    let r = copy_req(&app, "shared", "x", "appdata/k").send().await;
    assert_eq!(code(r), "AccessDenied");

    // Read-only, then read-write; grants count at once.
    c.admin(&["key", "allow", ak, "--bucket", "shared", "--read"]);
    assert_eq!(get_bytes(&app, "shared", "doc.txt").await, b"shared doc");
    let r = put_req(&app, "shared", "new", b"x").send().await;
    assert_eq!(code(r), "AccessDenied");
    let r = app
        .delete_object()
        .bucket("shared")
        .key("doc.txt")
        .send()
        .await;
    assert_eq!(code(r), "AccessDenied");
    c.admin(&[
        "key", "allow", ak, "--bucket", "shared", "--read", "--write",
    ]);
    put(&app, "shared", "new", b"x").await;
    let listing = c.admin(&["key", "list"]);
    assert!(
        listing.contains(ak) && listing.contains("shared:rw") && listing.contains("appdata:rw"),
        "{listing}"
    );
    assert!(!listing.contains(sk), "secrets are not listed");

    // Revoked and deleted keys stop working within the cache lifetime.
    c.admin(&["key", "allow", ak, "--bucket", "shared"]);
    c.admin(&["key", "delete", ak]);
    tokio::time::sleep(Duration::from_secs(11)).await;
    let r = app.get_object().bucket("appdata").key("k").send().await;
    assert_eq!(code(r), "InvalidAccessKeyId");
    assert_eq!(get_bytes(&admin, "shared", "new").await, b"x");
}

#[tokio::test(flavor = "multi_thread")]
async fn virtual_hosted_style_addressing() {
    let c = Cluster::start_args(3, 1, &[], &["--s3-domain", "s3.test"]);
    let s3 = client(&c, 0);
    bucket(&s3, "vhost").await;
    put(&s3, "vhost", "dir/file.txt", b"virtual").await;
    let url = c.gateway_url(0);
    let port = url.rsplit(':').next().unwrap();
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    // "vhost.s3.test" resolves to the gateway for this client only.
    let http = reqwest::Client::builder()
        .resolve("vhost.s3.test", addr)
        .build()
        .unwrap();
    let send = |method: &str, path: &str, body: &'static [u8]| {
        let full = format!("http://vhost.s3.test:{port}{path}");
        let host = format!("vhost.s3.test:{port}");
        let payload = wire::hex_sha256(body);
        let (headers, _) = wire::sign_headers(
            method,
            &full,
            // The signer adds x-amz-content-sha256 itself.
            &[("host", host.as_str())],
            &payload,
            &c.access_key,
            &c.secret_key,
            SystemTime::now(),
        );
        let mut req = http.request(method.parse().unwrap(), &full).body(body);
        for (k, v) in headers {
            if k != "host" {
                req = req.header(k, v);
            }
        }
        req.send()
    };
    let r = send("GET", "/dir/file.txt", b"").await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(text, "virtual");
    let r = send("PUT", "/dir/up.txt", b"via host").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get_bytes(&s3, "vhost", "dir/up.txt").await, b"via host");
    let r = send("GET", "/?list-type=2&prefix=dir%2F", b"")
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.contains("<Key>dir/file.txt</Key>") && text.contains("<Key>dir/up.txt</Key>"),
        "{text}"
    );
}
