//! Raw signed S3 requests, for what SDKs do not send over plain HTTP
//! (aws-chunked bodies) and for misbehaving clients.

#![allow(dead_code)]

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// Signs a request and returns every header to send (given + signing ones)
/// and the request's signature (the seed of a chunk signature chain).
pub fn sign_headers(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    payload: &str,
    ak: &str,
    sk: &str,
    time: SystemTime,
) -> (Vec<(String, String)>, String) {
    let identity: Identity = Credentials::new(ak, sk, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
    settings.uri_path_normalization_mode =
        aws_sigv4::http_request::UriPathNormalizationMode::Disabled;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let req = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Precomputed(payload.to_string()),
    )
    .unwrap();
    let (instructions, signature) = sign(req, &params).unwrap().into_parts();
    let mut out: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in instructions.headers() {
        out.push((k.to_string(), v.to_string()));
    }
    (out, signature)
}

/// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` body: each chunk signed, chained
/// from `seed`.
pub fn signed_chunked_body(
    data: &[u8],
    chunk: usize,
    seed: &str,
    sk: &str,
    time: SystemTime,
    date_time: &str,
) -> Vec<u8> {
    let key = v4::generate_signing_key(sk, time, "us-east-1", "s3");
    let scope = format!("{}/us-east-1/s3/aws4_request", &date_time[..8]);
    let mut prev = seed.to_string();
    let mut out = Vec::new();
    let empty = hex_sha256(b"");
    let mut pieces: Vec<&[u8]> = data.chunks(chunk).collect();
    pieces.push(&[]);
    for p in pieces {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{date_time}\n{scope}\n{prev}\n{empty}\n{}",
            hex_sha256(p)
        );
        let sig = v4::calculate_signature(&key, sts.as_bytes());
        out.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
        prev = sig;
    }
    out
}

/// `STREAMING-UNSIGNED-PAYLOAD-TRAILER` body with one trailer.
pub fn unsigned_trailer_body(data: &[u8], chunk: usize, trailer: (&str, &str)) -> Vec<u8> {
    let mut out = Vec::new();
    for p in data.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("0\r\n{}:{}\r\n\r\n", trailer.0, trailer.1).as_bytes());
    out
}

pub fn hex_sha256(d: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(d))
}

pub fn amz_date(t: SystemTime) -> String {
    let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::from(t).format(&f).unwrap()
}
