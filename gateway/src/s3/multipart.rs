//! Multipart uploads: Create, UploadPart, UploadPartCopy, Complete (extent
//! maps are concatenated in the metastore: no data is copied), Abort,
//! ListParts, ListMultipartUploads.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use md5::Digest;

use http::HeaderValue;
use metastore::api::{CompletedUpload, UploadChecksum, UploadInfo};

use super::bucket::ACCOUNT_ID;
use super::checksum::{self, Algo, Kind};
use super::copy::{parse_source, source_object};
use super::object::{object_meta, quoted, read_small_body, receive, write_condition};
use super::router::{S3Request, STORAGE_CLASS};
use super::xml::{self, iso8601, Xml};
use crate::error::Error;
use crate::namespace::{Completion, Namespace};
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
    let checksum = checksum::upload_checksum(&req.parts.headers)?;
    let id = hex::encode(rand::random::<[u8; 16]>());
    gw.ns
        .create_upload(
            req.bucket(),
            req.key(),
            &id,
            object_meta(&req.parts.headers)?,
            checksum.map(|(algo, kind)| UploadChecksum {
                algorithm: algo.name().to_string(),
                full_object: kind == Kind::FullObject,
            }),
        )
        .await?;
    let mut x = Xml::root("InitiateMultipartUploadResult");
    x.elem("Bucket", req.bucket())
        .elem("Key", req.key())
        .elem("UploadId", &id);
    let mut resp = xml_response(x.finish("InitiateMultipartUploadResult"));
    if let Some((algo, kind)) = checksum {
        let h = resp.headers_mut();
        h.insert(
            "x-amz-checksum-algorithm",
            HeaderValue::from_static(algo.upper()),
        );
        h.insert("x-amz-checksum-type", HeaderValue::from_static(kind.name()));
    }
    Ok(resp)
}

/// The algorithm and kind an upload was created with.
fn upload_spec(up: &UploadInfo) -> Result<Option<(Algo, Kind)>, Error> {
    let Some(c) = &up.checksum else {
        return Ok(None);
    };
    let algo = Algo::from_name(&c.algorithm)
        .ok_or_else(|| Error::Internal(format!("upload with checksum {:?}", c.algorithm)))?;
    let kind = if c.full_object {
        Kind::FullObject
    } else {
        Kind::Composite
    };
    Ok(Some((algo, kind)))
}

/// Sets `x-amz-checksum-{algo}` on a response.
pub fn checksum_header(resp: &mut Response, algo: &str, value: &str) {
    if let (Some(a), Ok(v)) = (Algo::from_name(algo), HeaderValue::from_str(value)) {
        if let Ok(name) = http::HeaderName::from_bytes(a.header().as_bytes()) {
            resp.headers_mut().insert(name, v);
        }
    }
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
    let up = gw.ns.get_upload(req.bucket(), req.key(), &id).await?;
    let spec = upload_spec(&up)?;
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
            // Well-formed but outside the source: InvalidRange, as S3 says.
            if a > b || b >= info.size {
                return Err(Error::InvalidRange);
            }
            Some((a, b + 1))
        }
    };
    let (start, end) = range.unwrap_or((0, info.size));
    // The part's ETag is the MD5 of the bytes it holds, as for any part:
    // clients check multipart ETags against it. The bytes are read once
    // for that; they are not written again.
    let (etag, checksum) = {
        use futures::StreamExt;
        let mut md5 = md5::Md5::new();
        let mut sum = spec.map(|(algo, _)| (algo, checksum::Hasher::new(algo)));
        let stream = gw.data.read(&info, start, end).await;
        futures::pin_mut!(stream);
        while let Some(piece) = stream.next().await {
            let piece = piece?;
            md5.update(&piece);
            if let Some((_, h)) = &mut sum {
                h.update(&piece);
            }
        }
        let checksum = sum.map(|(algo, h)| (algo.name().to_string(), h.finish_base64()));
        (hex::encode(md5.finalize()), checksum)
    };
    let (etag, mtime) = gw
        .ns
        .copy_part(
            &id,
            n,
            &src.bucket,
            &src.key,
            &info.etag,
            range,
            etag,
            checksum.clone(),
        )
        .await?;
    let mut x = Xml::root("CopyPartResult");
    x.elem("LastModified", &iso8601(mtime))
        .elem("ETag", &format!("\"{etag}\""));
    if let Some((algo, value)) = &checksum {
        if let Some(a) = Algo::from_name(algo) {
            x.elem(&a.element(), value);
        }
    }
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
        .elem("StorageClass", STORAGE_CLASS);
    if let Some((algo, kind)) = upload_spec(&up)? {
        x.elem("ChecksumAlgorithm", algo.upper())
            .elem("ChecksumType", kind.name());
    }
    owner(&mut x, "Initiator");
    owner(&mut x, "Owner");
    for p in page {
        x.open("Part")
            .elem("PartNumber", &p.part_number.to_string())
            .elem(
                "LastModified",
                &iso8601(if p.created > 0 { p.created } else { up.created }),
            )
            .elem("ETag", &format!("\"{}\"", p.etag))
            .elem("Size", &p.size.to_string());
        if let Some((algo, value)) = &p.checksum {
            if let Some(a) = Algo::from_name(algo) {
                x.elem(&a.element(), value);
            }
        }
        x.close("Part");
    }
    Ok(xml_response(x.finish("ListPartsResult")))
}

