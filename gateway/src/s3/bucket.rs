//! Bucket operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket,
//! GetBucketLocation, GetBucketVersioning, and the fixed ACL answer.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use metastore::api::BucketInfo;

use super::object::read_small_body;
use super::router::S3Request;
use super::xml::{iso8601, Xml};
use crate::error::Error;
use crate::server::Gateway;

const XML: (http::HeaderName, &str) = (http::header::CONTENT_TYPE, "application/xml");

/// Most buckets one ListBuckets page holds when `max-buckets` is given.
const MAX_BUCKETS: usize = 10_000;

/// The buckets the request's key may use, in name order, paginated with
/// `max-buckets` and `continuation-token` and filtered by `prefix`.
pub async fn list_buckets(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    // The key's rights as they are now: a bucket it created a moment ago,
    // on this gateway or another, is listed.
    let key = gw.access_key_fresh(&req.key_info.access_key).await?;
    let q = |k: &str| req.query.get(k).map(String::as_str);
    let max = match q("max-buckets") {
        None => None,
        Some(v) => Some(
            v.parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_BUCKETS).contains(n))
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("max-buckets must be 1 to {MAX_BUCKETS}"))
                })?,
        ),
    };
    let after = match q("continuation-token") {
        None => None,
        Some(t) => Some(
            hex::decode(t)
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .ok_or_else(|| Error::InvalidArgument("invalid continuation token".into()))?,
        ),
    };
    let prefix = q("prefix").unwrap_or("");
    let mut buckets = gw.ns.list_buckets().await?;
    buckets.retain(|b| {
        let g = key.grant(&b.name);
        (g.read || g.write)
            && b.name.starts_with(prefix)
            && after.as_deref().is_none_or(|a| b.name.as_str() > a)
    });
    buckets.sort_by(|a, b| a.name.cmp(&b.name));
    let next = match max {
        Some(m) if buckets.len() > m => {
            buckets.truncate(m);
            buckets.last().map(|b| hex::encode(&b.name))
        }
        _ => None,
    };
    let mut x = Xml::root("ListAllMyBucketsResult");
    x.open("Owner")
        .elem("ID", &key.access_key)
        .elem("DisplayName", &key.access_key)
        .close("Owner");
    x.open("Buckets");
    for b in &buckets {
        x.open("Bucket")
            .elem("Name", &b.name)
            .elem("CreationDate", &iso8601(b.created))
            .close("Bucket");
    }
    x.close("Buckets");
    if let Some(t) = &next {
        x.elem("ContinuationToken", t);
    }
    if q("prefix").is_some() {
        x.elem("Prefix", prefix);
    }
    Ok(([XML], x.finish("ListAllMyBucketsResult")).into_response())
}

/// The canonical user S3 shows for a bucket without a recorded creator.
pub const ACCOUNT_ID: &str = "troika";

/// A bucket's owner as S3 shows it (`Owner/ID`, and what
/// `x-amz-expected-bucket-owner` must name): the access key that created
/// it, or [`ACCOUNT_ID`] for one made over NFS.
pub fn owner_id(info: &BucketInfo) -> &str {
    info.owner.as_deref().unwrap_or(ACCOUNT_ID)
}

pub async fn create(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    // A CreateBucketConfiguration body (location constraint) is accepted
    // and ignored: a cluster has one location.
    let created = gw
        .ns
        .create_bucket(req.bucket(), &req.key_info.access_key)
        .await;
    if let Err(Error::Meta(metastore::Error::BucketExists(name))) = created {
        // As in S3's us-east-1 (the region this server presents), creating
        // a bucket one already has succeeds and changes nothing; someone
        // else's is taken.
        let key = gw.access_key_fresh(&req.key_info.access_key).await?;
        if !key.grant(&name).write {
            return Err(Error::BucketTaken(name));
        }
    } else {
        created?;
    }
    Ok((
        StatusCode::OK,
        [(http::header::LOCATION, format!("/{}", req.bucket()))],
    )
        .into_response())
}

