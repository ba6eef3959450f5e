//! AWS Signature Version 4 verification.
//!
//! The canonical request is rebuilt from exactly the headers the client says
//! it signed; key derivation and the HMAC come from `aws-sigv4`. Signatures
//! are compared in constant time.

use std::time::{Duration, SystemTime};

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use http::{HeaderMap, Method, Uri};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::HeaderBytes;
use crate::error::Error;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's `x-amz-date` may be from our clock.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Characters SigV4 leaves unencoded: `A-Za-z0-9-._~`.
const SIGV4_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How the body is protected, from the signed `x-amz-content-sha256`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadMode {
    /// The hex SHA-256 of the whole body, to be checked at its end.
    Sha256(String),
    Unsigned,
    /// `aws-chunked` with a signature per chunk (and optionally trailers).
    StreamingSigned {
        trailer: bool,
    },
    /// `aws-chunked` without signatures, with trailers.
    StreamingUnsigned,
}

impl PayloadMode {
    fn parse(v: &str) -> Result<Self, Error> {
        Ok(match v {
            "UNSIGNED-PAYLOAD" => PayloadMode::Unsigned,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => PayloadMode::StreamingSigned { trailer: false },
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => {
                PayloadMode::StreamingSigned { trailer: true }
            }
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => PayloadMode::StreamingUnsigned,
            hex if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                PayloadMode::Sha256(hex.to_ascii_lowercase())
            }
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unsupported x-amz-content-sha256 {other:?}"
                )))
            }
        })
    }
}

/// What a verified signature establishes, and what chunk signatures chain
/// from.
#[derive(Clone, Debug)]
pub struct AuthContext {
    pub access_key: String,
    /// `x-amz-date`, e.g. `20130524T000000Z`.
    pub datetime: String,
    /// `date/region/s3/aws4_request`.
    pub scope: String,
    pub signing_key: Vec<u8>,
    /// The request's own signature: the seed of a chunk signature chain.
    pub seed_signature: String,
    pub payload: PayloadMode,
}

impl AuthContext {
    pub fn sign(&self, string_to_sign: &str) -> String {
        calculate_signature(&self.signing_key, string_to_sign.as_bytes())
    }
}

/// The parsed `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub struct AuthHeader {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

pub fn parse_authorization(value: &str) -> Result<AuthHeader, Error> {
    let bad = |why: &str| Error::AuthorizationMalformed(why.to_string());
    let rest = value
        .strip_prefix(ALGORITHM)
        .ok_or_else(|| bad("only AWS4-HMAC-SHA256 is supported"))?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            cred = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            sig = Some(v);
        }
    }
    let cred = cred.ok_or_else(|| bad("missing Credential"))?;
    let signed = signed.ok_or_else(|| bad("missing SignedHeaders"))?;
    let sig = sig.ok_or_else(|| bad("missing Signature"))?;
    let fields: Vec<&str> = cred.split('/').collect();
    if fields.len() != 5 || fields[4] != "aws4_request" {
        return Err(bad("malformed Credential scope"));
    }
    Ok(AuthHeader {
        access_key: fields[0].to_string(),
        date: fields[1].to_string(),
        region: fields[2].to_string(),
        service: fields[3].to_string(),
        signed_headers: signed.split(';').map(|s| s.to_ascii_lowercase()).collect(),
        signature: sig.to_string(),
    })
}

/// `20130524T000000Z` → time.
pub fn parse_amz_date(v: &str) -> Result<SystemTime, Error> {
    let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(v, &f)
        .map_err(|_| Error::AuthorizationMalformed(format!("malformed x-amz-date {v:?}")))?;
    Ok(t.assume_utc().into())
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, SIGV4_SET).to_string()
}

