//! The blob API's paths and limits.
//!
//! - `PUT /v1/blob/{sha256}`: store; the body must hash to the name. 200
//!   once the blob is durable (also when it already was).
//! - `GET /v1/blob/{sha256}?offset=O&len=L`: a verified byte range.
//! - `HEAD /v1/blob/{sha256}`: 200 with the blob's length, or 404.
//! - `DELETE /v1/blob/{sha256}`: 200 once the removal is durable.

use metastore::api::BlobId;

/// The largest blob a storage node accepts. Gateways cut data into blobs of
/// at most `gateway::data::BLOB_MAX_BYTES` (4 MiB); this is the hard limit.
pub const BLOB_LIMIT_BYTES: usize = 64 << 20;

pub fn blob_path(id: &BlobId) -> String {
    format!("/v1/blob/{}", id.to_hex())
}
