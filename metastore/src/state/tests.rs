//! Table-level tests of `apply` and `query` on a real redb file.

use crate::api::*;
use crate::error::Error;
use crate::store::Store;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("m.redb")).unwrap();
    (dir, store)
}

fn blob(n: u8) -> BlobId {
    BlobId([n; 32])
}

fn put(s: &Store, key: &str, blobs: &[(u8, u64)]) -> Result<Reply, Error> {
    let mut extents = Vec::new();
    let mut writes = Vec::new();
    let mut off = 0;
    for (b, len) in blobs {
        extents.push(Extent {
            offset: off,
            len: *len,
            blob: blob(*b),
            blob_offset: 0,
        });
        writes.push(BlobWrite {
            id: blob(*b),
            size: *len,
            nodes: vec![1, 2, 3],
        });
        off += len;
    }
    s.apply(&Command::PutObject {
        bucket: "bk1".into(),
        key: key.into(),
        size: off,
        etag: "e".into(),
        meta: ObjectMeta::default(),
        extents,
        blobs: writes,
        cond: Default::default(),
        now: 7,
    })
}

fn keys(
    s: &Store,
    prefix: &str,
    after: &str,
    delim: Option<&str>,
    max: u32,
) -> (Vec<String>, bool) {
    match s
        .query(&Query::ListObjects {
            bucket: "bk1".into(),
            prefix: prefix.into(),
            start_after: after.into(),
            delimiter: delim.map(Into::into),
            max_keys: max,
        })
        .unwrap()
    {
        Reply::Objects(l) => (
            l.entries
                .iter()
                .map(|e| e.resume_key().to_string())
                .collect(),
            l.truncated,
        ),
        r => panic!("{r:?}"),
    }
}

fn stats(s: &Store) -> Stats {
    match s.query(&Query::Stats).unwrap() {
        Reply::Stats(st) => st,
        r => panic!("{r:?}"),
    }
}

fn with_bucket() -> (tempfile::TempDir, Store) {
    let (d, s) = store();
    s.apply(&Command::CreateBucket {
        name: "bk1".into(),
        owner: None,
        now: 1,
    })
    .unwrap();
    (d, s)
}

#[test]
fn bucket_lifecycle() {
    let (_d, s) = with_bucket();
    assert_eq!(
        s.apply(&Command::CreateBucket {
            name: "bk1".into(),
            owner: None,
            now: 1
        })
        .unwrap_err(),
        Error::BucketExists("bk1".into())
    );
    put(&s, "x", &[(1, 10)]).unwrap();
    assert!(matches!(
        s.apply(&Command::DeleteBucket { name: "bk1".into() }),
        Err(Error::BucketNotEmpty(_))
    ));
    s.apply(&Command::DeleteObject {
        bucket: "bk1".into(),
        key: "x".into(),
        now: 2,
    })
    .unwrap();
    s.apply(&Command::DeleteBucket { name: "bk1".into() })
        .unwrap();
    assert!(matches!(
        s.query(&Query::HeadBucket { name: "bk1".into() }),
        Err(Error::NoSuchBucket(_))
    ));
}

#[test]
fn listing_is_in_exact_key_order() {
    let (_d, s) = with_bucket();
    // '-' (0x2d) sorts before '/' (0x2f): a flat key order, not a tree walk.
    for k in ["a/b", "a-b", "a0", "a/c/d", "b"] {
        put(&s, k, &[(1, 10)]).unwrap();
    }
    assert_eq!(
        keys(&s, "", "", None, 100).0,
        ["a-b", "a/b", "a/c/d", "a0", "b"]
    );
    assert_eq!(keys(&s, "a/", "", None, 100).0, ["a/b", "a/c/d"]);
    assert_eq!(keys(&s, "", "", Some("/"), 100).0, ["a-b", "a/", "a0", "b"]);
    assert_eq!(keys(&s, "a/", "", Some("/"), 100).0, ["a/b", "a/c/"]);
    // Pagination resumes after the last entry, including a common prefix.
    let (page, more) = keys(&s, "", "", Some("/"), 2);
    assert_eq!(
        (page.as_slice(), more),
        (&["a-b".to_string(), "a/".into()][..], true)
    );
    let (page, more) = keys(&s, "", "a/", Some("/"), 2);
    assert_eq!(
        (page.as_slice(), more),
        (&["a0".to_string(), "b".into()][..], false)
    );
    assert_eq!(keys(&s, "", "a/b", None, 100).0, ["a/c/d", "a0", "b"]);
}

