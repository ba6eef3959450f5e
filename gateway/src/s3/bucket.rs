//! Bucket operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket,
//! GetBucketLocation, GetBucketVersioning, and the fixed ACL answer.

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use super::router::S3Request;
use super::xml::{iso8601, Xml};
use crate::error::Error;
use crate::server::Gateway;

const XML: (http::HeaderName, &str) = (http::header::CONTENT_TYPE, "application/xml");

/// The buckets the request's key may use.
pub async fn list_buckets(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    let mut buckets = gw.ns.list_buckets().await?;
    buckets.retain(|b| {
        let g = req.key_info.grant(&b.name);
        g.read || g.write
    });
    let mut x = Xml::root("ListAllMyBucketsResult");
    x.open("Owner")
        .elem("ID", "troika")
        .elem("DisplayName", "troika")
        .close("Owner");
    x.open("Buckets");
    for b in &buckets {
        x.open("Bucket")
            .elem("Name", &b.name)
            .elem("CreationDate", &iso8601(b.created))
            .close("Bucket");
    }
    x.close("Buckets");
    Ok(([XML], x.finish("ListAllMyBucketsResult")).into_response())
}

pub async fn create(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    // A CreateBucketConfiguration body (location constraint) is accepted
    // and ignored: a cluster has one location.
    gw.ns
        .create_bucket(req.bucket(), &req.key_info.access_key)
        .await?;
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
/// ACLs: GET answers the owner's full control, PUT accepts only `private`.
pub async fn acl(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    match req.key.as_deref() {
        Some(key) => {
            gw.ns.get_object(req.bucket(), key).await?;
        }
        None => {
            gw.ns.head_bucket(req.bucket()).await?;
        }
    }
    if req.parts.method == http::Method::PUT {
        return match req.header("x-amz-acl") {
            None | Some("private") => Ok(StatusCode::OK.into_response()),
            Some(other) => Err(Error::NotImplemented(format!(
                "ACL {other:?}: access is granted per access key (troika admin key allow)"
            ))),
        };
    }
    if req.parts.method != http::Method::GET {
        return Err(Error::NotImplemented(format!("{} ?acl", req.parts.method)));
    }
    let mut x = Xml::root("AccessControlPolicy");
    x.open("Owner")
        .elem("ID", "troika")
        .elem("DisplayName", "troika")
        .close("Owner");
    x.open("AccessControlList")
        .raw(
            "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
             xsi:type=\"CanonicalUser\"><ID>troika</ID><DisplayName>troika</DisplayName>\
             </Grantee><Permission>FULL_CONTROL</Permission></Grant>",
        )
        .close("AccessControlList");
    Ok(([XML], x.finish("AccessControlPolicy")).into_response())
}
