//! Authentication, authorisation and dispatch of S3 requests. Both
//! addressing styles are understood: path style (`/{bucket}/{key}`) and,
//! with a configured base domain, virtual-hosted style
//! (`{bucket}.{domain}/{key}`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::request::Parts;
use http::{Method, StatusCode};
use metastore::api::KeyInfo;
use percent_encoding::percent_decode_str;
use troika_rpc::health::{ready_response, Health, Ready};

use super::auth::sigv4::{
    parse_authorization, parse_presigned, verify_header_auth, verify_presigned,
};
use super::auth::{sigv2, AuthContext};
use super::error::S3Error;
use super::{batch, bucket, copy, cors, list, multipart, object};
use crate::data::MIN_COPIES;
use crate::error::Error;
use crate::server::Gateway;

/// One authenticated S3 request, decoded.
/// The body travels separately (`Body` is not `Sync`, and handlers hold
/// `&S3Request` across awaits).
pub struct S3Request {
    pub parts: Parts,
    pub auth: AuthContext,
    /// The access key that signed the request, with its bucket rights.
    pub key_info: KeyInfo,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub query: HashMap<String, String>,
}

impl S3Request {
    pub fn bucket(&self) -> &str {
        self.bucket.as_deref().unwrap_or("")
    }

    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn has_query(&self, name: &str) -> bool {
        self.query.contains_key(name)
    }

    /// The query parameters that say what the request is (subresources and
    /// options), without those of the signature.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.query.keys().map(String::as_str).filter(|k| {
            !k.starts_with("X-Amz-")
                && !matches!(*k, "x-id" | "AWSAccessKeyId" | "Signature" | "Expires")
        })
    }

    /// Whether this is CreateBucket: a PUT of a bucket with no parameters.
    pub fn creates_bucket(&self) -> bool {
        self.parts.method == Method::PUT && self.key.is_none() && self.params().next().is_none()
    }

    /// Whether every parameter is one of `allowed`.
    pub fn params_within(&self, allowed: &[&str]) -> bool {
        self.params().all(|k| allowed.contains(&k))
    }

    /// Whether the request names an object subresource not served here.
    fn unserved_subresource(&self) -> bool {
        self.params().any(|k| OBJECT_SUBRESOURCES.contains(&k))
    }
}

/// Object subresources this gateway does not serve: a request naming one
/// is answered NotImplemented rather than taken for a plain GET or PUT
/// (`PUT ?tagging` must not overwrite the object with a tagging document).
/// Other parameters pass: presigners hoist signed headers such as
/// `content-type` into the query.
const OBJECT_SUBRESOURCES: [&str; 9] = [
    "tagging",
    "retention",
    "legal-hold",
    "torrent",
    "restore",
    "select",
    "attributes",
    "renameObject",
    "versions",
];

/// A presigned URL, V4 (`X-Amz-Signature`) or V2 (`Signature`).
fn is_presigned(parts: &Parts) -> bool {
    parts.uri.query().is_some_and(|q| {
        q.contains("X-Amz-Signature") || (q.contains("Signature=") && q.contains("AWSAccessKeyId="))
    })
}

/// A new request id: 16 hex digits, as S3's `x-amz-request-id`.
fn request_id() -> String {
    format!("{:016X}", rand::random::<u64>())
}

