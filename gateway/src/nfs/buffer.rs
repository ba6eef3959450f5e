//! UNSTABLE WRITEs gathered in the gateway until COMMIT (RFC 1813 §3.3.7).
//!
//! A file's buffered bytes are kept as non-overlapping runs; a later write
//! over earlier bytes replaces them. They become blobs of the normal size
//! when a run fills one, at COMMIT, before any call that must see the
//! stored file (READ, SETATTR, a stable WRITE), and after a file has been
//! quiet for a moment. One flush of a file runs at a time, and each takes
//! what is buffered when it starts, so flushes commit in write order.
//!
//! Nothing here is durable: the write verifier says so. Every WRITE answers
//! the verifier current before its bytes were buffered; a flush that fails
//! after taking bytes changes the verifier, so the client's next COMMIT
//! answers a verifier its WRITEs did not get and the client resends them.
//! A restarted gateway starts with a new verifier for the same reason.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use metastore::api::{InodeId, NodeAttr};

/// Buffered bytes a gateway holds at most; past it, WRITEs flush their
/// file before answering.
pub const GATEWAY_LIMIT: usize = 256 << 20;
/// A file quiet for this long is flushed without waiting for its COMMIT.
pub const QUIET: Duration = Duration::from_secs(2);

/// One file's buffered bytes: pieces as the WRITEs brought them (not
/// copied until stored), never overlapping.
#[derive(Default)]
pub struct Runs {
    /// Start offset → bytes.
    pieces: BTreeMap<u64, Bytes>,
    bytes: usize,
}

impl Runs {
    fn put(&mut self, at: u64, piece: Bytes) {
        if !piece.is_empty() {
            self.bytes += piece.len();
            self.pieces.insert(at, piece);
        }
    }

    fn remove(&mut self, at: u64) -> Bytes {
        let piece = self.pieces.remove(&at).expect("piece just seen");
        self.bytes -= piece.len();
        piece
    }

    /// Buffers `data` at `offset`, over whatever was there.
    pub fn insert(&mut self, offset: u64, data: Bytes) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        // A piece from before `offset` keeps its head, and its tail if it
        // reaches past `end`.
        if let Some((&s, p)) = self.pieces.range(..offset).next_back() {
            let p_end = s + p.len() as u64;
            if p_end > offset {
                let p = self.remove(s);
                self.put(s, p.slice(..(offset - s) as usize));
                if p_end > end {
                    self.put(end, p.slice((end - s) as usize..));
                }
            }
        }
        // Pieces starting inside keep only what lies past `end`.
        let inside: Vec<u64> = self.pieces.range(offset..end).map(|(&s, _)| s).collect();
        for s in inside {
            let p = self.remove(s);
            let p_end = s + p.len() as u64;
            if p_end > end {
                self.put(end, p.slice((end - s) as usize..));
            }
        }
        self.put(offset, data);
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The end of the last buffered byte.
    pub fn end(&self) -> u64 {
        self.pieces
            .iter()
            .next_back()
            .map(|(s, p)| s + p.len() as u64)
            .unwrap_or(0)
    }

    /// Contiguous runs of pieces: (start, length, piece starts).
    fn runs(&self) -> Vec<(u64, usize, Vec<u64>)> {
        let mut runs: Vec<(u64, usize, Vec<u64>)> = Vec::new();
        for (&s, p) in &self.pieces {
            match runs.last_mut() {
                Some((start, len, at)) if *start + *len as u64 == s => {
                    *len += p.len();
                    at.push(s);
                }
                _ => runs.push((s, p.len(), vec![s])),
            }
        }
        runs
    }

    /// Takes every run (`whole`), or only the whole `blob`-sized pieces at
    /// the start of each run, leaving the rest buffered. Each run taken
    /// comes as one buffer.
    pub fn take(&mut self, whole: bool, blob: usize) -> Vec<(u64, Bytes)> {
        let mut out = Vec::new();
        for (start, len, at) in self.runs() {
            let keep = if whole { len } else { len / blob * blob };
            if keep == 0 {
                continue;
            }
            let stop = start + keep as u64;
            let mut run = BytesMut::with_capacity(keep);
            for s in at {
                if s >= stop {
                    break;
                }
                let p = self.remove(s);
                let p_end = s + p.len() as u64;
                if p_end > stop {
                    let cut = (stop - s) as usize;
                    run.extend_from_slice(&p[..cut]);
                    self.put(stop, p.slice(cut..));
                } else {
                    run.extend_from_slice(&p);
                }
            }
            out.push((start, run.freeze()));
        }
        out
    }
}

/// A file with buffered bytes.
pub struct FileBuf {
    pub runs: Runs,
    /// The file as last read or written by this gateway.
    pub attr: NodeAttr,
    /// The end of the bytes being flushed, until they are committed.
    pub flushing_end: u64,
    pub last_write: Instant,
    /// Held for the whole of a flush of this file.
    pub flush: Arc<tokio::sync::Mutex<()>>,
}

impl FileBuf {
    /// A stored size of `stored` with the buffered bytes counted in.
    fn size(&self, stored: u64) -> u64 {
        stored.max(self.runs.end()).max(self.flushing_end)
    }

    /// The file's attributes with the buffered bytes counted in its size.
    pub fn attr(&self) -> NodeAttr {
        NodeAttr {
            size: self.size(self.attr.size),
            ..self.attr.clone()
        }
    }
}

