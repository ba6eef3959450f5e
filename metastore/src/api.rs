//! Wire types of the metadata service.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub type InodeId = u64;
pub type NodeId = u64;

/// The inode of the namespace root; buckets are its children.
pub const ROOT_INODE: InodeId = 1;

/// A blob's name: the SHA-256 of its content.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    pub fn of(data: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(data).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Self(out))
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", &self.to_hex()[..12])
    }
}

impl Serialize for BlobId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for BlobId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::from_hex(&text).ok_or_else(|| serde::de::Error::custom("blob id is not 64 hex"))
    }
}

/// A run of a file's bytes `[offset, offset+len)` stored in `blob` from
/// `blob_offset` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
    pub blob: BlobId,
    pub blob_offset: u64,
}

/// A blob the gateway wrote, with the nodes that fsynced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobWrite {
    pub id: BlobId,
    pub size: u64,
    pub nodes: Vec<NodeId>,
}

/// What S3 keeps beside an object's bytes: content headers, user metadata
/// (`x-amz-meta-*`, names lowercased) and the checksum the client sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
    /// `(algorithm, base64 value)`, e.g. `("crc32", "yZRlqg==")`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<(String, String)>,
}

/// Every mutation of the metadata. Times are supplied by the proposer so
/// that applying a command is deterministic.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    RegisterNode {
        id: NodeId,
        addr: String,
        zone: String,
    },
    CreateKey {
        access_key: String,
        secret_key: String,
        name: String,
        now: u64,
    },
    CreateBucket {
        name: String,
        now: u64,
    },
    DeleteBucket {
        name: String,
    },
    PutObject {
        bucket: String,
        key: String,
        size: u64,
        etag: String,
        meta: ObjectMeta,
        extents: Vec<Extent>,
        blobs: Vec<BlobWrite>,
        now: u64,
    },
    DeleteObject {
        bucket: String,
        key: String,
        now: u64,
    },
    CreateUpload {
        upload_id: String,
        bucket: String,
        key: String,
        meta: ObjectMeta,
        now: u64,
    },
    PutPart {
        upload_id: String,
        part_number: u32,
        size: u64,
        etag: String,
        extents: Vec<Extent>,
        blobs: Vec<BlobWrite>,
        now: u64,
    },
    CompleteUpload {
        upload_id: String,
        /// `(part number, etag)` in the order the client listed them.
        parts: Vec<(u32, String)>,
        /// The multipart ETag (`md5-of-md5s-N`), computed by the gateway
        /// from the listed part ETags, which apply checks against the parts.
        etag: String,
        now: u64,
    },
    AbortUpload {
        upload_id: String,
        now: u64,
    },
}

/// A command as it travels through the Raft log: the client's id and
/// sequence number make a retried command apply once.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    pub client: u64,
    pub seq: u64,
    /// The proposer's clock (ns), used to expire old deduplication entries
    /// deterministically.
    pub now: u64,
    pub cmd: Command,
}

/// What applying a [`Request`] produced.
pub type Response = Result<Reply, crate::error::Error>;

/// Read-only requests.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "q", rename_all = "snake_case")]
pub enum Query {
    ListNodes,
    GetKey {
        access_key: String,
    },
    ListBuckets,
    HeadBucket {
        name: String,
    },
    GetObject {
        bucket: String,
        key: String,
    },
    ListObjects {
        bucket: String,
        prefix: String,
        /// List keys strictly after this one (and, with a delimiter, after
        /// every key rolled up into the same common prefix as it).
        start_after: String,
        #[serde(default)]
        delimiter: Option<String>,
        max_keys: u32,
    },
    GetUpload {
        upload_id: String,
    },
    Stats,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "r", content = "v", rename_all = "snake_case")]
pub enum Reply {
    Done,
    Object(ObjectInfo),
    Upload(UploadInfo),
    Nodes(Vec<NodeInfo>),
    Key(KeyInfo),
    Buckets(Vec<BucketInfo>),
    Bucket(BucketInfo),
    Objects(ObjectList),
    Stats(Stats),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    pub addr: String,
    pub zone: String,
    /// Seen by a heartbeat within the down timeout.
    pub alive: bool,
    pub capacity_bytes: u64,
    pub free_bytes: u64,
    pub blob_count: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyInfo {
    pub access_key: String,
    pub secret_key: String,
    pub name: String,
    pub created: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BucketInfo {
    pub name: String,
    pub inode: InodeId,
    pub created: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObjectInfo {
    pub key: String,
    pub inode: InodeId,
    pub size: u64,
    pub etag: String,
    /// Nanoseconds since the Unix epoch.
    pub mtime: u64,
    pub meta: ObjectMeta,
    pub extents: Vec<Extent>,
    /// Where each blob of `extents` is stored.
    pub placements: BTreeMap<BlobId, Vec<NodeId>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObjectSummary {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub mtime: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ListEntry {
    Object(ObjectSummary),
    /// Keys sharing this prefix up to and including the delimiter.
    CommonPrefix(String),
}

impl ListEntry {
    /// The key (or prefix) a following page resumes after.
    pub fn resume_key(&self) -> &str {
        match self {
            ListEntry::Object(o) => &o.key,
            ListEntry::CommonPrefix(p) => p,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObjectList {
    /// Objects and common prefixes, in S3 key order.
    pub entries: Vec<ListEntry>,
    /// More entries follow the last one returned.
    pub truncated: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UploadInfo {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub created: u64,
    pub parts: Vec<PartInfo>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartInfo {
    pub part_number: u32,
    pub size: u64,
    pub etag: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub inodes: u64,
    pub buckets: u64,
    pub objects: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
    pub unreferenced_blobs: u64,
    pub uploads: u64,
}

/// A meta node's view of the Raft group, for `troika admin status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RaftStatus {
    pub id: u64,
    /// `leader`, `follower`, `candidate` or `learner`.
    pub state: String,
    pub leader: Option<u64>,
    pub leader_addr: Option<String>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub voters: Vec<u64>,
    pub members: BTreeMap<u64, String>,
}

/// A storage node's periodic report. Kept in memory by the meta node (not
/// a command): liveness changes every second and needs no log entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Heartbeat {
    pub id: NodeId,
    pub capacity_bytes: u64,
    pub free_bytes: u64,
    pub blob_count: u64,
}
