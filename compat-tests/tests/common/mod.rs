//! Shared by the compat tests: an `aws-sdk-s3` client for a gateway, and
//! test data.

#![allow(dead_code)]

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::Client;
use sha2::{Digest, Sha256};

pub use compat_tests::*;

pub mod nfs;
pub mod wire;

pub fn s3(endpoint: &str, access_key: &str, secret_key: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "test"))
        .build();
    Client::from_conf(config)
}

pub fn client(c: &Cluster, gateway: usize) -> Client {
    s3(&c.gateway_url(gateway), &c.access_key, &c.secret_key)
}

/// Deterministic, incompressible-looking test data.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = Sha256::digest(seed.to_le_bytes());
    while out.len() < len {
        out.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    out.truncate(len);
    out
}

/// File `i` of a tree of 4 KiB files, each with its own content as in a
/// real tree (a repeated blob would only be re-touched where it is stored).
pub fn small_file(i: usize) -> Vec<u8> {
    let mut d = data(4096, 3);
    d[..8].copy_from_slice(&(i as u64).to_le_bytes());
    d
}

/// The blob ids a gateway makes of `data`: SHA-256 of each 4 MiB piece.
pub fn blob_ids(data: &[u8]) -> Vec<String> {
    data.chunks(4 << 20)
        .map(|c| hex::encode(Sha256::digest(c)))
        .collect()
}

/// PUTs `body` as `bucket/key`; returns the ETag.
pub async fn put(client: &Client, bucket: &str, key: &str, body: &[u8]) -> String {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"))
        .e_tag()
        .expect("etag")
        .to_string()
}

pub async fn get_bytes(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {bucket}/{key}: {e:?}"));
    out.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

/// The S3 error code of a failed SDK call.
pub fn code<E, R>(r: Result<impl std::fmt::Debug, aws_sdk_s3::error::SdkError<E, R>>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => match e.as_service_error() {
            Some(se) => se.code().unwrap_or("<no code>").to_string(),
            None => format!("<not a service error: {e:?}>"),
        },
    }
}
