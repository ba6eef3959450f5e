//! The gateway's one error type, in domain words. `s3::error` is the one
//! place that turns it into S3 codes and statuses.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Meta(#[from] metastore::Error),
    #[error("fewer than {needed} storage nodes could store a blob: {detail}")]
    InsufficientNodes { needed: usize, detail: String },
    /// Enough storage nodes are up, but too few have room for a copy.
    #[error("the cluster is full: {0}")]
    NoSpace(String),
    #[error("no copy of blob {blob} could be read: {detail}")]
    BlobUnavailable { blob: String, detail: String },
    #[error("the request body ended before its declared length")]
    IncompleteBody,
    #[error("the request body could not be read: {0}")]
    BodyRead(String),
    #[error("malformed aws-chunked body: {0}")]
    MalformedChunkedBody(String),
    #[error("Content-MD5 does not match the body")]
    BadDigest,
    #[error("{0} does not match the body")]
    ChecksumMismatch(String),
    #[error("x-amz-content-sha256 does not match the body")]
    ContentSha256Mismatch,
    #[error("object larger than the 5 GiB single PUT limit")]
    EntityTooLarge,
    /// CreateBucket of a bucket that exists and is not the caller's.
    #[error("bucket {0} exists and belongs to another key")]
    BucketTaken(String),
    #[error("user metadata larger than {0} bytes")]
    MetadataTooLarge(usize),
    /// A protection this gateway does not give (encryption, public ACLs,
    /// object lock): refused, never silently ignored.
    #[error("{header}: {why}")]
    Unsupported { header: String, why: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("storage class {0:?} is not served: every object is STANDARD (three copies)")]
    InvalidStorageClass(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("requested range not satisfiable")]
    InvalidRange,
    #[error("malformed XML: {0}")]
    MalformedXml(String),
    #[error("no such object")]
    NoSuchKey,
    #[error("operation not implemented: {0}")]
    NotImplemented(String),
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("missing or malformed authentication: {0}")]
    AuthorizationMalformed(String),
    #[error("malformed presigned URL: {0}")]
    AuthorizationQueryMalformed(String),
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("not modified")]
    NotModified,
    #[error("CORS request refused: {0}")]
    CorsForbidden(String),
    #[error("the bucket has no CORS configuration")]
    NoSuchCorsConfiguration,
    /// A bucket setting this gateway does not keep (policy, lifecycle…),
    /// answered with S3's "not configured" code for it.
    #[error("{what}")]
    NotConfigured { code: &'static str, what: String },
    #[error("unknown access key")]
    InvalidAccessKeyId,
    #[error("signature does not match")]
    SignatureDoesNotMatch,
    #[error("request time too skewed")]
    RequestTimeTooSkewed,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<chunkstore::Error> for Error {
    fn from(e: chunkstore::Error) -> Self {
        Error::Internal(e.to_string())
    }
}