pub async fn handle(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    use tracing::Instrument;
    let id = request_id();
    let span = tracing::info_span!("s3", request_id = %id);
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let started = std::time::Instant::now();
    let mut resp = serve(gw, req, &id).instrument(span.clone()).await;
    let _enter = span.enter();
    tracing::debug!(target: "troika::access", %method, %path, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    let h = resp.headers_mut();
    if let Ok(v) = http::HeaderValue::from_str(&id) {
        h.insert("x-amz-request-id", v.clone());
        h.insert("x-amz-id-2", v);
    }
    resp
}

async fn serve(gw: Arc<Gateway>, req: Request, request_id: &str) -> Response {
    let (parts, body) = req.into_parts();
    let signed = parts.headers.contains_key(http::header::AUTHORIZATION) || is_presigned(&parts);
    let target = match target(&gw, &parts) {
        Ok(t) => t,
        Err(e) => {
            return S3Error::from_error(&e, parts.uri.path())
                .with_request_id(request_id)
                .into_response()
        }
    };
    if parts.method == Method::GET && !signed && target.host_bucket.is_none() {
        match parts.uri.path() {
            "/health" => return Json(Health::ok("gateway")).into_response(),
            "/ready" => return ready(&gw).await,
            _ => {}
        }
    }
    if parts.method == Method::OPTIONS {
        return cors::preflight(&gw, target.bucket.as_deref(), &parts.headers).await;
    }
    let resource = parts.uri.path().to_string();
    let method = parts.method.clone();
    let origin = parts
        .headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let cors_bucket = target.bucket.clone();
    let mut resp = match route(&gw, parts, target, body).await {
        Ok(resp) => resp,
        Err(e) => {
            if matches!(
                e,
                Error::Internal(_) | Error::Meta(metastore::Error::Internal(_))
            ) {
                tracing::error!(error = %e, %resource, "request failed");
            }
            let mut resp = S3Error::from_error(&e, &resource)
                .with_request_id(request_id)
                .into_response();
            if method == Method::HEAD || resp.status() == StatusCode::NOT_MODIFIED {
                // HEAD and 304 answers carry no body.
                *resp.body_mut() = Body::empty();
                resp.headers_mut().remove(http::header::CONTENT_TYPE);
            }
            resp
        }
    };
    if let (Some(origin), Some(b)) = (origin, cors_bucket) {
        cors::decorate(&gw, &b, &method, &origin, &mut resp).await;
    }
    resp
}

async fn ready(gw: &Gateway) -> Response {
    let alive = gw.cluster.writable_count();
    let meta_ok = gw.ns.meta().list_nodes().await.is_ok();
    let ready = meta_ok && alive >= MIN_COPIES;
    ready_response(Ready {
        ready,
        role: "gateway".into(),
        detail: format!(
            "metastore {}, {alive} writable storage nodes (need {MIN_COPIES})",
            if meta_ok { "reachable" } else { "unreachable" }
        ),
    })
}

fn decode(s: &str) -> Result<String, Error> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Error::InvalidArgument("path is not UTF-8 after decoding".into()))
}

/// `/{bucket}/{key...}` → (bucket, key), percent-decoded.
fn split_path(path: &str) -> Result<(Option<String>, Option<String>), Error> {
    let path = path.strip_prefix('/').unwrap_or(path);
    if path.is_empty() {
        return Ok((None, None));
    }
    let (b, k) = match path.split_once('/') {
        Some((b, k)) => (b, Some(k)),
        None => (path, None),
    };
    let key = match k {
        Some("") | None => None,
        Some(k) => Some(decode(k)?),
    };
    Ok((Some(decode(b)?), key))
}

/// The bucket a virtual-hosted-style `Host` names under `domain`.
fn host_bucket(host: &str, domain: &str) -> Option<String> {
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let host = host.to_ascii_lowercase();
    let bucket = host.strip_suffix(domain)?.strip_suffix('.')?;
    (!bucket.is_empty()).then(|| bucket.to_string())
}

/// Which bucket and key a request is for.
struct Target {
    bucket: Option<String>,
    key: Option<String>,
    /// The bucket came from the `Host` header (virtual-hosted style).
    host_bucket: Option<String>,
}

fn target(gw: &Gateway, parts: &Parts) -> Result<Target, Error> {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or(parts.uri.authority().map(|a| a.as_str()));
    let from_host = match (&gw.s3_domain, host) {
        (Some(domain), Some(host)) => host_bucket(host, domain),
        _ => None,
    };
    match from_host {
        Some(b) => {
            let path = parts
                .uri
                .path()
                .strip_prefix('/')
                .unwrap_or(parts.uri.path());
            let key = if path.is_empty() {
                None
            } else {
                Some(decode(path)?)
            };
            Ok(Target {
                bucket: Some(b.clone()),
                key,
                host_bucket: Some(b),
            })
        }
        None => {
            let (bucket, key) = split_path(parts.uri.path())?;
            Ok(Target {
                bucket,
                key,
                host_bucket: None,
            })
        }
    }
}

