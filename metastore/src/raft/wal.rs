//! The Raft log as an append-only file: segments of checksummed records,
//! written by one thread that group-commits whatever is queued with one
//! write and one `fdatasync`.
//!
//! Layout: `DIR/NNNNNNNNNNNNNNNNNNNN.wal` (a 20-digit segment number),
//! each a run of records `len: u32 LE | crc32c: u32 LE | kind: u8 | body`,
//! where `len` counts `kind` and `body` and the CRC covers both:
//! - `ENTRY`: `index: u64 LE` then the entry's bytes; an entry at or below
//!   the last one replaces it and everything after (a truncation is
//!   implied);
//! - `TRUNCATE`: `index: u64 LE`: entries from `index` on are gone;
//! - `PURGE`: `index: u64 LE` then the purged log id's bytes: entries up to
//!   `index` are gone;
//! - `VOTE`: the vote's bytes.
//!
//! Every segment starts with the vote and purge point as they were when it
//! was opened, so an older segment is needed only for its entries: it is
//! deleted once every entry it holds is purged. A new segment is started
//! at each open and when the current one passes [`SEGMENT_BYTES`].
//!
//! Recovery reads every segment in order. A record that is cut short or
//! fails its CRC in the last segment is where a crash stopped a write that
//! was never acknowledged: the segment is cut there. The same in an older
//! segment (which was fsynced whole before the next began) is corruption,
//! and the log refuses to open.
//!
//! Entries are visible to readers as soon as they are queued (replication
//! may send them before they are durable here, as Raft allows); their
//! bytes are served from memory until written, then read from the file.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};

/// A segment is closed and a new one begun past this size.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// The most queued bytes one group commit writes.
const GROUP_BYTES: usize = 32 << 20;

const ENTRY: u8 = 1;
const TRUNCATE: u8 = 2;
const PURGE: u8 = 3;
const VOTE: u8 = 4;

/// Called once the job's records are durable, or with the error that
/// stopped them.
pub type Done = Box<dyn FnOnce(io::Result<()>) + Send>;

enum Job {
    Records(Vec<u8>, Vec<Written>, Done),
    /// Stops the writer (the log is being dropped).
    Stop,
}

/// Where an entry queued in a job lands in the job's bytes.
struct Written {
    index: u64,
    at: usize,
    len: u32,
    bytes: Arc<[u8]>,
}

#[derive(Clone)]
enum Loc {
    Queued(Arc<[u8]>),
    File { seg: u64, off: u64, len: u32 },
}

struct Segment {
    file: Arc<File>,
    /// The highest entry index written to it.
    max_index: Option<u64>,
}

struct Index {
    /// Index of `slots[0]`.
    first: u64,
    slots: VecDeque<Loc>,
    vote: Option<Vec<u8>>,
    purged: Option<(u64, Vec<u8>)>,
    segments: BTreeMap<u64, Segment>,
    /// Set once a write or sync failed: the file's state is unknown, so
    /// nothing more is accepted.
    failed: Option<String>,
}

impl Index {
    fn last(&self) -> Option<u64> {
        (!self.slots.is_empty()).then(|| self.first + self.slots.len() as u64 - 1)
    }

    fn put(&mut self, index: u64, loc: Loc) {
        if self.slots.is_empty() {
            self.first = index;
        } else if index < self.first {
            self.slots.clear();
            self.first = index;
        } else {
            self.slots.truncate((index - self.first) as usize);
            if self.first + self.slots.len() as u64 != index {
                // A gap: only what follows the gap is kept.
                self.slots.clear();
                self.first = index;
            }
        }
        self.slots.push_back(loc);
    }

    fn truncate(&mut self, index: u64) {
        if index <= self.first {
            self.slots.clear();
        } else {
            self.slots.truncate((index - self.first) as usize);
        }
    }

    fn purge(&mut self, index: u64) {
        while !self.slots.is_empty() && self.first <= index {
            self.slots.pop_front();
            self.first += 1;
        }
        if self.slots.is_empty() {
            self.first = self.first.max(index + 1);
        }
    }
}

/// What the log has written since it was opened, for `/metrics`.
#[derive(Default)]
pub struct WalStats {
    /// Group commits: one `fdatasync` each.
    pub syncs: std::sync::atomic::AtomicU64,
    /// Record bytes written.
    pub bytes: std::sync::atomic::AtomicU64,
}

