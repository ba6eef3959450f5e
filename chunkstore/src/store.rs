//! Blob files on local disk.
//!
//! Layout: `<data>/blobs/<first two hex digits>/<sha256 hex>`, written via
//! `<data>/tmp/`. A blob file is a header followed by the data:
//!
//! ```text
//! magic "TRKB" | version u32 | data length u64 | sha256 [32]
//! | block size u32 | block count u32 | crc32c of each block [u32; n]
//! | crc32c of everything before it u32 | data
//! ```
//! (integers little-endian). Reads verify the CRC32C of every block they
//! touch, so a range read never returns flipped bits.
//!
//! Crash safety: a blob is written to a temp file and renamed into place,
//! so a torn one is never visible under its name (temp files are removed
//! at start). Before a PUT answers, a large blob's file is fsynced and its
//! directory too; a small one's record in the [`Journal`] is synced
//! instead, which replays it after a crash. A deletion is made durable the
//! same two ways. An fsync that fails is not retried (the kernel may have
//! dropped the dirty pages): the store stops taking writes.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use metastore::api::BlobId;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::journal::{Journal, Replayed};

const MAGIC: &[u8; 4] = b"TRKB";
const VERSION: u32 = 1;
/// Unit of the per-block checksums: a range read verifies whole blocks.
pub const CHECKSUM_BLOCK_BYTES: usize = 64 << 10;
const FIXED_HEADER_BYTES: usize = 4 + 4 + 8 + 32 + 4 + 4;
/// Blobs up to this size are made durable through the journal.
pub const JOURNALED_BLOB_BYTES: usize = 64 << 10;
/// Size of the journal file; filling it costs a `syncfs` (a checkpoint).
pub const JOURNAL_BYTES: u64 = 32 << 20;

pub struct BlobStore {
    root: PathBuf,
    blob_count: AtomicU64,
    /// Bytes of blob files (headers included).
    used_bytes: AtomicU64,
    /// Most bytes this node may hold (`--capacity-mib`).
    limit: Option<u64>,
    writes_disabled: AtomicBool,
    /// Orders "already here" writes against garbage deletions.
    gc_lock: std::sync::Mutex<()>,
    journal: Journal,
}

/// What a PUT did.
#[derive(Debug, PartialEq, Eq)]
pub enum PutOutcome {
    Stored,
    AlreadyPresent,
}

struct Header {
    data_len: u64,
    block_crcs: Vec<u32>,
    header_len: u64,
}

impl BlobStore {
    /// Opens the store under `root`, creating its directories (durably) and
    /// clearing temp files a crash left behind.
    pub fn open(root: &Path) -> Result<Self, Error> {
        Self::open_limited(root, None)
    }

    /// Opens the store, holding at most `limit` bytes if given.
    pub fn open_limited(root: &Path, limit: Option<u64>) -> Result<Self, Error> {
        let blobs = root.join("blobs");
        let tmp = root.join("tmp");
        fs::create_dir_all(&blobs)?;
        fs::create_dir_all(&tmp)?;
        fs::create_dir_all(root.join(QUARANTINE))?;
        for entry in fs::read_dir(&tmp)? {
            let _ = fs::remove_file(entry?.path());
        }
        for i in 0..=255u8 {
            let dir = blobs.join(format!("{i:02x}"));
            if !dir.exists() {
                fs::create_dir(&dir)?;
            }
        }
        let (journal, replayed) = Journal::open(&root.join("journal"), root, JOURNAL_BYTES)?;
        let store = Self {
            root: root.to_path_buf(),
            blob_count: AtomicU64::new(0),
            used_bytes: AtomicU64::new(0),
            limit,
            writes_disabled: AtomicBool::new(false),
            gc_lock: std::sync::Mutex::new(()),
            journal,
        };
        store.replay(replayed)?;
        let (mut count, mut used) = (0, 0);
        for i in 0..=255u8 {
            let dir = blobs.join(format!("{i:02x}"));
            for entry in fs::read_dir(&dir)? {
                count += 1;
                used += entry?.metadata()?.len();
            }
        }
        fsync_dir(&blobs)?;
        fsync_dir(root)?;
        store.blob_count.store(count, Ordering::Relaxed);
        store.used_bytes.store(used, Ordering::Relaxed);
        Ok(store)
    }

