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
/// only what passed. `required` is the checksum a multipart upload was
/// created with: computed whether or not the client sent it, and a
/// checksum of another algorithm is refused.
pub async fn receive(
    gw: &Gateway,
    parts: &Parts,
    auth: &AuthContext,
    body: Body,
    required: Option<Algo>,
) -> Result<Written, Error> {
    let headers = &parts.headers;
    let content_md5 = content_md5(headers)?;
    let expected = checksum::expected(headers)?;
    let sent_algo = match &expected {
        Expected::Header(a, _) | Expected::Trailer(a) => Some(*a),
        Expected::None => None,
    };
    if let (Some(want), Some(sent)) = (required, sent_algo) {
        if want != sent {
            return Err(Error::InvalidRequest(format!(
                "the upload was created with a {} checksum; this part carries {}",
                want.upper(),
                sent.upper()
            )));
        }
    }
    let algo = sent_algo.or(required);
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
            Expected::Header(_, v) => Some(v.clone()),
            Expected::Trailer(a) => Some(
                reader
                    .trailer(&a.header())
                    .ok_or_else(|| {
                        Error::InvalidRequest(format!(
                            "announced trailer {} is missing",
                            a.header()
                        ))
                    })?
                    .to_string(),
            ),
            // Computed for the upload, not sent: nothing to compare.
            Expected::None => None,
        };
        if let Some(sent) = sent {
            checksum::check(*algo, computed, &sent)?;
        }
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

/// Most bytes of user metadata (`x-amz-meta-*` names and values) one
/// object may carry, as S3 allows.
pub const USER_META_MAX_BYTES: usize = 2 << 10;
/// Most bytes of one stored content header (Content-Type, …), and of all
/// of them together: they are kept in the object's metadata record.
const STORED_HEADER_MAX_BYTES: usize = 2 << 10;
const STORED_HEADERS_MAX_BYTES: usize = 8 << 10;

/// A header value as stored: its bytes exactly, each byte one character
/// (ISO-8859-1), so any value a client sends comes back byte for byte.
/// Values of visible ASCII, what nearly every client sends, are plain text.
pub fn header_text(v: &HeaderValue) -> String {
    v.as_bytes().iter().map(|&b| char::from(b)).collect()
}

/// The header value a stored text stands for: the inverse of
/// [`header_text`].
pub fn header_value(text: &str) -> Option<HeaderValue> {
    let bytes: Option<Vec<u8>> = text.chars().map(|c| u8::try_from(c).ok()).collect();
    match bytes {
        Some(b) => HeaderValue::from_bytes(&b).ok(),
        None => HeaderValue::from_str(text).ok(),
    }
}

/// The content headers and `x-amz-meta-*` of a request, as stored;
/// MetadataTooLarge past S3's 2 KiB of user metadata, InvalidArgument for
/// an oversized content header.
pub fn object_meta(headers: &HeaderMap) -> Result<ObjectMeta, Error> {
    let mut meta = ObjectMeta::default();
    let mut stored_bytes = 0;
    for name in STORED_HEADERS {
        let Some(v) = headers.get(name) else {
            continue;
        };
        if v.len() > STORED_HEADER_MAX_BYTES {
            return Err(Error::InvalidArgument(format!(
                "{name} is longer than {STORED_HEADER_MAX_BYTES} bytes"
            )));
        }
        stored_bytes += v.len();
        let v = header_text(v);
        let v = if name == "content-encoding" {
            // aws-chunked is how the body travelled, not what it is; the
            // rest is kept as sent.
            let tokens: Vec<&str> = v.split(',').collect();
            if tokens
                .iter()
                .any(|t| t.trim().eq_ignore_ascii_case("aws-chunked"))
            {
                tokens
                    .into_iter()
                    .filter(|t| {
                        !t.trim().eq_ignore_ascii_case("aws-chunked") && !t.trim().is_empty()
                    })
                    .collect::<Vec<_>>()
                    .join(",")
                    .trim()
                    .to_string()
            } else {
                v
            }
        } else {
            v
        };
        if !v.is_empty() {
            meta.headers.insert(name.to_string(), v);
        }
    }
    if stored_bytes > STORED_HEADERS_MAX_BYTES {
        return Err(Error::InvalidArgument(format!(
            "content headers longer than {STORED_HEADERS_MAX_BYTES} bytes in all"
        )));
    }
    let mut user_bytes = 0;
    for (k, v) in headers {
        if let Some(name) = k.as_str().strip_prefix("x-amz-meta-") {
            user_bytes += name.len() + v.len();
            if user_bytes > USER_META_MAX_BYTES {
                return Err(Error::MetadataTooLarge(USER_META_MAX_BYTES));
            }
            let text = header_text(v);
            // A repeated header is one value, comma-joined, as HTTP has it.
            meta.user
                .entry(name.to_string())
                .and_modify(|e| {
                    e.push(',');
                    e.push_str(&text)
                })
                .or_insert(text);
        }
    }
    Ok(meta)
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
    let written = receive(gw, &req.parts, &req.auth, body, None).await?;
    let etag = hex::encode(written.md5);
    let mut meta = object_meta(&req.parts.headers)?;
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
    resp.headers_mut().insert(http::header::ETAG, quoted(&etag));
    if let Some((algo, value)) = checksum {
        super::multipart::checksum_header(&mut resp, algo.name(), &value);
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
        if let (Ok(k), Some(v)) = (http::HeaderName::from_bytes(k.as_bytes()), header_value(v)) {
            h.insert(k, v);
        }
    }
    for (k, v) in &info.meta.user {
        if let (Ok(k), Some(v)) = (
            http::HeaderName::from_bytes(format!("x-amz-meta-{k}").as_bytes()),
            header_value(v),
        ) {
            h.insert(k, v);
        }
    }
    if with_checksum {
        if let Some((algo, value)) = &info.meta.checksum {
            let kind = match info.meta.checksum_type.as_deref() {
                Some("COMPOSITE") => "COMPOSITE",
                _ => "FULL_OBJECT",
            };
            checksum_headers(h, algo, value, kind);
        }
    }
}

