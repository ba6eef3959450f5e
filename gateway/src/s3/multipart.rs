//! Multipart uploads: Create, UploadPart, Complete (extent maps are
//! concatenated in the metastore: no data is copied), Abort.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use md5::Digest;

use super::object::{object_meta, quoted, receive};
use super::router::S3Request;
use super::xml::{self, Xml};
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

pub async fn upload_part(
    gw: &Gateway,
    req: &S3Request,
    body: axum::body::Body,
) -> Result<Response, Error> {
    let part_number: u32 = req
        .query
        .get("partNumber")
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| Error::InvalidArgument("partNumber must be 1 to 10000".into()))?;
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
    let mut reader = super::auth::BodyReader::new(body, &req.parts.headers, &req.auth)?;
    let body = reader.read_all(COMPLETE_BODY_MAX_BYTES).await?;
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
    gw.ns.complete_upload(&id, listed, etag.clone()).await?;
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
