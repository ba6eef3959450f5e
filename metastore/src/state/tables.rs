//! The redb tables of the namespace. Keys are ordered so that the scans
//! READDIR and S3 listing need are range scans.

use redb::{Table, TableDefinition, WriteTransaction};

use crate::error::Error;

/// inode id → [`Inode`](super::namespace::Inode) (JSON).
pub const INODES: TableDefinition<u64, &[u8]> = TableDefinition::new("inodes");
/// (parent inode, name) → child inode. Ordered by parent, then name bytes.
pub const DIRENTS: TableDefinition<(u64, &str), u64> = TableDefinition::new("dirents");
/// (directory inode, cookie) → entry name: READDIR's order, in which a
/// cookie stays meaningful while other entries come and go. The cookie is a
/// hash of the name (probing past collisions).
pub const DIRCOOKIES: TableDefinition<(u64, u64), &str> = TableDefinition::new("dircookies");
/// (inode, file offset) → [`Extent`](crate::api::Extent) (JSON).
pub const EXTENTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("extents");
/// blob SHA-256 → [`BlobRec`](super::objects::BlobRec): size, references, placements.
pub const BLOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blobs");
/// blob SHA-256 → time (ns) its reference count fell to zero; what the
/// garbage sweep may delete after a grace period.
pub const UNREFERENCED: TableDefinition<&[u8], u64> = TableDefinition::new("unreferenced");
/// (bucket inode, full key) → inode: S3's flat view, in exact key order.
pub const OBJECTS: TableDefinition<(u64, &str), u64> = TableDefinition::new("objects");
/// bucket name → [`BucketInfo`](crate::api::BucketInfo) (JSON).
pub const BUCKETS: TableDefinition<&str, &[u8]> = TableDefinition::new("buckets");
/// access key id → [`KeyInfo`](crate::api::KeyInfo) (JSON).
pub const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
/// node id → registration (JSON).
pub const NODES: TableDefinition<u64, &[u8]> = TableDefinition::new("nodes");
/// upload id → multipart upload (JSON).
pub const UPLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("uploads");
/// (upload id, part number) → part (JSON).
pub const PARTS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("parts");
/// inode → time (ns) of its last write of a blob smaller than a full one:
/// the files whose small blobs the gateways' merge job should rewrite.
pub const FRAGMENTED: TableDefinition<u64, u64> = TableDefinition::new("fragmented");
/// (storage node, blob SHA-256) → cutoff (ns): copies of collected blobs
/// that node should delete, unless written after the cutoff.
pub const DELETIONS: TableDefinition<(u64, &[u8]), u64> = TableDefinition::new("deletions");
/// counters: `next_inode`.
pub const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

/// Every table, opened for writing in one transaction.
pub struct TableSet<'txn> {
    pub inodes: Table<'txn, u64, &'static [u8]>,
    pub dirents: Table<'txn, (u64, &'static str), u64>,
    pub dircookies: Table<'txn, (u64, u64), &'static str>,
    pub extents: Table<'txn, (u64, u64), &'static [u8]>,
    pub blobs: Table<'txn, &'static [u8], &'static [u8]>,
    pub unreferenced: Table<'txn, &'static [u8], u64>,
    pub objects: Table<'txn, (u64, &'static str), u64>,
    pub buckets: Table<'txn, &'static str, &'static [u8]>,
    pub keys: Table<'txn, &'static str, &'static [u8]>,
    pub nodes: Table<'txn, u64, &'static [u8]>,
    pub uploads: Table<'txn, &'static str, &'static [u8]>,
    pub parts: Table<'txn, (&'static str, u32), &'static [u8]>,
    pub counters: Table<'txn, &'static str, u64>,
    pub fragmented: Table<'txn, u64, u64>,
    pub deletions: Table<'txn, (u64, &'static [u8]), u64>,
}

impl<'txn> TableSet<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, Error> {
        Ok(Self {
            inodes: txn.open_table(INODES)?,
            dirents: txn.open_table(DIRENTS)?,
            dircookies: txn.open_table(DIRCOOKIES)?,
            extents: txn.open_table(EXTENTS)?,
            blobs: txn.open_table(BLOBS)?,
            unreferenced: txn.open_table(UNREFERENCED)?,
            objects: txn.open_table(OBJECTS)?,
            buckets: txn.open_table(BUCKETS)?,
            keys: txn.open_table(KEYS)?,
            nodes: txn.open_table(NODES)?,
            uploads: txn.open_table(UPLOADS)?,
            parts: txn.open_table(PARTS)?,
            counters: txn.open_table(COUNTERS)?,
            fragmented: txn.open_table(FRAGMENTED)?,
            deletions: txn.open_table(DELETIONS)?,
        })
    }
}

/// Creates every table, so read transactions never meet a missing one.
pub fn create_all(txn: &WriteTransaction) -> Result<(), Error> {
    TableSet::open(txn).map(drop)
}
