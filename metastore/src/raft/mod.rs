//! Replication of the metadata state machine with openraft.
//!
//! - [`log_store`] over [`wal`]: the Raft log and vote in an append-only,
//!   checksummed, segmented file, group-committed with one fsync; an
//!   append is reported flushed only after it.
//! - [`state_machine`]: applies committed [`Request`]s through
//!   [`crate::state::apply`] to the redb database without fsync (the log
//!   replays what a crash loses; a purge checkpoints it first), with
//!   deduplication of retried requests, and
//!   builds and installs snapshots (streamed through files).
//! - [`network`]: the Raft RPCs over the cluster's signed HTTP/2.

// openraft's trait methods return its `StorageError`, which is large; the
// helpers here return it too rather than converting at every call.
#![allow(clippy::result_large_err)]

pub mod applied;
pub mod log_store;
pub mod network;
pub mod snapshot;
pub mod snapshot_file;
pub mod state_machine;
pub mod wal;

use crate::api::{Request, Response};

// A log entry carries a group of requests: concurrent commands share one
// append and one fsync (group commit, see `server`).
openraft::declare_raft_types!(
    pub TypeConfig:
        D = Vec<Request>,
        R = Vec<Response>,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = snapshot_file::SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type NodeId = u64;
pub type StorageError = openraft::StorageError<NodeId>;

/// Runs blocking redb work off the async threads, mapping a panic or
/// cancellation of the worker into a storage error.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(io_error(
            openraft::ErrorSubject::Store,
            openraft::ErrorVerb::Write,
            e,
        )),
    }
}

/// Reads the JSON value under `key` of a `name → JSON` table (the Raft
/// meta and state machine meta tables), in its own read transaction.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    db: &redb::Database,
    table: redb::TableDefinition<&str, &[u8]>,
    key: &str,
    subject: openraft::ErrorSubject<NodeId>,
) -> Result<Option<T>, StorageError> {
    let err = |e: &dyn std::fmt::Display| io_error(subject.clone(), openraft::ErrorVerb::Read, e);
    let txn = db.begin_read().map_err(|e| err(&e))?;
    let t = txn.open_table(table).map_err(|e| err(&e))?;
    match t.get(key).map_err(|e| err(&e))? {
        Some(v) => serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|e| err(&e)),
        None => Ok(None),
    }
}

/// Writes `value` as JSON under `key` of a `name → JSON` table, in `txn`.
pub(crate) fn write_json(
    txn: &redb::WriteTransaction,
    table: redb::TableDefinition<&str, &[u8]>,
    key: &str,
    value: &impl serde::Serialize,
    subject: openraft::ErrorSubject<NodeId>,
) -> Result<(), StorageError> {
    let err = |e: &dyn std::fmt::Display| io_error(subject.clone(), openraft::ErrorVerb::Write, e);
    let mut t = txn.open_table(table).map_err(|e| err(&e))?;
    let bytes = serde_json::to_vec(value).map_err(|e| err(&e))?;
    t.insert(key, bytes.as_slice()).map_err(|e| err(&e))?;
    Ok(())
}

/// A metastore error met while storing, as openraft reports it.
impl From<crate::error::Error> for StorageError {
    fn from(e: crate::error::Error) -> Self {
        io_error(openraft::ErrorSubject::Store, openraft::ErrorVerb::Write, e)
    }
}

