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
    /// How `checksum` covers the object: `"COMPOSITE"` (a checksum of
    /// the parts' checksums, value suffixed `-N`) or `"FULL_OBJECT"` (of
    /// every byte). `None` with a checksum means `FULL_OBJECT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
    /// Part sizes of an object completed from a multipart upload, for
    /// `GET ?partNumber=N`; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<u64>,
    /// The parts' checksums (base64, in the object's checksum algorithm)
    /// of a composite multipart object, for `GET ?partNumber=N`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part_checksums: Vec<String>,
}

/// The checksum a multipart upload was created with
/// (`x-amz-checksum-algorithm` and `-type`): every part carries one of
/// this algorithm, and the completed object one made from them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadChecksum {
    /// Lowercase, as in header names: `crc32`, `crc32c`, `crc64nvme`,
    /// `sha1`, `sha256`.
    pub algorithm: String,
    /// `FULL_OBJECT` (CRCs only) rather than `COMPOSITE`.
    pub full_object: bool,
}

/// What a completed multipart upload answered, kept so that a retried
/// CompleteMultipartUpload with the same parts gets the same answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedUpload {
    /// `(part number, ETag without quotes)` as listed.
    pub parts: Vec<(u32, String)>,
    pub etag: String,
    pub mtime: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
}

/// A write that must only happen if the target is in a given state
/// (S3's `If-Match` / `If-None-Match` on PUT), checked atomically with it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCondition {
    /// The current object's ETag must be this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_match: Option<String>,
    /// `*`: the object must not exist; an ETag: it must not have this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_none_match: Option<String>,
}

impl WriteCondition {
    pub fn is_empty(&self) -> bool {
        self.if_match.is_none() && self.if_none_match.is_none()
    }
}

/// What one access key may do in one bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub read: bool,
    pub write: bool,
}