#[test]
fn file_and_directory_cannot_share_a_key() {
    let (_d, s) = with_bucket();
    put(&s, "a/b", &[(1, 10)]).unwrap();
    assert!(matches!(
        put(&s, "a", &[(1, 10)]),
        Err(Error::KeyConflict(_))
    ));
    assert!(matches!(
        put(&s, "a/b/c", &[(1, 10)]),
        Err(Error::KeyConflict(_))
    ));
    assert!(matches!(
        put(&s, "../x", &[(1, 10)]),
        Err(Error::InvalidKey(_))
    ));
}

#[test]
fn refcounts_follow_extents() {
    let (_d, s) = with_bucket();
    put(&s, "k1", &[(1, 10), (2, 5)]).unwrap();
    put(&s, "k2", &[(2, 5)]).unwrap();
    assert_eq!(stats(&s).unreferenced_blobs, 0);
    // Overwrite k1: blob 1 loses its only reference; blob 2 is still held.
    put(&s, "k1", &[(3, 4)]).unwrap();
    assert_eq!(stats(&s).unreferenced_blobs, 1);
    s.apply(&Command::DeleteObject {
        bucket: "bk1".into(),
        key: "k2".into(),
        now: 3,
    })
    .unwrap();
    assert_eq!(stats(&s).unreferenced_blobs, 2);
    // Deleting the last object under implicit directories removes them too.
    put(&s, "d1/d2/f", &[(4, 1)]).unwrap();
    let before = stats(&s).inodes;
    s.apply(&Command::DeleteObject {
        bucket: "bk1".into(),
        key: "d1/d2/f".into(),
        now: 4,
    })
    .unwrap();
    assert_eq!(stats(&s).inodes, before - 3);
}

#[test]
fn failed_command_changes_nothing() {
    let (_d, s) = with_bucket();
    put(&s, "a/x", &[(1, 10)]).unwrap();
    let before = stats(&s);
    // Creates directory "n" then fails on the extent check: all rolled back.
    let bad = Command::PutObject {
        bucket: "bk1".into(),
        key: "n/m".into(),
        size: 10,
        etag: "e".into(),
        meta: ObjectMeta::default(),
        extents: vec![Extent {
            offset: 0,
            len: 10,
            blob: blob(9),
            blob_offset: 0,
        }],
        blobs: vec![],
        cond: Default::default(),
        now: 1,
    };
    assert!(s.apply(&bad).is_err());
    let after = stats(&s);
    assert_eq!(
        (before.inodes, before.objects),
        (after.inodes, after.objects)
    );
}

