//! The journal of small blobs: what makes a small PUT durable with one
//! group-committed `fdatasync` instead of two fsyncs of its own.
//!
//! A blob file of a few KiB costs a new file's fsync and its directory's
//! (each a file-system journal commit), three times over for three copies
//! on one disk. A small blob is therefore written to its file without any
//! sync, and then appended to this journal, a preallocated file that is
//! only ever overwritten in place, so its `fdatasync` is a plain data flush
//! shared by every PUT waiting at that moment. When the journal is full,
//! a checkpoint makes every blob file durable at once (`syncfs`) and starts
//! the journal over under a new generation.
//!
//! Crash argument: a small PUT answers only after its record is synced.
//! Its file was written before the record was appended, so a checkpoint,
//! which syncs the file system before it forgets records, never forgets
//! the record of a file it did not sync. On open, every record of the
//! current generation is replayed: a blob file missing or not matching its
//! record is written again, a deleted one (tombstone) removed again; then
//! a checkpoint. A record cut short or failing its CRC ends the journal:
//! nothing after it was acknowledged, since each sync covers every record
//! appended before it.
//!
//! A large blob's PUT is durable by its own fsyncs; it leaves a record
//! without data too, so that a tombstone of an earlier copy of the same
//! blob in this generation is not replayed over it.
//!
//! Layout: a header block (`magic "TRKJ" | version u32 | generation u64 |
//! crc32c u32`), then records `body length u32 | crc32c u32 | generation
//! u64 | kind u8 (put, tombstone, durable) | blob id [32] | data`, the CRC
//! over everything after itself (integers little-endian).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::Mutex;

use metastore::api::BlobId;

const MAGIC: &[u8; 4] = b"TRKJ";
const VERSION: u32 = 1;
const HEADER_BYTES: u64 = 4096;
const RECORD_HEAD: usize = 4 + 4 + 8 + 1 + 32;
const PUT: u8 = 1;
const TOMBSTONE: u8 = 2;
const DURABLE: u8 = 3;

/// What replay found for one blob: its last record.
pub enum Replayed {
    Put(Vec<u8>),
    Deleted,
    /// Stored again, durably by itself: a tombstone before it is void.
    Durable,
}

pub struct Journal {
    file: File,
    /// A descriptor on the store's file system, for `syncfs`.
    fs: File,
    capacity: u64,
    /// Appends: where the next record goes.
    tail: Mutex<Tail>,
    /// How far (in bytes ever appended) the journal is known durable.
    /// Taken before `tail` when both are needed.
    synced: Mutex<u64>,
}

struct Tail {
    generation: u64,
    offset: u64,
    /// Bytes ever appended, across generations: what a sync covers.
    appended: u64,
}

impl Journal {
    /// Opens (creating and preallocating, `capacity` bytes) the journal at
    /// `path` on the file system of `root`, and returns what its current
    /// generation holds, last record per blob. The caller restores those
    /// and then calls [`Journal::checkpoint`].
    pub fn open(
        path: &Path,
        root: &Path,
        capacity: u64,
    ) -> std::io::Result<(Self, HashMap<BlobId, Replayed>)> {
        let capacity = capacity.max(HEADER_BYTES * 2);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len();
        let (generation, replayed, capacity) = match read_header(&file)? {
            Some(generation) => (generation, replay(&file, generation, len)?, len),
            None => {
                // New (or cut short before its header was synced): zeros
                // written for real, so later syncs never allocate.
                let zeros = vec![0u8; 1 << 20];
                let mut at = 0;
                while at < capacity {
                    let n = zeros.len().min((capacity - at) as usize);
                    file.write_all_at(&zeros[..n], at)?;
                    at += n as u64;
                }
                file.set_len(capacity)?;
                file.write_all_at(&header(1), 0)?;
                file.sync_all()?;
                crate::store::fsync_dir(path.parent().unwrap_or(root))?;
                (1, HashMap::new(), capacity)
            }
        };
        let journal = Self {
            file,
            fs: File::open(root)?,
            capacity,
            tail: Mutex::new(Tail {
                generation,
                offset: HEADER_BYTES,
                appended: 0,
            }),
            synced: Mutex::new(0),
        };
        Ok((journal, replayed))
    }