/// One rule of a bucket's CORS configuration, as S3 defines it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u32>,
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
        /// The key may use every bucket (an administrator's key).
        #[serde(default)]
        all_buckets: bool,
        now: u64,
    },
    DeleteKey {
        access_key: String,
    },
    /// Sets a key's rights on a bucket; neither right removes the grant.
    AllowKey {
        access_key: String,
        bucket: String,
        grant: Grant,
    },
    CreateBucket {
        name: String,
        /// The key creating it, granted read and write on it.
        #[serde(default)]
        owner: Option<String>,
        now: u64,
    },
    DeleteBucket {
        name: String,
    },
    /// Sets (or with `None`, removes) a bucket's CORS rules.
    PutBucketCors {
        bucket: String,
        rules: Option<Vec<CorsRule>>,
    },
    PutObject {
        bucket: String,
        key: String,
        size: u64,
        etag: String,
        meta: ObjectMeta,
        extents: Vec<Extent>,
        blobs: Vec<BlobWrite>,
        #[serde(default, skip_serializing_if = "WriteCondition::is_empty")]
        cond: WriteCondition,
        now: u64,
    },
    /// Makes `bucket/key` share the source's extents (no data is copied).
    CopyObject {
        src_bucket: String,
        src_key: String,
        /// The source ETag the gateway checked its copy conditions against;
        /// the copy fails if the source changed since.
        src_etag: Option<String>,
        bucket: String,
        key: String,
        /// New metadata (`REPLACE`), or the source's (`COPY`).
        meta: Option<ObjectMeta>,
        #[serde(default, skip_serializing_if = "WriteCondition::is_empty")]
        cond: WriteCondition,
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checksum: Option<UploadChecksum>,
        now: u64,
    },
    PutPart {
        upload_id: String,
        part_number: u32,
        size: u64,
        etag: String,
        extents: Vec<Extent>,
        blobs: Vec<BlobWrite>,
        /// `(algorithm, base64 value)` of the part's bytes, verified.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checksum: Option<(String, String)>,
        now: u64,
    },
    /// A part made of a byte range of an existing object (UploadPartCopy):
    /// the part shares the source's blobs.
    CopyPart {
        upload_id: String,
        part_number: u32,
        src_bucket: String,
        src_key: String,
        src_etag: Option<String>,
        /// `[start, end)`; the whole object when `None`.
        range: Option<(u64, u64)>,
        etag: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checksum: Option<(String, String)>,
        now: u64,
    },
    CompleteUpload {
        upload_id: String,
        /// `(part number, etag)` in the order the client listed them.
        parts: Vec<(u32, String)>,
        /// The multipart ETag (`md5-of-md5s-N`), computed by the gateway
        /// from the listed part ETags, which apply checks against the parts.
        etag: String,
        /// The part checksums the client listed, beside `parts`: each must
        /// be the part's own, or nothing is completed (BadDigest).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        part_checksums: Vec<Option<String>>,
        /// The object's checksum, made by the gateway from the parts'.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checksum: Option<(String, String)>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checksum_type: Option<String>,
        #[serde(default, skip_serializing_if = "WriteCondition::is_empty")]
        cond: WriteCondition,
        now: u64,
    },
    AbortUpload {
        upload_id: String,
        now: u64,
    },
    /// A new file, directory or symlink named `name` in directory `parent`
    /// (NFS CREATE, MKDIR, SYMLINK). A directory at the root is a bucket.
    CreateNode {
        parent: InodeId,
        name: String,
        kind: NodeKind,
        mode: u32,
        uid: u32,
        gid: u32,
        /// The symlink's target.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        target: String,
        /// EXCLUSIVE create: a file made with the same verifier is this
        /// command retried, and is answered rather than refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verifier: Option<u64>,
        now: u64,
    },
    /// NFS SETATTR: each field given is set.
    SetAttr {
        inode: InodeId,
        /// `(mode, uid, gid)` in full: the gateway fills in the defaults it
        /// shows for a file that never had its own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<(u32, u32, u32)>,
        /// Truncates or extends (with a hole) to this size.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        atime: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mtime: Option<u64>,
        now: u64,
    },
    /// NFS WRITE: `blob` (already on its nodes) becomes the bytes
    /// `[offset, offset + blob.size)` of the file, over whatever was there.
    WriteFile {
        inode: InodeId,
        offset: u64,
        blob: BlobWrite,
        now: u64,
    },
    /// NFS REMOVE and RMDIR (a directory must be empty).
    RemoveNode {
        parent: InodeId,
        name: String,
        now: u64,
    },
    /// The merge job's rewrite of a run of a file's extents as one blob with
    /// the same bytes: applied only if the extents covering the run are
    /// still exactly `expect`.
    MergeExtents {
        inode: InodeId,
        expect: Vec<Extent>,
        blob: BlobWrite,
        now: u64,
    },
    /// Copies a storage node made while repairing: added to the blobs'
    /// placements (blobs no longer known are skipped).
    RecordCopies {
        blobs: Vec<BlobWrite>,
        /// Rebalancing moves among them: (blob, node it moved from). The
        /// old copy is dropped (and queued for deletion with `cutoff`) only
        /// if the blob keeps its goal without it.
        #[serde(default)]
        moves: Vec<(BlobId, NodeId)>,
        #[serde(default)]
        cutoff: u64,
    },
    /// Copies beyond a blob's goal (or on draining and removed nodes) the
    /// leader decided to drop: each leaves the placements, if the blob keeps
    /// its goal without it, and is queued for deletion on its node with
    /// `cutoff` (a copy written after it is spared).
    TrimCopies {
        copies: Vec<(BlobId, NodeId)>,
        cutoff: u64,
    },
    /// Copies a storage node found bad (scrub or read) or missing: they
    /// leave the placements at once, so repair remakes them.
    LostCopies {
        node: NodeId,
        /// Bad copies (already quarantined).
        blobs: Vec<BlobId>,
        /// Copies whose file is not there. A blob's last placement is kept:
        /// there is nothing to repair from, and the file may come back
        /// (a disk mounted late) and must not be swept as an orphan.
        #[serde(default)]
        missing: Vec<BlobId>,
    },
    /// An operator's change of a storage node's mode.
    SetNodeMode {
        id: NodeId,
        mode: NodeMode,
    },
    /// Sets the replication goal (copies, 1 to 5) of the file or directory
    /// at `path` (`/bucket/dir...`, `/` for the default of new buckets) and
    /// of everything below it; new entries inherit their directory's goal.
    SetGoal {
        path: String,
        goal: u8,
    },
    /// Forgets blobs unreferenced since `cutoff` or before (at most
    /// `limit`), queueing their copies for deletion on their nodes.
    CollectGarbage {
        cutoff: u64,
        limit: u32,
    },
    /// A storage node has handled these queued deletions.
    DeletedBlobs {
        node: NodeId,
        blobs: Vec<BlobId>,
    },
    /// The merge job is done with a file: forget its mark if no small write
    /// came since (`mark` is the mark it read).
    ClearFragmented {
        inode: InodeId,
        mark: u64,
    },
    /// NFS RENAME: atomic, replacing a compatible target.
    Rename {
        from_parent: InodeId,
        from_name: String,
        to_parent: InodeId,
        to_name: String,
        now: u64,
    },
}