#[test]
fn multipart_concatenates_parts() {
    let (_d, s) = with_bucket();
    let id = "u1".to_string();
    s.apply(&Command::CreateUpload {
        upload_id: id.clone(),
        bucket: "bk1".into(),
        key: "big".into(),
        meta: ObjectMeta::default(),
        checksum: None,
        now: 1,
    })
    .unwrap();
    let part = |n: u32, b: u8, size: u64| Command::PutPart {
        upload_id: id.clone(),
        part_number: n,
        size,
        etag: format!("p{n}"),
        extents: vec![Extent {
            offset: 0,
            len: size,
            blob: blob(b),
            blob_offset: 0,
        }],
        blobs: vec![BlobWrite {
            id: blob(b),
            size,
            nodes: vec![1, 2],
        }],
        checksum: Some(("crc32".into(), format!("c{n}"))),
        now: 2,
    };
    s.apply(&part(1, 1, 6 << 20)).unwrap();
    s.apply(&part(2, 2, 3)).unwrap();
    s.apply(&part(3, 3, 3)).unwrap();
    let complete_at =
        |parts: Vec<(u32, &str)>, sums: Vec<&str>, now: u64| Command::CompleteUpload {
            upload_id: id.clone(),
            parts: parts.into_iter().map(|(n, e)| (n, e.to_string())).collect(),
            etag: "m-2".into(),
            part_checksums: sums.into_iter().map(|c| Some(c.to_string())).collect(),
            checksum: Some(("crc32".into(), "whole-2".into())),
            checksum_type: Some("COMPOSITE".into()),
            cond: Default::default(),
            now,
        };
    let complete = |parts: Vec<(u32, &str)>| complete_at(parts, vec![], 3);
    // A part checksum the client lists must be the part's own.
    assert!(matches!(
        s.apply(&complete_at(
            vec![(1, "p1"), (3, "p3")],
            vec!["c1", "bad"],
            3
        )),
        Err(Error::BadDigest(_))
    ));
    assert_eq!(
        s.apply(&complete(vec![(2, "p2"), (1, "p1")])).unwrap_err(),
        Error::InvalidPartOrder
    );
    assert!(matches!(
        s.apply(&complete(vec![(1, "zz")])),
        Err(Error::InvalidPart(_))
    ));
    assert_eq!(
        s.apply(&complete(vec![(2, "p2"), (3, "p3")])).unwrap_err(),
        Error::EntityTooSmall(2)
    );
    let first = s
        .apply(&complete_at(
            vec![(1, "p1"), (3, "p3")],
            vec!["c1", "c3"],
            3,
        ))
        .unwrap();
    let written = |r: Reply| match r {
        Reply::Written { etag, mtime } => (etag, mtime),
        r => panic!("not written: {r:?}"),
    };
    assert_eq!(written(first), ("m-2".to_string(), 3));
    // Regression: a retried completion (its first answer lost) got
    // NoSuchUpload. The same parts get the first answer, and change
    // nothing; other parts find the upload gone.
    let again = s.apply(&complete_at(vec![(1, "\"p1\""), (3, "p3")], vec![], 9));
    assert_eq!(written(again.unwrap()), ("m-2".to_string(), 3));
    assert_eq!(
        s.apply(&complete(vec![(1, "p1")])).unwrap_err(),
        Error::NoSuchUpload(id.clone())
    );
    assert_eq!(
        s.apply(&part(4, 4, 3)).unwrap_err(),
        Error::NoSuchUpload(id.clone())
    );
    let Reply::Object(o) = s
        .query(&Query::GetObject {
            bucket: "bk1".into(),
            key: "big".into(),
        })
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(o.size, (6 << 20) + 3);
    assert_eq!(o.meta.checksum, Some(("crc32".into(), "whole-2".into())));
    assert_eq!(o.meta.checksum_type.as_deref(), Some("COMPOSITE"));
    assert_eq!(o.meta.part_checksums, ["c1", "c3"]);
    assert_eq!(o.extents[1].offset, 6 << 20);
    assert_eq!(o.extents[1].blob, blob(3));
    // Part 2 was not used: its blob is now unreferenced.
    assert_eq!(stats(&s).unreferenced_blobs, 1);
    assert_eq!(stats(&s).uploads, 0);
}

#[test]
fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.redb");
    {
        let s = Store::open(&path).unwrap();
        s.apply(&Command::CreateBucket {
            name: "bk1".into(),
            owner: None,
            now: 1,
        })
        .unwrap();
        put(&s, "k", &[(1, 3)]).unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(keys(&s, "", "", None, 10).0, ["k"]);
}

fn node(r: Reply) -> NodeAttr {
    match r {
        Reply::Node(a) => a,
        Reply::Changed { node: Some(a), .. } => a,
        r => panic!("not a node: {r:?}"),
    }
}

fn range(s: &Store, inode: InodeId) -> Vec<(u64, u64, u8, u64)> {
    match s
        .query(&Query::ReadRange {
            inode,
            offset: 0,
            len: u64::MAX,
        })
        .unwrap()
    {
        Reply::Range(r) => r
            .extents
            .iter()
            .map(|e| (e.offset, e.len, e.blob.0[0], e.blob_offset))
            .collect(),
        r => panic!("not a range: {r:?}"),
    }
}

fn write(s: &Store, inode: InodeId, offset: u64, b: u8, len: u64) -> Result<Reply, Error> {
    s.apply(&Command::WriteFile {
        inode,
        offset,
        blob: BlobWrite {
            id: blob(b),
            size: len,
            nodes: vec![1, 2],
        },
        now: 9,
    })
}