fn parse_query(q: Option<&str>) -> Result<HashMap<String, String>, Error> {
    let mut out = HashMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        // Form encoding is not used by S3 clients, but '+' may still mean a
        // space from hand-written URLs; SigV4 signers always send %20/%2B.
        out.insert(decode(k)?, decode(v)?);
    }
    Ok(out)
}

/// Checks the request's signature, whichever way it is signed: the one
/// entry point for every mode (V4 header, V4 presigned, V2 header, V2
/// presigned; streaming bodies are then checked by the body reader).
async fn authenticate(
    gw: &Gateway,
    parts: &Parts,
    host_bucket: Option<&str>,
) -> Result<(AuthContext, KeyInfo), Error> {
    let now = SystemTime::now();
    let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        let query = uri.query().unwrap_or("");
        if let Some(q) = sigv2::parse_query(query)? {
            let key = gw.access_key(&q.access_key).await?;
            let ctx =
                sigv2::verify_query(method, uri, headers, &q, &key.secret_key, host_bucket, now)?;
            return Ok((ctx, key));
        }
        if is_presigned(parts) {
            let p = parse_presigned(query)?;
            let key = gw.access_key(&p.auth.access_key).await?;
            let ctx = verify_presigned(
                &parts.method,
                &parts.uri,
                &parts.headers,
                &p,
                &key.secret_key,
                now,
            )?;
            return Ok((ctx, key));
        }
        return Err(Error::AccessDenied(
            "anonymous requests are not allowed".into(),
        ));
    };
    let value = value
        .to_str()
        .map_err(|_| Error::AuthorizationMalformed("Authorization is not text".into()))?;
    if let Some((access_key, signature)) = sigv2::parse_header(value) {
        let key = gw.access_key(&access_key).await?;
        let ctx = sigv2::verify_header(
            method,
            uri,
            headers,
            &access_key,
            &signature,
            &key.secret_key,
            host_bucket,
            now,
        )?;
        return Ok((ctx, key));
    }
    let header = parse_authorization(value)?;
    let key = gw.access_key(&header.access_key).await?;
    let ctx = verify_header_auth(
        &parts.method,
        &parts.uri,
        &parts.headers,
        &header,
        &key.secret_key,
        now,
    )?;
    tracing::debug!(method = %parts.method, path = %parts.uri.path(), payload = ?ctx.payload, "authenticated");
    Ok((ctx, key))
}

/// Request headers asking for a protection this gateway does not give.
/// Such a request is refused before anything is stored, never served
/// without the protection (an "encrypted" object stored in plaintext, a
/// "public" one that is not, a "locked" one that can be deleted).
const UNSUPPORTED_ON_WRITES: [(&str, &str); 12] = [
    (
        "x-amz-server-side-encryption",
        "server-side encryption is not supported",
    ),
    (
        "x-amz-server-side-encryption-aws-kms-key-id",
        "SSE-KMS is not supported",
    ),
    (
        "x-amz-server-side-encryption-context",
        "SSE-KMS is not supported",
    ),
    (
        "x-amz-server-side-encryption-bucket-key-enabled",
        "SSE-KMS is not supported",
    ),
    (
        "x-amz-grant-read",
        "ACL grants are not supported: access is granted per access key (troika admin key allow)",
    ),
    (
        "x-amz-grant-write",
        "ACL grants are not supported: access is granted per access key (troika admin key allow)",
    ),
    (
        "x-amz-grant-read-acp",
        "ACL grants are not supported: access is granted per access key (troika admin key allow)",
    ),
    (
        "x-amz-grant-write-acp",
        "ACL grants are not supported: access is granted per access key (troika admin key allow)",
    ),
    (
        "x-amz-grant-full-control",
        "ACL grants are not supported: access is granted per access key (troika admin key allow)",
    ),
    ("x-amz-object-lock-mode", "object lock is not supported"),
    (
        "x-amz-tagging",
        "object tagging is not supported: the tags would not be kept",
    ),
    (
        "x-amz-object-lock-retain-until-date",
        "object lock is not supported",
    ),
];