fn owner(x: &mut Xml, tag: &str) {
    x.open(tag)
        .elem("ID", ACCOUNT_ID)
        .elem("DisplayName", ACCOUNT_ID)
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
        x.elem("StorageClass", STORAGE_CLASS)
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
    let up = gw.ns.get_upload(req.bucket(), req.key(), &id).await?;
    let required = upload_spec(&up)?.map(|(algo, _)| algo);
    let written = receive(gw, &req.parts, &req.auth, body, required).await?;
    let etag = hex::encode(written.md5);
    let checksum = written.checksum.clone();
    gw.ns
        .put_part(&id, part_number, written, etag.clone())
        .await?;
    let mut resp = StatusCode::OK.into_response();
    resp.headers_mut().insert(http::header::ETAG, quoted(&etag));
    if let Some((algo, value)) = checksum {
        checksum_header(&mut resp, algo.name(), &value);
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

/// One part a CompleteMultipartUpload lists.
#[derive(Debug, PartialEq, Eq)]
struct Listed {
    part_number: u32,
    etag: String,
    /// `Checksum{ALGO}` elements given for the part.
    checksums: Vec<(Algo, String)>,
}

impl Listed {
    fn checksum(&self, algo: Algo) -> Option<&str> {
        self.checksums
            .iter()
            .find(|(a, _)| *a == algo)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a CompleteMultipartUpload body.
fn parse_complete(body: &[u8]) -> Result<Vec<Listed>, Error> {
    let doc = xml::parse_root(body, "CompleteMultipartUpload")?;
    doc.all("Part")
        .map(|p| {
            let part_number = p
                .text_of("PartNumber")
                .and_then(|n| n.trim().parse().ok())
                .ok_or_else(|| Error::MalformedXml("a Part needs a PartNumber".into()))?;
            let etag = p
                .text_of("ETag")
                .ok_or_else(|| Error::MalformedXml("a Part needs an ETag".into()))?
                .trim()
                .to_string();
            let checksums = Algo::ALL
                .into_iter()
                .filter_map(|a| p.text_of(&a.element()).map(|v| (a, v.trim().to_string())))
                .collect();
            Ok(Listed {
                part_number,
                etag,
                checksums,
            })
        })
        .collect()
}

/// The checksum a completed object gets.
struct ObjectChecksum {
    algo: Algo,
    kind: Kind,
    value: String,
}

/// What a completion lists of part checksums, and what the object gets.
type CompletionChecksums = (Vec<Option<String>>, Option<ObjectChecksum>);

/// The object checksum of a completion, from the stored parts: every
/// listed part checksum must be the part's, and an upload created with a
/// checksum needs one listed for every part, as S3 requires.
fn completion_checksum(up: &UploadInfo, listed: &[Listed]) -> Result<CompletionChecksums, Error> {
    let spec = upload_spec(up)?;
    let mut sums = Vec::with_capacity(listed.len());
    let mut stored: Vec<(&str, u64)> = Vec::new();
    for l in listed {
        let part = up.parts.iter().find(|p| p.part_number == l.part_number);
        let part_sum = part.and_then(|p| p.checksum.as_ref());
        let sent = match spec {
            Some((algo, _)) => Some(l.checksum(algo).ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "the upload was created with a {} checksum: list {} for every part \
                     (missing for part {})",
                    algo.upper(),
                    algo.element(),
                    l.part_number
                ))
            })?),
            // Without one, a part checksum is checked where the part has
            // one of the same algorithm.
            None => part_sum
                .and_then(|(a, _)| Algo::from_name(a))
                .and_then(|a| l.checksum(a)),
        };
        if let (Some(sent), Some((algo, value))) = (sent, part_sum) {
            if sent != value.trim() {
                return Err(metastore::Error::BadDigest(format!(
                    "the {algo} checksum listed for part {} is not the part's",
                    l.part_number
                ))
                .into());
            }
        }
        if let (Some(p), Some((_, value))) = (part, part_sum) {
            stored.push((value.as_str(), p.size));
        }
        sums.push(sent.map(str::to_string));
    }
    let Some((algo, kind)) = spec else {
        return Ok((sums, None));
    };
    if stored.len() != listed.len() {
        // A listed part that was never uploaded: the metastore names it.
        return Ok((sums, None));
    }
    let value = match kind {
        Kind::Composite => {
            checksum::composite(algo, &stored.iter().map(|(v, _)| *v).collect::<Vec<_>>())?
        }
        Kind::FullObject => checksum::full_object(algo, &stored)?,
    };
    Ok((sums, Some(ObjectChecksum { algo, kind, value })))
}

