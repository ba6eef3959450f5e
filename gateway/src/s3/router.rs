//! Authentication and dispatch of S3 requests (path-style addressing:
//! `/{bucket}/{key}`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::request::Parts;
use http::Method;
use percent_encoding::percent_decode_str;
use troika_rpc::health::{ready_response, Health, Ready};

use super::auth::sigv4::{parse_authorization, verify_header_auth};
use super::auth::AuthContext;
use super::error::S3Error;
use super::{bucket, list, multipart, object};
use crate::data::MIN_COPIES;
use crate::error::Error;
use crate::server::Gateway;

/// One authenticated S3 request, decoded.
/// The body travels separately (`Body` is not `Sync`, and handlers hold
/// `&S3Request` across awaits).
pub struct S3Request {
    pub parts: Parts,
    pub auth: AuthContext,
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
}

pub async fn handle(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let signed = parts.headers.contains_key(http::header::AUTHORIZATION)
        || parts
            .uri
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature"));
    if parts.method == Method::GET && !signed {
        match parts.uri.path() {
            "/health" => return Json(Health::ok("gateway")).into_response(),
            "/ready" => return ready(&gw).await,
            _ => {}
        }
    }
    let resource = parts.uri.path().to_string();
    let head = parts.method == Method::HEAD;
    match route(&gw, parts, body).await {
        Ok(resp) => resp,
        Err(e) => {
            if matches!(
                e,
                Error::Internal(_) | Error::Meta(metastore::Error::Internal(_))
            ) {
                tracing::error!(error = %e, %resource, "request failed");
            }
            let mut resp = S3Error::from_error(&e, &resource).into_response();
            if head {
                // HEAD answers carry no body.
                *resp.body_mut() = Body::empty();
            }
            resp
        }
    }
}

async fn ready(gw: &Gateway) -> Response {
    let alive = gw.cluster.alive_count();
    let meta_ok = gw.ns.meta().list_nodes().await.is_ok();
    let ready = meta_ok && alive >= MIN_COPIES;
    ready_response(Ready {
        ready,
        role: "gateway".into(),
        detail: format!(
            "metastore {}, {alive} live storage nodes (need {MIN_COPIES})",
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

async fn authenticate(gw: &Gateway, parts: &Parts) -> Result<AuthContext, Error> {
    let Some(value) = parts.headers.get(http::header::AUTHORIZATION) else {
        if parts
            .uri
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature"))
        {
            return Err(Error::NotImplemented("presigned URLs".into()));
        }
        return Err(Error::AccessDenied(
            "anonymous requests are not allowed".into(),
        ));
    };
    let value = value
        .to_str()
        .map_err(|_| Error::AuthorizationMalformed("Authorization is not text".into()))?;
    let header = parse_authorization(value)?;
    let key = gw.access_key(&header.access_key).await?;
    let ctx = verify_header_auth(
        &parts.method,
        &parts.uri,
        &parts.headers,
        &header,
        &key.secret_key,
        SystemTime::now(),
    )?;
    tracing::debug!(method = %parts.method, path = %parts.uri.path(), payload = ?ctx.payload, "authenticated");
    Ok(ctx)
}

async fn route(gw: &Gateway, parts: Parts, body: Body) -> Result<Response, Error> {
    let auth = authenticate(gw, &parts).await?;
    let (bucket, key) = split_path(parts.uri.path())?;
    let query = parse_query(parts.uri.query())?;
    let req = S3Request {
        parts,
        auth,
        bucket,
        key,
        query,
    };
    let method = req.parts.method.clone();
    match (method, req.bucket.is_some(), req.key.is_some()) {
        (Method::GET, false, _) => bucket::list_buckets(gw).await,
        (Method::PUT, true, false) => bucket::create(gw, &req).await,
        (Method::DELETE, true, false) => bucket::delete(gw, &req).await,
        (Method::HEAD, true, false) => bucket::head(gw, &req).await,
        (Method::GET, true, false) if req.has_query("location") => bucket::location(gw, &req).await,
        (Method::GET, true, false) if req.has_query("versioning") => {
            bucket::versioning(gw, &req).await
        }
        (Method::GET, true, false) if req.has_query("uploads") => {
            Err(Error::NotImplemented("ListMultipartUploads".into()))
        }
        (Method::GET, true, false) => list::list_objects(gw, &req).await,
        (Method::PUT, true, true) if req.has_query("uploadId") => {
            multipart::upload_part(gw, &req, body).await
        }
        (Method::PUT, true, true) if req.header("x-amz-copy-source").is_some() => {
            Err(Error::NotImplemented("CopyObject".into()))
        }
        (Method::PUT, true, true) => object::put(gw, &req, body).await,
        (Method::GET, true, true) if req.has_query("uploadId") => {
            Err(Error::NotImplemented("ListParts".into()))
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
        (m, _, _) => Err(Error::NotImplemented(format!("{m} on this resource"))),
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
}
