//! PutObject, GetObject, HeadObject, DeleteObject, and the body intake that
//! PutObject and UploadPart share.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};
use metastore::api::{ObjectInfo, ObjectMeta, WriteCondition};

use super::auth::{AuthContext, BodyReader};
use super::checksum::{self, Algo, Expected};
use super::router::S3Request;
use crate::data::Written;
use crate::error::Error;
use crate::namespace::Namespace;
use crate::server::Gateway;

/// S3's limit for one PUT (and one part).
pub const PUT_MAX_BYTES: u64 = 5 << 30;

/// Content headers stored with an object and returned on GET/HEAD.
const STORED_HEADERS: [&str; 6] = [
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
];
const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

/// Reads a request body into blobs and verifies every digest the client
/// sent (Content-MD5, `x-amz-checksum-*` header or trailer, the signed
/// payload hash, chunk signatures) before returning: the caller commits
/// only what passed.
pub async fn receive(
    gw: &Gateway,
    parts: &Parts,
    auth: &AuthContext,
    body: Body,
) -> Result<Written, Error> {
    let headers = &parts.headers;
    let content_md5 = content_md5(headers)?;
    let expected = checksum::expected(headers)?;
    let algo = match &expected {
        Expected::Header(a, _) | Expected::Trailer(a) => Some(*a),
        Expected::None => None,
    };
    let mut reader = BodyReader::new(body, headers, auth)?;
    if reader.declared_len().is_some_and(|n| n > PUT_MAX_BYTES) {
        return Err(Error::EntityTooLarge);
    }
    let written = gw.data.write(&mut reader, algo, PUT_MAX_BYTES).await?;
    if content_md5.is_some_and(|m| m != written.md5) {
        return Err(Error::BadDigest);
    }
    if let Some((algo, computed)) = &written.checksum {
        let sent = match &expected {
            Expected::Header(_, v) => v.clone(),
            Expected::Trailer(a) => reader
                .trailer(&a.header())
                .ok_or_else(|| {
                    Error::InvalidRequest(format!("announced trailer {} is missing", a.header()))
                })?
                .to_string(),
            Expected::None => unreachable!("a checksum is computed only when one is expected"),
        };
        checksum::check(*algo, computed, &sent)?;
    }
    Ok(written)
}

fn content_md5(headers: &HeaderMap) -> Result<Option<[u8; 16]>, Error> {
    let Some(v) = headers.get("content-md5") else {
        return Ok(None);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v.as_bytes())
        .map_err(|_| Error::InvalidArgument("Content-MD5 is not base64".into()))?;
    <[u8; 16]>::try_from(raw.as_slice())
        .map(Some)
        .map_err(|_| Error::InvalidArgument("Content-MD5 is not 16 bytes".into()))
}

/// Reads a small request body (an XML document) whole, checking every
/// digest the client sent for it, as [`receive`] does for object data.
/// `x-amz-checksum-*` is checked only where it covers the body
/// (`checksum_is_body`): on CompleteMultipartUpload it is the object's.
pub async fn read_small_body(
    req: &S3Request,
    body: Body,
    limit: usize,
    checksum_is_body: bool,
) -> Result<Vec<u8>, Error> {
    use md5::Digest;
    let headers = &req.parts.headers;
    let md5 = content_md5(headers)?;
    let expected = if checksum_is_body {
        checksum::expected(headers)?
    } else {
        Expected::None
    };
    let mut reader = BodyReader::new(body, headers, &req.auth)?;
    let data = reader.read_all(limit).await?;
    if md5.is_some_and(|m| m[..] != md5::Md5::digest(&data)[..]) {
        return Err(Error::BadDigest);
    }
    let (algo, sent) = match &expected {
        Expected::None => return Ok(data),
        Expected::Header(a, v) => (*a, v.clone()),
        Expected::Trailer(a) => (
            *a,
            reader
                .trailer(&a.header())
                .ok_or_else(|| {
                    Error::InvalidRequest(format!("announced trailer {} is missing", a.header()))
                })?
                .to_string(),
        ),
    };
    let mut h = checksum::Hasher::new(algo);
    h.update(&data);
    checksum::check(algo, &h.finish_base64(), &sent)?;
    Ok(data)
}

/// `If-Match` / `If-None-Match` of a write, checked where it is committed.
pub fn write_condition(req: &S3Request) -> WriteCondition {
    WriteCondition {
        if_match: req.header("if-match").map(str::to_string),
        if_none_match: req.header("if-none-match").map(str::to_string),
    }
}