/// A checksum of the whole object the client sent with the completion
/// (`x-amz-checksum-{algo}`, `x-amz-checksum-type`): it must be the one
/// the parts make.
fn check_sent_object_checksum(req: &S3Request, made: Option<&ObjectChecksum>) -> Result<(), Error> {
    if let Some(t) = req.header("x-amz-checksum-type") {
        let kind = Kind::from_name(t).ok_or_else(|| {
            Error::InvalidRequest(format!(
                "x-amz-checksum-type {t:?} is not COMPOSITE or FULL_OBJECT"
            ))
        })?;
        if made.is_none_or(|m| m.kind != kind) {
            return Err(Error::InvalidRequest(format!(
                "x-amz-checksum-type {} is not the upload's",
                kind.name()
            )));
        }
    }
    for algo in Algo::ALL {
        let Some(sent) = req.header(&algo.header()) else {
            continue;
        };
        let Some(m) = made.filter(|m| m.algo == algo) else {
            return Err(Error::InvalidRequest(format!(
                "{} was sent, but the upload was not created with that checksum",
                algo.header()
            )));
        };
        // The composite value may be sent with or without its -N.
        let bare = |v: &str| v.trim().split('-').next().unwrap_or("").to_string();
        if bare(sent) != bare(&m.value) {
            return Err(Error::ChecksumMismatch(m.algo.header()));
        }
    }
    Ok(())
}

fn complete_response(
    bucket: &str,
    key: &str,
    etag: &str,
    checksum: Option<(&str, &str, &str)>,
) -> Response {
    let mut x = Xml::root("CompleteMultipartUploadResult");
    x.elem("Location", &format!("/{bucket}/{key}"))
        .elem("Bucket", bucket)
        .elem("Key", key)
        .elem("ETag", &format!("\"{etag}\""));
    if let Some((algo, kind, value)) = checksum {
        if let Some(a) = Algo::from_name(algo) {
            x.elem(&a.element(), value).elem("ChecksumType", kind);
        }
    }
    let mut resp = xml_response(x.finish("CompleteMultipartUploadResult"));
    if let Some((algo, _, value)) = checksum {
        checksum_header(&mut resp, algo, value);
    }
    resp
}

