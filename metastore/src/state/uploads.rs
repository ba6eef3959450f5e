//! Multipart uploads. Parts hold references to their blobs like files do;
//! completing an upload concatenates the parts' extent maps into the object
//! (no data is copied) and then drops the parts.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::codec::{dec, enc};
use super::keys::validate_key;
use super::namespace::{get_bucket, must_inode};
use super::objects::{add_refs, check_condition, check_tiling, put_object, release_refs, source};
use super::tables::TableSet;
use crate::api::{CompletedUpload, Extent, ObjectMeta, UploadChecksum, WriteCondition};
use crate::error::Error;

/// Smallest part S3 accepts, except for the last part of an upload.
pub const PART_MIN_BYTES: u64 = 5 << 20;
/// Highest part number S3 accepts.
pub const PART_NUMBER_MAX: u32 = 10_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UploadRec {
    pub bucket: String,
    pub key: String,
    pub meta: ObjectMeta,
    pub created: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<UploadChecksum>,
    /// Set when the upload was completed: its parts are gone, and the
    /// record stays until it expires so a retried completion is answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<CompletedUpload>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartRec {
    pub size: u64,
    pub etag: String,
    pub extents: Vec<Extent>,
    pub created: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<(String, String)>,
}

/// The upload's record, completed or not.
pub fn get_record(t: &TableSet, upload_id: &str) -> Result<UploadRec, Error> {
    match t.uploads.get(upload_id)? {
        Some(v) => dec(v.value()),
        None => Err(Error::NoSuchUpload(upload_id.to_string())),
    }
}

/// An upload still taking parts.
pub fn get_upload(t: &TableSet, upload_id: &str) -> Result<UploadRec, Error> {
    let up = get_record(t, upload_id)?;
    if up.completed.is_some() {
        return Err(Error::NoSuchUpload(upload_id.to_string()));
    }
    Ok(up)
}

pub fn create(
    t: &mut TableSet,
    upload_id: &str,
    bucket: &str,
    key: &str,
    meta: &ObjectMeta,
    checksum: Option<&UploadChecksum>,
    now: u64,
) -> Result<(), Error> {
    validate_key(key)?;
    get_bucket(t, bucket)?;
    if t.uploads.get(upload_id)?.is_some() {
        return Err(Error::Invalid(format!("upload id {upload_id} in use")));
    }
    let rec = UploadRec {
        bucket: bucket.to_string(),
        key: key.to_string(),
        meta: meta.clone(),
        created: now,
        checksum: checksum.cloned(),
        completed: None,
    };
    t.uploads.insert(upload_id, enc(&rec).as_slice())?;
    Ok(())
}

fn get_part(t: &TableSet, upload_id: &str, n: u32) -> Result<Option<PartRec>, Error> {
    t.parts
        .get((upload_id, n))?
        .map(|v| dec(v.value()))
        .transpose()
}

pub fn list_parts(t: &TableSet, upload_id: &str) -> Result<Vec<(u32, PartRec)>, Error> {
    let mut out = Vec::new();
    for entry in t.parts.range((upload_id, 0)..=(upload_id, u32::MAX))? {
        let (k, v) = entry?;
        out.push((k.value().1, dec(v.value())?));
    }
    Ok(out)
}

/// A part's bytes and what was verified of them.
pub struct NewPart<'a> {
    pub size: u64,
    pub etag: &'a str,
    pub extents: &'a [Extent],
    pub checksum: Option<&'a (String, String)>,
}

pub fn put_part(
    t: &mut TableSet,
    upload_id: &str,
    part_number: u32,
    part: NewPart<'_>,
    now: u64,
) -> Result<(), Error> {
    let NewPart {
        size,
        etag,
        extents,
        checksum,
    } = part;
    let up = get_upload(t, upload_id)?;
    if !(1..=PART_NUMBER_MAX).contains(&part_number) {
        return Err(Error::Invalid(format!(
            "part number {part_number} is not in 1..=10000"
        )));
    }
    if let Some(want) = &up.checksum {
        if checksum.is_none_or(|(algo, _)| *algo != want.algorithm) {
            return Err(Error::Invalid(format!(
                "the upload was created with a {} checksum: each part carries one",
                want.algorithm
            )));
        }
    }
    check_tiling(extents, size)?;
    let bucket = get_bucket(t, &up.bucket)?;
    add_refs(t, extents, must_inode(t, bucket.inode)?.goal())?;
    if let Some(old) = get_part(t, upload_id, part_number)? {
        release_refs(t, &old.extents, now)?;
    }
    let rec = PartRec {
        size,
        etag: etag.to_string(),
        extents: extents.to_vec(),
        created: now,
        checksum: checksum.cloned(),
    };
    t.parts
        .insert((upload_id, part_number), enc(&rec).as_slice())?;
    Ok(())
}

fn drop_parts(t: &mut TableSet, upload_id: &str, now: u64) -> Result<(), Error> {
    for (n, part) in list_parts(t, upload_id)? {
        release_refs(t, &part.extents, now)?;
        t.parts.remove((upload_id, n))?;
    }
    Ok(())
}

