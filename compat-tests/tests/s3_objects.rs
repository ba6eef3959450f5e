//! S3 objects through a real cluster (separate meta, 3 storage node and
//! gateway processes), with `aws-sdk-s3` as the client.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn objects_round_trip_with_three_copies_on_disk() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("sizes").send().await.unwrap();
    let mib = 1 << 20;
    for (i, len) in [0, 1, 4 * mib, 4 * mib + 1, 100 * mib]
        .into_iter()
        .enumerate()
    {
        let body = data(len, i as u64);
        let key = format!("obj/{len}");
        let put = s3
            .put_object()
            .bucket("sizes")
            .key(&key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {len}: {e:?}"));
        let md5 = format!("\"{:x}\"", md5_of(&body));
        assert_eq!(
            put.e_tag(),
            Some(md5.as_str()),
            "ETag is the MD5 of {len} bytes"
        );
        let back = get_bytes(&s3, "sizes", &key).await;
        assert!(back == body, "{len} bytes came back different");
        let head = s3
            .head_object()
            .bucket("sizes")
            .key(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_length(), Some(len as i64));
        for id in blob_ids(&body) {
            assert_eq!(c.copies_on_disk(&id), 3, "blob {id} of {len} bytes");
        }
    }
}

fn md5_of(data: &[u8]) -> u128 {
    // Only to predict ETags; the gateway has its own MD5.
    let d = md5::compute(data);
    u128::from_be_bytes(d.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_ranges_and_overwrites() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("lst").send().await.unwrap();
    for k in ["a/b", "a-b", "a/c/d", "b", "a0"] {
        s3.put_object()
            .bucket("lst")
            .key(k)
            .body(ByteStream::from(k.as_bytes().to_vec()))
            .send()
            .await
            .unwrap();
    }
    let all = s3.list_objects_v2().bucket("lst").send().await.unwrap();
    let keys: Vec<_> = all.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["a-b", "a/b", "a/c/d", "a0", "b"]);
    let pre = s3
        .list_objects_v2()
        .bucket("lst")
        .prefix("a/")
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = pre.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["a/b", "a/c/d"]);
    // Pagination with continuation tokens visits every key once.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("lst")
            .max_keys(2)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        seen.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(String::from)),
        );
        if page.is_truncated() != Some(true) {
            break;
        }
        token = page.next_continuation_token().map(String::from);
    }
    assert_eq!(seen, ["a-b", "a/b", "a/c/d", "a0", "b"]);

    // Ranges.
    let body = data(10_000, 9);
    s3.put_object()
        .bucket("lst")
        .key("r")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let part = s3
        .get_object()
        .bucket("lst")
        .key("r")
        .range("bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.content_range(), Some("bytes 100-199/10000"));
    let got = part.body.collect().await.unwrap().into_bytes();
    assert_eq!(&got[..], &body[100..200]);
    let tail = s3
        .get_object()
        .bucket("lst")
        .key("r")
        .range("bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(
        &tail.body.collect().await.unwrap().into_bytes()[..],
        &body[9990..]
    );
    let bad = s3
        .get_object()
        .bucket("lst")
        .key("r")
        .range("bytes=20000-")
        .send()
        .await;
    assert_eq!(code(bad), "InvalidRange");

    // Overwrite and delete.
    s3.put_object()
        .bucket("lst")
        .key("b")
        .body(ByteStream::from_static(b"new"))
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s3, "lst", "b").await, b"new");
    s3.delete_object()
        .bucket("lst")
        .key("b")
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(s3.get_object().bucket("lst").key("b").send().await),
        "NoSuchKey"
    );
    // Deleting again is not an error, as in S3.
    s3.delete_object()
        .bucket("lst")
        .key("b")
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_upload_concatenates_parts() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let up = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("big/file")
        .content_type("video/mp4")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let sizes = [5 << 20, 6 << 20, 1 << 20];
    let mut whole = Vec::new();
    let mut parts = Vec::new();
    for (i, size) in sizes.into_iter().enumerate() {
        let n = i as i32 + 1;
        let body = data(size, 100 + i as u64);
        whole.extend_from_slice(&body);
        let r = s3
            .upload_part()
            .bucket("mpu")
            .key("big/file")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(body))
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
    // Out-of-order parts are refused.
    let reversed: Vec<_> = parts.iter().rev().cloned().collect();
    let bad = s3
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big/file")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(reversed))
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(bad), "InvalidPartOrder");
    let done = s3
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big/file")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        done.e_tag().unwrap().ends_with("-3\""),
        "{:?}",
        done.e_tag()
    );
    assert!(get_bytes(&s3, "mpu", "big/file").await == whole);
    let head = s3
        .head_object()
        .bucket("mpu")
        .key("big/file")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("video/mp4"));
    assert_eq!(head.e_tag(), done.e_tag());

    // An aborted upload leaves nothing behind.
    let up = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("gone")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    s3.upload_part()
        .bucket("mpu")
        .key("gone")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from(data(1000, 1)))
        .send()
        .await
        .unwrap();
    s3.abort_multipart_upload()
        .bucket("mpu")
        .key("gone")
        .upload_id(id)
        .send()
        .await
        .unwrap();
    let again = s3
        .upload_part()
        .bucket("mpu")
        .key("gone")
        .upload_id(id)
        .part_number(2)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(again), "NoSuchUpload");
    assert_eq!(
        code(s3.head_object().bucket("mpu").key("gone").send().await),
        "NotFound"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_carry_s3_error_codes() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("errs").send().await.unwrap();
    let wrong_secret = s3_client_with(&c, &c.access_key, "not-the-secret");
    assert_eq!(
        code(wrong_secret.list_buckets().send().await),
        "SignatureDoesNotMatch"
    );
    let unknown = s3_client_with(&c, "TKNOSUCHKEY", "whatever");
    assert_eq!(
        code(unknown.list_buckets().send().await),
        "InvalidAccessKeyId"
    );
    assert_eq!(
        code(s3.get_object().bucket("nope").key("k").send().await),
        "NoSuchBucket"
    );
    assert_eq!(
        code(
            s3.put_object()
                .bucket("nope")
                .key("k")
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
        ),
        "NoSuchBucket"
    );
    assert_eq!(
        code(s3.get_object().bucket("errs").key("missing").send().await),
        "NoSuchKey"
    );
    assert_eq!(
        code(s3.create_bucket().bucket("Bad_Name").send().await),
        "InvalidBucketName"
    );
    // One's own bucket again: success, as S3 answers in us-east-1.
    s3.create_bucket().bucket("errs").send().await.unwrap();

    // Keys that cannot be paths never become files.
    for key in ["a/../../etc/passwd", "a//b", "./x", "a/."] {
        let r = s3
            .put_object()
            .bucket("errs")
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await;
        assert_eq!(code(r), "InvalidArgument", "key {key:?}");
    }
    // A file and a directory cannot share a name.
    s3.put_object()
        .bucket("errs")
        .key("f")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let r = s3
        .put_object()
        .bucket("errs")
        .key("f/g")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(r), "KeyConflict");

    // Digests that do not match store nothing.
    let r = s3
        .put_object()
        .bucket("errs")
        .key("md5")
        .content_md5("1B2M2Y8AsgTpgAEXAMPLE==")
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await;
    assert!(matches!(code(r).as_str(), "BadDigest" | "InvalidArgument"));
    let r = s3
        .put_object()
        .bucket("errs")
        .key("crc")
        .checksum_crc32("AAAAAA==")
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await;
    assert_eq!(code(r), "BadDigest");
    let r = s3
        .put_object()
        .bucket("errs")
        .key("crc")
        .checksum_crc32_c("AAAAAA==")
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await;
    assert_eq!(code(r), "BadDigest");
    for k in ["md5", "crc"] {
        assert_eq!(
            code(s3.head_object().bucket("errs").key(k).send().await),
            "NotFound"
        );
    }
    let listed = s3.list_objects_v2().bucket("errs").send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["f"]);

    // Buckets delete only when empty.
    assert_eq!(
        code(s3.delete_bucket().bucket("errs").send().await),
        "BucketNotEmpty"
    );
    s3.delete_object()
        .bucket("errs")
        .key("f")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket("errs").send().await.unwrap();
    assert_eq!(
        code(s3.head_bucket().bucket("errs").send().await),
        "NotFound"
    );
}

fn s3_client_with(c: &Cluster, ak: &str, sk: &str) -> aws_sdk_s3::Client {
    s3(&c.gateway_url(0), ak, sk)
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_checksums_are_verified_and_returned() {
    let c = Cluster::start(3, 1);
    let s3 = client(&c, 0);
    s3.create_bucket().bucket("sums").send().await.unwrap();
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
    let body = data(3 << 20, 5);
    for algo in [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32C,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ] {
        let key = format!("k-{}", algo.as_str());
        s3.put_object()
            .bucket("sums")
            .key(&key)
            .checksum_algorithm(algo.clone())
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{algo:?}: {e:?}"));
        let got = s3
            .get_object()
            .bucket("sums")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        let returned = [
            got.checksum_crc32(),
            got.checksum_crc32_c(),
            got.checksum_crc64_nvme(),
            got.checksum_sha1(),
            got.checksum_sha256(),
        ];
        assert_eq!(
            returned.iter().flatten().count(),
            1,
            "{algo:?}: one checksum returned"
        );
        // The SDK validates the returned checksum while reading the body.
        let back = got.body.collect().await.unwrap().into_bytes();
        assert!(back[..] == body[..]);
    }
}
