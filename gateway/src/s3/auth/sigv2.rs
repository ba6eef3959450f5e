//! AWS Signature Version 2, header (`Authorization: AWS key:sig`) and
//! query (`AWSAccessKeyId`, `Expires`, `Signature`) forms. Legacy, but the
//! aws CLI v1 and boto3 still presign with it by default for us-east-1, and
//! browser uploads use those URLs. The body is never signed in V2; a
//! `Content-MD5` is (and is checked by the body intake).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Uri};
use percent_encoding::percent_decode_str;
use subtle::ConstantTimeEq;

use super::sigv4::{PayloadMode, MAX_CLOCK_SKEW, PRESIGN_MAX_EXPIRES};
use super::{AuthContext, HeaderBytes};
use crate::error::Error;

/// Query parameters that are part of the signed resource, sorted.
const SUBRESOURCES: [&str; 24] = [
    "acl",
    "cors",
    "delete",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "partNumber",
    "policy",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// `Authorization: AWS <access key>:<signature>` → (access key, signature).
pub fn parse_header(value: &str) -> Option<(String, String)> {
    let rest = value.strip_prefix("AWS ")?;
    let (key, sig) = rest.trim().split_once(':')?;
    Some((key.to_string(), sig.to_string()))
}

/// A V2 presigned URL's parameters.
#[derive(Debug, PartialEq, Eq)]
pub struct QueryAuth {
    pub access_key: String,
    pub signature: String,
    /// Seconds since the Unix epoch.
    pub expires: u64,
}

pub fn parse_query(raw_query: &str) -> Result<Option<QueryAuth>, Error> {
    let (mut key, mut sig, mut expires) = (None, None, None);
    for p in raw_query.split('&') {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        let v = percent_decode_str(v).decode_utf8_lossy().into_owned();
        match k {
            "AWSAccessKeyId" => key = Some(v),
            "Signature" => sig = Some(v),
            "Expires" => expires = Some(v),
            _ => {}
        }
    }
    let (Some(access_key), Some(signature)) = (key, sig) else {
        return Ok(None);
    };
    let expires = expires
        .and_then(|e| e.parse().ok())
        .ok_or_else(|| Error::AuthorizationQueryMalformed("Expires must be a number".into()))?;
    Ok(Some(QueryAuth {
        access_key,
        signature,
        expires,
    }))
}

/// `CanonicalizedAmzHeaders`: every `x-amz-*` header, lowercased and
/// sorted, one `name:value` line each.
fn amz_headers(headers: &HeaderMap, text: HeaderBytes) -> Vec<u8> {
    let mut names: Vec<&str> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("x-amz-"))
        .collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for n in names {
        out.extend_from_slice(n.as_bytes());
        out.push(b':');
        for (i, v) in headers.get_all(n).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&text.of(v.as_bytes().trim_ascii()));
        }
        out.push(b'\n');
    }
    out
}

