//! S3 answers that used to lose data, hide it or claim a protection not
//! given: each case failed before its fix. A real cluster, `aws-sdk-s3`
//! as the client, raw signed requests where the SDK cannot say it.

mod common;

use aws_sdk_s3::operation::RequestId;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    AccessControlPolicy, BucketCannedAcl, ChecksumAlgorithm, ChecksumMode, ChecksumType,
    CompletedMultipartUpload, CompletedPart, Delete, EncodingType, Grant, Grantee, ObjectCannedAcl,
    ObjectIdentifier, Owner, Permission, ServerSideEncryption, Type,
};
use base64::Engine;
use common::*;
use sha2::{Digest, Sha256};

/// The raw HTTP response of a failed SDK call.
fn raw<E: std::fmt::Debug>(
    r: Result<
        impl std::fmt::Debug,
        aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    >,
) -> aws_sdk_s3::config::http::HttpResponse {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => match e {
            aws_sdk_s3::error::SdkError::ServiceError(se) => se.into_raw(),
            other => panic!("not a service error: {other:?}"),
        },
    }
}

async fn keys(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let out = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

fn b64(raw: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(raw)
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_bytes_in_every_xml_body() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("wsx").send().await.unwrap();
    let names = ["a", "a ", " a", "a\t", "a\n", "a\r\n"];
    for (i, k) in names.iter().enumerate() {
        put(&s3, "wsx", k, format!("body {i}").as_bytes()).await;
    }
    let mut want: Vec<String> = names.iter().map(|k| k.to_string()).collect();
    want.sort();
    assert_eq!(
        keys(&s3, "wsx").await,
        want,
        "listed keys come back exactly"
    );

    // Regression: DeleteObjects trimmed "a " to "a" and deleted that.
    for gone in ["a ", "a\r\n"] {
        let del = Delete::builder()
            .objects(ObjectIdentifier::builder().key(gone).build().unwrap())
            .build()
            .unwrap();
        let out = s3
            .delete_objects()
            .bucket("wsx")
            .delete(del)
            .send()
            .await
            .unwrap();
        let deleted: Vec<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
        assert_eq!(deleted, [gone]);
        want.retain(|k| k != gone);
        assert_eq!(keys(&s3, "wsx").await, want, "after deleting {gone:?}");
    }
    assert_eq!(get_bytes(&s3, "wsx", "a").await, b"body 0");

    // Copies name their keys in a header and the URL: exact too.
    s3.copy_object()
        .bucket("wsx")
        .key("b\t")
        .copy_source("wsx/a%09")
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s3, "wsx", "b\t").await, b"body 3");
    assert!(s3
        .head_object()
        .bucket("wsx")
        .key("b")
        .send()
        .await
        .is_err());

    // A multipart upload to a key with a trailing space completes there.
    let key = "m \n";
    let up = s3
        .create_multipart_upload()
        .bucket("wsx")
        .key(key)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let part = s3
        .upload_part()
        .bucket("wsx")
        .key(key)
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"one part"))
        .send()
        .await
        .unwrap();
    let done = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(part.e_tag().unwrap())
                .build(),
        )
        .build();
    let out = s3
        .complete_multipart_upload()
        .bucket("wsx")
        .key(key)
        .upload_id(id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    assert_eq!(out.key(), Some(key));
    assert_eq!(get_bytes(&s3, "wsx", key).await, b"one part");
    assert!(s3
        .head_object()
        .bucket("wsx")
        .key("m")
        .send()
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn buckets_answer_as_s3_does_for_every_key() {
    let c = Cluster::start(3, 2);
    let admin = client(&c, 0);
    admin.create_bucket().bucket("shared").send().await.unwrap();
    let out = c.admin(&["key", "create", "--name", "app"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (ak, sk) = (
        v["access_key"].as_str().unwrap(),
        v["secret_key"].as_str().unwrap(),
    );
    let app0 = s3(&c.gateway_url(0), ak, sk);
    let app1 = s3(&c.gateway_url(1), ak, sk);
    // Both gateways cache the key's rights before it creates a bucket.
    assert!(app0
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .is_empty());
    assert!(app1
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .is_empty());

    // Regression: ListBuckets read cached rights and missed a new bucket
    // for 10 s, on the gateway that created it and on the others.
    app0.create_bucket().bucket("fresh").send().await.unwrap();
    for app in [&app0, &app1] {
        let names: Vec<_> = app
            .list_buckets()
            .send()
            .await
            .unwrap()
            .buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_string))
            .collect();
        assert_eq!(names, ["fresh"]);
    }

    // Regression: a missing bucket was 403 for any key but an admin's.
    let r = app0.head_bucket().bucket("nothere").send().await;
    assert_eq!(raw(r).status().as_u16(), 404);
    let r = app0.get_object().bucket("nothere").key("k").send().await;
    assert_eq!(code(r), "NoSuchBucket");
    let r = app0.list_objects_v2().bucket("nothere").send().await;
    assert_eq!(code(r), "NoSuchBucket");
    let r = app1
        .copy_object()
        .bucket("fresh")
        .key("k")
        .copy_source("nothere/k")
        .send()
        .await;
    assert_eq!(code(r), "NoSuchBucket");
    // A bucket that exists and is not the key's stays 403.
    let r = app0.get_object().bucket("shared").key("k").send().await;
    assert_eq!(code(r), "AccessDenied");
    let r = app0
        .copy_object()
        .bucket("fresh")
        .key("k")
        .copy_source("shared/k")
        .send()
        .await;
    assert_eq!(code(r), "AccessDenied");
    // Someone else's bucket is taken; creating one's own again succeeds
    // and changes nothing.
    let r = app0.create_bucket().bucket("shared").send().await;
    assert_eq!(code(r), "BucketAlreadyExists");
    // As S3 answers in us-east-1 (the region this server presents).
    app1.create_bucket().bucket("fresh").send().await.unwrap();
    admin.create_bucket().bucket("shared").send().await.unwrap();
    app1.head_bucket().bucket("fresh").send().await.unwrap();

    // ListBuckets pages with max-buckets and a continuation token.
    for b in ["page-b", "page-a", "page-c"] {
        admin.create_bucket().bucket(b).send().await.unwrap();
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = admin
            .list_buckets()
            .max_buckets(2)
            .prefix("page-")
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        assert!(out.buckets().len() <= 2);
        seen.extend(
            out.buckets()
                .iter()
                .filter_map(|b| b.name().map(str::to_string)),
        );
        token = out.continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["page-a", "page-b", "page-c"]);
}

/// Uploads `parts` to a new upload created with `algo` (and `kind`);
/// returns the upload id and each part's ETag and checksum.
async fn upload_with_checksum(
    s3: &aws_sdk_s3::Client,
    key: &str,
    algo: ChecksumAlgorithm,
    kind: Option<ChecksumType>,
    parts: &[&[u8]],
) -> (String, Vec<(String, String)>) {
    let up = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key(key)
        .checksum_algorithm(algo.clone())
        .set_checksum_type(kind)
        .send()
        .await
        .unwrap();
    assert_eq!(up.checksum_algorithm(), Some(&algo));
    let id = up.upload_id().unwrap().to_string();
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let r = s3
            .upload_part()
            .bucket("mpu")
            .key(key)
            .upload_id(&id)
            .part_number(i as i32 + 1)
            .checksum_algorithm(algo.clone())
            .body(ByteStream::from(p.to_vec()))
            .send()
            .await
            .unwrap();
        let sum = r
            .checksum_sha256()
            .or(r.checksum_crc32())
            .expect("the part's checksum is answered")
            .to_string();
        out.push((r.e_tag().unwrap().to_string(), sum));
    }
    (id, out)
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_checksums_are_verified_and_completions_repeat() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let (p1, p2) = (data(5 << 20, 1), data(1000, 2));
    let (id, parts) =
        upload_with_checksum(&s3, "sha", ChecksumAlgorithm::Sha256, None, &[&p1, &p2]).await;
    assert_eq!(parts[0].1, b64(&Sha256::digest(&p1)));

    // ListParts carries each part's checksum and the upload's algorithm.
    let listed = s3
        .list_parts()
        .bucket("mpu")
        .key("sha")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.checksum_algorithm(),
        Some(&ChecksumAlgorithm::Sha256)
    );
    let sums: Vec<_> = listed
        .parts()
        .iter()
        .filter_map(|p| p.checksum_sha256())
        .collect();
    assert_eq!(sums, [parts[0].1.as_str(), parts[1].1.as_str()]);

    let completion = |sums: [&str; 2]| {
        let mut b = CompletedMultipartUpload::builder();
        for (i, ((etag, _), sum)) in parts.iter().zip(sums).enumerate() {
            b = b.parts(
                CompletedPart::builder()
                    .part_number(i as i32 + 1)
                    .e_tag(etag)
                    .checksum_sha256(sum)
                    .build(),
            );
        }
        b.build()
    };
    let complete = |done: CompletedMultipartUpload| {
        s3.complete_multipart_upload()
            .bucket("mpu")
            .key("sha")
            .upload_id(&id)
            .multipart_upload(done)
            .send()
    };
    // Regression: a wrong part checksum was accepted, and stored nothing.
    let wrong = b64(&Sha256::digest(b"other bytes"));
    let r = complete(completion([&parts[0].1, &wrong])).await;
    assert_eq!(code(r), "BadDigest");
    assert!(s3
        .head_object()
        .bucket("mpu")
        .key("sha")
        .send()
        .await
        .is_err());
    // Parts of an upload made with a checksum must each list theirs.
    let bare = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(&parts[0].0)
                .build(),
        )
        .build();
    assert_eq!(code(complete(bare).await), "InvalidRequest");

    let first = complete(completion([&parts[0].1, &parts[1].1]))
        .await
        .unwrap();
    let mut raw_sums = Sha256::digest(&p1).to_vec();
    raw_sums.extend_from_slice(&Sha256::digest(&p2));
    let composite = format!("{}-2", b64(&Sha256::digest(&raw_sums)));
    assert_eq!(first.checksum_sha256(), Some(composite.as_str()));
    assert_eq!(first.checksum_type(), Some(&ChecksumType::Composite));

    // Regression: a retried completion (first answer lost) got
    // NoSuchUpload. Now it gets the first answer; other parts do not.
    let again = complete(completion([&parts[0].1, &parts[1].1]))
        .await
        .unwrap();
    assert_eq!(again.e_tag(), first.e_tag());
    assert_eq!(again.checksum_sha256(), first.checksum_sha256());
    let other = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(&parts[0].0)
                .checksum_sha256(&parts[0].1)
                .build(),
        )
        .build();
    assert_eq!(code(complete(other).await), "NoSuchUpload");
    let r = s3
        .upload_part()
        .bucket("mpu")
        .key("sha")
        .upload_id(&id)
        .part_number(3)
        .body(ByteStream::from_static(b"late"))
        .send()
        .await;
    assert_eq!(code(r), "NoSuchUpload");
    let uploads = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "a completed upload is not listed"
    );

    // HEAD and GET with checksum mode return the object's, and a part's.
    let head = s3
        .head_object()
        .bucket("mpu")
        .key("sha")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_sha256(), Some(composite.as_str()));
    assert_eq!(head.checksum_type(), Some(&ChecksumType::Composite));
    let part2 = s3
        .head_object()
        .bucket("mpu")
        .key("sha")
        .part_number(2)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(part2.checksum_sha256(), Some(parts[1].1.as_str()));
    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    assert_eq!(get_bytes(&s3, "mpu", "sha").await, whole);

    // Full-object CRC32: the parts' CRCs combine into the whole body's.
    let (id, parts) = upload_with_checksum(
        &s3,
        "crc",
        ChecksumAlgorithm::Crc32,
        Some(ChecksumType::FullObject),
        &[&p1, &p2],
    )
    .await;
    let whole_crc = b64(&crc32fast::hash(&whole).to_be_bytes());
    let mut b = CompletedMultipartUpload::builder();
    for (i, (etag, sum)) in parts.iter().enumerate() {
        b = b.parts(
            CompletedPart::builder()
                .part_number(i as i32 + 1)
                .e_tag(etag)
                .checksum_crc32(sum)
                .build(),
        );
    }
    let send = |checksum: &str| {
        s3.complete_multipart_upload()
            .bucket("mpu")
            .key("crc")
            .upload_id(&id)
            .checksum_crc32(checksum)
            .checksum_type(ChecksumType::FullObject)
            .multipart_upload(b.clone().build())
            .send()
    };
    // A whole-object checksum sent with the completion must hold.
    let r = send(&b64(&crc32fast::hash(b"wrong").to_be_bytes())).await;
    assert_eq!(code(r), "BadDigest");
    let out = send(&whole_crc).await.unwrap();
    assert_eq!(out.checksum_crc32(), Some(whole_crc.as_str()));
    let head = s3
        .head_object()
        .bucket("mpu")
        .key("crc")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_crc32(), Some(whole_crc.as_str()));
    assert_eq!(head.checksum_type(), Some(&ChecksumType::FullObject));

    // Checksum kinds S3 does not define are refused at creation.
    let r = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("bad")
        .checksum_algorithm(ChecksumAlgorithm::Sha1)
        .checksum_type(ChecksumType::FullObject)
        .send()
        .await;
    assert_eq!(code(r), "InvalidRequest");
}

