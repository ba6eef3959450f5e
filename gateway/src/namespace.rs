//! The one place that maps buckets and keys onto metastore commands and
//! queries. Every key is checked for path safety here, after all decoding,
//! whichever protocol it came from.

use std::time::{SystemTime, UNIX_EPOCH};

use metastore::api::*;
use metastore::state::validate_key;
use metastore::MetaClient;

use crate::data::Written;
use crate::error::Error;

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn written(reply: Reply) -> Result<(String, u64), Error> {
    match reply {
        Reply::Written { etag, mtime } => Ok((etag, mtime)),
        other => Err(Error::Internal(format!("unexpected reply {other:?}"))),
    }
}

/// A CompleteMultipartUpload, as the S3 layer checked it.
pub struct Completion {
    /// `(part number, ETag)` as listed.
    pub parts: Vec<(u32, String)>,
    /// The checksum listed for each part, beside `parts`.
    pub part_checksums: Vec<Option<String>>,
    pub etag: String,
    /// `(algorithm, base64 value)` of the object.
    pub checksum: Option<(String, String)>,
    pub checksum_type: Option<String>,
    pub cond: WriteCondition,
}

#[derive(Clone)]
pub struct Namespace {
    meta: MetaClient,
}

impl Namespace {
    pub fn new(meta: MetaClient) -> Self {
        Self { meta }
    }

    pub fn meta(&self) -> &MetaClient {
        &self.meta
    }

    pub fn check_key(key: &str) -> Result<(), Error> {
        validate_key(key).map_err(Error::Meta)
    }

    /// Creates a bucket; `owner` (the creating key) is granted read and
    /// write on it.
    pub async fn create_bucket(&self, name: &str, owner: &str) -> Result<(), Error> {
        self.meta
            .command(&Command::CreateBucket {
                name: name.to_string(),
                owner: Some(owner.to_string()),
                now: now_ns(),
            })
            .await?;
        Ok(())
    }

    pub async fn delete_bucket(&self, name: &str) -> Result<(), Error> {
        self.meta
            .command(&Command::DeleteBucket {
                name: name.to_string(),
            })
            .await?;
        Ok(())
    }

    pub async fn head_bucket(&self, name: &str) -> Result<BucketInfo, Error> {
        Ok(self.meta.head_bucket(name).await?)
    }

