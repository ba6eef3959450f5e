//! DeleteObjects: up to 1,000 keys in one request, each deleted (and
//! reported) on its own; the metastore's group commit batches them.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;

use super::error::S3Error;
use super::object::read_small_body;
use super::router::S3Request;
use super::xml::Xml;
use crate::error::Error;
use crate::server::Gateway;

/// Most keys one DeleteObjects may name, as S3 allows.
const MAX_KEYS: usize = 1000;
const BODY_MAX_BYTES: usize = 2 << 20;
/// Deletes in flight at once for one request.
const PARALLEL: usize = 16;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlObject {
    key: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlDelete {
    #[serde(default)]
    quiet: bool,
    #[serde(default, rename = "Object")]
    objects: Vec<XmlObject>,
}

fn parse(body: &[u8]) -> Result<(bool, Vec<String>), Error> {
    let doc: XmlDelete = super::xml::parse_doc(body)?;
    if doc.objects.is_empty() || doc.objects.len() > MAX_KEYS {
        return Err(Error::MalformedXml(format!(
            "a Delete request names 1 to {MAX_KEYS} objects"
        )));
    }
    Ok((doc.quiet, doc.objects.into_iter().map(|o| o.key).collect()))
}

pub async fn delete_objects(gw: &Gateway, req: &S3Request, body: Body) -> Result<Response, Error> {
    let (quiet, keys) = parse(&read_small_body(req, body, BODY_MAX_BYTES, true).await?)?;
    let bucket = req.bucket();
    // Fail the whole request, not every key, if the bucket is missing.
    gw.ns.head_bucket(bucket).await?;
    let results: Vec<(String, Result<(), Error>)> = futures::stream::iter(keys)
        .map(|key| async move {
            let r = gw.ns.delete_object(bucket, &key).await;
            (key, r)
        })
        .buffered(PARALLEL)
        .collect()
        .await;
    let mut x = Xml::root("DeleteResult");
    for (key, r) in &results {
        match r {
            Ok(()) if quiet => {}
            Ok(()) => {
                x.open("Deleted").elem("Key", key).close("Deleted");
            }
            Err(e) => {
                let s3 = S3Error::from_error(e, key);
                x.open("Error")
                    .elem("Key", key)
                    .elem("Code", s3.code)
                    .elem("Message", &s3.message)
                    .close("Error");
            }
        }
    }
    Ok((
        [(http::header::CONTENT_TYPE, "application/xml")],
        x.finish("DeleteResult"),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_body_parses() {
        let body = br#"<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>
<Object><Key>a/b</Key></Object><Object><Key>c&amp;d</Key><VersionId>null</VersionId></Object></Delete>"#;
        let (quiet, keys) = parse(body).unwrap();
        assert!(quiet);
        assert_eq!(keys, ["a/b", "c&d"]);
        assert!(
            !parse(b"<Delete><Object><Key>k</Key></Object></Delete>")
                .unwrap()
                .0
        );
        assert!(parse(b"<Delete></Delete>").is_err());
        assert!(parse(b"<Delete><Object>").is_err());
    }
}