/// `x-amz-checksum-{algo}` and `x-amz-checksum-type` of a response.
fn checksum_headers(h: &mut HeaderMap, algo: &str, value: &str, kind: &'static str) {
    if let (Some(a), Ok(v)) = (Algo::from_name(algo), HeaderValue::from_str(value)) {
        if let Ok(name) = http::HeaderName::from_bytes(a.header().as_bytes()) {
            h.insert(name, v);
            h.insert("x-amz-checksum-type", HeaderValue::from_static(kind));
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
    match super::conditional::check_read(&req.parts.headers, &info.etag, info.mtime) {
        Err(Error::NotModified) => return Ok(not_modified(&info)),
        other => other?,
    }
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
    if let (true, Some(n), Some((algo, _))) = (checksum_mode, part_number, &info.meta.checksum) {
        // A part of a composite object has a checksum of its own.
        if let Some(v) = info.meta.part_checksums.get((n as usize).wrapping_sub(1)) {
            checksum_headers(h, algo, v, "COMPOSITE");
        }
    }
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

/// 304 Not Modified, with the validators and cache headers a 200 would
/// carry (RFC 7232 §4.1), so a cache can revalidate its copy.
fn not_modified(info: &ObjectInfo) -> Response {
    let mut resp = StatusCode::NOT_MODIFIED.into_response();
    let h = resp.headers_mut();
    h.insert(http::header::ETAG, quoted(&info.etag));
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(info.mtime);
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(mtime)) {
        h.insert(http::header::LAST_MODIFIED, v);
    }
    for name in ["cache-control", "expires"] {
        if let Some(v) = info.meta.headers.get(name).and_then(|v| header_value(v)) {
            h.insert(name, v);
        }
    }
    resp
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
        let m = object_meta(&h).unwrap();
        assert_eq!(m.headers["content-encoding"], "gzip");
        assert_eq!(m.headers["content-type"], "image/png");
        assert_eq!(m.user["color"], "blue");
        h.insert("content-encoding", "aws-chunked".parse().unwrap());
        assert!(!object_meta(&h)
            .unwrap()
            .headers
            .contains_key("content-encoding"));
        // Regression: "deflate, gzip" came back as "deflate,gzip".
        h.insert("content-encoding", "deflate, gzip".parse().unwrap());
        assert_eq!(
            object_meta(&h).unwrap().headers["content-encoding"],
            "deflate, gzip"
        );
        h.insert(
            "content-encoding",
            "aws-chunked, deflate, gzip".parse().unwrap(),
        );
        assert_eq!(
            object_meta(&h).unwrap().headers["content-encoding"],
            "deflate, gzip"
        );
    }

    #[test]
    fn metadata_is_bounded_and_kept_byte_for_byte() {
        let mut h = HeaderMap::new();
        // UTF-8 and ISO-8859-1 bytes both come back as sent.
        for bytes in [&b"caf\xc3\xa9"[..], b"Hello World\xe9"] {
            h.insert("x-amz-meta-v", HeaderValue::from_bytes(bytes).unwrap());
            let m = object_meta(&h).unwrap();
            assert_eq!(header_value(&m.user["v"]).unwrap().as_bytes(), bytes);
        }
        // 2 KiB of name and value is the most.
        h.insert(
            "x-amz-meta-v",
            HeaderValue::from_str(&"x".repeat(2048)).unwrap(),
        );
        assert!(matches!(object_meta(&h), Err(Error::MetadataTooLarge(_))));
        h.insert(
            "x-amz-meta-v",
            HeaderValue::from_str(&"x".repeat(2047)).unwrap(),
        );
        object_meta(&h).unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            HeaderValue::from_str(&"t".repeat(3000)).unwrap(),
        );
        assert!(matches!(object_meta(&h), Err(Error::InvalidArgument(_))));
    }
}
