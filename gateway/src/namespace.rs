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

    pub async fn create_bucket(&self, name: &str) -> Result<(), Error> {
        self.meta
            .command(&Command::CreateBucket {
                name: name.to_string(),
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
                now: now_ns(),
            })
            .await?;
        Ok(())
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
    ) -> Result<(), Error> {
        Self::check_key(key)?;
        self.meta
            .command(&Command::CreateUpload {
                upload_id: upload_id.to_string(),
                bucket: bucket.to_string(),
                key: key.to_string(),
                meta,
                now: now_ns(),
            })
            .await?;
        Ok(())
    }

    /// The upload, checked to belong to `bucket/key`.
    pub async fn get_upload(
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
                extents: written.extents,
                blobs: written.blobs,
                now: now_ns(),
            })
            .await?;
        Ok(())
    }

    pub async fn complete_upload(
        &self,
        upload_id: &str,
        parts: Vec<(u32, String)>,
        etag: String,
    ) -> Result<(), Error> {
        self.meta
            .command(&Command::CompleteUpload {
                upload_id: upload_id.to_string(),
                parts,
                etag,
                now: now_ns(),
            })
            .await?;
        Ok(())
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