/// A directory or file `name` in `parent`, owned by root.
fn make(s: &Store, parent: InodeId, name: &str, kind: NodeKind) -> InodeId {
    let mode = if kind == NodeKind::Dir { 0o755 } else { 0o644 };
    let made = s.apply(&Command::CreateNode {
        parent,
        name: name.into(),
        kind,
        mode,
        uid: 0,
        gid: 0,
        target: String::new(),
        verifier: None,
        now: 1,
    });
    node(made.unwrap()).inode
}

#[test]
fn writes_trim_and_split_extents_and_merges_are_compare_and_swap() {
    let (_d, s) = store();
    let dir = make(&s, ROOT_INODE, "bk1", NodeKind::Dir);
    let f = node(
        s.apply(&Command::CreateNode {
            parent: dir,
            name: "f".into(),
            kind: NodeKind::File,
            mode: 0o644,
            uid: 1,
            gid: 1,
            target: String::new(),
            verifier: None,
            now: 2,
        })
        .unwrap(),
    );
    write(&s, f.inode, 0, 1, 100).unwrap();
    // Into the middle: the old extent is split around the new one.
    write(&s, f.inode, 40, 2, 10).unwrap();
    assert_eq!(
        range(&s, f.inode),
        vec![(0, 40, 1, 0), (40, 10, 2, 0), (50, 50, 1, 50)]
    );
    // Over the end: trims, and extends the size.
    let a = node(write(&s, f.inode, 90, 3, 20).unwrap());
    assert_eq!(a.size, 110);
    assert_eq!(
        range(&s, f.inode),
        vec![
            (0, 40, 1, 0),
            (40, 10, 2, 0),
            (50, 40, 1, 50),
            (90, 20, 3, 0)
        ]
    );
    // Blob 1 is referenced twice (split), blob 2 and 3 once: nothing
    // unreferenced yet.
    assert_eq!(stats(&s).unreferenced_blobs, 0);
    // A merge of a run that changed is refused; of the current one, done.
    let stale: Vec<Extent> = vec![Extent {
        offset: 0,
        len: 50,
        blob: blob(1),
        blob_offset: 0,
    }];
    let merged = BlobWrite {
        id: blob(9),
        size: 50,
        nodes: vec![1, 2],
    };
    assert!(matches!(
        s.apply(&Command::MergeExtents {
            inode: f.inode,
            expect: stale,
            blob: merged.clone(),
            now: 10,
        }),
        Err(Error::PreconditionFailed(_))
    ));
    let run: Vec<Extent> = vec![
        Extent {
            offset: 0,
            len: 40,
            blob: blob(1),
            blob_offset: 0,
        },
        Extent {
            offset: 40,
            len: 10,
            blob: blob(2),
            blob_offset: 0,
        },
    ];
    s.apply(&Command::MergeExtents {
        inode: f.inode,
        expect: run,
        blob: merged,
        now: 10,
    })
    .unwrap();
    assert_eq!(
        range(&s, f.inode),
        vec![(0, 50, 9, 0), (50, 40, 1, 50), (90, 20, 3, 0)]
    );
    assert_eq!(stats(&s).unreferenced_blobs, 1, "blob 2 is no longer used");
    // Truncation drops and trims; the file is an S3 object at its path.
    s.apply(&Command::SetAttr {
        inode: f.inode,
        owner: None,
        size: Some(60),
        atime: None,
        mtime: None,
        now: 11,
    })
    .unwrap();
    assert_eq!(range(&s, f.inode), vec![(0, 50, 9, 0), (50, 10, 1, 50)]);
    match s
        .query(&Query::GetObject {
            bucket: "bk1".into(),
            key: "f".into(),
        })
        .unwrap()
    {
        Reply::Object(o) => assert_eq!(o.size, 60),
        r => panic!("{r:?}"),
    }
}

