//! What one applied command costs the state machine: the redb apply
//! transaction of a create, a write, a setattr and a remove, one command
//! per log entry as a serial NFS client sends them (the fsync of the log
//! is not part of this; see `compat-tests`'s `commit_path`).
//!
//! `cargo bench -p metastore --bench apply`; size: TROIKA_BENCH_FILES
//! (default 5,000 files per round).

use std::time::Instant;

use metastore::api::{BlobId, BlobWrite, Command, NodeKind, Reply, Request, ROOT_INODE};
use metastore::raft::state_machine::StateMachine;
use metastore::raft::TypeConfig;
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload, LogId};

type Entry = openraft::Entry<TypeConfig>;

/// Bytes this process has caused to be written to storage so far.
fn write_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

struct Applier {
    sm: StateMachine,
    index: u64,
    seq: u64,
}

impl Applier {
    async fn apply(&mut self, cmd: Command) -> Reply {
        self.index += 1;
        self.seq += 1;
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), self.index),
            payload: EntryPayload::Normal(vec![Request {
                client: 7,
                seq: self.seq,
                now: self.seq * 1_000,
                cmd,
            }]),
        };
        let mut out = self.sm.apply(vec![entry]).await.expect("apply");
        out.pop()
            .and_then(|mut r| r.pop())
            .expect("a reply")
            .expect("applied")
    }
}

#[tokio::main]
async fn main() {
    let files: u64 = std::env::var("TROIKA_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let db =
        metastore::raft::state_machine::open_db(&dir.path().join("m.redb"), 256 << 20).expect("db");
    let applied = metastore::raft::applied::Applied::new(db);
    let sm = StateMachine::new(applied, dir.path().join("snapshots")).expect("state machine");
    let mut a = Applier {
        sm,
        index: 0,
        seq: 0,
    };
    let parent = match a
        .apply(Command::CreateNode {
            parent: ROOT_INODE,
            name: "bench".into(),
            kind: NodeKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            target: String::new(),
            verifier: None,
            now: 1,
        })
        .await
    {
        Reply::Changed { node: Some(n), .. } => n.inode,
        r => panic!("{r:?}"),
    };
    println!("{files} files in one directory, one command per log entry");
    println!(
        "{:<10} {:>12} {:>16}",
        "command", "us/command", "bytes/command"
    );
    let mut inodes = Vec::new();
    let round = |name: &str, start: Instant, bytes0: u64| {
        let us = start.elapsed().as_secs_f64() * 1e6 / files as f64;
        let bytes = (write_bytes() - bytes0) / files;
        println!("{name:<10} {us:>12.1} {bytes:>16}");
    };

    let (t, b) = (Instant::now(), write_bytes());
    for i in 0..files {
        let reply = a
            .apply(Command::CreateNode {
                parent,
                name: format!("file-{i:07}.txt"),
                kind: NodeKind::File,
                mode: 0o644,
                uid: 1000,
                gid: 1000,
                target: String::new(),
                verifier: None,
                now: 10 + i,
            })
            .await;
        match reply {
            Reply::Changed { node: Some(n), .. } => inodes.push(n.inode),
            r => panic!("{r:?}"),
        }
    }
    round("create", t, b);

    let (t, b) = (Instant::now(), write_bytes());
    for (i, inode) in inodes.iter().enumerate() {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
        a.apply(Command::WriteFile {
            inode: *inode,
            offset: 0,
            blob: BlobWrite {
                id: BlobId(id),
                size: 4096,
                nodes: vec![1, 2, 3],
            },
            now: 20,
        })
        .await;
    }
    round("write", t, b);

    let (t, b) = (Instant::now(), write_bytes());
    for inode in &inodes {
        a.apply(Command::SetAttr {
            inode: *inode,
            owner: Some((0o100644, 1000, 1000)),
            size: None,
            atime: Some(30),
            mtime: Some(30),
            now: 30,
        })
        .await;
    }
    round("setattr", t, b);

    let (t, b) = (Instant::now(), write_bytes());
    for i in 0..files {
        a.apply(Command::RemoveNode {
            parent,
            name: format!("file-{i:07}.txt"),
            now: 40,
        })
        .await;
    }
    round("remove", t, b);
    let size = std::fs::metadata(dir.path().join("m.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!("database file: {} KiB", size >> 10);
}