    /// Puts the blob files back as the journal's current generation left
    /// them (the last record of each blob wins), then checkpoints: what was
    /// replayed is durable from here and the journal starts over.
    fn replay(&self, replayed: HashMap<BlobId, Replayed>) -> Result<(), Error> {
        let (mut written, mut removed) = (0, 0);
        for (id, last) in replayed {
            let path = self.path_of(&id);
            match last {
                Replayed::Put(data) => {
                    if self.verify(&id).is_err() && BlobId::of(&data) == id {
                        let tmp = self.root.join("tmp").join(id.to_hex());
                        self.write_file(&tmp, &path, &encode_header(&id, &data), &data, false)?;
                        written += 1;
                    }
                }
                Replayed::Deleted => match fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                },
                Replayed::Durable => {}
            }
        }
        self.journal.checkpoint()?;
        if written + removed > 0 {
            tracing::info!(written, removed, "blob files put right from the journal");
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_count(&self) -> u64 {
        self.blob_count.load(Ordering::Relaxed)
    }

    pub fn used_bytes(&self) -> u64 {
        self.used_bytes.load(Ordering::Relaxed)
    }

    /// The blobs in one of the 256 directories (`prefix` is its first
    /// byte): id, file length and modification time (ns).
    pub fn list(&self, prefix: u8) -> Result<Vec<(BlobId, u64, u64)>, Error> {
        let dir = self.root.join("blobs").join(format!("{prefix:02x}"));
        let mut out = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let Some(id) = entry.file_name().to_str().and_then(BlobId::from_hex) else {
                continue;
            };
            let Ok(meta) = entry.metadata() else {
                continue; // deleted meanwhile
            };
            out.push((id, meta.len(), mtime_ns(&meta)));
        }
        Ok(out)
    }

    /// Moves a bad copy out of the way (into `quarantine/`, kept for an
    /// operator to look at), so it is never served again; false if it was
    /// not there (already moved). Blocking.
    pub fn quarantine(&self, id: &BlobId) -> Result<bool, Error> {
        let _gc = self.gc_lock.lock().expect("gc lock");
        let path = self.path_of(id);
        let len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        fs::rename(&path, self.root.join(QUARANTINE).join(id.to_hex()))?;
        self.durable(fsync_dir(path.parent().expect("blob path has a parent")))?;
        self.blob_count.fetch_sub(1, Ordering::Relaxed);
        self.used_bytes.fetch_sub(len, Ordering::Relaxed);
        Ok(true)
    }

    /// Whether a copy of `id` was quarantined (and so already reported).
    pub fn quarantined(&self, id: &BlobId) -> bool {
        self.root.join(QUARANTINE).join(id.to_hex()).exists()
    }

    pub fn writes_disabled(&self) -> bool {
        self.writes_disabled.load(Ordering::Relaxed)
    }

    pub fn path_of(&self, id: &BlobId) -> PathBuf {
        let hex = id.to_hex();
        self.root.join("blobs").join(&hex[..2]).join(hex)
    }

    /// Stores `data` as blob `id` durably. Blocking.
    pub fn put(&self, id: &BlobId, data: &[u8]) -> Result<PutOutcome, Error> {
        if self.writes_disabled() {
            return Err(Error::WritesDisabled);
        }
        let digest: [u8; 32] = Sha256::digest(data).into();
        if digest != id.0 {
            return Err(Error::HashMismatch);
        }
        let path = self.path_of(id);
        {
            // Already here: mark the copy as written now, so a garbage
            // deletion queued before this write spares it.
            let _gc = self.gc_lock.lock().expect("gc lock");
            if let Ok(h) = self.read_header(&path) {
                if h.data_len == data.len() as u64 {
                    let f = OpenOptions::new().write(true).open(&path)?;
                    f.set_modified(std::time::SystemTime::now())?;
                    self.durable(f.sync_all())?;
                    return Ok(PutOutcome::AlreadyPresent);
                }
            }
        }
        let header = encode_header(id, data);
        let size = (header.len() + data.len()) as u64;
        if self.limit.is_some_and(|l| self.used_bytes() + size > l) {
            return Err(Error::Full);
        }
        let tmp =
            self.root
                .join("tmp")
                .join(format!("{}.{:016x}", id.to_hex(), rand::random::<u64>()));
        let mark = if data.len() <= JOURNALED_BLOB_BYTES && self.journal.takes(data.len()) {
            // The file first: a checkpoint that forgets the record below
            // has synced the file system after this write.
            self.write_file(&tmp, &path, &header, data, false)?;
            self.journal.put(id, data)
        } else {
            self.write_file(&tmp, &path, &header, data, true)?;
            // The rename is not durable until its directory entry is.
            self.durable(fsync_dir(path.parent().expect("blob path has a parent")))?;
            self.journal.durable(id)
        };
        self.durable(mark.and_then(|m| self.journal.sync(m)))?;
        self.blob_count.fetch_add(1, Ordering::Relaxed);
        self.used_bytes.fetch_add(size, Ordering::Relaxed);
        Ok(PutOutcome::Stored)
    }