/// Every file this gateway holds unstable bytes of.
pub struct Buffers {
    pub files: Mutex<HashMap<InodeId, FileBuf>>,
    /// Bytes buffered in all files.
    pub total: AtomicUsize,
    verifier: AtomicU64,
}

impl Buffers {
    pub fn new(verifier: u64) -> Self {
        Self {
            files: Mutex::new(HashMap::new()),
            total: AtomicUsize::new(0),
            verifier: AtomicU64::new(verifier),
        }
    }

    pub fn verifier(&self) -> u64 {
        self.verifier.load(Ordering::SeqCst)
    }

    /// Unstable bytes were lost: clients must resend what they have not
    /// seen committed.
    pub fn lost(&self) {
        self.verifier.fetch_add(1, Ordering::SeqCst);
    }

    /// The size `attr` has with this gateway's buffered bytes counted in.
    pub fn size(&self, attr: &NodeAttr) -> u64 {
        match self.files.lock().expect("buffers lock").get(&attr.inode) {
            Some(f) => f.size(attr.size),
            None => attr.size,
        }
    }

    /// Files quiet since `before`.
    pub fn quiet(&self, before: Instant) -> Vec<InodeId> {
        self.files
            .lock()
            .expect("buffers lock")
            .iter()
            .filter(|(_, f)| f.last_write < before)
            .map(|(i, _)| *i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes `runs` hold over [0, len), unbuffered bytes as '.'.
    fn view(runs: &Runs, len: usize) -> String {
        let mut out = vec![b'.'; len];
        for (s, p) in &runs.pieces {
            out[*s as usize..*s as usize + p.len()].copy_from_slice(p);
        }
        String::from_utf8(out).unwrap()
    }

    fn put(r: &mut Runs, at: u64, data: &[u8]) {
        r.insert(at, Bytes::copy_from_slice(data));
    }

    #[test]
    fn later_writes_win() {
        let mut r = Runs::default();
        put(&mut r, 2, b"aaaa");
        put(&mut r, 10, b"bb");
        assert_eq!(view(&r, 14), "..aaaa....bb..");
        put(&mut r, 4, b"ccc");
        assert_eq!(view(&r, 14), "..aaccc...bb..");
        put(&mut r, 6, b"dddd");
        assert_eq!(view(&r, 14), "..aaccddddbb..");
        assert_eq!(r.bytes(), 10);
        assert_eq!(r.end(), 12);
        // Inside one piece: its head and tail stay.
        put(&mut r, 7, b"z");
        assert_eq!(view(&r, 14), "..aaccdzddbb..");
        assert_eq!(r.bytes(), 10);
        // Over several pieces at once, reaching past the last.
        put(&mut r, 1, b"yyyyyyyyyyyy");
        assert_eq!(view(&r, 14), ".yyyyyyyyyyyy.");
        assert_eq!(r.bytes(), 12);
        assert_eq!(r.pieces.len(), 1);
    }

    #[test]
    fn runs_are_taken_as_one_buffer_each() {
        let mut r = Runs::default();
        put(&mut r, 4, b"cd");
        put(&mut r, 0, b"ab");
        put(&mut r, 2, b"xx");
        put(&mut r, 9, b"q");
        let taken = r.take(true, 4);
        assert_eq!(
            taken,
            [
                (0, Bytes::from_static(b"abxxcd")),
                (9, Bytes::from_static(b"q"))
            ]
        );
        assert_eq!((r.bytes(), r.end()), (0, 0));
    }

    #[test]
    fn taking_whole_blobs_leaves_the_tail() {
        let mut r = Runs::default();
        for i in 0..5u8 {
            put(&mut r, u64::from(i) * 2, &[i, i]);
        }
        put(&mut r, 20, &[9; 3]);
        let taken = r.take(false, 4);
        assert_eq!(taken, [(0, Bytes::from_static(&[0, 0, 1, 1, 2, 2, 3, 3]))]);
        assert_eq!(r.bytes(), 5);
        let rest = r.take(true, 4);
        assert_eq!(
            rest,
            [
                (8, Bytes::from_static(&[4, 4])),
                (20, Bytes::from_static(&[9; 3]))
            ]
        );
        // A piece across the cut is split there.
        let mut r = Runs::default();
        put(&mut r, 0, &[7; 6]);
        assert_eq!(r.take(false, 4), [(0, Bytes::from_static(&[7; 4]))]);
        assert_eq!(
            (r.bytes(), r.pieces.keys().collect::<Vec<_>>()),
            (2, vec![&4])
        );
    }

    /// Random overlapping writes and takes against a plain byte array.
    #[test]
    fn random_writes_match_a_plain_array() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut r = Runs::default();
        let mut want = vec![b'.'; 300];
        let mut stored = vec![b'.'; 300];
        for i in 0..5000u32 {
            if i % 97 == 96 {
                for (s, d) in r.take(next(2) == 0, 16) {
                    stored[s as usize..s as usize + d.len()].copy_from_slice(&d);
                    want[s as usize..s as usize + d.len()].fill(b'.');
                }
            } else {
                let at = next(280);
                let len = 1 + next(20) as usize;
                let byte = b'a' + (i % 26) as u8;
                put(&mut r, at, &vec![byte; len]);
                want[at as usize..at as usize + len].fill(byte);
            }
            assert_eq!(
                view(&r, 300),
                String::from_utf8(want.clone()).unwrap(),
                "step {i}"
            );
            assert_eq!(r.bytes(), want.iter().filter(|b| **b != b'.').count());
        }
        assert!(stored.iter().any(|b| *b != b'.'), "takes took something");
    }
}