fn view(alive: &[u64]) -> crate::state::repair::View {
    crate::state::repair::View {
        nodes: (1..=5)
            .map(|i| {
                (
                    i,
                    crate::state::repair::NodeView {
                        addr: format!("n{i}"),
                        zone: format!("z{i}"),
                        alive: alive.contains(&i),
                        mode: NodeMode::Active,
                        capacity: 1 << 30,
                    },
                )
            })
            .collect(),
        now: 100,
    }
}

fn placements(s: &Store, key: &str, b: u8) -> Vec<NodeId> {
    match s
        .query(&Query::GetObject {
            bucket: "bk1".into(),
            key: key.into(),
        })
        .unwrap()
    {
        Reply::Object(o) => o.placements.get(&blob(b)).cloned().unwrap_or_default(),
        r => panic!("{r:?}"),
    }
}

fn deletions(s: &Store, node: NodeId, due: Option<u64>) -> Vec<BlobId> {
    match s
        .query(&Query::DeleteWork {
            node,
            limit: 100,
            due,
        })
        .unwrap()
    {
        Reply::Deletions(d) => d.into_iter().map(|(b, _)| b).collect(),
        r => panic!("{r:?}"),
    }
}

#[test]
fn goals_trim_repair_and_move_copies_without_going_below_goal() {
    let (_d, s) = with_bucket();
    for id in 1..=5 {
        s.apply(&Command::RegisterNode {
            id,
            addr: format!("n{id}"),
            zone: format!("z{id}"),
        })
        .unwrap();
    }
    put(&s, "a", &[(1, 10)]).unwrap();
    put(&s, "d/b", &[(2, 10)]).unwrap();
    let all = view(&[1, 2, 3, 4, 5]);
    assert_eq!(s.census(&all).unwrap().health.ok.blobs, 2);

    // Goal 2 on the bucket reaches the directory below and both blobs.
    s.apply(&Command::SetGoal {
        path: "/bk1".into(),
        goal: 2,
    })
    .unwrap();
    assert!(matches!(
        s.query(&Query::GetGoal {
            path: "/bk1/d".into()
        })
        .unwrap(),
        Reply::Goal(2)
    ));
    assert!(matches!(
        s.apply(&Command::SetGoal {
            path: "/bk1".into(),
            goal: 6
        }),
        Err(Error::Invalid(_))
    ));
    assert_eq!(s.census(&all).unwrap().health.over_goal.blobs, 2);
    let trims = s.trims(&all, &Default::default(), 100).unwrap();
    assert_eq!(trims.len(), 2, "one extra copy each: {trims:?}");
    s.apply(&Command::TrimCopies {
        copies: trims.clone(),
        cutoff: 50,
    })
    .unwrap();
    let (b1, dropped) = trims.iter().find(|(b, _)| *b == blob(1)).copied().unwrap();
    assert_eq!(placements(&s, "a", 1).len(), 2);
    assert!(deletions(&s, dropped, None).contains(&b1));
    assert!(deletions(&s, dropped, Some(49)).is_empty(), "not due yet");
    // Never below goal, whatever is asked.
    let keep = placements(&s, "a", 1);
    s.apply(&Command::TrimCopies {
        copies: vec![(b1, keep[0])],
        cutoff: 50,
    })
    .unwrap();
    assert_eq!(placements(&s, "a", 1), keep);
    // A write placing the dropped copy again cancels its deletion.
    let again = Command::PutObject {
        bucket: "bk1".into(),
        key: "a2".into(),
        size: 10,
        etag: "e".into(),
        meta: ObjectMeta::default(),
        extents: vec![Extent {
            offset: 0,
            len: 10,
            blob: b1,
            blob_offset: 0,
        }],
        blobs: vec![BlobWrite {
            id: b1,
            size: 10,
            nodes: vec![dropped],
        }],
        cond: Default::default(),
        now: 60,
    };
    s.apply(&again).unwrap();
    assert!(!deletions(&s, dropped, None).contains(&b1));

    // New entries inherit their directory's goal: 4 copies wanted.
    s.apply(&Command::SetGoal {
        path: "/bk1/d".into(),
        goal: 4,
    })
    .unwrap();
    put(&s, "d/c", &[(3, 10)]).unwrap();
    let census = s.census(&all).unwrap();
    assert_eq!(census.health.under_goal.blobs, 2, "b and c want 4");
    assert_eq!(census.repair_bytes, 2 * 10 + 10, "b lost one to goal 2");
    let work: usize = (1..=5)
        .map(|n| s.repair_work(n, &all, 100).unwrap().len())
        .sum();
    assert_eq!(work, 2, "each missing copy handed to exactly one node");

    // A lost copy leaves the placements; a move drops its source only if
    // the goal holds without it.
    s.apply(&Command::LostCopies {
        node: placements(&s, "d/c", 3)[0],
        blobs: vec![blob(3)],
        missing: vec![],
    })
    .unwrap();
    assert_eq!(placements(&s, "d/c", 3).len(), 2);
    let holders = placements(&s, "a", 1);
    let to = (1..=5).find(|n| !holders.contains(n)).unwrap();
    s.apply(&Command::RecordCopies {
        blobs: vec![BlobWrite {
            id: b1,
            size: 10,
            nodes: vec![to],
        }],
        moves: vec![(b1, holders[0])],
        cutoff: 70,
    })
    .unwrap();
    let now = placements(&s, "a", 1);
    assert!(now.contains(&to) && !now.contains(&holders[0]), "{now:?}");
    assert_eq!(now.len(), holders.len());
}