/// Blobs smaller than this, written into a file, mark it for the merge
/// job, which rewrites runs of them as blobs of about this size.
pub const MERGE_BLOB_BYTES: u64 = 4 << 20;

/// What kind of node [`Command::CreateNode`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
}

/// One inode's attributes as NFS shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAttr {
    pub inode: InodeId,
    pub kind: NodeKind,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Whether mode and owner were ever set (over NFS); if not, the gateway
    /// shows its configured defaults, as for objects written over S3.
    pub owned: bool,
    /// Nanoseconds since the Unix epoch.
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
    /// The directory holding this inode's entry.
    pub parent: InodeId,
    /// A symlink's target.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
}

/// An entry of a directory listing; `cookie` resumes the listing after it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DirEntry {
    pub cookie: u64,
    pub name: String,
    pub attr: NodeAttr,
}

/// The part of a file's extent map that covers a byte range.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileRange {
    pub attr: NodeAttr,
    pub extents: Vec<Extent>,
    pub placements: BTreeMap<BlobId, Vec<NodeId>>,
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
    ListKeys,
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
    /// Multipart uploads in progress in a bucket, by key then upload id,
    /// after `(key_marker, upload_id_marker)`.
    ListUploads {
        bucket: String,
        prefix: String,
        key_marker: String,
        upload_id_marker: String,
        max_uploads: u32,
    },
    /// Uploads (of any bucket) created before `before` (ns).
    StaleUploads {
        before: u64,
    },
    Stats,
    /// The attributes of one inode (NFS GETATTR).
    GetNode {
        inode: InodeId,
    },
    /// The inode named `name` in directory `parent` (NFS LOOKUP).
    Lookup {
        parent: InodeId,
        name: String,
    },
    /// Up to `limit` entries of a directory after `cookie` (0: from the
    /// start). Cookies stay valid while the directory changes.
    ReadDir {
        dir: InodeId,
        cookie: u64,
        limit: u32,
    },
    /// Blobs below their goal that storage node `node` should copy now,
    /// one-copy-left first. Answered by the leader, which knows which
    /// nodes are alive.
    RepairWork {
        node: NodeId,
        limit: u32,
    },
    /// Copies storage node `node` should delete: (blob, cutoff). A copy
    /// written after its cutoff is kept (a write raced the collection).
    DeleteWork {
        node: NodeId,
        limit: u32,
        /// Only deletions whose cutoff is at or before this (ns): a dropped
        /// copy's deletion waits a little, so the commit of a write that
        /// just stored the same bytes there can still cancel it.
        #[serde(default)]
        due: Option<u64>,
    },
    /// The health of the storage layer: nodes with their state, blobs per
    /// health class, and the progress of repair, rebalancing, draining and
    /// scrubbing. Answered by the leader.
    ClusterStatus,
    /// Which of `blobs` no record places on storage node `node` (orphan
    /// copies it may delete, unless written after the reply's cutoff).
    Unplaced {
        node: NodeId,
        blobs: Vec<BlobId>,
    },
    /// Up to `limit` of the blobs placed on storage node `node`, in id
    /// order after `after`: the node checks that it still holds them.
    Placed {
        node: NodeId,
        after: Option<BlobId>,
        limit: u32,
    },
    /// The goal of the file or directory at `path`.
    GetGoal {
        path: String,
    },
    /// Files marked for the merge job whose mark is older than `before`:
    /// `(inode, mark)`.
    Fragmented {
        before: u64,
        limit: u32,
    },
    /// A file's attributes and the extents covering `[offset, offset+len)`.
    ReadRange {
        inode: InodeId,
        offset: u64,
        len: u64,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "r", content = "v", rename_all = "snake_case")]