    /// Length of blob `id`'s data, if it is present.
    pub fn len(&self, id: &BlobId) -> Result<u64, Error> {
        Ok(self.read_header(&self.path_of(id))?.data_len)
    }

    /// Reads `[offset, offset+len)` of blob `id`, verifying the checksum of
    /// every block touched. `len = None` reads to the end. Blocking.
    pub fn get(&self, id: &BlobId, offset: u64, len: Option<u64>) -> Result<Vec<u8>, Error> {
        let path = self.path_of(id);
        let file = open_existing(&path)?;
        let h = read_header_from(&file)?;
        let len = len.unwrap_or(h.data_len.saturating_sub(offset));
        let end = offset.checked_add(len).ok_or(Error::BadRange)?;
        if end > h.data_len {
            return Err(Error::BadRange);
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        let bs = CHECKSUM_BLOCK_BYTES as u64;
        let first = offset / bs;
        let last = (end - 1) / bs;
        let span_start = first * bs;
        let span_end = ((last + 1) * bs).min(h.data_len);
        let mut buf = vec![0u8; (span_end - span_start) as usize];
        file.read_exact_at(&mut buf, h.header_len + span_start)?;
        for (i, block) in buf.chunks(CHECKSUM_BLOCK_BYTES).enumerate() {
            let n = first as usize + i;
            if crc32c::crc32c(block) != h.block_crcs[n] {
                return Err(Error::Corrupt(format!("{id}: block {n} checksum mismatch")));
            }
        }
        let from = (offset - span_start) as usize;
        buf.drain(..from);
        buf.truncate(len as usize);
        Ok(buf)
    }

    /// Reads and checks the whole blob against its name. Blocking.
    pub fn verify(&self, id: &BlobId) -> Result<(), Error> {
        let data = self.get(id, 0, None)?;
        if BlobId::of(&data) != *id {
            return Err(Error::Corrupt(format!("{id}: content hash mismatch")));
        }
        Ok(())
    }

    /// Removes blob `id` durably unless it was written after `cutoff`
    /// (ns since the epoch); returns whether it is gone. Blocking.
    pub fn delete_unless_written_since(&self, id: &BlobId, cutoff: u64) -> Result<bool, Error> {
        let _gc = self.gc_lock.lock().expect("gc lock");
        let path = self.path_of(id);
        let written = match fs::metadata(&path) {
            Ok(m) => m.modified()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        let written_ns = system_ns(written);
        if written_ns > cutoff {
            return Ok(false);
        }
        self.delete(id)?;
        Ok(true)
    }

    /// Removes blob `id` durably. Removing a missing blob succeeds. Blocking.
    pub fn delete(&self, id: &BlobId) -> Result<(), Error> {
        let path = self.path_of(id);
        let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        match fs::remove_file(&path) {
            Ok(()) => {
                // Durable through the journal: a tombstone also keeps its
                // replay from bringing the blob back.
                let mark = self.journal.tombstone(id);
                self.durable(mark.and_then(|m| self.journal.sync(m)))?;
                self.blob_count.fetch_sub(1, Ordering::Relaxed);
                self.used_bytes.fetch_sub(len, Ordering::Relaxed);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Capacity and free space for blobs: the file system's, within the
    /// node's limit if it has one.
    pub fn capacity(&self) -> Result<(u64, u64), Error> {
        let (total, free) = statvfs(&self.root)?;
        Ok(match self.limit {
            Some(l) => (l.min(total), l.saturating_sub(self.used_bytes()).min(free)),
            None => (total, free),
        })
    }

    /// Writes a blob file through `tmp` (fsynced before the rename if
    /// `synced`); nothing torn is ever visible at `path`.
    fn write_file(
        &self,
        tmp: &Path,
        path: &Path,
        header: &[u8],
        data: &[u8],
        synced: bool,
    ) -> Result<(), Error> {
        let result = (|| -> Result<(), Error> {
            let mut f = OpenOptions::new().write(true).create_new(true).open(tmp)?;
            f.write_all(header)?;
            f.write_all(data)?;
            if synced {
                self.durable(f.sync_data())?;
            }
            fs::rename(tmp, path)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(tmp);
        }
        result
    }

    /// Passes fsync results through, disabling writes for good on failure.
    fn durable(&self, r: std::io::Result<()>) -> Result<(), Error> {
        if let Err(e) = r {
            self.writes_disabled.store(true, Ordering::SeqCst);
            tracing::error!(error = %e, "fsync failed: this node takes no more writes");
            return Err(e.into());
        }
        Ok(())
    }

    fn read_header(&self, path: &Path) -> Result<Header, Error> {
        read_header_from(&open_existing(path)?)
    }
}

/// Where bad copies go.
const QUARANTINE: &str = "quarantine";

fn system_ns(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn mtime_ns(meta: &fs::Metadata) -> u64 {
    meta.modified().map(system_ns).unwrap_or(0)
}

fn open_existing(path: &Path) -> Result<File, Error> {
    File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound,
        _ => e.into(),
    })
}

fn encode_header(id: &BlobId, data: &[u8]) -> Vec<u8> {
    let blocks: Vec<u32> = data
        .chunks(CHECKSUM_BLOCK_BYTES)
        .map(crc32c::crc32c)
        .collect();
    let mut h = Vec::with_capacity(FIXED_HEADER_BYTES + 4 * blocks.len() + 4);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&(data.len() as u64).to_le_bytes());
    h.extend_from_slice(&id.0);
    h.extend_from_slice(&(CHECKSUM_BLOCK_BYTES as u32).to_le_bytes());
    h.extend_from_slice(&(blocks.len() as u32).to_le_bytes());
    for c in &blocks {
        h.extend_from_slice(&c.to_le_bytes());
    }
    let crc = crc32c::crc32c(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

fn read_header_from(file: &File) -> Result<Header, Error> {
    let corrupt = |why: &str| Error::Corrupt(format!("blob header: {why}"));
    let mut fixed = [0u8; FIXED_HEADER_BYTES];
    file.read_exact_at(&mut fixed, 0)
        .map_err(|_| corrupt("short file"))?;
    if &fixed[0..4] != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    if u32_at(&fixed, 4) != VERSION {
        return Err(corrupt("unknown version"));
    }
    let data_len = u64::from_le_bytes(fixed[8..16].try_into().expect("8 bytes"));
    let block = u32_at(&fixed, 48) as u64;
    let n = u32_at(&fixed, 52) as usize;
    if block != CHECKSUM_BLOCK_BYTES as u64 || n as u64 != data_len.div_ceil(block) {
        return Err(corrupt("inconsistent block table"));
    }
    let mut rest = vec![0u8; 4 * n + 4];
    file.read_exact_at(&mut rest, FIXED_HEADER_BYTES as u64)
        .map_err(|_| corrupt("short block table"))?;
    let mut hasher = crc32c::crc32c(&fixed);
    hasher = crc32c::crc32c_append(hasher, &rest[..4 * n]);
    if hasher != u32_at(&rest, 4 * n) {
        return Err(corrupt("header checksum mismatch"));
    }
    let block_crcs = (0..n).map(|i| u32_at(&rest, 4 * i)).collect();
    Ok(Header {
        data_len,
        block_crcs,
        header_len: (FIXED_HEADER_BYTES + 4 * n + 4) as u64,
    })
}

pub fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn statvfs(path: &Path) -> Result<(u64, u64), Error> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Io(std::io::Error::other("path contains NUL")))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable struct.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let frsize = st.f_frsize as u64;
    Ok((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn put_get_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        for size in [0, 1, CHECKSUM_BLOCK_BYTES, CHECKSUM_BLOCK_BYTES * 3 + 17] {
            let d = data(size);
            let id = BlobId::of(&d);
            assert_eq!(s.put(&id, &d).unwrap(), PutOutcome::Stored);
            assert_eq!(s.put(&id, &d).unwrap(), PutOutcome::AlreadyPresent);
            assert_eq!(s.get(&id, 0, None).unwrap(), d);
            s.verify(&id).unwrap();
            if size > 10 {
                let (o, l) = (size as u64 / 3, size as u64 / 2);
                assert_eq!(
                    s.get(&id, o, Some(l)).unwrap(),
                    &d[o as usize..(o + l) as usize]
                );
                assert!(matches!(
                    s.get(&id, o, Some(size as u64)),
                    Err(Error::BadRange)
                ));
            }
        }
        assert_eq!(s.blob_count(), 4);
    }

    #[test]
    fn wrong_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let d = data(100);
        assert!(matches!(
            s.put(&BlobId([0; 32]), &d),
            Err(Error::HashMismatch)
        ));
        assert!(matches!(
            s.get(&BlobId([0; 32]), 0, None),
            Err(Error::NotFound)
        ));
    }

    #[test]
    fn flipped_bit_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let d = data(CHECKSUM_BLOCK_BYTES * 2);
        let id = BlobId::of(&d);
        s.put(&id, &d).unwrap();
        let path = s.path_of(&id);
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 10] ^= 0x40;
        fs::write(&path, bytes).unwrap();
        // The first block is intact and still readable; the second is not.
        assert_eq!(s.get(&id, 0, Some(100)).unwrap(), &d[..100]);
        assert!(matches!(s.get(&id, 0, None), Err(Error::Corrupt(_))));
        assert!(s.verify(&id).is_err());
    }

    /// What a power loss may leave of small blobs whose files were never
    /// synced: the journal brings back what was acknowledged.
    #[test]
    fn reopen_replays_small_blobs_a_power_loss_took() {
        let dir = tempfile::tempdir().unwrap();
        let (lost, torn, deleted, large) = (
            data(10),
            data(5000),
            data(300),
            data(JOURNALED_BLOB_BYTES + 1),
        );
        let ids = [&lost, &torn, &deleted, &large].map(|d| BlobId::of(d));
        let deleted_file;
        {
            let s = BlobStore::open(dir.path()).unwrap();
            for (id, d) in ids.iter().zip([&lost, &torn, &deleted, &large]) {
                s.put(id, d).unwrap();
            }
            deleted_file = fs::read(s.path_of(&ids[2])).unwrap();
            s.delete(&ids[2]).unwrap();
            // The large blob was deleted and stored again.
            s.delete(&ids[3]).unwrap();
            s.put(&ids[3], &large).unwrap();
            // Lost, cut short, and an unlink undone.
            fs::remove_file(s.path_of(&ids[0])).unwrap();
            let f = OpenOptions::new()
                .write(true)
                .open(s.path_of(&ids[1]))
                .unwrap();
            f.set_len(100).unwrap();
            fs::write(s.path_of(&ids[2]), &deleted_file).unwrap();
        }
        let s = BlobStore::open(dir.path()).unwrap();
        assert_eq!(s.get(&ids[0], 0, None).unwrap(), lost);
        assert_eq!(s.get(&ids[1], 0, None).unwrap(), torn);
        assert!(matches!(s.get(&ids[2], 0, None), Err(Error::NotFound)));
        assert_eq!(s.get(&ids[3], 0, None).unwrap(), large);
        assert_eq!(s.blob_count(), 3);
        // Replayed once: the journal started over.
        fs::remove_file(s.path_of(&ids[0])).unwrap();
        drop(s);
        let s = BlobStore::open(dir.path()).unwrap();
        assert!(matches!(s.get(&ids[0], 0, None), Err(Error::NotFound)));
    }

    #[test]
    fn reopen_counts_and_cleans_temp() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = BlobStore::open(dir.path()).unwrap();
            let d = data(10);
            s.put(&BlobId::of(&d), &d).unwrap();
            fs::write(dir.path().join("tmp/torn"), b"x").unwrap();
        }
        let s = BlobStore::open(dir.path()).unwrap();
        assert_eq!(s.blob_count(), 1);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        let d = data(10);
        s.delete(&BlobId::of(&d)).unwrap();
        s.delete(&BlobId::of(&d)).unwrap();
        assert_eq!(s.blob_count(), 0);
    }
}