/// Headers refused on every request, reads included: a read with a
/// customer key would otherwise succeed on an object never encrypted.
const UNSUPPORTED_ALWAYS: [(&str, &str); 6] = [
    (
        "x-amz-server-side-encryption-customer-algorithm",
        "SSE-C is not supported",
    ),
    (
        "x-amz-server-side-encryption-customer-key",
        "SSE-C is not supported",
    ),
    (
        "x-amz-server-side-encryption-customer-key-md5",
        "SSE-C is not supported",
    ),
    (
        "x-amz-copy-source-server-side-encryption-customer-algorithm",
        "SSE-C is not supported",
    ),
    (
        "x-amz-copy-source-server-side-encryption-customer-key",
        "SSE-C is not supported",
    ),
    (
        "x-amz-copy-source-server-side-encryption-customer-key-md5",
        "SSE-C is not supported",
    ),
];

/// The one storage class served: every object has three copies. A write
/// asking for another is refused rather than stored under a class it
/// would not have.
pub const STORAGE_CLASS: &str = "STANDARD";

/// Canned ACLs that describe what every object here already has: the
/// bucket's keys hold it, nobody else. Any other (public-read, …) is
/// refused.
pub const CANNED_ACLS_SERVED: [&str; 2] = ["private", "bucket-owner-full-control"];

/// Refuses a request that asks for a protection not given here.
fn refuse_unsupported(req: &S3Request) -> Result<(), Error> {
    let refuse = |header: &str, why: &str| {
        Err(Error::Unsupported {
            header: header.to_string(),
            why: why.to_string(),
        })
    };
    for (header, why) in UNSUPPORTED_ALWAYS {
        if req.parts.headers.contains_key(header) {
            return refuse(header, why);
        }
    }
    if matches!(req.parts.method, Method::GET | Method::HEAD) {
        if req
            .parts
            .headers
            .contains_key("x-amz-server-side-encryption")
        {
            return Err(Error::InvalidArgument(
                "x-amz-server-side-encryption is a header of writes, not of GET or HEAD".into(),
            ));
        }
        return Ok(());
    }
    if let Some(class) = req.header("x-amz-storage-class") {
        if class != STORAGE_CLASS {
            return Err(Error::InvalidStorageClass(class.to_string()));
        }
    }
    for (header, why) in UNSUPPORTED_ON_WRITES {
        if req.parts.headers.contains_key(header) {
            return refuse(header, why);
        }
    }
    if let Some(v) = req.parts.headers.get("x-amz-object-lock-legal-hold") {
        if !v.as_bytes().eq_ignore_ascii_case(b"OFF") {
            return refuse(
                "x-amz-object-lock-legal-hold",
                "object lock is not supported",
            );
        }
    }
    if let Some(v) = req.parts.headers.get("x-amz-bucket-object-lock-enabled") {
        if !v.as_bytes().eq_ignore_ascii_case(b"false") {
            return refuse(
                "x-amz-bucket-object-lock-enabled",
                "object lock is not supported",
            );
        }
    }
    if let Some(v) = req.parts.headers.get("x-amz-acl") {
        let acl = v.to_str().unwrap_or("").trim();
        if !CANNED_ACLS_SERVED.contains(&acl) {
            return refuse(
                "x-amz-acl",
                &format!(
                    "canned ACL {acl:?} is not supported: objects are private to the keys \
                     granted their bucket (troika admin key allow)"
                ),
            );
        }
    }
    Ok(())
}