    pub async fn list_buckets(&self) -> Result<Vec<BucketInfo>, Error> {
        Ok(self.meta.list_buckets().await?)
    }

    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        written: Written,
        etag: String,
        meta: ObjectMeta,
        cond: WriteCondition,
    ) -> Result<(), Error> {
        Self::check_key(key)?;
        self.meta
            .command(&Command::PutObject {
                bucket: bucket.to_string(),
                key: key.to_string(),
                size: written.size,
                etag,
                meta,
                extents: written.extents,
                blobs: written.blobs,
                cond,
                now: now_ns(),
            })
            .await?;
        Ok(())
    }

    /// Copies an object by sharing its blobs; returns the new ETag and
    /// time.
    #[allow(clippy::too_many_arguments)]
    pub async fn copy_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        src_etag: &str,
        bucket: &str,
        key: &str,
        meta: Option<ObjectMeta>,
        cond: WriteCondition,
    ) -> Result<(String, u64), Error> {
        Self::check_key(src_key)?;
        Self::check_key(key)?;
        let reply = self
            .meta
            .command(&Command::CopyObject {
                src_bucket: src_bucket.to_string(),
                src_key: src_key.to_string(),
                src_etag: Some(src_etag.to_string()),
                bucket: bucket.to_string(),
                key: key.to_string(),
                meta,
                cond,
                now: now_ns(),
            })
            .await?;
        written(reply)
    }

    /// Makes a part of an upload out of a byte range of an object.
    #[allow(clippy::too_many_arguments)]
    pub async fn copy_part(
        &self,
        upload_id: &str,
        part_number: u32,
        src_bucket: &str,
        src_key: &str,
        src_etag: &str,
        range: Option<(u64, u64)>,
        etag: String,
        checksum: Option<(String, String)>,
    ) -> Result<(String, u64), Error> {
        Self::check_key(src_key)?;
        let reply = self
            .meta
            .command(&Command::CopyPart {
                upload_id: upload_id.to_string(),
                part_number,
                src_bucket: src_bucket.to_string(),
                src_key: src_key.to_string(),
                src_etag: Some(src_etag.to_string()),
                range,
                etag,
                checksum,
                now: now_ns(),
            })
            .await?;
        written(reply)
    }

    pub async fn put_bucket_cors(
        &self,
        bucket: &str,
        rules: Option<Vec<CorsRule>>,
    ) -> Result<(), Error> {
        self.meta
            .command(&Command::PutBucketCors {
                bucket: bucket.to_string(),
                rules,
            })
            .await?;
        Ok(())
    }

    pub async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: &str,
        upload_id_marker: &str,
        max_uploads: u32,
    ) -> Result<(Vec<UploadInfo>, bool), Error> {
        let q = Query::ListUploads {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            key_marker: key_marker.to_string(),
            upload_id_marker: upload_id_marker.to_string(),
            max_uploads,
        };
        match self.meta.query(&q).await? {
            Reply::Uploads { uploads, truncated } => Ok((uploads, truncated)),
            other => Err(Error::Internal(format!("unexpected reply {other:?}"))),
        }
    }

    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo, Error> {
        Self::check_key(key)?;
        Ok(self.meta.get_object(bucket, key).await?)
    }

    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), Error> {
        Self::check_key(key)?;
        self.meta
            .command(&Command::DeleteObject {
                bucket: bucket.to_string(),
                key: key.to_string(),
                now: now_ns(),
            })
            .await?;
        Ok(())
    }

    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        delimiter: Option<&str>,
        max_keys: u32,
    ) -> Result<ObjectList, Error> {
        Ok(self
            .meta
            .list_objects(bucket, prefix, start_after, delimiter, max_keys)
            .await?)
    }

    pub async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        meta: ObjectMeta,
        checksum: Option<UploadChecksum>,
    ) -> Result<(), Error> {
        Self::check_key(key)?;
        self.meta
            .command(&Command::CreateUpload {
                upload_id: upload_id.to_string(),
                bucket: bucket.to_string(),
                key: key.to_string(),
                meta,
                checksum,
                now: now_ns(),
            })
            .await?;
        Ok(())
    }

    /// The upload, still taking parts, checked to belong to `bucket/key`.
    pub async fn get_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadInfo, Error> {
        let up = self.get_upload_record(bucket, key, upload_id).await?;
        if up.completed.is_some() {
            return Err(metastore::Error::NoSuchUpload(upload_id.to_string()).into());
        }
        Ok(up)
    }

    /// The upload, completed or not, checked to belong to `bucket/key`.
    pub async fn get_upload_record(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadInfo, Error> {
        let up = self.meta.get_upload(upload_id).await?;
        if up.bucket != bucket || up.key != key {
            return Err(Error::Meta(metastore::Error::NoSuchUpload(
                upload_id.to_string(),
            )));
        }
        Ok(up)
    }

    pub async fn put_part(
        &self,
        upload_id: &str,
        part_number: u32,
        written: Written,
        etag: String,
    ) -> Result<(), Error> {
        self.meta
            .command(&Command::PutPart {
                upload_id: upload_id.to_string(),
                part_number,
                size: written.size,
                etag,
                checksum: written.checksum.map(|(a, v)| (a.name().to_string(), v)),
                extents: written.extents,
                blobs: written.blobs,
                now: now_ns(),
            })
            .await?;
        Ok(())
    }

    /// Completes an upload; the answer of the first completion if this
    /// one repeats it.
    pub async fn complete_upload(
        &self,
        upload_id: &str,
        c: Completion,
    ) -> Result<(String, u64), Error> {
        let reply = self
            .meta
            .command(&Command::CompleteUpload {
                upload_id: upload_id.to_string(),
                parts: c.parts,
                etag: c.etag,
                part_checksums: c.part_checksums,
                checksum: c.checksum,
                checksum_type: c.checksum_type,
                cond: c.cond,
                now: now_ns(),
            })
            .await?;
        written(reply)
    }

    pub async fn abort_upload(&self, upload_id: &str) -> Result<(), Error> {
        self.meta
            .command(&Command::AbortUpload {
                upload_id: upload_id.to_string(),
                now: now_ns(),
            })
            .await?;
        Ok(())
    }
}
