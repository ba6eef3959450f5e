//! DeleteObjects: up to 1,000 keys in one request, each deleted (and
//! reported) on its own; the metastore's group commit batches them.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

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

/// One object a Delete request names: its key exactly as sent, and the
/// version asked for, if any.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    key: String,
    version_id: Option<String>,
}

fn parse(body: &[u8]) -> Result<(bool, Vec<Target>), Error> {
    let doc = super::xml::parse_root(body, "Delete")?;
    let quiet = match doc.text_of("Quiet").map(str::trim) {
        None => false,
        Some(q) if q.eq_ignore_ascii_case("true") => true,
        Some(q) if q.eq_ignore_ascii_case("false") => false,
        Some(q) => {
            return Err(Error::MalformedXml(format!(
                "Quiet must be true or false, not {q:?}"
            )))
        }
    };
    let objects = doc
        .all("Object")
        .map(|o| {
            let key = o
                .text_of("Key")
                .ok_or_else(|| Error::MalformedXml("an Object without a Key".into()))?;
            Ok(Target {
                key: key.to_string(),
                version_id: o.text_of("VersionId").map(|v| v.trim().to_string()),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    if objects.is_empty() || objects.len() > MAX_KEYS {
        return Err(Error::MalformedXml(format!(
            "a Delete request names 1 to {MAX_KEYS} objects"
        )));
    }
    Ok((quiet, objects))
}

pub async fn delete_objects(gw: &Gateway, req: &S3Request, body: Body) -> Result<Response, Error> {
    let (quiet, keys) = parse(&read_small_body(req, body, BODY_MAX_BYTES, true).await?)?;
    let bucket = req.bucket();
    // Fail the whole request, not every key, if the bucket is missing.
    gw.ns.head_bucket(bucket).await?;
    let results: Vec<(String, Result<(), Error>)> = futures::stream::iter(keys)
        .map(|t| async move {
            let r = match t.version_id.as_deref() {
                None | Some("null") => gw.ns.delete_object(bucket, &t.key).await,
                Some(_) => Err(Error::InvalidArgument(
                    "versioning is not enabled: the only version is \"null\"".into(),
                )),
            };
            (t.key, r)
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
        let keys: Vec<&str> = keys.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["a/b", "c&d"]);
        // Regression: keys were trimmed, so deleting "a " deleted "a".
        let (_, keys) = parse(
            b"<Delete><Object><Key>a </Key></Object><Object><Key> </Key></Object>\
<Object><Key>a\r\n</Key><VersionId>v1</VersionId></Object></Delete>",
        )
        .unwrap();
        assert_eq!(
            keys,
            [
                Target {
                    key: "a ".into(),
                    version_id: None
                },
                Target {
                    key: " ".into(),
                    version_id: None
                },
                Target {
                    key: "a\r\n".into(),
                    version_id: Some("v1".into())
                },
            ]
        );
        assert!(parse(b"<Delete><Object><VersionId>x</VersionId></Object></Delete>").is_err());
        assert!(parse(b"<Other><Object><Key>k</Key></Object></Other>").is_err());
        assert!(
            !parse(b"<Delete><Object><Key>k</Key></Object></Delete>")
                .unwrap()
                .0
        );
        assert!(parse(b"<Delete></Delete>").is_err());
        assert!(parse(b"<Delete><Object>").is_err());
    }
}