#[test]
fn placed_blobs_are_paged_in_id_order_per_node() {
    let (_d, s) = with_bucket();
    put(&s, "o", &[(1, 10), (2, 10), (3, 10), (4, 10), (5, 10)]).unwrap();
    s.apply(&Command::LostCopies {
        node: 2,
        blobs: vec![blob(2)],
        missing: vec![blob(4)],
    })
    .unwrap();
    let page = |node, after: Option<u8>, limit| s.placed(node, after.map(blob), limit).unwrap();
    assert_eq!(page(2, None, 2), vec![blob(1), blob(3)]);
    assert_eq!(page(2, Some(3), 2), vec![blob(5)]);
    assert_eq!(page(2, Some(5), 2), vec![]);
    assert_eq!(page(1, None, 10).len(), 5);
    assert_eq!(page(1, Some(2), 10), vec![blob(3), blob(4), blob(5)]);
    assert_eq!(page(9, None, 10), vec![]);

    // A missing file drops its placement, but never a blob's last one:
    // the file may come back with its disk.
    for node in [1, 3] {
        s.apply(&Command::LostCopies {
            node,
            blobs: vec![],
            missing: vec![blob(4)],
        })
        .unwrap();
    }
    assert_eq!(placements(&s, "o", 4), vec![3]);
    // A bad copy is dropped even when it is the last.
    s.apply(&Command::LostCopies {
        node: 3,
        blobs: vec![blob(4)],
        missing: vec![],
    })
    .unwrap();
    assert_eq!(placements(&s, "o", 4), Vec::<NodeId>::new());
}

/// Only a small extent that touches another it could be merged with marks
/// its file for the merge job: a file written whole in one small piece
/// costs the job nothing.
#[test]
fn only_files_with_small_neighbouring_extents_are_marked_for_merging() {
    let (_d, s) = store();
    let dir = make(&s, ROOT_INODE, "bk1", NodeKind::Dir);
    let file = |name: &str| make(&s, dir, name, NodeKind::File);
    let marked = || -> Vec<InodeId> {
        match s
            .query(&Query::Fragmented {
                before: u64::MAX,
                limit: 100,
            })
            .unwrap()
        {
            Reply::Marks(m) => m.into_iter().map(|(i, _)| i).collect(),
            r => panic!("{r:?}"),
        }
    };
    let whole = file("whole");
    write(&s, whole, 0, 1, 4096).unwrap();
    let appended = file("appended");
    write(&s, appended, 0, 2, 4096).unwrap();
    write(&s, appended, 4096, 3, 4096).unwrap();
    let gap = file("gap");
    write(&s, gap, 0, 4, 4096).unwrap();
    write(&s, gap, 1 << 20, 5, 4096).unwrap();
    let big = file("big");
    write(&s, big, 0, 6, MERGE_BLOB_BYTES).unwrap();
    write(&s, big, MERGE_BLOB_BYTES, 7, 4096).unwrap();
    assert_eq!(marked(), vec![appended]);
}
