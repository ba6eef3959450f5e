//! The one place gateway errors become S3 errors: code, HTTP status and the
//! XML body every S3 client parses.

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::error::Error;
use crate::s3::xml;

pub struct S3Error {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub resource: String,
    pub request_id: String,
}

impl S3Error {
    pub fn from_error(e: &Error, resource: &str) -> Self {
        use metastore::Error as M;
        use StatusCode as S;
        let (status, code) = match e {
            Error::Meta(m) => match m {
                M::NoSuchBucket(_) => (S::NOT_FOUND, "NoSuchBucket"),
                M::BucketExists(_) => (S::CONFLICT, "BucketAlreadyOwnedByYou"),
                M::BucketNotEmpty(_) => (S::CONFLICT, "BucketNotEmpty"),
                M::NoSuchKey(_) => (S::NOT_FOUND, "NoSuchKey"),
                M::NoSuchUpload(_) => (S::NOT_FOUND, "NoSuchUpload"),
                M::InvalidPart(_) => (S::BAD_REQUEST, "InvalidPart"),
                M::InvalidPartOrder => (S::BAD_REQUEST, "InvalidPartOrder"),
                M::BadDigest(_) => (S::BAD_REQUEST, "BadDigest"),
                M::EntityTooSmall(_) => (S::BAD_REQUEST, "EntityTooSmall"),
                M::NoSuchAccessKey(_) => (S::FORBIDDEN, "InvalidAccessKeyId"),
                M::AccessKeyExists(_) => (S::CONFLICT, "InvalidArgument"),
                M::InvalidKey(_) => (S::BAD_REQUEST, "InvalidArgument"),
                M::KeyConflict(_) => (S::CONFLICT, "KeyConflict"),
                M::Invalid(msg) if msg.starts_with("invalid bucket name") => {
                    (S::BAD_REQUEST, "InvalidBucketName")
                }
                M::Invalid(_) => (S::BAD_REQUEST, "InvalidArgument"),
                M::PreconditionFailed(_) => (S::PRECONDITION_FAILED, "PreconditionFailed"),
                M::InvalidPartNumber(_) => (S::RANGE_NOT_SATISFIABLE, "InvalidPartNumber"),
                M::Unavailable(_) | M::NotLeader(_) => {
                    (S::SERVICE_UNAVAILABLE, "ServiceUnavailable")
                }
                M::Internal(_) => (S::INTERNAL_SERVER_ERROR, "InternalError"),
                // File-system outcomes, met when NFS changed the tree.
                M::Stale(_) | M::NoEntry(_) => (S::NOT_FOUND, "NoSuchKey"),
                M::Exists(_) | M::NotDir(_) | M::IsDir(_) | M::NotEmpty(_) => {
                    (S::CONFLICT, "KeyConflict")
                }
                M::NameTooLong => (S::BAD_REQUEST, "KeyTooLongError"),
                M::NotPermitted(_) => (S::FORBIDDEN, "AccessDenied"),
            },
            Error::InsufficientNodes { .. } => (S::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
            Error::NoSpace(_) => (S::INSUFFICIENT_STORAGE, "InsufficientStorage"),
            Error::BlobUnavailable { .. } => (S::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
            Error::IncompleteBody => (S::BAD_REQUEST, "IncompleteBody"),
            Error::BodyRead(_) => (S::BAD_REQUEST, "IncompleteBody"),
            Error::MalformedChunkedBody(_) => (S::BAD_REQUEST, "InvalidRequest"),
            Error::BadDigest => (S::BAD_REQUEST, "BadDigest"),
            Error::ChecksumMismatch(_) => (S::BAD_REQUEST, "BadDigest"),
            Error::ContentSha256Mismatch => (S::BAD_REQUEST, "XAmzContentSHA256Mismatch"),
            Error::EntityTooLarge => (S::BAD_REQUEST, "EntityTooLarge"),
            Error::BucketTaken(_) => (S::CONFLICT, "BucketAlreadyExists"),
            Error::MetadataTooLarge(_) => (S::BAD_REQUEST, "MetadataTooLarge"),
            Error::Unsupported { .. } => (S::NOT_IMPLEMENTED, "NotImplemented"),
            Error::InvalidArgument(_) => (S::BAD_REQUEST, "InvalidArgument"),
            Error::InvalidStorageClass(_) => (S::BAD_REQUEST, "InvalidStorageClass"),
            Error::InvalidRequest(_) => (S::BAD_REQUEST, "InvalidRequest"),
            Error::InvalidRange => (S::RANGE_NOT_SATISFIABLE, "InvalidRange"),
            Error::MalformedXml(_) => (S::BAD_REQUEST, "MalformedXML"),
            Error::NoSuchKey => (S::NOT_FOUND, "NoSuchKey"),
            Error::NotImplemented(_) => (S::NOT_IMPLEMENTED, "NotImplemented"),
            Error::AccessDenied(_) => (S::FORBIDDEN, "AccessDenied"),
            Error::AuthorizationMalformed(_) => (S::BAD_REQUEST, "AuthorizationHeaderMalformed"),
            Error::AuthorizationQueryMalformed(_) => {
                (S::BAD_REQUEST, "AuthorizationQueryParametersError")
            }
            Error::PreconditionFailed => (S::PRECONDITION_FAILED, "PreconditionFailed"),
            Error::NotModified => (S::NOT_MODIFIED, "NotModified"),
            Error::CorsForbidden(_) => (S::FORBIDDEN, "AccessForbidden"),
            Error::NoSuchCorsConfiguration => (S::NOT_FOUND, "NoSuchCORSConfiguration"),
            Error::NotConfigured { code, .. } => (S::NOT_FOUND, *code),
            Error::InvalidAccessKeyId => (S::FORBIDDEN, "InvalidAccessKeyId"),
            Error::SignatureDoesNotMatch => (S::FORBIDDEN, "SignatureDoesNotMatch"),
            Error::RequestTimeTooSkewed => (S::FORBIDDEN, "RequestTimeTooSkewed"),
            Error::Internal(_) => (S::INTERNAL_SERVER_ERROR, "InternalError"),
        };
        Self {
            status,
            code,
            message: e.to_string(),
            resource: resource.to_string(),
            request_id: String::new(),
        }
    }

    pub fn with_request_id(mut self, id: &str) -> Self {
        self.request_id = id.to_string();
        self
    }
}

impl IntoResponse for S3Error {
    fn into_response(self) -> Response {
        let body = xml::error(self.code, &self.message, &self.resource, &self.request_id);
        let mut resp = (
            self.status,
            [(http::header::CONTENT_TYPE, "application/xml")],
            body,
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
        }
        resp
    }
}