pub struct Wal {
    stats: Arc<WalStats>,
    index: Arc<Mutex<Index>>,
    /// Held while a job updates the index and is queued, so the file gets
    /// records in the order the index saw them.
    queue: Mutex<mpsc::Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

fn record(kind: u8, head: Option<u64>, body: &[u8], out: &mut Vec<u8>) -> usize {
    let len = 1 + head.map_or(0, |_| 8) + body.len();
    let start = out.len();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(kind);
    if let Some(h) = head {
        out.extend_from_slice(&h.to_le_bytes());
    }
    let body_at = out.len();
    out.extend_from_slice(body);
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    body_at
}

fn segment_name(seg: u64) -> String {
    format!("{seg:020}.wal")
}

fn corrupt(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Wal {
    /// Opens the log in `dir` (created if missing), recovering what the
    /// segments hold, and starts a new segment to append to.
    pub fn open(dir: &Path) -> io::Result<Self> {
        Self::open_with(dir, SEGMENT_BYTES)
    }

    /// [`Self::open`], starting a new segment past `segment_bytes`.
    pub fn open_with(dir: &Path, segment_bytes: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut found: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".wal")?.parse().ok()
            })
            .collect();
        found.sort_unstable();
        let mut index = Index {
            first: 0,
            slots: VecDeque::new(),
            vote: None,
            purged: None,
            segments: BTreeMap::new(),
            failed: None,
        };
        for (i, seg) in found.iter().enumerate() {
            let last = i + 1 == found.len();
            replay(dir, *seg, last, &mut index)?;
        }
        let next = found.last().map_or(1, |s| s + 1);
        let (file, _) = start_segment(dir, next, &index)?;
        index.segments.insert(
            next,
            Segment {
                file: Arc::new(file),
                max_index: None,
            },
        );
        // Segments without entries held only records the new one repeats.
        let empty: Vec<u64> = index
            .segments
            .iter()
            .filter(|(s, g)| **s != next && g.max_index.is_none())
            .map(|(s, _)| *s)
            .collect();
        for seg in empty {
            index.segments.remove(&seg);
            std::fs::remove_file(dir.join(segment_name(seg)))?;
        }
        let index = Arc::new(Mutex::new(index));
        let stats = Arc::new(WalStats::default());
        let (tx, rx) = mpsc::channel();
        let writer = {
            let index = index.clone();
            let dir = dir.to_path_buf();
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("raft-log".into())
                .spawn(move || write_loop(&dir, next, segment_bytes, &index, &stats, rx))?
        };
        Ok(Self {
            stats,
            index,
            queue: Mutex::new(tx),
            writer: Some(writer),
        })
    }

    pub fn stats(&self) -> &Arc<WalStats> {
        &self.stats
    }

    fn submit(
        &self,
        records: Vec<u8>,
        written: Vec<Written>,
        update: impl FnOnce(&mut Index),
        done: Done,
    ) {
        let queue = self.queue.lock().expect("log queue lock");
        {
            let mut index = self.index.lock().expect("log index lock");
            if let Some(e) = &index.failed {
                let e = io::Error::other(e.clone());
                drop(index);
                drop(queue);
                return done(Err(e));
            }
            update(&mut index);
        }
        if let Err(mpsc::SendError(Job::Records(_, _, done))) =
            queue.send(Job::Records(records, written, done))
        {
            done(Err(io::Error::other("the log writer has stopped")));
        }
    }

    /// Queues entries (index, bytes), in order; `done` once durable.
    pub fn append(&self, entries: Vec<(u64, Vec<u8>)>, done: Done) {
        let mut records = Vec::with_capacity(entries.iter().map(|(_, b)| b.len() + 17).sum());
        let mut written = Vec::with_capacity(entries.len());
        for (i, bytes) in entries {
            let at = record(ENTRY, Some(i), &bytes, &mut records);
            written.push(Written {
                index: i,
                at,
                len: bytes.len() as u32,
                bytes: bytes.into(),
            });
        }
        let queued: Vec<(u64, Arc<[u8]>)> =
            written.iter().map(|w| (w.index, w.bytes.clone())).collect();
        self.submit(
            records,
            written,
            move |ix| {
                for (i, b) in queued {
                    ix.put(i, Loc::Queued(b));
                }
            },
            done,
        );
    }

    /// Removes the entries from `index` on; `done` once durable.
    pub fn truncate(&self, index: u64, done: Done) {
        let mut records = Vec::new();
        record(TRUNCATE, Some(index), &[], &mut records);
        self.submit(records, Vec::new(), move |ix| ix.truncate(index), done);
    }

    /// Removes the entries up to `index`, remembering `id` as the purge
    /// point; `done` once durable (older segments are deleted after).
    pub fn purge(&self, index: u64, id: Vec<u8>, done: Done) {
        let mut records = Vec::new();
        record(PURGE, Some(index), &id, &mut records);
        self.submit(
            records,
            Vec::new(),
            move |ix| {
                ix.purge(index);
                ix.purged = Some((index, id));
            },
            done,
        );
    }

    /// Records the vote; `done` once durable.
    pub fn save_vote(&self, vote: Vec<u8>, done: Done) {
        let mut records = Vec::new();
        record(VOTE, None, &vote, &mut records);
        self.submit(records, Vec::new(), move |ix| ix.vote = Some(vote), done);
    }

    pub fn vote(&self) -> Option<Vec<u8>> {
        self.index.lock().expect("log index lock").vote.clone()
    }

    /// The purge point's bytes.
    pub fn purged(&self) -> Option<Vec<u8>> {
        let ix = self.index.lock().expect("log index lock");
        ix.purged.as_ref().map(|(_, id)| id.clone())
    }

    /// The last entry's index and bytes.
    pub fn last(&self) -> io::Result<Option<(u64, Vec<u8>)>> {
        let last = self.index.lock().expect("log index lock").last();
        match last {
            Some(i) => Ok(self.read(i, i + 1, usize::MAX)?.pop()),
            None => Ok(None),
        }
    }

    /// The entries of `[start, end)` that are held, in order, stopping
    /// before the one that would take their size past `budget` (never
    /// before the first).
    pub fn read(&self, start: u64, end: u64, budget: usize) -> io::Result<Vec<(u64, Vec<u8>)>> {
        /// Where an entry's bytes are read from, outside the lock.
        enum From {
            Memory(Arc<[u8]>),
            File(Arc<File>, u64, u32),
        }
        let mut wanted = Vec::new();
        {
            let ix = self.index.lock().expect("log index lock");
            let Some(last) = ix.last() else {
                return Ok(Vec::new());
            };
            let (start, end) = (start.max(ix.first), end.min(last + 1));
            let mut bytes = 0usize;
            for i in start..end {
                let (from, len) = match &ix.slots[(i - ix.first) as usize] {
                    Loc::Queued(b) => (From::Memory(b.clone()), b.len()),
                    Loc::File { seg, off, len } => {
                        let file = ix.segments.get(seg).map(|s| s.file.clone());
                        let file = file
                            .ok_or_else(|| corrupt(format!("entry {i} is in a deleted segment")))?;
                        (From::File(file, *off, *len), *len as usize)
                    }
                };
                bytes += len;
                if bytes > budget && !wanted.is_empty() {
                    break;
                }
                wanted.push((i, from));
            }
        }
        wanted
            .into_iter()
            .map(|(i, from)| match from {
                From::Memory(b) => Ok((i, b.to_vec())),
                From::File(f, off, len) => {
                    let mut buf = vec![0; len as usize];
                    f.read_exact_at(&mut buf, off)?;
                    Ok((i, buf))
                }
            })
            .collect()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.queue.lock().map(|q| q.send(Job::Stop));
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Creates segment `seg` starting with the vote and purge point of
/// `index`, durable with its directory entry.
fn start_segment(dir: &Path, seg: u64, index: &Index) -> io::Result<(File, u64)> {
    let path = dir.join(segment_name(seg));
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .open(&path)?;
    let mut head = Vec::new();
    if let Some(v) = &index.vote {
        record(VOTE, None, v, &mut head);
    }
    if let Some((i, id)) = &index.purged {
        record(PURGE, Some(*i), id, &mut head);
    }
    file.write_all(&head)?;
    file.sync_all()?;
    File::open(dir)?.sync_all()?;
    Ok((file, head.len() as u64))
}

/// Reads segment `seg` into `index`. In the `last` segment, a record cut
/// short or failing its CRC ends the segment (which is cut there).
fn replay(dir: &Path, seg: u64, last: bool, index: &mut Index) -> io::Result<()> {
    let path = dir.join(segment_name(seg));
    let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    let mut pos = 0usize;
    let mut max_index = None;
    let bad = loop {
        if pos == data.len() {
            break None;
        }
        if data.len() - pos < 9 {
            break Some("a record header cut short");
        }
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().expect("4 bytes"));
        if len == 0 || data.len() - pos - 8 < len {
            break Some("a record cut short");
        }
        let rec = &data[pos + 8..pos + 8 + len];
        if crc32c::crc32c(rec) != crc {
            break Some("a record failing its checksum");
        }
        let (kind, body) = (rec[0], &rec[1..]);
        let head = |body: &[u8]| -> Option<(u64, usize)> {
            Some((u64::from_le_bytes(body.get(..8)?.try_into().ok()?), 8))
        };
        match kind {
            ENTRY | TRUNCATE | PURGE => {
                let Some((i, skip)) = head(body) else {
                    break Some("a record too short for its kind");
                };
                let rest = &body[skip..];
                match kind {
                    ENTRY => {
                        if index.purged.as_ref().is_none_or(|(p, _)| i > *p) {
                            index.put(
                                i,
                                Loc::File {
                                    seg,
                                    off: (pos + 8 + 1 + skip) as u64,
                                    len: rest.len() as u32,
                                },
                            );
                        }
                        max_index = Some(max_index.map_or(i, |m: u64| m.max(i)));
                    }
                    TRUNCATE => index.truncate(i),
                    _ => {
                        index.purge(i);
                        index.purged = Some((i, rest.to_vec()));
                    }
                }
            }
            VOTE => index.vote = Some(body.to_vec()),
            _ => break Some("a record of an unknown kind"),
        }
        pos += 8 + len;
    };
    if let Some(what) = bad {
        if !last {
            return Err(corrupt(format!(
                "{}: {what} at byte {pos}, before the last segment",
                path.display()
            )));
        }
        tracing::warn!(
            segment = %path.display(),
            at = pos,
            "the log ends in {what}: a write a crash interrupted, never acknowledged; cut there"
        );
        file.set_len(pos as u64)?;
        file.sync_all()?;
    }
    index.segments.insert(
        seg,
        Segment {
            file: Arc::new(file),
            max_index,
        },
    );
    Ok(())
}

