//! Multipart uploads: Create, UploadPart, UploadPartCopy, Complete (extent
//! maps are concatenated in the metastore: no data is copied), Abort,
//! ListParts, ListMultipartUploads.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use md5::Digest;

use super::copy::{parse_source, source_object};
use super::object::{object_meta, quoted, read_small_body, receive, write_condition};
use super::router::S3Request;
use super::xml::{self, iso8601, Xml};
use crate::error::Error;
use crate::namespace::Namespace;
use crate::server::Gateway;

/// Largest CompleteMultipartUpload body accepted (10,000 parts fit).
const COMPLETE_BODY_MAX_BYTES: usize = 2 << 20;

fn upload_id(req: &S3Request) -> &str {
    req.query.get("uploadId").map(String::as_str).unwrap_or("")
}

fn xml_response(body: String) -> Response {
    ([(http::header::CONTENT_TYPE, "application/xml")], body).into_response()
}

pub async fn create(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    Namespace::check_key(req.key())?;
    let id = hex::encode(rand::random::<[u8; 16]>());
    gw.ns
        .create_upload(
            req.bucket(),
            req.key(),
            &id,
            object_meta(&req.parts.headers),
        )
        .await?;
    let mut x = Xml::root("InitiateMultipartUploadResult");
    x.elem("Bucket", req.bucket())
        .elem("Key", req.key())
        .elem("UploadId", &id);
    Ok(xml_response(x.finish("InitiateMultipartUploadResult")))
}

fn part_number(req: &S3Request) -> Result<u32, Error> {
    req.query
        .get("partNumber")
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| Error::InvalidArgument("partNumber must be 1 to 10000".into()))
}

/// A number query parameter, `default` when absent.
fn number(req: &S3Request, name: &str, default: u32) -> Result<u32, Error> {
    match req.query.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| Error::InvalidArgument(format!("{name} must be a number"))),
    }
}

/// UploadPartCopy: the part is a byte range of an existing object, sharing
/// its blobs.
pub async fn upload_part_copy(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    let n = part_number(req)?;
    let id = upload_id(req).to_string();
    gw.ns.get_upload(req.bucket(), req.key(), &id).await?;
    let src = parse_source(req)?;
    let info = source_object(gw, req, &src).await?;
    let range = match req.header("x-amz-copy-source-range") {
        None => None,
        Some(h) => {
            let spec = h.trim().strip_prefix("bytes=");
            let (a, b) = spec.and_then(|s| s.split_once('-')).ok_or_else(|| {
                Error::InvalidArgument("x-amz-copy-source-range must be bytes=first-last".into())
            })?;
            let (a, b): (u64, u64) = match (a.parse(), b.parse()) {
                (Ok(a), Ok(b)) => (a, b),
                _ => {
                    return Err(Error::InvalidArgument(
                        "x-amz-copy-source-range must be bytes=first-last".into(),
                    ))
                }
            };
            if a > b || b >= info.size {
                return Err(Error::InvalidArgument(format!(
                    "range {a}-{b} is not valid for a source object of {} bytes",
                    info.size
                )));
            }
            Some((a, b + 1))
        }
    };
    let (start, end) = range.unwrap_or((0, info.size));
    // The part's ETag is the MD5 of the bytes it holds, as for any part:
    // clients check multipart ETags against it. The bytes are read once
    // for that; they are not written again.
    let etag = {
        use futures::StreamExt;
        let mut md5 = md5::Md5::new();
        let stream = gw.data.read(&info, start, end).await;
        futures::pin_mut!(stream);
        while let Some(piece) = stream.next().await {
            md5.update(&piece?);
        }
        hex::encode(md5.finalize())
    };
    let (etag, mtime) = gw
        .ns
        .copy_part(&id, n, &src.bucket, &src.key, &info.etag, range, etag)
        .await?;
    let mut x = Xml::root("CopyPartResult");
    x.elem("LastModified", &iso8601(mtime))
        .elem("ETag", &format!("\"{etag}\""));
    Ok(xml_response(x.finish("CopyPartResult")))
}

pub async fn list_parts(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    let id = upload_id(req).to_string();
    let up = gw.ns.get_upload(req.bucket(), req.key(), &id).await?;
    let max = number(req, "max-parts", 1000)?.clamp(1, 1000) as usize;
    let marker = number(req, "part-number-marker", 0)?;
    let rest: Vec<_> = up.parts.iter().filter(|p| p.part_number > marker).collect();
    let truncated = rest.len() > max;
    let page = &rest[..rest.len().min(max)];
    let mut x = Xml::root("ListPartsResult");
    x.elem("Bucket", req.bucket())
        .elem("Key", req.key())
        .elem("UploadId", &id)
        .elem("PartNumberMarker", &marker.to_string())
        .elem(
            "NextPartNumberMarker",
            &page.last().map_or(marker, |p| p.part_number).to_string(),
        )
        .elem("MaxParts", &max.to_string())
        .elem("IsTruncated", if truncated { "true" } else { "false" })
        .elem("StorageClass", "STANDARD");
    owner(&mut x, "Initiator");
    owner(&mut x, "Owner");
    for p in page {
        x.open("Part")
            .elem("PartNumber", &p.part_number.to_string())
            .elem("LastModified", &iso8601(up.created))
            .elem("ETag", &format!("\"{}\"", p.etag))
            .elem("Size", &p.size.to_string())
            .close("Part");
    }
    Ok(xml_response(x.finish("ListPartsResult")))
}

