//! The metastore's one error type. It crosses the wire as JSON
//! (`{"code": …, "message": …}`) so a client gets the same variant back.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", content = "message")]
pub enum Error {
    #[error("no such bucket: {0}")]
    NoSuchBucket(String),
    #[error("bucket already exists: {0}")]
    BucketExists(String),
    #[error("bucket is not empty: {0}")]
    BucketNotEmpty(String),
    #[error("no such key: {0}")]
    NoSuchKey(String),
    #[error("no such upload: {0}")]
    NoSuchUpload(String),
    #[error("invalid part: {0}")]
    InvalidPart(String),
    /// A checksum the client listed does not match what was stored.
    #[error("checksum mismatch: {0}")]
    BadDigest(String),
    #[error("parts are not in ascending order")]
    InvalidPartOrder,
    #[error("part {0} is smaller than the 5 MiB minimum")]
    EntityTooSmall(u32),
    #[error("no such access key: {0}")]
    NoSuchAccessKey(String),
    #[error("access key already exists: {0}")]
    AccessKeyExists(String),
    #[error("invalid object key: {0}")]
    InvalidKey(String),
    #[error("key conflicts with an existing file or directory: {0}")]
    KeyConflict(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A conditional write or copy whose condition does not hold.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// `GET ?partNumber=N` beyond the object's parts.
    #[error("invalid part number: {0}")]
    InvalidPartNumber(u32),
    /// An inode that no longer exists (an NFS handle to a deleted file).
    #[error("stale file handle: inode {0}")]
    Stale(u64),
    #[error("no such file or directory: {0}")]
    NoEntry(String),
    #[error("already exists: {0}")]
    Exists(String),
    #[error("not a directory: {0}")]
    NotDir(String),
    #[error("is a directory: {0}")]
    IsDir(String),
    #[error("directory not empty: {0}")]
    NotEmpty(String),
    #[error("name longer than 255 bytes")]
    NameTooLong,
    /// An operation the namespace's shape forbids (a file at the root,
    /// renaming a bucket).
    #[error("not permitted: {0}")]
    NotPermitted(String),
    /// This meta node is not the leader; the leader's address if known.
    #[error("not the metadata leader (leader: {0:?})")]
    NotLeader(Option<String>),
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
    #[error("metadata store failure: {0}")]
    Internal(String),
}

impl Error {
    /// The HTTP status this error travels with between services.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Error::NoSuchBucket(_)
            | Error::NoSuchKey(_)
            | Error::NoSuchUpload(_)
            | Error::NoSuchAccessKey(_)
            | Error::NoEntry(_) => S::NOT_FOUND,
            Error::Stale(_) => S::GONE,
            Error::Exists(_) | Error::NotDir(_) | Error::IsDir(_) | Error::NotEmpty(_) => {
                S::CONFLICT
            }
            Error::NameTooLong => S::BAD_REQUEST,
            Error::NotPermitted(_) => S::FORBIDDEN,
            Error::BucketExists(_)
            | Error::BucketNotEmpty(_)
            | Error::AccessKeyExists(_)
            | Error::KeyConflict(_) => S::CONFLICT,
            Error::InvalidPart(_)
            | Error::BadDigest(_)
            | Error::InvalidPartOrder
            | Error::EntityTooSmall(_)
            | Error::InvalidKey(_)
            | Error::Invalid(_) => S::BAD_REQUEST,
            Error::PreconditionFailed(_) => S::PRECONDITION_FAILED,
            Error::InvalidPartNumber(_) => S::RANGE_NOT_SATISFIABLE,
            Error::NotLeader(_) => S::MISDIRECTED_REQUEST,
            Error::Unavailable(_) => S::SERVICE_UNAVAILABLE,
            Error::Internal(_) => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable(_) | Error::NotLeader(_))
    }
}

macro_rules! internal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Internal(e.to_string())
            }
        }
    )*};
}

internal_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    serde_json::Error
);