/// `x-amz-expected-bucket-owner` (and, for copies,
/// `x-amz-source-expected-bucket-owner`): the request goes ahead only if
/// the bucket it names is owned by that owner, a guard clients use against
/// writing into a bucket that changed hands.
async fn check_expected_owners(gw: &Gateway, req: &S3Request) -> Result<(), Error> {
    let expect = |header: &'static str, bucket: String| {
        req.header(header)
            .map(|owner| (header, owner.trim(), bucket))
    };
    let target = req
        .bucket
        .clone()
        .filter(|_| !req.creates_bucket())
        .and_then(|b| expect("x-amz-expected-bucket-owner", b));
    let source = req
        .header("x-amz-copy-source")
        .and_then(|_| copy::parse_source(req).ok())
        .and_then(|src| expect("x-amz-source-expected-bucket-owner", src.bucket));
    for (header, owner, bucket) in target.into_iter().chain(source) {
        let info = gw.ns.head_bucket(&bucket).await?;
        if bucket::owner_id(&info) != owner {
            return Err(Error::AccessDenied(format!(
                "{header}: bucket {bucket} is not owned by {owner:?}"
            )));
        }
    }
    Ok(())
}

/// Whether the request's key may do this to its bucket: reads need read,
/// everything else write. Any key may list buckets (it sees its own) and
/// create one (it is granted the new bucket).
fn authorize(req: &S3Request) -> Result<(), Error> {
    let Some(bucket) = &req.bucket else {
        return Ok(());
    };
    if req.creates_bucket() {
        return Ok(());
    }
    let m = &req.parts.method;
    let grant = req.key_info.grant(bucket);
    let allowed = if *m == Method::GET || *m == Method::HEAD {
        grant.read
    } else {
        grant.write
    };
    if allowed {
        Ok(())
    } else {
        Err(Error::AccessDenied(format!(
            "this key may not {} bucket {bucket}",
            if grant.read { "write to" } else { "use" }
        )))
    }
}

/// Bucket subresources this gateway answers with a fixed "none" reply.
fn fixed_subresource(req: &S3Request) -> Option<Result<Response, Error>> {
    let missing = |code: &'static str, what: &str| {
        Some(Err(Error::NotConfigured {
            code,
            what: what.to_string(),
        }))
    };
    if req.parts.method != Method::GET || req.key.is_some() {
        return None;
    }
    if req.has_query("policy") {
        missing("NoSuchBucketPolicy", "the bucket has no policy")
    } else if req.has_query("lifecycle") {
        missing(
            "NoSuchLifecycleConfiguration",
            "the bucket has no lifecycle configuration",
        )
    } else if req.has_query("tagging") {
        missing("NoSuchTagSet", "the bucket has no tags")
    } else if req.has_query("website") {
        missing(
            "NoSuchWebsiteConfiguration",
            "the bucket has no website configuration",
        )
    } else if req.has_query("encryption") {
        missing(
            "ServerSideEncryptionConfigurationNotFoundError",
            "the bucket has no encryption configuration",
        )
    } else {
        None
    }
}