/// The writer thread: takes every queued job, writes them with one write
/// and one `fdatasync`, then answers them all.
fn write_loop(
    dir: &Path,
    mut seg: u64,
    segment_bytes: u64,
    index: &Mutex<Index>,
    stats: &WalStats,
    rx: mpsc::Receiver<Job>,
) {
    let mut file = index.lock().expect("log index lock").segments[&seg]
        .file
        .clone();
    let mut size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut pending: Option<Job> = None;
    loop {
        let first = match pending.take() {
            Some(j) => j,
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
        };
        let mut jobs = Vec::new();
        let mut stop = false;
        let mut bytes = 0usize;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Stop => stop = true,
                Job::Records(r, w, d) => {
                    if !jobs.is_empty() && bytes + r.len() > GROUP_BYTES {
                        pending = Some(Job::Records(r, w, d));
                        break;
                    }
                    bytes += r.len();
                    jobs.push((r, w, d));
                }
            }
            if stop {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !jobs.is_empty() {
            if size > segment_bytes {
                let started = {
                    let ix = index.lock().expect("log index lock");
                    start_segment(dir, seg + 1, &ix)
                };
                match started {
                    Ok((f, len)) => {
                        seg += 1;
                        size = len;
                        file = Arc::new(f);
                        index.lock().expect("log index lock").segments.insert(
                            seg,
                            Segment {
                                file: file.clone(),
                                max_index: None,
                            },
                        );
                    }
                    Err(e) => fail(index, std::mem::take(&mut jobs), e),
                }
            }
            if !jobs.is_empty() {
                let written = write_group(seg, &file, size, index, jobs);
                size += written;
                stats
                    .syncs
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                stats
                    .bytes
                    .fetch_add(written, std::sync::atomic::Ordering::Relaxed);
                remove_purged(dir, seg, index);
            }
        }
        if stop {
            return;
        }
    }
}