/// The canonical URI: the decoded path re-encoded per SigV4 (S3 does not
/// normalise `.` segments or double-encode).
pub fn canonical_uri(raw_path: &str) -> String {
    let decoded = percent_decode_str(raw_path).decode_utf8_lossy();
    decoded.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// The canonical query string: decoded pairs re-encoded and sorted, without
/// `skip` (the signature itself, in presigned URLs).
pub fn canonical_query(raw_query: &str, skip: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let k = percent_decode_str(k).decode_utf8_lossy();
            let v = percent_decode_str(v).decode_utf8_lossy();
            (encode(&k), encode(&v))
        })
        .filter(|(k, _)| Some(k.as_str()) != skip)
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_header_value(
    headers: &HeaderMap,
    uri: &Uri,
    name: &str,
    text: HeaderBytes,
) -> Result<Vec<u8>, Error> {
    let values: Vec<&[u8]> = headers.get_all(name).iter().map(|v| v.as_bytes()).collect();
    if values.is_empty() {
        // HTTP/2 carries the host in the :authority pseudo-header.
        if name == "host" {
            if let Some(a) = uri.authority() {
                return Ok(a.as_str().as_bytes().to_vec());
            }
        }
        return Err(Error::AuthorizationMalformed(format!(
            "signed header {name} is missing"
        )));
    }
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Runs of whitespace become one space, ends trimmed.
        let words = v
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty());
        for (j, w) in words.enumerate() {
            if j > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(&text.of(w));
        }
    }
    Ok(out)
}

/// The canonical request, as bytes: header values beyond ASCII enter it
/// as `text` says.
pub fn canonical_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    signed_headers: &[String],
    payload_hash: &str,
    skip_query: Option<&str>,
    text: HeaderBytes,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(uri.path()).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(uri.query().unwrap_or(""), skip_query).as_bytes());
    out.push(b'\n');
    for name in signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&canonical_header_value(headers, uri, name, text)?);
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    Ok(out)
}

pub fn string_to_sign(datetime: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{datetime}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request))
    )
}

/// What a signature covers besides the request itself, from either the
/// `Authorization` header or a presigned URL's query.
struct Signed<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    datetime: String,
    signed_headers: &'a [String],
    payload_hash: String,
    signature: &'a str,
    /// Left out of the canonical query (the signature itself, presigned).
    skip_query: Option<&'a str>,
}

/// The one signature check for every signing mode.
fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    s: Signed<'_>,
    secret: &str,
) -> Result<AuthContext, Error> {
    let time = parse_amz_date(&s.datetime)?;
    if !s.datetime.starts_with(s.date) {
        return Err(Error::AuthorizationMalformed(
            "credential date does not match the request date".into(),
        ));
    }
    if s.service != "s3" {
        return Err(Error::AuthorizationMalformed("service must be s3".into()));
    }
    if !s.signed_headers.iter().any(|h| h == "host") {
        return Err(Error::AuthorizationMalformed("host must be signed".into()));
    }
    let payload = PayloadMode::parse(&s.payload_hash)?;
    let scope = format!("{}/{}/{}/aws4_request", s.date, s.region, s.service);
    let key = generate_signing_key(secret, time, s.region, s.service);
    let mut verified = false;
    for &text in HeaderBytes::modes(headers) {
        let creq = canonical_request(
            method,
            uri,
            headers,
            s.signed_headers,
            &s.payload_hash,
            s.skip_query,
            text,
        )?;
        let sts = string_to_sign(&s.datetime, &scope, &creq);
        let expected = calculate_signature(&key, sts.as_bytes());
        if bool::from(expected.as_bytes().ct_eq(s.signature.as_bytes())) {
            verified = true;
            break;
        }
    }
    if !verified {
        return Err(Error::SignatureDoesNotMatch);
    }
    Ok(AuthContext {
        access_key: s.access_key.to_string(),
        datetime: s.datetime,
        scope,
        signing_key: key.as_ref().to_vec(),
        seed_signature: s.signature.to_string(),
        payload,
    })
}