fn owner(x: &mut Xml, tag: &str) {
    x.open(tag)
        .elem("ID", "troika")
        .elem("DisplayName", "troika")
        .close(tag);
}

pub async fn list_uploads(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    let q = |k: &str| req.query.get(k).map(String::as_str).unwrap_or("");
    let max = number(req, "max-uploads", 1000)?.clamp(1, 1000);
    let (uploads, truncated) = gw
        .ns
        .list_uploads(
            req.bucket(),
            q("prefix"),
            q("key-marker"),
            q("upload-id-marker"),
            max,
        )
        .await?;
    let mut x = Xml::root("ListMultipartUploadsResult");
    x.elem("Bucket", req.bucket())
        .elem("KeyMarker", q("key-marker"))
        .elem("UploadIdMarker", q("upload-id-marker"))
        .elem("Prefix", q("prefix"))
        .elem("MaxUploads", &max.to_string())
        .elem("IsTruncated", if truncated { "true" } else { "false" });
    if let Some(last) = uploads.last().filter(|_| truncated) {
        x.elem("NextKeyMarker", &last.key)
            .elem("NextUploadIdMarker", &last.upload_id);
    }
    for u in &uploads {
        x.open("Upload")
            .elem("Key", &u.key)
            .elem("UploadId", &u.upload_id);
        owner(&mut x, "Initiator");
        owner(&mut x, "Owner");
        x.elem("StorageClass", "STANDARD")
            .elem("Initiated", &iso8601(u.created))
            .close("Upload");
    }
    Ok(xml_response(x.finish("ListMultipartUploadsResult")))
}

pub async fn upload_part(
    gw: &Gateway,
    req: &S3Request,
    body: axum::body::Body,
) -> Result<Response, Error> {
    let part_number = part_number(req)?;
    let id = upload_id(req).to_string();
    gw.ns.get_upload(req.bucket(), req.key(), &id).await?;
    let written = receive(gw, &req.parts, &req.auth, body).await?;
    let etag = hex::encode(written.md5);
    let checksum = written.checksum.clone();
    gw.ns
        .put_part(&id, part_number, written, etag.clone())
        .await?;
    let mut resp = StatusCode::OK.into_response();
    resp.headers_mut().insert(http::header::ETAG, quoted(&etag));
    if let Some((algo, value)) = checksum {
        if let Ok(v) = http::HeaderValue::from_str(&value) {
            resp.headers_mut().insert(
                http::HeaderName::from_bytes(algo.header().as_bytes()).expect("valid name"),
                v,
            );
        }
    }
    Ok(resp)
}

/// The multipart ETag: MD5 of the parts' binary MD5s, then `-N`.
fn multipart_etag(etags: &[&str]) -> Result<String, Error> {
    let mut h = md5::Md5::new();
    for e in etags {
        let raw = hex::decode(e.trim_matches('"'))
            .map_err(|_| Error::Meta(metastore::Error::InvalidPart(format!("ETag {e}"))))?;
        h.update(&raw);
    }
    Ok(format!("{}-{}", hex::encode(h.finalize()), etags.len()))
}

pub async fn complete(
    gw: &Gateway,
    req: &S3Request,
    body: axum::body::Body,
) -> Result<Response, Error> {
    let id = upload_id(req).to_string();
    let (bucket, key) = (req.bucket().to_string(), req.key().to_string());
    gw.ns.get_upload(&bucket, &key, &id).await?;
    let body = read_small_body(req, body, COMPLETE_BODY_MAX_BYTES, false).await?;
    let parts = xml::parse_complete(&body)?;
    if parts.is_empty() {
        return Err(Error::MalformedXml("no parts listed".into()));
    }
    let etags: Vec<&str> = parts.iter().map(|p| p.etag.as_str()).collect();
    let etag = multipart_etag(&etags)?;
    let listed = parts
        .iter()
        .map(|p| (p.part_number, p.etag.trim_matches('"').to_string()))
        .collect();
    gw.ns
        .complete_upload(&id, listed, etag.clone(), write_condition(req))
        .await?;
    let mut x = Xml::root("CompleteMultipartUploadResult");
    x.elem("Location", &format!("/{bucket}/{key}"))
        .elem("Bucket", &bucket)
        .elem("Key", &key)
        .elem("ETag", &format!("\"{etag}\""));
    Ok(xml_response(x.finish("CompleteMultipartUploadResult")))
}

pub async fn abort(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    let id = upload_id(req);
    gw.ns.get_upload(req.bucket(), req.key(), id).await?;
    gw.ns.abort_upload(id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_of_parts() {
        // Two parts whose MD5s are those of "a" and "b".
        let a = hex::encode(md5::Md5::digest(b"a"));
        let b = hex::encode(md5::Md5::digest(b"b"));
        let mut both = md5::Md5::digest(b"a").to_vec();
        both.extend_from_slice(&md5::Md5::digest(b"b"));
        let expect = format!("{}-2", hex::encode(md5::Md5::digest(&both)));
        assert_eq!(multipart_etag(&[&format!("\"{a}\""), &b]).unwrap(), expect);
        assert!(multipart_etag(&["zz"]).is_err());
    }
}