type Group = Vec<(Vec<u8>, Vec<Written>, Done)>;

/// Marks the log failed and answers every job of `jobs` with `e`.
fn fail(index: &Mutex<Index>, jobs: Group, e: io::Error) {
    tracing::error!(error = %e, "the Raft log could not be written");
    index.lock().expect("log index lock").failed = Some(e.to_string());
    for (_, _, done) in jobs {
        done(Err(io::Error::new(e.kind(), e.to_string())));
    }
}

/// Writes `jobs` at `offset` of segment `seg`, syncs, points their entries
/// at the file and answers them; returns the bytes written.
fn write_group(seg: u64, file: &File, offset: u64, index: &Mutex<Index>, jobs: Group) -> u64 {
    let mut buf = Vec::with_capacity(jobs.iter().map(|(r, _, _)| r.len()).sum());
    let mut placed = Vec::new();
    for (records, written, _) in &jobs {
        let base = offset + buf.len() as u64;
        buf.extend_from_slice(records);
        for w in written {
            placed.push((w.index, base + w.at as u64, w.len, w.bytes.clone()));
        }
    }
    let result = (&*file).write_all(&buf).and_then(|()| file.sync_data());
    if let Err(e) = result {
        fail(index, jobs, e);
        return buf.len() as u64;
    }
    {
        let mut ix = index.lock().expect("log index lock");
        for (i, off, len, bytes) in placed {
            // Only if the slot still holds these bytes: a truncation
            // queued meanwhile may have replaced it.
            if let Some(slot) = i
                .checked_sub(ix.first)
                .and_then(|k| ix.slots.get_mut(k as usize))
            {
                if matches!(slot, Loc::Queued(b) if Arc::ptr_eq(b, &bytes)) {
                    *slot = Loc::File { seg, off, len };
                }
            }
            if let Some(s) = ix.segments.get_mut(&seg) {
                s.max_index = Some(s.max_index.map_or(i, |m| m.max(i)));
            }
        }
    }
    for (_, _, done) in jobs {
        done(Ok(()));
    }
    buf.len() as u64
}