pub(crate) fn io_error(
    subject: openraft::ErrorSubject<NodeId>,
    verb: openraft::ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError {
    StorageError::from_io_error(subject, verb, std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use openraft::storage::RaftStateMachine;
    use openraft::testing::{StoreBuilder, Suite};
    use openraft::{EntryPayload, LogId, RaftSnapshotBuilder};

    use super::log_store::LogStore;
    use super::snapshot;
    use super::state_machine::{open_db, StateMachine};
    use super::*;
    use crate::api::{Command, Reply};

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
        async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
            let dir = tempfile::tempdir().expect("temp dir");
            let db = open_db(&dir.path().join("meta.redb"), 16 << 20)?;
            let applied = super::applied::Applied::new(db);
            let log = LogStore::open(&dir.path().join("raft-log"), applied.clone())?;
            let sm = StateMachine::new(applied, dir.path().join("snapshots"))?;
            Ok((dir, log, sm))
        }
    }

    /// openraft's own conformance suite for log stores and state machines.
    #[test]
    fn openraft_storage_suite() -> Result<(), StorageError> {
        Suite::test_all(Builder)
    }

    fn entry(index: u64, client: u64, seq: u64, cmd: Command) -> openraft::Entry<TypeConfig> {
        openraft::Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(vec![Request {
                client,
                seq,
                now: 1,
                cmd,
            }]),
        }
    }

    fn bucket(name: &str) -> Command {
        Command::CreateBucket {
            name: name.into(),
            owner: None,
            now: 1,
        }
    }

    #[tokio::test]
    async fn retried_request_applies_once() {
        let (_dir, _log, mut sm) = Builder.build().await.unwrap();
        let r = sm
            .apply(vec![
                entry(1, 7, 1, bucket("bk1")),
                entry(2, 7, 1, bucket("bk1")),
            ])
            .await
            .unwrap();
        // The retry gets the first outcome, not BucketExists.
        assert!(matches!(r[0][0], Ok(Reply::Done)));
        assert!(matches!(r[1][0], Ok(Reply::Done)));
        let r = sm.apply(vec![entry(3, 7, 2, bucket("bk1"))]).await.unwrap();
        assert!(matches!(r[0][0], Err(crate::Error::BucketExists(_))));
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied.map(|l| l.index), Some(3));
    }

    #[tokio::test]
    async fn a_failed_command_in_a_group_changes_nothing_else() {
        let (_dir, _log, mut sm) = Builder.build().await.unwrap();
        let mut e = entry(1, 7, 1, bucket("bk1"));
        if let EntryPayload::Normal(reqs) = &mut e.payload {
            // A duplicate bucket (fails), then a good one, then a bad name.
            let mut dup = reqs[0].clone();
            dup.seq = 2;
            let mut ok = reqs[0].clone();
            ok.seq = 3;
            ok.cmd = bucket("bk2");
            let mut bad = reqs[0].clone();
            bad.seq = 4;
            bad.cmd = bucket("NO");
            reqs.extend([dup, ok, bad]);
        }
        let r = sm
            .apply(vec![e, entry(2, 7, 5, bucket("bk3"))])
            .await
            .unwrap();
        assert!(matches!(r[0][0], Ok(Reply::Done)));
        assert!(matches!(r[0][1], Err(crate::Error::BucketExists(_))));
        assert!(matches!(r[0][2], Ok(Reply::Done)));
        assert!(matches!(r[0][3], Err(crate::Error::Invalid(_))));
        assert!(matches!(r[1][0], Ok(Reply::Done)));
        assert_eq!(latest_bucket_names(&sm), ["bk1", "bk2", "bk3"]);
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied.map(|l| l.index), Some(2));
    }

    /// Applies one entry at a time, as a serial client makes them: the
    /// database file must not grow by every page each apply rewrote (it
    /// grew ~150 KB per entry when only checkpoints were durable).
    #[tokio::test]
    async fn one_entry_applies_keep_the_database_file_small() {
        let (dir, _log, mut sm) = Builder.build().await.unwrap();
        for i in 1..=1_500 {
            sm.apply(vec![entry(i, 1, i, bucket(&format!("bucket-{i:05}")))])
                .await
                .unwrap();
        }
        let len = std::fs::metadata(dir.path().join("meta.redb"))
            .unwrap()
            .len();
        assert!(len < 40 << 20, "database file of {} MiB", len >> 20);
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied.map(|l| l.index), Some(1_500));
    }

    /// The bucket names of a ListBuckets reply.
    fn names(reply: Result<Reply, crate::Error>) -> Vec<String> {
        match reply.unwrap() {
            Reply::Buckets(list) => list.into_iter().map(|b| b.name).collect(),
            r => panic!("{r:?}"),
        }
    }

    /// The buckets as a query sees them: every applied entry.
    fn latest_bucket_names(sm: &StateMachine) -> Vec<String> {
        let store = crate::store::Store::from_applied(sm.applied().clone());
        names(store.query(&crate::api::Query::ListBuckets))
    }

    /// The buckets in the tables `txn` reads.
    fn bucket_names(txn: &impl crate::state::reader::Reader) -> Vec<String> {
        names(crate::state::query(txn, &crate::api::Query::ListBuckets))
    }

    /// Entries applied since the last checkpoint are read at once, reach
    /// the committed tables only at a checkpoint (or once the state is
    /// still), and a crash (the open transaction lost) leaves the tables at
    /// the checkpoint's index, from where the log applies the rest again.
    #[tokio::test]
    async fn applied_entries_are_read_at_once_and_committed_at_checkpoints() {
        use super::applied::{Applied, IDLE};
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            let db = open_db(&dir.path().join("meta.redb"), 16 << 20).unwrap();
            let applied = Applied::new(db);
            let sm = StateMachine::new(applied.clone(), dir.path().join("snapshots")).unwrap();
            (applied, sm)
        };
        let entries = |r: std::ops::RangeInclusive<u64>| -> Vec<_> {
            r.map(|i| entry(i, 1, i, bucket(&format!("bucket-{i:03}"))))
                .collect()
        };
        let (applied, mut sm) = open();
        sm.apply(entries(1..=10)).await.unwrap();
        applied.checkpoint().unwrap();
        sm.apply(entries(11..=20)).await.unwrap();
        assert_eq!(latest_bucket_names(&sm).len(), 20);
        assert_eq!(bucket_names(&applied.db().begin_read().unwrap()).len(), 10);
        // The crash: nothing after the checkpoint reached the file.
        drop((sm, applied));
        let (applied, mut sm) = open();
        let (last, _) = sm.applied_state().await.unwrap();
        assert_eq!(last.map(|l| l.index), Some(10));
        assert_eq!(bucket_names(&applied.db().begin_read().unwrap()).len(), 10);
        for r in sm.apply(entries(11..=20)).await.unwrap() {
            assert!(matches!(r[0], Ok(Reply::Done)), "{r:?}");
        }
        // Still for a while, the state is committed by the next read.
        tokio::time::sleep(IDLE + std::time::Duration::from_millis(50)).await;
        assert_eq!(latest_bucket_names(&sm).len(), 20);
        assert_eq!(bucket_names(&applied.db().begin_read().unwrap()).len(), 20);
    }

    /// A failed command drops the open transaction: the entries applied in
    /// it before are applied again, not lost.
    #[tokio::test]
    async fn a_failed_command_keeps_the_entries_applied_before_it() {
        let (_dir, _log, mut sm) = Builder.build().await.unwrap();
        sm.apply(vec![entry(1, 7, 1, bucket("aaa"))]).await.unwrap();
        sm.apply(vec![entry(2, 7, 2, bucket("bbb"))]).await.unwrap();
        let r = sm
            .apply(vec![
                entry(3, 7, 3, bucket("aaa")),
                entry(4, 7, 4, bucket("ccc")),
            ])
            .await
            .unwrap();
        assert!(matches!(r[0][0], Err(crate::Error::BucketExists(_))));
        assert!(matches!(r[1][0], Ok(Reply::Done)));
        assert_eq!(latest_bucket_names(&sm), ["aaa", "bbb", "ccc"]);
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied.map(|l| l.index), Some(4));
    }

    #[tokio::test]
    async fn snapshot_installs_on_another_node() {
        let (_d1, _l1, mut a) = Builder.build().await.unwrap();
        let (_d2, _l2, mut b) = Builder.build().await.unwrap();
        let entries: Vec<_> = (1..=50)
            .map(|i| entry(i, 1, i, bucket(&format!("bucket-{i:03}"))))
            .collect();
        a.apply(entries).await.unwrap();
        let snap = a.build_snapshot().await.unwrap();
        assert_eq!(snap.meta.last_log_id.map(|l| l.index), Some(50));
        // Stream the snapshot file into the receiver, as the network does.
        let mut src = snap.snapshot;
        let mut dst = b.begin_receiving_snapshot().await.unwrap();
        tokio::io::copy(&mut src, &mut *dst).await.unwrap();
        b.install_snapshot(&snap.meta, dst).await.unwrap();
        let (applied, _) = b.applied_state().await.unwrap();
        assert_eq!(applied.map(|l| l.index), Some(50));
        assert_eq!(latest_bucket_names(&b).len(), 50);
        // The retry table travelled too.
        let r = b
            .apply(vec![entry(51, 1, 50, bucket("bucket-050"))])
            .await
            .unwrap();
        assert!(matches!(r[0][0], Ok(Reply::Done)));
        assert!(b.get_current_snapshot().await.unwrap().is_some());
    }

    /// Commands that touch every kind of table: buckets, objects with
    /// blobs, a multipart upload with a part, a key, a deletion.
    fn populate() -> Vec<openraft::Entry<TypeConfig>> {
        use crate::api::{BlobId, BlobWrite, Extent, ObjectMeta};
        let blob = |n: u8| BlobId([n; 32]);
        let extent = |n: u8| Extent {
            offset: 0,
            len: 10,
            blob: blob(n),
            blob_offset: 0,
        };
        let write = |n: u8| BlobWrite {
            id: blob(n),
            size: 10,
            nodes: vec![1, 2, 3],
        };
        let put = |key: &str, n: u8| Command::PutObject {
            bucket: "bk1".into(),
            key: key.into(),
            size: 10,
            etag: "e".into(),
            meta: ObjectMeta::default(),
            extents: vec![extent(n)],
            blobs: vec![write(n)],
            cond: Default::default(),
            now: 7,
        };
        let cmds = vec![
            bucket("bk1"),
            put("a/b", 1),
            put("a/c", 2),
            put("a/b", 3),
            Command::CreateUpload {
                upload_id: "u1".into(),
                bucket: "bk1".into(),
                key: "big".into(),
                meta: ObjectMeta::default(),
                checksum: None,
                now: 8,
            },
            Command::PutPart {
                upload_id: "u1".into(),
                part_number: 1,
                size: 10,
                etag: "p1".into(),
                extents: vec![extent(4)],
                blobs: vec![write(4)],
                checksum: None,
                now: 9,
            },
            Command::CollectGarbage {
                cutoff: u64::MAX,
                limit: 100,
            },
        ];
        cmds.into_iter()
            .enumerate()
            .map(|(i, c)| entry(i as u64 + 1, 1, i as u64 + 1, c))
            .collect()
    }

    async fn snapshot_bytes(sm: &mut StateMachine) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut snap = sm.get_current_snapshot().await.unwrap().unwrap();
        let mut bytes = Vec::new();
        snap.snapshot.read_to_end(&mut bytes).await.unwrap();
        bytes
    }

    /// Every table of a populated database is carried by snapshots or
    /// listed as left out; and what a follower installs is the same state,
    /// table for table, row for row.
    #[tokio::test]
    async fn snapshots_carry_every_table() {
        use redb::TableHandle;
        let (_d1, _l1, mut a) = Builder.build().await.unwrap();
        let (_d2, _l2, mut b) = Builder.build().await.unwrap();
        let replies = a.apply(populate()).await.unwrap();
        for r in replies.iter().flatten() {
            assert!(r.is_ok(), "{r:?}");
        }
        let txn = a.db().begin_read().unwrap();
        for t in txn.list_tables().unwrap() {
            let name = t.name();
            assert!(
                snapshot::CARRIED.iter().any(|c| c.name() == name)
                    || snapshot::NOT_CARRIED.iter().any(|(n, _)| *n == name),
                "table {name:?} is neither carried by snapshots nor listed as left out"
            );
        }
        let snap = a.build_snapshot().await.unwrap();
        let mut src = snap.snapshot;
        let mut dst = b.begin_receiving_snapshot().await.unwrap();
        tokio::io::copy(&mut src, &mut *dst).await.unwrap();
        b.install_snapshot(&snap.meta, dst).await.unwrap();
        // Rebuilt on the follower, the snapshot holds the same rows.
        let from_a = snapshot_bytes(&mut a).await;
        let rebuilt = b.build_snapshot().await.unwrap();
        let from_b = snapshot_bytes(&mut b).await;
        let body = |bytes: &[u8]| {
            let meta_len = u32::from_be_bytes(bytes[20..24].try_into().unwrap()) as usize;
            bytes[24 + meta_len..bytes.len() - 4].to_vec()
        };
        assert!(body(&from_a).len() > 1000);
        assert_eq!(body(&from_a), body(&from_b));
        assert_eq!(rebuilt.meta.last_log_id, snap.meta.last_log_id);
    }

    /// A snapshot that is damaged, or of another schema version, is
    /// refused and changes nothing.
    #[tokio::test]
    async fn bad_snapshots_are_refused() {
        let (_d1, _l1, mut a) = Builder.build().await.unwrap();
        a.apply(populate()).await.unwrap();
        let snap = a.build_snapshot().await.unwrap();
        let good = snapshot_bytes(&mut a).await;
        let mut flipped = good.clone();
        let n = flipped.len() / 2;
        flipped[n] ^= 0x10;
        let mut version = good.clone();
        version[19] = 99;
        for (bytes, why) in [(flipped, "checksum"), (version, "schema version 99")] {
            let (_d2, _l2, mut b) = Builder.build().await.unwrap();
            b.apply(vec![entry(1, 9, 1, bucket("keep"))]).await.unwrap();
            let mut dst = b.begin_receiving_snapshot().await.unwrap();
            tokio::io::AsyncWriteExt::write_all(&mut *dst, &bytes)
                .await
                .unwrap();
            let e = b.install_snapshot(&snap.meta, dst).await.unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
            let (applied, _) = b.applied_state().await.unwrap();
            assert_eq!(applied.map(|l| l.index), Some(1));
            assert_eq!(latest_bucket_names(&b).len(), 1);
        }
    }
}
