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
use super::AuthContext;
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
fn amz_headers(headers: &HeaderMap) -> String {
    let mut names: Vec<&str> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("x-amz-"))
        .collect();
    names.sort();
    names.dedup();
    let mut out = String::new();
    for n in names {
        let values: Vec<&str> = headers
            .get_all(n)
            .iter()
            .map(|v| v.to_str().unwrap_or("").trim())
            .collect();
        out.push_str(&format!("{n}:{}\n", values.join(",")));
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

fn string_to_sign(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    date_line: &str,
    host_bucket: Option<&str>,
) -> String {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    format!(
        "{}\n{}\n{}\n{}\n{}{}",
        method.as_str(),
        h("content-md5"),
        h("content-type"),
        date_line,
        amz_headers(headers),
        resource(uri, host_bucket)
    )
}

fn sign(secret: &str, sts: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(sts.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn context(access_key: &str, expected: &str, sent: &str) -> Result<AuthContext, Error> {
    if !bool::from(expected.as_bytes().ct_eq(sent.as_bytes())) {
        return Err(Error::SignatureDoesNotMatch);
    }
    Ok(AuthContext {
        access_key: access_key.to_string(),
        datetime: String::new(),
        scope: String::new(),
        signing_key: Vec::new(),
        seed_signature: String::new(),
        payload: PayloadMode::Unsigned,
    })
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
    let sts = string_to_sign(method, uri, headers, date_line, host_bucket);
    context(access_key, &sign(secret, &sts), signature)
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
    let sts = string_to_sign(method, uri, headers, &q.expires.to_string(), host_bucket);
    context(&q.access_key, &sign(secret, &sts), &q.signature)
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
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg"
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
        assert_eq!(amz_headers(&h), "x-amz-meta-a:1,3\nx-amz-meta-b:2\n");
        let uri: Uri = "/b/k?uploadId=x%2By&partNumber=2&prefix=p&acl"
            .parse()
            .unwrap();
        assert_eq!(resource(&uri, None), "/b/k?acl&partNumber=2&uploadId=x+y");
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