/// Verifies a header-signed request against `secret`, returning what the
/// body reader needs. `now` is injectable for tests.
pub fn verify_header_auth(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    auth: &AuthHeader,
    secret: &str,
    now: SystemTime,
) -> Result<AuthContext, Error> {
    let datetime = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::AuthorizationMalformed("missing x-amz-date".into()))?
        .to_string();
    let time = parse_amz_date(&datetime)?;
    let skew = now.duration_since(time).unwrap_or_else(|e| e.duration());
    if skew > MAX_CLOCK_SKEW {
        return Err(Error::RequestTimeTooSkewed);
    }
    let payload_hash = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::InvalidRequest("missing x-amz-content-sha256".into()))?
        .to_string();
    let signed = Signed {
        access_key: &auth.access_key,
        date: &auth.date,
        region: &auth.region,
        service: &auth.service,
        datetime,
        signed_headers: &auth.signed_headers,
        payload_hash,
        signature: &auth.signature,
        skip_query: None,
    };
    verify(method, uri, headers, signed, secret)
}

/// Longest validity of a presigned URL, as S3 allows: 7 days.
pub const PRESIGN_MAX_EXPIRES: u64 = 7 * 24 * 3600;

/// The signing parameters of a presigned URL's query.
#[derive(Debug, PartialEq, Eq)]
pub struct Presigned {
    pub auth: AuthHeader,
    pub datetime: String,
    pub expires: u64,
    /// `X-Amz-Content-Sha256` if the URL carries one (rare).
    pub payload_hash: Option<String>,
}

/// Parses the `X-Amz-*` parameters of a presigned URL.
pub fn parse_presigned(raw_query: &str) -> Result<Presigned, Error> {
    let bad = |why: &str| Error::AuthorizationQueryMalformed(why.to_string());
    let mut get = std::collections::HashMap::new();
    for p in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        let v = percent_decode_str(v).decode_utf8_lossy().into_owned();
        get.insert(percent_decode_str(k).decode_utf8_lossy().into_owned(), v);
    }
    let field = |name: &str| {
        get.get(name)
            .cloned()
            .ok_or_else(|| bad(&format!("missing {name}")))
    };
    if field("X-Amz-Algorithm")? != ALGORITHM {
        return Err(bad("X-Amz-Algorithm must be AWS4-HMAC-SHA256"));
    }
    let cred = field("X-Amz-Credential")?;
    let fields: Vec<&str> = cred.split('/').collect();
    if fields.len() != 5 || fields[4] != "aws4_request" {
        return Err(bad("malformed X-Amz-Credential"));
    }
    let expires: u64 = field("X-Amz-Expires")?
        .parse()
        .map_err(|_| bad("X-Amz-Expires is not a number"))?;
    if !(1..=PRESIGN_MAX_EXPIRES).contains(&expires) {
        return Err(bad(
            "X-Amz-Expires must be between 1 and 604800 seconds (7 days)",
        ));
    }
    Ok(Presigned {
        auth: AuthHeader {
            access_key: fields[0].to_string(),
            date: fields[1].to_string(),
            region: fields[2].to_string(),
            service: fields[3].to_string(),
            signed_headers: field("X-Amz-SignedHeaders")?
                .split(';')
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            signature: field("X-Amz-Signature")?,
        },
        datetime: field("X-Amz-Date")?,
        expires,
        payload_hash: get.get("X-Amz-Content-Sha256").cloned(),
    })
}