pub async fn delete(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    gw.ns.delete_bucket(req.bucket()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn head(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    gw.ns.head_bucket(req.bucket()).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn location(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    gw.ns.head_bucket(req.bucket()).await?;
    // An empty constraint is S3's answer for the default region.
    let x = Xml::root("LocationConstraint");
    Ok(([XML], x.finish("LocationConstraint")).into_response())
}

pub async fn versioning(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    gw.ns.head_bucket(req.bucket()).await?;
    let x = Xml::root("VersioningConfiguration");
    Ok(([XML], x.finish("VersioningConfiguration")).into_response())
}

/// Access is governed by access-key grants (`troika admin key allow`), not
/// ACLs: GET answers the owner's full control; PUT accepts only what is
/// already so (a private canned ACL, or a policy granting the owner full
/// control and nobody anything), and refuses any other grant.
pub async fn acl(gw: &Gateway, req: &S3Request, body: Body) -> Result<Response, Error> {
    let info = gw.ns.head_bucket(req.bucket()).await?;
    if let Some(key) = req.key.as_deref() {
        gw.ns.get_object(req.bucket(), key).await?;
    }
    let owner = owner_id(&info);
    if req.parts.method == http::Method::PUT {
        // A canned ACL header was checked by the router; a policy body
        // may grant only what the owner has.
        let body = read_small_body(req, body, ACL_BODY_MAX_BYTES, true).await?;
        if !body.iter().all(u8::is_ascii_whitespace) {
            check_acl_policy(&body, owner)?;
        }
        return Ok(StatusCode::OK.into_response());
    }
    if req.parts.method != http::Method::GET {
        return Err(Error::NotImplemented(format!("{} ?acl", req.parts.method)));
    }
    let mut x = Xml::root("AccessControlPolicy");
    x.open("Owner")
        .elem("ID", owner)
        .elem("DisplayName", owner)
        .close("Owner");
    x.open("AccessControlList")
        .raw(
            "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
             xsi:type=\"CanonicalUser\">",
        )
        .elem("ID", owner)
        .elem("DisplayName", owner)
        .raw("</Grantee><Permission>FULL_CONTROL</Permission></Grant>")
        .close("AccessControlList");
    Ok(([XML], x.finish("AccessControlPolicy")).into_response())
}

const ACL_BODY_MAX_BYTES: usize = 64 << 10;

/// Accepts an AccessControlPolicy that grants FULL_CONTROL to the owner
/// and nothing to anyone else: the one ACL every object here has.
fn check_acl_policy(body: &[u8], owner: &str) -> Result<(), Error> {
    let doc = super::xml::parse_root(body, "AccessControlPolicy")?;
    let grants = doc.child("AccessControlList").map(|l| l.all("Grant"));
    for g in grants.into_iter().flatten() {
        let grantee = g.child("Grantee");
        let id = grantee.and_then(|e| e.text_of("ID")).map(str::trim);
        let perm = g.text_of("Permission").map(str::trim);
        if id != Some(owner) || perm != Some("FULL_CONTROL") {
            let who = grantee
                .and_then(|e| {
                    e.text_of("URI")
                        .or(e.text_of("ID"))
                        .or(e.text_of("EmailAddress"))
                })
                .unwrap_or("?")
                .trim();
            return Err(Error::Unsupported {
                header: "AccessControlPolicy".into(),
                why: format!(
                    "granting {} to {who} is not supported: access is granted per access key \
                     (troika admin key allow)",
                    perm.unwrap_or("?")
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_policies_granting_more_than_the_owner_has_are_refused() {
        let policy = |grants: &str| {
            format!(
                "<AccessControlPolicy><Owner><ID>troika</ID></Owner>\
                 <AccessControlList>{grants}</AccessControlList></AccessControlPolicy>"
            )
        };
        let owner = "<Grant><Grantee xsi:type=\"CanonicalUser\"><ID>troika</ID></Grantee>\
                     <Permission>FULL_CONTROL</Permission></Grant>";
        let public = "<Grant><Grantee xsi:type=\"Group\">\
                      <URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>\
                      <Permission>READ</Permission></Grant>";
        check_acl_policy(policy(owner).as_bytes(), ACCOUNT_ID).unwrap();
        check_acl_policy(policy("").as_bytes(), ACCOUNT_ID).unwrap();
        let e = check_acl_policy(policy(&format!("{owner}{public}")).as_bytes(), ACCOUNT_ID)
            .unwrap_err();
        assert!(e.to_string().contains("AllUsers"), "{e}");
        assert!(check_acl_policy(b"<Other/>", ACCOUNT_ID).is_err());
    }
}