/// Makes part `part_number` the byte range `[start, end)` of an existing
/// object (the whole object without a range), sharing its blobs.
#[allow(clippy::too_many_arguments)]
pub fn copy_part(
    t: &mut TableSet,
    upload_id: &str,
    part_number: u32,
    src_bucket: &str,
    src_key: &str,
    src_etag: Option<&str>,
    range: Option<(u64, u64)>,
    etag: &str,
    checksum: Option<&(String, String)>,
    now: u64,
) -> Result<(), Error> {
    get_upload(t, upload_id)?;
    let (src, extents) = source(t, src_bucket, src_key, src_etag)?;
    let (start, end) = range.unwrap_or((0, src.size));
    if start >= end || end > src.size {
        return Err(Error::Invalid(format!(
            "copy source range {start}-{} is outside the {}-byte source",
            end.saturating_sub(1),
            src.size
        )));
    }
    let part = slice_extents(&extents, start, end);
    let part = NewPart {
        size: end - start,
        etag,
        extents: &part,
        checksum,
    };
    put_part(t, upload_id, part_number, part, now)
}

/// The extents covering `[start, end)` of a file, rebased to offset 0.
pub fn slice_extents(extents: &[Extent], start: u64, end: u64) -> Vec<Extent> {
    let mut out = Vec::new();
    for e in extents {
        let (a, b) = (e.offset.max(start), (e.offset + e.len).min(end));
        if a < b {
            out.push(Extent {
                offset: a - start,
                len: b - a,
                blob: e.blob,
                blob_offset: e.blob_offset + (a - e.offset),
            });
        }
    }
    out
}

/// What CompleteMultipartUpload asks for: the listed parts and the
/// object's ETag and checksum, which the gateway made from them.
pub struct Completion<'a> {
    pub listed: &'a [(u32, String)],
    /// The checksum listed for each part, beside `listed` (may be empty).
    pub part_checksums: &'a [Option<String>],
    pub etag: &'a str,
    pub checksum: Option<&'a (String, String)>,
    pub checksum_type: Option<&'a str>,
}

/// Completes an upload. Completing it again with the same parts answers
/// as the first time did (`Ok(Some)` of what it answered) and changes
/// nothing; with other parts it is NoSuchUpload, as the upload is gone.
pub fn complete(
    t: &mut TableSet,
    upload_id: &str,
    c: Completion<'_>,
    cond: &WriteCondition,
    now: u64,
) -> Result<Option<CompletedUpload>, Error> {
    let mut up = get_record(t, upload_id)?;
    let listed: Vec<(u32, String)> = c
        .listed
        .iter()
        .map(|(n, e)| (*n, e.trim_matches('"').to_string()))
        .collect();
    if let Some(done) = &up.completed {
        return if done.parts == listed {
            Ok(Some(done.clone()))
        } else {
            Err(Error::NoSuchUpload(upload_id.to_string()))
        };
    }
    check_condition(t, &up.bucket, &up.key, cond)?;
    if listed.is_empty() {
        return Err(Error::Invalid(
            "a multipart upload needs at least one part".into(),
        ));
    }
    if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(Error::InvalidPartOrder);
    }
    let mut extents = Vec::new();
    let mut size = 0u64;
    let mut meta = up.meta.clone();
    for (i, (n, listed_etag)) in listed.iter().enumerate() {
        let part = get_part(t, upload_id, *n)?
            .ok_or_else(|| Error::InvalidPart(format!("part {n} was not uploaded")))?;
        if part.etag.trim_matches('"') != listed_etag {
            return Err(Error::InvalidPart(format!("part {n} has another ETag")));
        }
        if let Some(Some(sent)) = c.part_checksums.get(i) {
            match &part.checksum {
                Some((_, stored)) if stored.trim() == sent.trim() => {}
                Some((algo, _)) => {
                    return Err(Error::BadDigest(format!(
                        "the {algo} checksum listed for part {n} is not the part's"
                    )))
                }
                None => {}
            }
        }
        if i + 1 < listed.len() && part.size < PART_MIN_BYTES {
            return Err(Error::EntityTooSmall(*n));
        }
        for e in &part.extents {
            extents.push(Extent {
                offset: size + e.offset,
                ..e.clone()
            });
        }
        size += part.size;
        meta.parts.push(part.size);
        if c.checksum_type == Some("COMPOSITE") {
            if let Some((_, v)) = &part.checksum {
                meta.part_checksums.push(v.clone());
            }
        }
    }
    meta.checksum = c.checksum.cloned();
    meta.checksum_type = c.checksum.and(c.checksum_type.map(str::to_string));
    if meta.part_checksums.len() != meta.parts.len() {
        meta.part_checksums.clear();
    }
    put_object(t, &up.bucket, &up.key, size, c.etag, &meta, &extents, now)?;
    drop_parts(t, upload_id, now)?;
    up.completed = Some(CompletedUpload {
        parts: listed,
        etag: c.etag.to_string(),
        mtime: now,
        checksum: meta.checksum,
        checksum_type: meta.checksum_type,
    });
    t.uploads.insert(upload_id, enc(&up).as_slice())?;
    Ok(None)
}

/// Aborts an upload (its parts are dropped), or forgets a completed one.
pub fn abort(t: &mut TableSet, upload_id: &str, now: u64) -> Result<(), Error> {
    get_record(t, upload_id)?;
    drop_parts(t, upload_id, now)?;
    t.uploads.remove(upload_id)?;
    Ok(())
}