#[tokio::test(flavor = "multi_thread")]
async fn protections_not_given_are_refused_and_headers_are_true() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("prot").send().await.unwrap();

    // Regression: SSE, public ACLs and grants answered 200 and did nothing.
    let key = b64(&[7u8; 32]);
    let key_md5 = b64(&md5::compute([7u8; 32]).0);
    let sse_c = s3
        .put_object()
        .bucket("prot")
        .key("sse-c")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&key_md5)
        .body(ByteStream::from_static(b"secret"))
        .send()
        .await;
    assert_eq!(code(sse_c), "NotImplemented");
    let sse_s3 = s3
        .put_object()
        .bucket("prot")
        .key("sse-s3")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from_static(b"secret"))
        .send()
        .await;
    assert_eq!(code(sse_s3), "NotImplemented");
    let kms = s3
        .create_multipart_upload()
        .bucket("prot")
        .key("kms")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .send()
        .await;
    assert_eq!(code(kms), "NotImplemented");
    let public = s3
        .put_object()
        .bucket("prot")
        .key("public")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(public), "NotImplemented");
    let grant = s3
        .put_object()
        .bucket("prot")
        .key("granted")
        .grant_read("uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(grant), "NotImplemented");
    let r = s3
        .create_bucket()
        .bucket("pub")
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await;
    assert_eq!(code(r), "NotImplemented");
    assert!(keys(&s3, "prot").await.is_empty(), "nothing was stored");
    assert!(s3.head_bucket().bucket("pub").send().await.is_err());
    // What is already so is accepted: a private object.
    s3.put_object()
        .bucket("prot")
        .key("private")
        .acl(ObjectCannedAcl::Private)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    // A reading with a customer key of an object never encrypted fails.
    let r = s3
        .get_object()
        .bucket("prot")
        .key("private")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await;
    assert_eq!(code(r), "NotImplemented");
    let all_users = Grant::builder()
        .grantee(
            Grantee::builder()
                .r#type(Type::Group)
                .uri("http://acs.amazonaws.com/groups/global/AllUsers")
                .build()
                .unwrap(),
        )
        .permission(Permission::Read)
        .build();
    let policy = AccessControlPolicy::builder()
        .owner(Owner::builder().id("troika").build())
        .grants(all_users)
        .build();
    let r = s3
        .put_object_acl()
        .bucket("prot")
        .key("private")
        .access_control_policy(policy)
        .send()
        .await;
    assert_eq!(code(r), "NotImplemented");

    // Regression: 304 carried no validators.
    let etag = put(&s3, "prot", "cached", b"cache me").await;
    let r = s3
        .get_object()
        .bucket("prot")
        .key("cached")
        .if_none_match(&etag)
        .send()
        .await;
    let resp = raw(r);
    assert_eq!(resp.status().as_u16(), 304);
    assert_eq!(resp.headers().get("etag"), Some(etag.as_str()));
    assert!(resp.headers().get("last-modified").is_some());

    // Every answer carries a request id, errors in their body too.
    let out = s3
        .head_object()
        .bucket("prot")
        .key("cached")
        .send()
        .await
        .unwrap();
    assert_eq!(out.request_id().map(str::len), Some(16));
    let err = s3
        .get_object()
        .bucket("prot")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.request_id().map(str::len), Some(16));
    let body = std::str::from_utf8(err.raw_response().unwrap().body().bytes().unwrap())
        .unwrap()
        .to_string();
    assert!(body.contains("<RequestId>"), "{body}");

    // Regression: 300 KB of user metadata was accepted.
    let big = s3
        .put_object()
        .bucket("prot")
        .key("fat")
        .metadata("m", "x".repeat(2100))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(big), "MetadataTooLarge");
    assert!(s3
        .head_object()
        .bucket("prot")
        .key("fat")
        .send()
        .await
        .is_err());

    // Content-Encoding comes back as sent.
    s3.put_object()
        .bucket("prot")
        .key("enc")
        .content_encoding("deflate, gzip")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("prot")
        .key("enc")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_encoding(), Some("deflate, gzip"));

    // max-keys=0: no keys, and nothing more to come.
    let out = s3
        .list_objects_v2()
        .bucket("prot")
        .max_keys(0)
        .send()
        .await
        .unwrap();
    assert!(out.contents().is_empty());
    assert_eq!(out.is_truncated(), Some(false));

    // V1 with encoding-type=url leaves the echoed prefix as sent.
    put(&s3, "prot", "a b/c", b"x").await;
    let out = s3
        .list_objects()
        .bucket("prot")
        .prefix("a b")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(out.prefix(), Some("a b"));
    assert_eq!(out.contents()[0].key(), Some("a%20b/c"));

    // UploadPartCopy beyond the source is InvalidRange.
    let up = s3
        .create_multipart_upload()
        .bucket("prot")
        .key("mpu")
        .send()
        .await
        .unwrap();
    let r = s3
        .upload_part_copy()
        .bucket("prot")
        .key("mpu")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .copy_source("prot/cached")
        .copy_source_range("bytes=0-100")
        .send()
        .await;
    assert_eq!(code(r), "InvalidRange");
}