pub enum Reply {
    Done,
    /// What a write produced: the object's ETag and time.
    Written {
        etag: String,
        mtime: u64,
    },
    Object(ObjectInfo),
    Keys(Vec<KeyInfo>),
    Uploads {
        uploads: Vec<UploadInfo>,
        truncated: bool,
    },
    Upload(UploadInfo),
    Nodes(Vec<NodeInfo>),
    Key(KeyInfo),
    Buckets(Vec<BucketInfo>),
    Bucket(BucketInfo),
    Objects(ObjectList),
    Stats(Stats),
    Node(NodeAttr),
    /// What a namespace change left: the node made (if any) and the
    /// directories whose entries changed (one, or a rename's two), so an
    /// NFS reply carries their attributes without another request.
    Changed {
        node: Option<NodeAttr>,
        dirs: Vec<NodeAttr>,
    },
    Entries {
        entries: Vec<DirEntry>,
        eof: bool,
        /// The directory listed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dir: Option<NodeAttr>,
    },
    Range(FileRange),
    Marks(Vec<(InodeId, u64)>),
    Repairs(Vec<RepairTask>),
    Deletions(Vec<(BlobId, u64)>),
    Collected(u64),
    Status(Box<ClusterStatus>),
    /// Orphans (see [`Query::Unplaced`]) and the cutoff (ns) for deleting
    /// them.
    Unplaced {
        blobs: Vec<BlobId>,
        cutoff: u64,
    },
    Goal(u8),
    /// Blobs placed on a node (see [`Query::Placed`]).
    Placed(Vec<BlobId>),
}

/// One blob for a storage node to copy from one of `sources` (addresses of
/// live nodes holding it).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepairTask {
    pub blob: BlobId,
    pub size: u64,
    pub sources: Vec<String>,
    /// A rebalancing move: the copy on this node is dropped once the new
    /// one is recorded. `None`: a repair.
    #[serde(default)]
    pub move_from: Option<NodeId>,
}

/// Copies every blob should have unless a goal says otherwise.
pub const GOAL_COPIES: usize = 3;
/// The goals an operator may set.
pub const GOAL_RANGE: std::ops::RangeInclusive<u8> = 1..=5;

/// What an operator has made of a storage node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeMode {
    /// Takes new copies; its copies count toward goals while it is up.
    #[default]
    Active,
    /// Down on purpose until `until` (ns): its copies keep counting, so its
    /// absence starts no repair; it takes no new copies meanwhile.
    Maintenance { until: u64 },
    /// Being emptied: its copies no longer count toward goals (they are
    /// copied elsewhere, then dropped) and it takes no new ones.
    Draining,
    /// Out of the cluster: ignored for placement, reads and goals.
    Removed,
}

/// A blob count and its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobCount {
    pub blobs: u64,
    pub bytes: u64,
}

impl BlobCount {
    pub fn add(&mut self, bytes: u64) {
        self.blobs += 1;
        self.bytes += bytes;
    }
}

/// Referenced blobs by health class. `ok`: at goal; `over_goal`: extra
/// copies to trim; `under_goal`: missing copies, at least two readable;
/// `one_copy`: one readable copy left; `lost`: none readable.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Health {
    pub ok: BlobCount,
    pub over_goal: BlobCount,
    pub under_goal: BlobCount,
    pub one_copy: BlobCount,
    pub lost: BlobCount,
}

/// A background activity's backlog and pace.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Activity {
    /// Bytes still to copy (or check).
    pub pending_bytes: u64,
    /// Recent rate over the cluster.
    pub bytes_per_s: u64,
    /// `pending_bytes / bytes_per_s`, when there is a rate.
    pub eta_secs: Option<u64>,
}

