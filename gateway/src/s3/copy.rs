//! CopyObject and the copy source that UploadPartCopy shares. A copy shares
//! the source's blobs (the metastore copies the extent map), so no data
//! moves, whatever the size.

use axum::response::{IntoResponse, Response};
use metastore::api::ObjectInfo;
use percent_encoding::percent_decode_str;

use super::object::{object_meta, write_condition};
use super::router::S3Request;
use super::xml::{iso8601, Xml};
use crate::error::Error;
use crate::namespace::Namespace;
use crate::server::Gateway;

/// `x-amz-copy-source`, decoded and checked.
pub struct CopySource {
    pub bucket: String,
    pub key: String,
}

/// Parses `x-amz-copy-source: [/]bucket/key[?versionId=…]` (URL-encoded).
pub fn parse_source(req: &S3Request) -> Result<CopySource, Error> {
    let raw = req
        .header("x-amz-copy-source")
        .ok_or_else(|| Error::InvalidArgument("missing x-amz-copy-source".into()))?;
    let (path, version) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    if let Some(v) = version {
        if v != "versionId=null" {
            return Err(Error::InvalidArgument(
                "versioning is not enabled: a copy source takes no versionId".into(),
            ));
        }
    }
    let decoded = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| Error::InvalidArgument("x-amz-copy-source is not UTF-8".into()))?;
    let decoded = decoded.strip_prefix('/').unwrap_or(&decoded);
    let (bucket, key) = decoded
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| Error::InvalidArgument("x-amz-copy-source must be bucket/key".into()))?;
    // The key is checked after its last decoding step, like every key.
    Namespace::check_key(key)?;
    Ok(CopySource {
        bucket: bucket.to_string(),
        key: key.to_string(),
    })
}

/// Looks the source up (the caller's key must be allowed to read it) and
/// checks the `x-amz-copy-source-if-*` conditions against it.
pub async fn source_object(
    gw: &Gateway,
    req: &S3Request,
    src: &CopySource,
) -> Result<ObjectInfo, Error> {
    if !req.key_info.grant(&src.bucket).read {
        // The cached rights may predate a grant; a source bucket that does
        // not exist is NoSuchBucket, not AccessDenied.
        let key = gw.access_key_fresh(&req.key_info.access_key).await?;
        if !key.grant(&src.bucket).read {
            gw.ns.head_bucket(&src.bucket).await?;
            return Err(Error::AccessDenied(format!(
                "this key may not read bucket {}",
                src.bucket
            )));
        }
    }
    let info = gw.ns.get_object(&src.bucket, &src.key).await?;
    super::conditional::check_copy_source(&req.parts.headers, &info.etag, info.mtime)?;
    Ok(info)
}

pub async fn copy_object(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    let src = parse_source(req)?;
    let info = source_object(gw, req, &src).await?;
    let replace = match req.header("x-amz-metadata-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(other) => {
            return Err(Error::InvalidArgument(format!(
                "x-amz-metadata-directive must be COPY or REPLACE, not {other:?}"
            )))
        }
    };
    if !replace && src.bucket == req.bucket() && src.key == req.key() {
        return Err(Error::InvalidRequest(
            "copying an object onto itself must change its metadata \
             (x-amz-metadata-directive: REPLACE)"
                .into(),
        ));
    }
    let meta = if replace {
        Some(object_meta(&req.parts.headers)?)
    } else {
        None
    };
    let (etag, mtime) = gw
        .ns
        .copy_object(
            &src.bucket,
            &src.key,
            &info.etag,
            req.bucket(),
            req.key(),
            meta,
            write_condition(req),
        )
        .await?;
    let mut x = Xml::root("CopyObjectResult");
    x.elem("LastModified", &iso8601(mtime))
        .elem("ETag", &format!("\"{etag}\""));
    Ok((
        [(http::header::CONTENT_TYPE, "application/xml")],
        x.finish("CopyObjectResult"),
    )
        .into_response())
}
