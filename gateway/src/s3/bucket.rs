//! Bucket operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket,
//! GetBucketLocation, GetBucketVersioning.

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use super::router::S3Request;
use super::xml::{iso8601, Xml};
use crate::error::Error;
use crate::server::Gateway;

const XML: (http::HeaderName, &str) = (http::header::CONTENT_TYPE, "application/xml");

pub async fn list_buckets(gw: &Gateway) -> Result<Response, Error> {
    let buckets = gw.ns.list_buckets().await?;
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
    gw.ns.create_bucket(req.bucket()).await?;
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