/// Deletes the segments before `current` whose entries are all purged.
fn remove_purged(dir: &Path, current: u64, index: &Mutex<Index>) {
    let gone: Vec<u64> = {
        let mut ix = index.lock().expect("log index lock");
        let purged = ix.purged.as_ref().map(|(i, _)| *i);
        let gone: Vec<u64> = ix
            .segments
            .iter()
            .filter(|(s, g)| {
                **s < current
                    && match (g.max_index, purged) {
                        (None, _) => true,
                        (Some(m), Some(p)) => m <= p,
                        (Some(_), None) => false,
                    }
            })
            .map(|(s, _)| *s)
            .collect();
        for s in &gone {
            ix.segments.remove(s);
        }
        gone
    };
    for s in gone {
        if let Err(e) = std::fs::remove_file(dir.join(segment_name(s))) {
            tracing::warn!(segment = s, error = %e, "could not delete a purged log segment");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(f: impl FnOnce(Done)) -> io::Result<()> {
        let (tx, rx) = mpsc::channel();
        f(Box::new(move |r| {
            let _ = tx.send(r);
        }));
        rx.recv().expect("answered")
    }

    fn entry(i: u64) -> (u64, Vec<u8>) {
        (
            i,
            format!("entry {i}").repeat(i as usize % 7 + 1).into_bytes(),
        )
    }

    fn append(w: &Wal, range: std::ops::Range<u64>) {
        wait(|d| w.append(range.map(entry).collect(), d)).unwrap();
    }

    fn held(w: &Wal) -> Vec<u64> {
        w.read(0, u64::MAX, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(i, b)| {
                assert_eq!(b, entry(i).1, "entry {i}'s bytes");
                i
            })
            .collect()
    }

    #[test]
    fn entries_vote_truncation_and_purge_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let w = Wal::open(dir.path()).unwrap();
            append(&w, 1..11);
            wait(|d| w.save_vote(b"v1".to_vec(), d)).unwrap();
            wait(|d| w.truncate(8, d)).unwrap();
            append(&w, 8..9);
            wait(|d| w.purge(3, b"p3".to_vec(), d)).unwrap();
            assert_eq!(held(&w), (4..9).collect::<Vec<_>>());
        }
        let w = Wal::open(dir.path()).unwrap();
        assert_eq!(held(&w), (4..9).collect::<Vec<_>>());
        assert_eq!(w.vote().as_deref(), Some(&b"v1"[..]));
        assert_eq!(w.purged().as_deref(), Some(&b"p3"[..]));
        assert_eq!(w.last().unwrap().map(|(i, _)| i), Some(8));
        // A budget stops a read after the entry that passes it.
        let two = entry(4).1.len() + entry(5).1.len();
        assert_eq!(w.read(4, 9, 1).unwrap().len(), 1);
        assert_eq!(w.read(4, 9, two - 1).unwrap().len(), 1);
        assert_eq!(w.read(4, 9, two).unwrap().len(), 2);
    }

    #[test]
    fn purged_segments_are_deleted_and_the_rest_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let segments = || std::fs::read_dir(dir.path()).unwrap().count();
        {
            let w = Wal::open_with(dir.path(), 200).unwrap();
            for i in 1..=40 {
                append(&w, i..i + 1);
            }
            assert!(segments() > 5, "{} segments", segments());
            wait(|d| w.save_vote(b"v".to_vec(), d)).unwrap();
            wait(|d| w.purge(30, b"p".to_vec(), d)).unwrap();
            // Deletion follows the next write.
            append(&w, 41..42);
            assert!(segments() <= 4, "{} segments left", segments());
            assert_eq!(held(&w), (31..42).collect::<Vec<_>>());
        }
        let w = Wal::open_with(dir.path(), 200).unwrap();
        assert_eq!(held(&w), (31..42).collect::<Vec<_>>());
        assert_eq!(w.vote().as_deref(), Some(&b"v"[..]));
        assert_eq!(w.purged().as_deref(), Some(&b"p"[..]));
    }

    /// A crash can stop the last write at any byte: every cut opens, keeps
    /// each entry whose record is whole, and appends after the cut.
    #[test]
    fn a_torn_last_record_at_any_byte_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        {
            let w = Wal::open(dir.path()).unwrap();
            append(&w, 1..4);
        }
        let seg = dir.path().join(segment_name(1));
        let whole = std::fs::read(&seg).unwrap();
        // Where each record ends.
        let mut ends = Vec::new();
        let mut pos = 0;
        while pos < whole.len() {
            let len = u32::from_le_bytes(whole[pos..pos + 4].try_into().unwrap()) as usize;
            pos += 8 + len;
            ends.push(pos);
        }
        assert_eq!(ends.len(), 3);
        for cut in 0..=whole.len() {
            let copy = tempfile::tempdir().unwrap();
            std::fs::write(copy.path().join(segment_name(1)), &whole[..cut]).unwrap();
            let kept = ends.iter().filter(|e| **e <= cut).count() as u64;
            let w = Wal::open(copy.path()).unwrap();
            assert_eq!(held(&w), (1..=kept).collect::<Vec<_>>(), "cut at {cut}");
            append(&w, kept + 1..kept + 2);
            drop(w);
            let w = Wal::open(copy.path()).unwrap();
            assert_eq!(held(&w), (1..=kept + 1).collect::<Vec<_>>(), "cut at {cut}");
        }
        // A flipped bit in the last record is a torn write too.
        let copy = tempfile::tempdir().unwrap();
        let mut flipped = whole.clone();
        *flipped.last_mut().unwrap() ^= 1;
        std::fs::write(copy.path().join(segment_name(1)), &flipped).unwrap();
        assert_eq!(held(&Wal::open(copy.path()).unwrap()), vec![1, 2]);
    }

    #[test]
    fn a_bad_record_before_the_last_segment_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let w = Wal::open(dir.path()).unwrap();
            append(&w, 1..4);
        }
        // Reopening starts segment 2; segment 1 is no longer the last.
        drop(Wal::open(dir.path()).unwrap());
        let seg = dir.path().join(segment_name(1));
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[12] ^= 0x40;
        std::fs::write(&seg, &bytes).unwrap();
        let e = Wal::open(dir.path()).err().expect("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }
}
