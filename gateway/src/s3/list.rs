//! ListObjectsV2 and ListObjects (V1): a range scan of the bucket's keys in
//! exact S3 order, with prefix, delimiter and pagination.

use axum::response::{IntoResponse, Response};
use base64::Engine;
use metastore::api::ListEntry;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::bucket::ACCOUNT_ID;
use super::router::{S3Request, STORAGE_CLASS};
use super::xml::{iso8601, Xml};
use crate::error::Error;
use crate::server::Gateway;

/// What `encoding-type=url` leaves unencoded in listed keys.
const URL_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Query parameters a listing takes.
const LIST_PARAMS: [&str; 9] = [
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "start-after",
    "continuation-token",
    "encoding-type",
    "marker",
    "fetch-owner",
];

/// A GET on a bucket is a listing unless it names a subresource.
pub fn is_listing(req: &S3Request) -> bool {
    req.params().all(|k| LIST_PARAMS.contains(&k))
}

pub async fn list_objects(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    let v2 = req.query.get("list-type").map(String::as_str) == Some("2");
    let q = |k: &str| req.query.get(k).map(String::as_str);
    let prefix = q("prefix").unwrap_or("");
    let delimiter = q("delimiter").filter(|d| !d.is_empty());
    let max_keys: u32 = match q("max-keys") {
        Some(v) => v
            .parse()
            .map_err(|_| Error::InvalidArgument("max-keys must be a number".into()))?,
        None => 1000,
    };
    let url = match q("encoding-type") {
        None => false,
        Some("url") => true,
        Some(_) => return Err(Error::InvalidArgument("encoding-type must be url".into())),
    };
    let enc = |s: &str| {
        if url {
            utf8_percent_encode(s, URL_SET).to_string()
        } else {
            s.to_string()
        }
    };
    let token = q("continuation-token");
    // V1 always names owners; V2 only when asked.
    let owner = !v2 || q("fetch-owner") == Some("true");
    let start_after = if v2 {
        match token {
            Some(t) => {
                let raw = B64
                    .decode(t)
                    .map_err(|_| Error::InvalidArgument("invalid continuation token".into()))?;
                String::from_utf8(raw)
                    .map_err(|_| Error::InvalidArgument("invalid continuation token".into()))?
            }
            None => q("start-after").unwrap_or("").to_string(),
        }
    } else {
        q("marker").unwrap_or("").to_string()
    };

    let list = if max_keys == 0 {
        // Nothing asked for, nothing more to come: S3 answers an empty,
        // untruncated page (the bucket must still exist).
        gw.ns.head_bucket(req.bucket()).await?;
        metastore::api::ObjectList {
            entries: Vec::new(),
            truncated: false,
        }
    } else {
        gw.ns
            .list_objects(req.bucket(), prefix, &start_after, delimiter, max_keys)
            .await?
    };
    let next = list
        .entries
        .last()
        .filter(|_| list.truncated)
        .map(|e| e.resume_key().to_string());

    let mut x = Xml::root("ListBucketResult");
    // V2 encodes the echoed prefix too; V1 encodes only Marker, NextMarker,
    // Delimiter, keys and common prefixes (what clients decode).
    x.elem("Name", req.bucket())
        .elem("Prefix", &if v2 { enc(prefix) } else { prefix.to_string() })
        .elem("MaxKeys", &max_keys.to_string())
        .elem("IsTruncated", if list.truncated { "true" } else { "false" });
    if let Some(d) = delimiter {
        x.elem("Delimiter", &enc(d));
    }
    if url {
        x.elem("EncodingType", "url");
    }
    if v2 {
        x.elem("KeyCount", &list.entries.len().to_string());
        if let Some(t) = token {
            x.elem("ContinuationToken", t);
        }
        if let Some(n) = &next {
            x.elem("NextContinuationToken", &B64.encode(n));
        }
        if let Some(s) = q("start-after") {
            x.elem("StartAfter", &enc(s));
        }
    } else {
        x.elem("Marker", &enc(&start_after));
        if let Some(n) = &next {
            x.elem("NextMarker", &enc(n));
        }
    }
    for e in &list.entries {
        match e {
            ListEntry::Object(o) => {
                x.open("Contents")
                    .elem("Key", &enc(&o.key))
                    .elem("LastModified", &iso8601(o.mtime))
                    .elem("ETag", &format!("\"{}\"", o.etag))
                    .elem("Size", &o.size.to_string());
                if owner {
                    x.open("Owner")
                        .elem("ID", ACCOUNT_ID)
                        .elem("DisplayName", ACCOUNT_ID)
                        .close("Owner");
                }
                x.elem("StorageClass", STORAGE_CLASS).close("Contents");
            }
            ListEntry::CommonPrefix(p) => {
                x.open("CommonPrefixes")
                    .elem("Prefix", &enc(p))
                    .close("CommonPrefixes");
            }
        }
    }
    Ok((
        [(http::header::CONTENT_TYPE, "application/xml")],
        x.finish("ListBucketResult"),
    )
        .into_response())
}