/// The content headers and `x-amz-meta-*` of a request, as stored.
pub fn object_meta(headers: &HeaderMap) -> ObjectMeta {
    let mut meta = ObjectMeta::default();
    for name in STORED_HEADERS {
        let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        let v = if name == "content-encoding" {
            // aws-chunked is how the body travelled, not what it is.
            v.split(',')
                .map(str::trim)
                .filter(|t| !t.eq_ignore_ascii_case("aws-chunked") && !t.is_empty())
                .collect::<Vec<_>>()
                .join(",")
        } else {
            v.to_string()
        };
        if !v.is_empty() {
            meta.headers.insert(name.to_string(), v);
        }
    }
    for (k, v) in headers {
        if let Some(name) = k.as_str().strip_prefix("x-amz-meta-") {
            if let Ok(v) = v.to_str() {
                meta.user.insert(name.to_string(), v.to_string());
            }
        }
    }
    meta
}

pub async fn put(gw: &Gateway, req: &S3Request, body: Body) -> Result<Response, Error> {
    let (bucket, key) = (req.bucket().to_string(), req.key().to_string());
    Namespace::check_key(&key)?;
    // Refuse before streaming gigabytes into a bucket that does not exist;
    // for a small body the commit itself finds out, one round trip sooner.
    let declared = req
        .header("x-amz-decoded-content-length")
        .or(req.header("content-length"))
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_none_or(|n| n > crate::data::BLOB_MAX_BYTES as u64) {
        gw.ns.head_bucket(&bucket).await?;
    }
    let written = receive(gw, &req.parts, &req.auth, body).await?;
    let etag = hex::encode(written.md5);
    let mut meta = object_meta(&req.parts.headers);
    meta.checksum = written
        .checksum
        .as_ref()
        .map(|(a, v)| (a.name().to_string(), v.clone()));
    let checksum = written.checksum.clone();
    gw.ns
        .put_object(
            &bucket,
            &key,
            written,
            etag.clone(),
            meta,
            write_condition(req),
        )
        .await?;
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    h.insert(http::header::ETAG, quoted(&etag));
    if let Some((algo, value)) = checksum {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(
                http::HeaderName::from_bytes(algo.header().as_bytes()).expect("valid name"),
                v,
            );
        }
    }
    Ok(resp)
}

pub fn quoted(etag: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{etag}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// A `Range: bytes=…` header resolved against the object size:
/// `Ok(None)` for the whole object.
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, Error> {
    let Some(h) = header else { return Ok(None) };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        // Multiple ranges: S3 serves the whole object.
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| Error::InvalidRange)?;
        if n == 0 {
            return Err(Error::InvalidRange);
        }
        (size.saturating_sub(n), size)
    } else {
        let start: u64 = a.parse().map_err(|_| Error::InvalidRange)?;
        let end = if b.is_empty() {
            size
        } else {
            let last: u64 = b.parse().map_err(|_| Error::InvalidRange)?;
            if last < start {
                return Err(Error::InvalidRange);
            }
            (last + 1).min(size)
        };
        (start, end)
    };
    if range.0 >= size {
        return Err(Error::InvalidRange);
    }
    Ok(Some(range))
}

pub fn object_headers(info: &ObjectInfo, h: &mut HeaderMap, with_checksum: bool) {
    h.insert(http::header::ETAG, quoted(&info.etag));
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(info.mtime);
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(mtime)) {
        h.insert(http::header::LAST_MODIFIED, v);
    }
    h.insert(
        http::header::ACCEPT_RANGES,
        HeaderValue::from_static("bytes"),
    );
    if !info.meta.headers.contains_key("content-type") {
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(DEFAULT_CONTENT_TYPE),
        );
    }
    for (k, v) in &info.meta.headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(k, v);
        }
    }
    for (k, v) in &info.meta.user {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(format!("x-amz-meta-{k}").as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(k, v);
        }
    }
    if with_checksum {
        if let Some((algo, value)) = &info.meta.checksum {
            if let (Some(a), Ok(v)) = (Algo::from_name(algo), HeaderValue::from_str(value)) {
                h.insert(
                    http::HeaderName::from_bytes(a.header().as_bytes()).expect("valid name"),
                    v,
                );
            }
        }
    }
}

/// Response headers a signed GET may override, and the query parameter
/// that sets each.
const OVERRIDES: [(&str, &str); 6] = [
    ("response-content-type", "content-type"),
    ("response-content-language", "content-language"),
    ("response-expires", "expires"),
    ("response-cache-control", "cache-control"),
    ("response-content-disposition", "content-disposition"),
    ("response-content-encoding", "content-encoding"),
];

