//! The one place gateway errors become NFS statuses.

use nfs3_types::nfs3::nfsstat3;

use crate::error::Error;

pub fn status(e: &Error) -> nfsstat3 {
    use metastore::Error as M;
    use nfsstat3::*;
    match e {
        Error::Meta(m) => match m {
            M::Stale(_) => NFS3ERR_STALE,
            M::NoEntry(_) | M::NoSuchKey(_) | M::NoSuchBucket(_) => NFS3ERR_NOENT,
            M::Exists(_) | M::BucketExists(_) | M::KeyConflict(_) => NFS3ERR_EXIST,
            M::NotDir(_) => NFS3ERR_NOTDIR,
            M::IsDir(_) => NFS3ERR_ISDIR,
            M::NotEmpty(_) | M::BucketNotEmpty(_) => NFS3ERR_NOTEMPTY,
            M::NameTooLong => NFS3ERR_NAMETOOLONG,
            M::NotPermitted(_) => NFS3ERR_ACCES,
            M::Invalid(_) | M::InvalidKey(_) => NFS3ERR_INVAL,
            // The client retries on JUKEBOX: right for an election.
            M::Unavailable(_) | M::NotLeader(_) => NFS3ERR_JUKEBOX,
            M::NoSuchUpload(_)
            | M::InvalidPart(_)
            | M::BadDigest(_)
            | M::InvalidPartOrder
            | M::EntityTooSmall(_)
            | M::NoSuchAccessKey(_)
            | M::AccessKeyExists(_)
            | M::PreconditionFailed(_)
            | M::InvalidPartNumber(_)
            | M::Internal(_) => NFS3ERR_SERVERFAULT,
        },
        Error::NoSpace(_) => NFS3ERR_NOSPC,
        // Too few storage nodes up: the client retries, as during any
        // server outage.
        Error::InsufficientNodes { .. } => NFS3ERR_JUKEBOX,
        Error::BlobUnavailable { .. } => NFS3ERR_IO,
        Error::NoSuchKey => NFS3ERR_NOENT,
        Error::InvalidArgument(_) | Error::InvalidRequest(_) => NFS3ERR_INVAL,
        Error::AccessDenied(_) => NFS3ERR_ACCES,
        _ => NFS3ERR_SERVERFAULT,
    }
}