async fn route(gw: &Gateway, parts: Parts, target: Target, body: Body) -> Result<Response, Error> {
    let (auth, key_info) = authenticate(gw, &parts, target.host_bucket.as_deref()).await?;
    let query = parse_query(parts.uri.query())?;
    let mut req = S3Request {
        parts,
        auth,
        key_info,
        bucket: target.bucket,
        key: target.key,
        query,
    };
    if let Err(denied) = authorize(&req) {
        // The cached rights may predate a grant.
        req.key_info = gw.access_key_fresh(&req.key_info.access_key).await?;
        if authorize(&req).is_err() {
            // A bucket that does not exist is NoSuchBucket for every key,
            // as S3 answers: 403 only for one that exists and is not yours.
            gw.ns.head_bucket(req.bucket()).await?;
            return Err(denied);
        }
    }
    refuse_unsupported(&req)?;
    check_expected_owners(gw, &req).await?;
    if let Some(r) = fixed_subresource(&req) {
        if let Some(b) = &req.bucket {
            gw.ns.head_bucket(b).await?;
        }
        return r;
    }
    if req.query.get("versionId").is_some_and(|v| v != "null") {
        return Err(Error::InvalidArgument(
            "versioning is not enabled: the only version is \"null\"".into(),
        ));
    }
    let method = req.parts.method.clone();
    let copy = req.header("x-amz-copy-source").is_some();
    match (method, req.bucket.is_some(), req.key.is_some()) {
        (Method::GET, false, _) => bucket::list_buckets(gw, &req).await,
        (Method::PUT, true, false) if req.has_query("cors") => cors::put(gw, &req, body).await,
        (Method::GET, true, false) if req.has_query("cors") => cors::get(gw, &req).await,
        (Method::DELETE, true, false) if req.has_query("cors") => cors::delete(gw, &req).await,
        (_, true, false) if req.has_query("acl") => bucket::acl(gw, &req, body).await,
        (Method::PUT, true, false) if req.params_within(&[]) => bucket::create(gw, &req).await,
        (Method::DELETE, true, false) if req.params_within(&[]) => bucket::delete(gw, &req).await,
        (Method::HEAD, true, false) => bucket::head(gw, &req).await,
        (Method::GET, true, false) if req.has_query("location") => bucket::location(gw, &req).await,
        (Method::GET, true, false) if req.has_query("versioning") => {
            bucket::versioning(gw, &req).await
        }
        (Method::GET, true, false) if req.has_query("uploads") => {
            multipart::list_uploads(gw, &req).await
        }
        (Method::GET, true, false) if list::is_listing(&req) => list::list_objects(gw, &req).await,
        (Method::POST, true, false) if req.has_query("delete") => {
            batch::delete_objects(gw, &req, body).await
        }
        (_, true, true) if req.has_query("acl") => bucket::acl(gw, &req, body).await,
        (Method::PUT, true, true) if req.has_query("uploadId") && copy => {
            multipart::upload_part_copy(gw, &req).await
        }
        (Method::PUT, true, true) if req.has_query("uploadId") => {
            multipart::upload_part(gw, &req, body).await
        }
        (_, true, true) if req.unserved_subresource() => Err(Error::NotImplemented(format!(
            "{} on this object subresource",
            req.parts.method
        ))),
        (Method::PUT, true, true) if copy => copy::copy_object(gw, &req).await,
        (Method::PUT, true, true) => object::put(gw, &req, body).await,
        (Method::GET, true, true) if req.has_query("uploadId") => {
            multipart::list_parts(gw, &req).await
        }
        (Method::GET, true, true) => object::get(gw, &req, false).await,
        (Method::HEAD, true, true) => object::get(gw, &req, true).await,
        (Method::DELETE, true, true) if req.has_query("uploadId") => {
            multipart::abort(gw, &req).await
        }
        (Method::DELETE, true, true) => object::delete(gw, &req).await,
        (Method::POST, true, true) if req.has_query("uploads") => multipart::create(gw, &req).await,
        (Method::POST, true, true) if req.has_query("uploadId") => {
            multipart::complete(gw, &req, body).await
        }
        (m, _, _) => Err(Error::NotImplemented(format!(
            "{m} {} is not supported",
            req.parts.uri
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_and_decode() {
        assert_eq!(split_path("/").unwrap(), (None, None));
        assert_eq!(split_path("/b").unwrap(), (Some("b".into()), None));
        assert_eq!(split_path("/b/").unwrap(), (Some("b".into()), None));
        assert_eq!(
            split_path("/b/a%20b/c%2Fd").unwrap(),
            (Some("b".into()), Some("a b/c/d".into()))
        );
        assert!(split_path("/b/%ff").is_err());
    }

    #[test]
    fn virtual_hosts() {
        let d = "s3.example.com";
        assert_eq!(
            host_bucket("photos.s3.example.com", d).as_deref(),
            Some("photos")
        );
        assert_eq!(
            host_bucket("a.b.s3.example.com:9000", d).as_deref(),
            Some("a.b")
        );
        assert_eq!(
            host_bucket("Photos.S3.Example.com", d).as_deref(),
            Some("photos")
        );
        assert_eq!(host_bucket("s3.example.com", d), None);
        assert_eq!(host_bucket("xs3.example.com", d), None);
        assert_eq!(host_bucket("127.0.0.1:9000", d), None);
    }
}