impl Activity {
    pub fn new(pending_bytes: u64, bytes_per_s: u64) -> Self {
        Self {
            pending_bytes,
            bytes_per_s,
            eta_secs: (bytes_per_s > 0 && pending_bytes > 0)
                .then(|| pending_bytes.div_ceil(bytes_per_s)),
        }
    }
}

/// `troika admin status`'s view of the storage layer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub nodes: Vec<NodeInfo>,
    pub health: Health,
    /// Missing copies of blobs below their goal.
    pub repair: Activity,
    /// Bytes to move for every node to be within the balance tolerance.
    pub rebalance: Activity,
    /// Bytes still on draining nodes.
    pub drain: Activity,
    /// Bytes left in the current scrub pass of every node.
    pub scrub: Activity,
}

/// A storage node's scrubber: what it has checked.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScrubProgress {
    /// Whole passes over the node's blobs finished.
    pub passes: u64,
    /// Blobs and bytes checked in the current pass, of the pass's total.
    pub checked_blobs: u64,
    pub checked_bytes: u64,
    pub pass_bytes: u64,
    /// Bad copies found (by the scrubber or by reads) since start.
    pub bad_found: u64,
    pub bytes_per_s: u64,
}

/// A storage node's copying for repair and rebalancing.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CopyProgress {
    pub repaired_bytes: u64,
    pub moved_bytes: u64,
    pub bytes_per_s: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    pub addr: String,
    pub zone: String,
    /// Seen by a heartbeat within the down timeout.
    pub alive: bool,
    pub capacity_bytes: u64,
    pub free_bytes: u64,
    pub blob_count: u64,
    #[serde(default)]
    pub mode: NodeMode,
    /// `up`, `suspect` (a heartbeat late), `down`, `maintenance`,
    /// `draining` or `removed`, as the leader sees it.
    #[serde(default)]
    pub state: String,
    /// Bytes of blob files on the node, as it reports them.
    #[serde(default)]
    pub used_bytes: u64,
    /// Copies the metadata places on the node, and their bytes (in
    /// [`Query::ClusterStatus`] only).
    #[serde(default)]
    pub placed: BlobCount,
    #[serde(default)]
    pub scrub: ScrubProgress,
    #[serde(default)]
    pub copies: CopyProgress,
}

impl NodeInfo {
    /// May take new copies: up, active, with its capacity known or not yet
    /// reported.
    pub fn writable(&self) -> bool {
        self.alive && self.mode == NodeMode::Active
    }

    /// Share of the node's capacity its blobs use (0 when unknown).
    pub fn fill(&self) -> f64 {
        if self.capacity_bytes == 0 {
            0.0
        } else {
            self.used_bytes as f64 / self.capacity_bytes as f64
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyInfo {
    pub access_key: String,
    pub secret_key: String,
    pub name: String,
    pub created: u64,
    #[serde(default)]
    pub all_buckets: bool,
    /// Bucket name → rights, for keys without `all_buckets`.
    #[serde(default)]
    pub grants: BTreeMap<String, Grant>,
}

impl KeyInfo {
    /// The rights this key has on `bucket`.
    pub fn grant(&self, bucket: &str) -> Grant {
        if self.all_buckets {
            return Grant {
                read: true,
                write: true,
            };
        }
        self.grants.get(bucket).copied().unwrap_or_default()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BucketInfo {
    pub name: String,
    pub inode: InodeId,
    pub created: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Vec<CorsRule>>,
    /// The access key that created it over S3 (none for a bucket made
    /// over NFS or by a version that did not record it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<UploadChecksum>,
    /// Set once the upload is completed: no more parts, and only a
    /// repeat of the same completion is answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<CompletedUpload>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartInfo {
    pub part_number: u32,
    pub size: u64,
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<(String, String)>,
    #[serde(default)]
    pub created: u64,
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
    /// The node's capacity for blobs: its file system's size, or less
    /// with `--capacity`.
    pub capacity_bytes: u64,
    pub free_bytes: u64,
    pub blob_count: u64,
    #[serde(default)]
    pub used_bytes: u64,
    #[serde(default)]
    pub scrub: ScrubProgress,
    #[serde(default)]
    pub copies: CopyProgress,
}