    /// Whether a blob of `len` bytes goes through the journal.
    pub fn takes(&self, len: usize) -> bool {
        (RECORD_HEAD + len) as u64 <= (self.capacity - HEADER_BYTES) / 8
    }

    /// Appends a PUT record for a blob whose file is already written;
    /// returns the mark to [`Journal::sync`] to.
    pub fn put(&self, id: &BlobId, data: &[u8]) -> std::io::Result<u64> {
        self.append(PUT, id, data)
    }

    /// Appends a tombstone: replay must not bring a deleted blob back.
    pub fn tombstone(&self, id: &BlobId) -> std::io::Result<u64> {
        self.append(TOMBSTONE, id, &[])
    }

    /// Appends a note that a large blob was stored, durably by itself.
    pub fn durable(&self, id: &BlobId) -> std::io::Result<u64> {
        self.append(DURABLE, id, &[])
    }

    fn append(&self, kind: u8, id: &BlobId, data: &[u8]) -> std::io::Result<u64> {
        let len = (RECORD_HEAD + data.len()) as u64;
        loop {
            {
                let mut tail = self.tail.lock().expect("journal tail");
                if tail.offset + len <= self.capacity {
                    let rec = record(tail.generation, kind, id, data);
                    self.file.write_all_at(&rec, tail.offset)?;
                    tail.offset += len;
                    tail.appended += len;
                    return Ok(tail.appended);
                }
            }
            self.checkpoint()?;
        }
    }

    /// Returns once every record appended up to `mark` is durable. Callers
    /// that arrive while a sync runs share the next one.
    pub fn sync(&self, mark: u64) -> std::io::Result<()> {
        let mut synced = self.synced.lock().expect("journal sync");
        if *synced >= mark {
            return Ok(());
        }
        let upto = self.tail.lock().expect("journal tail").appended;
        self.file.sync_data()?;
        *synced = upto;
        Ok(())
    }