/// The byte range of part `n` of an object (1-based), and the part count.
fn part_range(info: &ObjectInfo, n: u32) -> Result<((u64, u64), usize), Error> {
    let parts = &info.meta.parts;
    if parts.is_empty() {
        // A single-PUT object is one part.
        return match n {
            1 => Ok(((0, info.size), 1)),
            _ => Err(metastore::Error::InvalidPartNumber(n).into()),
        };
    }
    let i = n as usize;
    if i == 0 || i > parts.len() {
        return Err(metastore::Error::InvalidPartNumber(n).into());
    }
    let start: u64 = parts[..i - 1].iter().sum();
    Ok(((start, start + parts[i - 1]), parts.len()))
}

pub async fn get(gw: &Gateway, req: &S3Request, head_only: bool) -> Result<Response, Error> {
    let info = gw.ns.get_object(req.bucket(), req.key()).await?;
    super::conditional::check_read(&req.parts.headers, &info.etag, info.mtime)?;
    let part_number =
        match req.query.get("partNumber") {
            Some(n) => Some(n.parse::<u32>().map_err(|_| {
                Error::InvalidArgument("partNumber must be a positive number".into())
            })?),
            None => None,
        };
    let (range, parts_count) = match part_number {
        Some(_) if req.header("range").is_some() => {
            return Err(Error::InvalidRequest(
                "Range and partNumber cannot be used together".into(),
            ))
        }
        Some(n) => {
            let (r, count) = part_range(&info, n)?;
            // A whole object asked for as its only part is a plain answer.
            let r = (r != (0, info.size)).then_some(r);
            (r, Some(count))
        }
        None => (parse_range(req.header("range"), info.size)?, None),
    };
    let (start, end) = range.unwrap_or((0, info.size));
    let checksum_mode = req
        .header("x-amz-checksum-mode")
        .is_some_and(|v| v.eq_ignore_ascii_case("enabled"));
    let body = if head_only {
        Body::empty()
    } else {
        Body::from_stream(gw.data.read(&info, start, end).await)
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    object_headers(&info, h, checksum_mode && range.is_none());
    h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if let Some(count) = parts_count.filter(|_| !info.meta.parts.is_empty()) {
        h.insert("x-amz-mp-parts-count", HeaderValue::from(count));
    }
    for (param, header) in OVERRIDES {
        if let Some(v) = req.query.get(param) {
            let v = HeaderValue::from_str(v).map_err(|_| {
                Error::InvalidArgument(format!("{param} is not a valid header value"))
            })?;
            h.insert(header, v);
        }
    }
    if range.is_some() {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        let cr = format!("bytes {start}-{}/{}", end - 1, info.size);
        resp.headers_mut().insert(
            http::header::CONTENT_RANGE,
            HeaderValue::from_str(&cr).expect("ascii"),
        );
    }
    Ok(resp)
}

pub async fn delete(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    gw.ns.delete_object(req.bucket(), req.key()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |h: &str, size| parse_range(Some(h), size);
        assert_eq!(r("bytes=0-9", 100).unwrap(), Some((0, 10)));
        assert_eq!(r("bytes=90-", 100).unwrap(), Some((90, 100)));
        assert_eq!(r("bytes=-10", 100).unwrap(), Some((90, 100)));
        assert_eq!(r("bytes=-200", 100).unwrap(), Some((0, 100)));
        assert_eq!(r("bytes=50-500", 100).unwrap(), Some((50, 100)));
        assert!(matches!(r("bytes=100-", 100), Err(Error::InvalidRange)));
        assert!(matches!(r("bytes=0-0", 0), Err(Error::InvalidRange)));
        assert!(matches!(r("bytes=5-3", 100), Err(Error::InvalidRange)));
        assert_eq!(r("items=0-1", 100).unwrap(), None);
        assert_eq!(parse_range(None, 100).unwrap(), None);
    }

    #[test]
    fn meta_drops_transfer_encoding() {
        let mut h = HeaderMap::new();
        h.insert("content-encoding", "aws-chunked,gzip".parse().unwrap());
        h.insert("content-type", "image/png".parse().unwrap());
        h.insert("x-amz-meta-color", "blue".parse().unwrap());
        let m = object_meta(&h);
        assert_eq!(m.headers["content-encoding"], "gzip");
        assert_eq!(m.headers["content-type"], "image/png");
        assert_eq!(m.user["color"], "blue");
        h.insert("content-encoding", "aws-chunked".parse().unwrap());
        assert!(!object_meta(&h).headers.contains_key("content-encoding"));
    }
}