#[tokio::test(flavor = "multi_thread")]
async fn non_ascii_metadata_round_trips() {
    // Regression: a signed header with bytes beyond ASCII failed SigV4,
    // and such metadata could not be stored.
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("meta").send().await.unwrap();
    let url = format!("{}/meta/k", c.gateway_url(0));
    let now = std::time::SystemTime::now();
    let value = "café ünïcode";
    let (headers, _) = wire::sign_headers(
        "PUT",
        &url,
        &[("x-amz-meta-note", value)],
        &wire::hex_sha256(b"body"),
        &c.access_key,
        &c.secret_key,
        now,
    );
    let mut req = reqwest::Client::new().put(&url).body("body");
    for (k, v) in &headers {
        req = req.header(
            k.as_str(),
            reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    let resp = req.send().await.unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap()
    );
    let (headers, _) = wire::sign_headers(
        "HEAD",
        &url,
        &[],
        &wire::hex_sha256(b""),
        &c.access_key,
        &c.secret_key,
        now,
    );
    let mut req = reqwest::Client::new().head(&url);
    for (k, v) in &headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers().get("x-amz-meta-note").map(|v| v.as_bytes()),
        Some(value.as_bytes())
    );
}

/// Adds a request header the SDK has no setter for (signed with the rest).
fn with_header<T, E, B>(
    op: aws_sdk_s3::client::customize::CustomizableOperation<T, E, B>,
    name: &'static str,
    value: &'static str,
) -> aws_sdk_s3::client::customize::CustomizableOperation<T, E, B> {
    op.mutate_request(move |r| {
        r.headers_mut().insert(name, value);
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_once_ignored_are_checked_or_refused() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("hdrs").send().await.unwrap();
    put(&s3, "hdrs", "src", b"source").await;

    // x-amz-expected-bucket-owner: the bucket's owner is the key that
    // created it; any other owner is refused and nothing is done.
    let me = c.access_key.as_str();
    s3.put_object()
        .bucket("hdrs")
        .key("mine")
        .expected_bucket_owner(me)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let r = s3
        .put_object()
        .bucket("hdrs")
        .key("theirs")
        .expected_bucket_owner("111122223333")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(r), "AccessDenied");
    let r = s3
        .get_object()
        .bucket("hdrs")
        .key("src")
        .expected_bucket_owner("111122223333")
        .send()
        .await;
    assert_eq!(code(r), "AccessDenied");
    let r = s3
        .delete_object()
        .bucket("hdrs")
        .key("src")
        .expected_bucket_owner("111122223333")
        .send()
        .await;
    assert_eq!(code(r), "AccessDenied");
    let r = s3
        .copy_object()
        .bucket("hdrs")
        .key("copy")
        .copy_source("hdrs/src")
        .expected_source_bucket_owner("111122223333")
        .send()
        .await;
    assert_eq!(code(r), "AccessDenied");
    s3.copy_object()
        .bucket("hdrs")
        .key("copy")
        .copy_source("hdrs/src")
        .expected_bucket_owner(me)
        .expected_source_bucket_owner(me)
        .send()
        .await
        .unwrap();
    // The owner a client reads from the bucket's ACL is the one to name.
    let acl = s3.get_bucket_acl().bucket("hdrs").send().await.unwrap();
    assert_eq!(acl.owner().and_then(|o| o.id()), Some(me));
    assert_eq!(get_bytes(&s3, "hdrs", "src").await, b"source");

    // x-amz-tagging: the tags would be dropped, so the write is refused.
    let r = s3
        .put_object()
        .bucket("hdrs")
        .key("tagged")
        .tagging("team=web")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(r), "NotImplemented");
    let r = s3
        .create_multipart_upload()
        .bucket("hdrs")
        .key("tagged-mpu")
        .tagging("team=web")
        .send()
        .await;
    assert_eq!(code(r), "NotImplemented");
    let r = s3
        .copy_object()
        .bucket("hdrs")
        .key("tagged-copy")
        .copy_source("hdrs/src")
        .tagging("team=web")
        .tagging_directive(aws_sdk_s3::types::TaggingDirective::Replace)
        .send()
        .await;
    assert_eq!(code(r), "NotImplemented");

    // A storage class other than the one served is refused, not relabelled.
    let r = s3
        .put_object()
        .bucket("hdrs")
        .key("cold")
        .storage_class(aws_sdk_s3::types::StorageClass::Glacier)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(r), "InvalidStorageClass");
    let r = s3
        .create_multipart_upload()
        .bucket("hdrs")
        .key("cold-mpu")
        .storage_class(aws_sdk_s3::types::StorageClass::StandardIa)
        .send()
        .await;
    assert_eq!(code(r), "InvalidStorageClass");
    s3.put_object()
        .bucket("hdrs")
        .key("standard")
        .storage_class(aws_sdk_s3::types::StorageClass::Standard)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let uploads = s3
        .list_multipart_uploads()
        .bucket("hdrs")
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "no upload was started");
    assert_eq!(
        keys(&s3, "hdrs").await,
        ["copy", "mine", "src", "standard"],
        "nothing refused was stored"
    );

    // x-amz-server-side-encryption belongs to writes: a read carrying it
    // is a bad request.
    let r = with_header(
        s3.get_object().bucket("hdrs").key("src").customize(),
        "x-amz-server-side-encryption",
        "AES256",
    )
    .send()
    .await;
    assert_eq!(code(r), "InvalidArgument");
    let r = with_header(
        s3.head_object().bucket("hdrs").key("src").customize(),
        "x-amz-server-side-encryption",
        "AES256",
    )
    .send()
    .await;
    assert_eq!(raw(r).status().as_u16(), 400);
}