/// A completion already made: the same parts get its answer again (an SDK
/// retrying after a lost response), any other list NoSuchUpload.
fn repeat_completion(
    req: &S3Request,
    id: &str,
    listed: &[Listed],
    done: &CompletedUpload,
) -> Result<Response, Error> {
    let same = listed.len() == done.parts.len()
        && listed
            .iter()
            .zip(&done.parts)
            .all(|(l, (n, e))| l.part_number == *n && l.etag.trim_matches('"') == e);
    if !same {
        return Err(metastore::Error::NoSuchUpload(id.to_string()).into());
    }
    let checksum = done.checksum.as_ref().map(|(a, v)| {
        (
            a.as_str(),
            done.checksum_type.as_deref().unwrap_or("FULL_OBJECT"),
            v.as_str(),
        )
    });
    Ok(complete_response(
        req.bucket(),
        req.key(),
        &done.etag,
        checksum,
    ))
}

pub async fn complete(
    gw: &Gateway,
    req: &S3Request,
    body: axum::body::Body,
) -> Result<Response, Error> {
    let id = upload_id(req).to_string();
    let (bucket, key) = (req.bucket().to_string(), req.key().to_string());
    let up = gw.ns.get_upload_record(&bucket, &key, &id).await?;
    let body = read_small_body(req, body, COMPLETE_BODY_MAX_BYTES, false).await?;
    let listed = parse_complete(&body)?;
    if listed.is_empty() {
        return Err(Error::MalformedXml("no parts listed".into()));
    }
    if let Some(done) = &up.completed {
        return repeat_completion(req, &id, &listed, done);
    }
    let etags: Vec<&str> = listed.iter().map(|p| p.etag.as_str()).collect();
    let etag = multipart_etag(&etags)?;
    let (part_checksums, made) = completion_checksum(&up, &listed)?;
    check_sent_object_checksum(req, made.as_ref())?;
    let completion = Completion {
        parts: listed
            .iter()
            .map(|p| (p.part_number, p.etag.trim_matches('"').to_string()))
            .collect(),
        part_checksums,
        etag,
        checksum: made
            .as_ref()
            .map(|m| (m.algo.name().to_string(), m.value.clone())),
        checksum_type: made.as_ref().map(|m| m.kind.name().to_string()),
        cond: write_condition(req),
    };
    let (etag, _) = match gw.ns.complete_upload(&id, completion).await {
        Err(Error::Meta(metastore::Error::NoSuchUpload(_))) => {
            // Completed meanwhile, perhaps by this request's first try.
            let up = gw.ns.get_upload_record(&bucket, &key, &id).await?;
            return match &up.completed {
                Some(done) => repeat_completion(req, &id, &listed, done),
                None => Err(metastore::Error::NoSuchUpload(id).into()),
            };
        }
        other => other?,
    };
    let checksum = made
        .as_ref()
        .map(|m| (m.algo.name(), m.kind.name(), m.value.as_str()));
    Ok(complete_response(&bucket, &key, &etag, checksum))
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
    fn complete_body_parses_without_trimming_what_matters() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Part><ETag>"a1"</ETag><PartNumber>1</PartNumber><ChecksumCRC32>xx==</ChecksumCRC32></Part>
  <Part><PartNumber> 2 </PartNumber><ETag>&quot;b2&quot;</ETag></Part>
</CompleteMultipartUpload>"#;
        let parts = parse_complete(body).unwrap();
        assert_eq!(
            parts,
            [
                Listed {
                    part_number: 1,
                    etag: "\"a1\"".into(),
                    checksums: vec![(Algo::Crc32, "xx==".into())]
                },
                Listed {
                    part_number: 2,
                    etag: "\"b2\"".into(),
                    checksums: vec![]
                },
            ]
        );
        assert!(parse_complete(b"<CompleteMultipartUpload><Part>").is_err());
        assert!(parse_complete(
            b"<CompleteMultipartUpload><Part><ETag>x</ETag></Part></CompleteMultipartUpload>"
        )
        .is_err());
    }

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