    /// Makes every file of the store's file system durable, then starts
    /// the journal over: its records are no longer needed.
    pub fn checkpoint(&self) -> std::io::Result<()> {
        let mut synced = self.synced.lock().expect("journal sync");
        let mut tail = self.tail.lock().expect("journal tail");
        // SAFETY: `fs` is an open descriptor for the life of the call.
        if unsafe { libc::syncfs(self.fs.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let generation = tail.generation + 1;
        self.file.write_all_at(&header(generation), 0)?;
        self.file.sync_data()?;
        tail.generation = generation;
        tail.offset = HEADER_BYTES;
        *synced = tail.appended;
        Ok(())
    }
}

fn header(generation: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(20);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&generation.to_le_bytes());
    let crc = crc32c::crc32c(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// The generation of a valid header, `None` for a new file.
fn read_header(file: &File) -> std::io::Result<Option<u64>> {
    let mut h = [0u8; 20];
    if file.read_exact_at(&mut h, 0).is_err() || &h[..4] != MAGIC {
        return Ok(None);
    }
    let crc = u32::from_le_bytes(h[16..20].try_into().expect("4 bytes"));
    if crc32c::crc32c(&h[..16]) != crc {
        return Ok(None);
    }
    if u32::from_le_bytes(h[4..8].try_into().expect("4 bytes")) != VERSION {
        return Err(std::io::Error::other(
            "the blob journal was written by another version",
        ));
    }
    Ok(Some(u64::from_le_bytes(
        h[8..16].try_into().expect("8 bytes"),
    )))
}

fn record(generation: u64, kind: u8, id: &BlobId, data: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(RECORD_HEAD + data.len());
    r.extend_from_slice(&((RECORD_HEAD - 8 + data.len()) as u32).to_le_bytes());
    r.extend_from_slice(&[0; 4]);
    r.extend_from_slice(&generation.to_le_bytes());
    r.push(kind);
    r.extend_from_slice(&id.0);
    r.extend_from_slice(data);
    let crc = crc32c::crc32c(&r[8..]);
    r[4..8].copy_from_slice(&crc.to_le_bytes());
    r
}

/// The records of `generation` in order, up to the first that is cut
/// short, of another generation or fails its CRC.
fn replay(file: &File, generation: u64, len: u64) -> std::io::Result<HashMap<BlobId, Replayed>> {
    let mut out = HashMap::new();
    let mut at = HEADER_BYTES;
    let mut head = [0u8; RECORD_HEAD];
    while at + RECORD_HEAD as u64 <= len {
        file.read_exact_at(&mut head, at)?;
        let body = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as u64;
        let crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
        let gen = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
        if gen != generation || body < (RECORD_HEAD - 8) as u64 || at + 8 + body > len {
            break;
        }
        let mut rec = vec![0u8; body as usize];
        file.read_exact_at(&mut rec, at + 8)?;
        if crc32c::crc32c(&rec) != crc {
            break;
        }
        let id = BlobId(rec[9..41].try_into().expect("32 bytes"));
        match rec[8] {
            PUT => out.insert(id, Replayed::Put(rec[41..].to_vec())),
            TOMBSTONE => out.insert(id, Replayed::Deleted),
            DURABLE => out.insert(id, Replayed::Durable),
            _ => break,
        };
        at += 8 + body;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> (Journal, HashMap<BlobId, Replayed>) {
        Journal::open(&dir.join("journal"), dir, 64 << 10).unwrap()
    }

    #[test]
    fn a_blob_stored_again_after_its_tombstone_stays() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = open(dir.path());
        let a = BlobId([1; 32]);
        j.sync(j.tombstone(&a).unwrap()).unwrap();
        j.sync(j.durable(&a).unwrap()).unwrap();
        drop(j);
        assert!(matches!(
            open(dir.path()).1.get(&a),
            Some(Replayed::Durable)
        ));
    }

    #[test]
    fn synced_records_replay_until_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (j, found) = open(dir.path());
        assert!(found.is_empty());
        let (a, b) = (BlobId([1; 32]), BlobId([2; 32]));
        j.put(&a, b"first").unwrap();
        let mark = j.put(&b, b"second").unwrap();
        j.sync(mark).unwrap();
        j.sync(j.tombstone(&a).unwrap()).unwrap();
        drop(j);
        let (j, found) = open(dir.path());
        assert!(matches!(found.get(&a), Some(Replayed::Deleted)));
        assert!(matches!(found.get(&b), Some(Replayed::Put(d)) if d == b"second"));
        j.checkpoint().unwrap();
        drop(j);
        assert!(open(dir.path()).1.is_empty());
    }

    #[test]
    fn a_torn_record_ends_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = open(dir.path());
        let (a, b) = (BlobId([1; 32]), BlobId([2; 32]));
        j.put(&a, b"kept").unwrap();
        j.sync(j.put(&b, &[7; 100]).unwrap()).unwrap();
        drop(j);
        // Every cut inside the second record, and a flipped bit in it.
        let second = HEADER_BYTES + (RECORD_HEAD + 4) as u64;
        let whole = std::fs::read(dir.path().join("journal")).unwrap();
        for cut in [1, 8, 20, RECORD_HEAD + 50, RECORD_HEAD + 99] {
            let mut bytes = whole.clone();
            for x in &mut bytes[second as usize + cut..second as usize + RECORD_HEAD + 100] {
                *x = 0;
            }
            std::fs::write(dir.path().join("journal"), &bytes).unwrap();
            let (_, found) = open(dir.path());
            assert_eq!(found.len(), 1, "cut at {cut}");
            assert!(matches!(found.get(&a), Some(Replayed::Put(d)) if d == b"kept"));
        }
        let mut bytes = whole.clone();
        bytes[second as usize + RECORD_HEAD + 10] ^= 4;
        std::fs::write(dir.path().join("journal"), &bytes).unwrap();
        assert_eq!(open(dir.path()).1.len(), 1);
    }

    #[test]
    fn a_full_journal_checkpoints_and_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = open(dir.path());
        let data = [9u8; 4000];
        assert!(j.takes(data.len()));
        let mut last = BlobId([0; 32]);
        for i in 0..100u8 {
            last = BlobId([i; 32]);
            j.sync(j.put(&last, &data).unwrap()).unwrap();
        }
        drop(j);
        // Only what followed the last checkpoint is left to replay.
        let (_, found) = open(dir.path());
        assert!(!found.is_empty() && found.len() < 100);
        assert!(found.contains_key(&last));
    }
}