/// Verifies a presigned URL: its signature, that it has not expired, and
/// that it is not dated in the future beyond the clock-skew window.
pub fn verify_presigned(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    p: &Presigned,
    secret: &str,
    now: SystemTime,
) -> Result<AuthContext, Error> {
    let time = parse_amz_date(&p.datetime)?;
    if time > now + MAX_CLOCK_SKEW {
        return Err(Error::AccessDenied(
            "the presigned URL is not valid yet".into(),
        ));
    }
    if now > time + Duration::from_secs(p.expires) {
        return Err(Error::AccessDenied("the presigned URL has expired".into()));
    }
    let signed = Signed {
        access_key: &p.auth.access_key,
        date: &p.auth.date,
        region: &p.auth.region,
        service: &p.auth.service,
        datetime: p.datetime.clone(),
        signed_headers: &p.auth.signed_headers,
        payload_hash: p
            .payload_hash
            .clone()
            .unwrap_or_else(|| "UNSIGNED-PAYLOAD".into()),
        signature: &p.auth.signature,
        skip_query: Some("X-Amz-Signature"),
    };
    verify(method, uri, headers, signed, secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked examples of AWS's "Signature Calculations for the
    // Authorization Header" (S3 API reference).
    const AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn req(method: &str, uri: &str, hdrs: &[(&str, &str)]) -> (Method, Uri, HeaderMap) {
        let mut h = HeaderMap::new();
        for (k, v) in hdrs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        (method.parse().unwrap(), uri.parse().unwrap(), h)
    }

    fn example_time() -> SystemTime {
        parse_amz_date("20130524T000000Z").unwrap()
    }

    #[test]
    fn get_object_example() {
        let (m, u, h) = req(
            "GET",
            "/test.txt",
            &[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("range", "bytes=0-9"),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", "20130524T000000Z"),
            ],
        );
        let auth = parse_authorization(&format!(
            "AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        ))
        .unwrap();
        let ctx = verify_header_auth(&m, &u, &h, &auth, SK, example_time()).unwrap();
        assert_eq!(ctx.payload, PayloadMode::Sha256(EMPTY_SHA256.into()));
        assert!(matches!(
            verify_header_auth(&m, &u, &h, &auth, "wrong", example_time()),
            Err(Error::SignatureDoesNotMatch)
        ));
        let late = example_time() + Duration::from_secs(16 * 60);
        assert!(matches!(
            verify_header_auth(&m, &u, &h, &auth, SK, late),
            Err(Error::RequestTimeTooSkewed)
        ));
    }

    #[test]
    fn put_object_example() {
        let (m, u, h) = req(
            "PUT",
            "/test%24file.text",
            &[
                ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("host", "examplebucket.s3.amazonaws.com"),
                (
                    "x-amz-content-sha256",
                    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
                ),
                ("x-amz-date", "20130524T000000Z"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ],
        );
        let auth = parse_authorization(&format!(
            "AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        ))
        .unwrap();
        verify_header_auth(&m, &u, &h, &auth, SK, example_time()).unwrap();
    }

    #[test]
    fn list_objects_example_query() {
        let (m, u, h) = req(
            "GET",
            "/?max-keys=2&prefix=J",
            &[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", "20130524T000000Z"),
            ],
        );
        let auth = parse_authorization(&format!(
            "AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        ))
        .unwrap();
        verify_header_auth(&m, &u, &h, &auth, SK, example_time()).unwrap();
    }

    // AWS's worked example of a presigned GET (Query String Authentication).
    #[test]
    fn presigned_example() {
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
        let (m, u, h) = req(
            "GET",
            &format!("/test.txt?{q}"),
            &[("host", "examplebucket.s3.amazonaws.com")],
        );
        let p = parse_presigned(q).unwrap();
        assert_eq!(p.expires, 86400);
        let in_time = example_time() + Duration::from_secs(3600);
        let ctx = verify_presigned(&m, &u, &h, &p, SK, in_time).unwrap();
        assert_eq!(ctx.payload, PayloadMode::Unsigned);
        assert!(matches!(
            verify_presigned(&m, &u, &h, &p, "wrong", in_time),
            Err(Error::SignatureDoesNotMatch)
        ));
        let expired = example_time() + Duration::from_secs(86401);
        assert!(matches!(
            verify_presigned(&m, &u, &h, &p, SK, expired),
            Err(Error::AccessDenied(_))
        ));
        let early = example_time() - Duration::from_secs(3600);
        assert!(matches!(
            verify_presigned(&m, &u, &h, &p, SK, early),
            Err(Error::AccessDenied(_))
        ));
        assert!(parse_presigned(&q.replace("86400", "604801")).is_err());
        assert!(parse_presigned(&q.replace("X-Amz-Expires=86400&", "")).is_err());
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical_uri("/b/a%20b/c+d"), "/b/a%20b/c%2Bd");
        assert_eq!(canonical_query("uploads", None), "uploads=");
        assert_eq!(
            canonical_query("prefix=a%2Fb&list-type=2&x=1+2", None),
            "list-type=2&prefix=a%2Fb&x=1%2B2"
        );
        assert!(parse_authorization("AWS4-HMAC-SHA256 Credential=a/b").is_err());
        assert!(parse_authorization("AWS abc:def").is_err());
    }
}