/// `CanonicalizedResource`: the bucket (from the host, in virtual-hosted
/// style), the path as sent, and the signed subresources.
fn resource(uri: &Uri, host_bucket: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(b) = host_bucket {
        out.push('/');
        out.push_str(b);
    }
    out.push_str(uri.path());
    let mut subs: Vec<(String, Option<String>)> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| {
            let (k, v) = match p.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (p, None),
            };
            SUBRESOURCES.contains(&k).then(|| {
                let v = v.map(|v| percent_decode_str(v).decode_utf8_lossy().into_owned());
                (k.to_string(), v)
            })
        })
        .collect();
    subs.sort();
    for (i, (k, v)) in subs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        if let Some(v) = v {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

/// The resources a V2 signer may have signed for this request: the path
/// as sent, and for a bucket-level path-style request also the other
/// spelling (botocore signs `/b/` and sends `/b`; AWS accepts both).
fn resources(uri: &Uri, host_bucket: Option<&str>) -> Vec<String> {
    let primary = resource(uri, host_bucket);
    let path = uri.path();
    let bucket_level = host_bucket.is_none()
        && path.len() > 1
        && !path[1..].trim_end_matches('/').contains('/')
        && !path[1..].starts_with('/');
    if !bucket_level {
        return vec![primary];
    }
    let other_path = match path.strip_suffix('/') {
        Some(p) => p.to_string(),
        None => format!("{path}/"),
    };
    let rest = &primary[path.len()..];
    let other = format!("{other_path}{rest}");
    vec![primary, other]
}

fn string_to_sign_for(
    method: &Method,
    headers: &HeaderMap,
    date_line: &str,
    resource: &str,
    text: HeaderBytes,
) -> Vec<u8> {
    let h = |n: &str| {
        headers
            .get(n)
            .map(|v| text.of(v.as_bytes()))
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&h("content-md5"));
    out.push(b'\n');
    out.extend_from_slice(&h("content-type"));
    out.push(b'\n');
    out.extend_from_slice(date_line.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&amz_headers(headers, text));
    out.extend_from_slice(resource.as_bytes());
    out
}

#[cfg(test)]
fn string_to_sign(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    date_line: &str,
    host_bucket: Option<&str>,
) -> Vec<u8> {
    let resource = resource(uri, host_bucket);
    string_to_sign_for(method, headers, date_line, &resource, HeaderBytes::AsSent)
}

fn sign(secret: &str, sts: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(sts);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks `sent` against every string to sign the request may have had.
fn check(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    date_line: &str,
    host_bucket: Option<&str>,
    secret: &str,
    sent: &str,
) -> Result<(), Error> {
    for resource in resources(uri, host_bucket) {
        for &text in HeaderBytes::modes(headers) {
            let sts = string_to_sign_for(method, headers, date_line, &resource, text);
            let expected = sign(secret, &sts);
            if bool::from(expected.as_bytes().ct_eq(sent.as_bytes())) {
                return Ok(());
            }
        }
    }
    Err(Error::SignatureDoesNotMatch)
}

fn context(access_key: &str) -> AuthContext {
    AuthContext {
        access_key: access_key.to_string(),
        datetime: String::new(),
        scope: String::new(),
        signing_key: Vec::new(),
        seed_signature: String::new(),
        payload: PayloadMode::Unsigned,
    }
}

/// Verifies a V2 header signature; the request must be dated (`Date` or
/// `x-amz-date`) within the clock-skew window.
#[allow(clippy::too_many_arguments)]
pub fn verify_header(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    access_key: &str,
    signature: &str,
    secret: &str,
    host_bucket: Option<&str>,
    now: SystemTime,
) -> Result<AuthContext, Error> {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (date, date_line) = match (h("x-amz-date"), h("date")) {
        // With x-amz-date, the Date line is empty: the header is signed
        // among the x-amz-* ones.
        (Some(d), _) => (d, ""),
        (None, Some(d)) => (d, d),
        (None, None) => {
            return Err(Error::AccessDenied(
                "a V2-signed request needs a Date or x-amz-date header".into(),
            ))
        }
    };
    let time = httpdate::parse_http_date(date)
        .map_err(|_| Error::AccessDenied(format!("malformed request date {date:?}")))?;
    let skew = now.duration_since(time).unwrap_or_else(|e| e.duration());
    if skew > MAX_CLOCK_SKEW {
        return Err(Error::RequestTimeTooSkewed);
    }
    check(
        method,
        uri,
        headers,
        date_line,
        host_bucket,
        secret,
        signature,
    )?;
    Ok(context(access_key))
}

/// Verifies a V2 presigned URL: not expired, and valid for at most 7 days
/// from now, as V4 URLs are.
pub fn verify_query(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    q: &QueryAuth,
    secret: &str,
    host_bucket: Option<&str>,
    now: SystemTime,
) -> Result<AuthContext, Error> {
    let expires = UNIX_EPOCH + Duration::from_secs(q.expires);
    if now > expires {
        return Err(Error::AccessDenied("the presigned URL has expired".into()));
    }
    if expires > now + Duration::from_secs(PRESIGN_MAX_EXPIRES) + MAX_CLOCK_SKEW {
        return Err(Error::AuthorizationQueryMalformed(
            "a presigned URL may be valid for at most 7 days".into(),
        ));
    }
    let expires = q.expires.to_string();
    check(
        method,
        uri,
        headers,
        &expires,
        host_bucket,
        secret,
        &q.signature,
    )?;
    Ok(context(&q.access_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked examples of AWS's "Signing and authenticating REST
    // requests" (Signature Version 2) page.
    const AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn object_get_example() {
        let h = headers(&[
            ("host", "awsexamplebucket1.us-west-1.s3.amazonaws.com"),
            ("date", "Tue, 27 Mar 2007 19:36:42 +0000"),
        ]);
        let uri: Uri = "/photos/puppy.jpg".parse().unwrap();
        let sts = string_to_sign(
            &Method::GET,
            &uri,
            &h,
            "Tue, 27 Mar 2007 19:36:42 +0000",
            Some("awsexamplebucket1"),
        );
        assert_eq!(
            sts,
            b"GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg"
        );
        assert_eq!(sign(SK, &sts), "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=");
    }

    #[test]
    fn object_put_example() {
        let h = headers(&[
            ("content-type", "image/jpeg"),
            ("date", "Tue, 27 Mar 2007 21:15:45 +0000"),
        ]);
        let uri: Uri = "/photos/puppy.jpg".parse().unwrap();
        let sts = string_to_sign(
            &Method::PUT,
            &uri,
            &h,
            "Tue, 27 Mar 2007 21:15:45 +0000",
            Some("awsexamplebucket1"),
        );
        assert_eq!(sign(SK, &sts), "iqRzw+ileNPu1fhspnRs8nOjjIA=");
    }

    #[test]
    fn subresources_and_amz_headers_are_signed() {
        let h = headers(&[
            ("x-amz-meta-b", "2"),
            ("x-amz-meta-a", "1"),
            ("x-amz-meta-a", "3"),
        ]);
        assert_eq!(
            amz_headers(&h, HeaderBytes::AsSent),
            b"x-amz-meta-a:1,3\nx-amz-meta-b:2\n"
        );
        let uri: Uri = "/b/k?uploadId=x%2By&partNumber=2&prefix=p&acl"
            .parse()
            .unwrap();
        assert_eq!(resource(&uri, None), "/b/k?acl&partNumber=2&uploadId=x+y");
    }

    #[test]
    fn bucket_requests_verify_with_or_without_the_trailing_slash() {
        // Regression: botocore signs "/b/" for a request it sends as "/b".
        let date = "Tue, 27 Mar 2007 19:36:42 GMT";
        let h = headers(&[("date", date)]);
        let now = httpdate::parse_http_date(date).unwrap();
        for (signed, sent) in [
            ("/b/", "/b"),
            ("/b", "/b/"),
            ("/b", "/b"),
            ("/b/?acl", "/b?acl"),
        ] {
            let sts = format!("GET\n\n\n{date}\n{signed}");
            let sig = sign(SK, sts.as_bytes());
            let uri: Uri = sent.parse().unwrap();
            verify_header(&Method::GET, &uri, &h, AK, &sig, SK, None, now)
                .unwrap_or_else(|e| panic!("signed {signed}, sent {sent}: {e}"));
        }
        // An object's path has one spelling.
        let sig = sign(SK, format!("GET\n\n\n{date}\n/b/k/").as_bytes());
        let uri: Uri = "/b/k".parse().unwrap();
        assert!(verify_header(&Method::GET, &uri, &h, AK, &sig, SK, None, now).is_err());
    }

    #[test]
    fn non_ascii_header_values_verify_either_way() {
        // botocore sends "é" as the byte E9 and signs it in UTF-8.
        let date = "Tue, 27 Mar 2007 19:36:42 GMT";
        let now = httpdate::parse_http_date(date).unwrap();
        let mut h = headers(&[("date", date)]);
        h.insert(
            "x-amz-meta-m",
            http::HeaderValue::from_bytes(b"Hello World\xe9").unwrap(),
        );
        let uri: Uri = "/b/k".parse().unwrap();
        let utf8 = format!("PUT\n\n\n{date}\nx-amz-meta-m:Hello World\u{e9}\n/b/k");
        let sig = sign(SK, utf8.as_bytes());
        verify_header(&Method::PUT, &uri, &h, AK, &sig, SK, None, now).unwrap();
        let mut raw = format!("PUT\n\n\n{date}\nx-amz-meta-m:Hello World").into_bytes();
        raw.extend_from_slice(b"\xe9\n/b/k");
        let sig = sign(SK, &raw);
        verify_header(&Method::PUT, &uri, &h, AK, &sig, SK, None, now).unwrap();
        let sig = sign(SK, b"something else");
        assert!(verify_header(&Method::PUT, &uri, &h, AK, &sig, SK, None, now).is_err());
    }

    #[test]
    fn presigned_urls_expire() {
        let q = parse_query("AWSAccessKeyId=AK&Expires=1000&Signature=a%2Bb%3D")
            .unwrap()
            .unwrap();
        assert_eq!(q.signature, "a+b=");
        let uri: Uri = "/b/k".parse().unwrap();
        let h = HeaderMap::new();
        let sig = sign(SK, &string_to_sign(&Method::GET, &uri, &h, "1000", None));
        let q = QueryAuth {
            access_key: AK.into(),
            signature: sig,
            expires: 1000,
        };
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert!(verify_query(&Method::GET, &uri, &h, &q, SK, None, at(999)).is_ok());
        assert!(matches!(
            verify_query(&Method::PUT, &uri, &h, &q, SK, None, at(999)),
            Err(Error::SignatureDoesNotMatch)
        ));
        assert!(matches!(
            verify_query(&Method::GET, &uri, &h, &q, SK, None, at(1001)),
            Err(Error::AccessDenied(_))
        ));
        assert!(parse_query("prefix=a").unwrap().is_none());
    }
}
