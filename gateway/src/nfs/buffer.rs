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

use metastore::api::{InodeId, NodeAttr};

/// Buffered bytes a gateway holds at most; past it, WRITEs flush their
/// file before answering.
pub const GATEWAY_LIMIT: usize = 256 << 20;
/// A file quiet for this long is flushed without waiting for its COMMIT.
pub const QUIET: Duration = Duration::from_secs(2);

/// One file's buffered bytes.
#[derive(Default)]
pub struct Runs {
    /// Start offset → bytes; runs neither overlap nor touch.
    runs: BTreeMap<u64, Vec<u8>>,
    bytes: usize,
}

impl Runs {
    /// Buffers `data` at `offset`, over whatever was there.
    pub fn insert(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        // Fast path: appending to the run that ends where this starts.
        if let Some((&start, run)) = self.runs.range_mut(..offset).next_back() {
            let run_end = start + run.len() as u64;
            let next_clear = self
                .runs
                .range(offset..)
                .next()
                .is_none_or(|(&s, _)| s > end);
            if run_end == offset && next_clear {
                let run = self.runs.get_mut(&start).expect("run just seen");
                run.extend_from_slice(data);
                self.bytes += data.len();
                return;
            }
        }
        // Every run that overlaps or touches [offset, end) joins one run.
        let touching: Vec<u64> = self
            .runs
            .range(..=end)
            .rev()
            .take_while(|(&s, r)| s + r.len() as u64 >= offset)
            .map(|(&s, _)| s)
            .collect();
        let mut start = offset;
        let mut stop = end;
        for s in &touching {
            let r = &self.runs[s];
            start = start.min(*s);
            stop = stop.max(s + r.len() as u64);
        }
        let mut joined = vec![0u8; (stop - start) as usize];
        for s in touching {
            let r = self.runs.remove(&s).expect("run just seen");
            self.bytes -= r.len();
            let at = (s - start) as usize;
            joined[at..at + r.len()].copy_from_slice(&r);
        }
        let at = (offset - start) as usize;
        joined[at..at + data.len()].copy_from_slice(data);
        self.bytes += joined.len();
        self.runs.insert(start, joined);
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The end of the last buffered byte.
    pub fn end(&self) -> u64 {
        self.runs
            .iter()
            .next_back()
            .map(|(s, r)| s + r.len() as u64)
            .unwrap_or(0)
    }

    /// Takes every run (`whole`), or only the whole `piece`-sized pieces
    /// at the start of each run, leaving the rest buffered.
    pub fn take(&mut self, whole: bool, piece: usize) -> Vec<(u64, Vec<u8>)> {
        if whole {
            self.bytes = 0;
            return std::mem::take(&mut self.runs).into_iter().collect();
        }
        let mut out = Vec::new();
        let starts: Vec<u64> = self
            .runs
            .iter()
            .filter(|(_, r)| r.len() >= piece)
            .map(|(&s, _)| s)
            .collect();
        for s in starts {
            let mut run = self.runs.remove(&s).expect("run just seen");
            let keep = run.len() / piece * piece;
            let rest = run.split_off(keep);
            self.bytes -= run.len();
            if !rest.is_empty() {
                self.runs.insert(s + keep as u64, rest);
            }
            out.push((s, run));
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
    /// The file's attributes with the buffered bytes counted in its size.
    pub fn attr(&self) -> NodeAttr {
        let mut a = self.attr.clone();
        a.size = a.size.max(self.runs.end()).max(self.flushing_end);
        a
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

    /// `attr` with the size this gateway's buffered bytes give it.
    pub fn overlay(&self, attr: &mut NodeAttr) {
        let files = self.files.lock().expect("buffers lock");
        if let Some(f) = files.get(&attr.inode) {
            attr.size = attr.size.max(f.runs.end()).max(f.flushing_end);
        }
    }

    /// Whether `inode` has bytes buffered or being flushed.
    pub fn holds(&self, inode: InodeId) -> bool {
        self.files
            .lock()
            .expect("buffers lock")
            .contains_key(&inode)
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
        for (s, r) in &runs.runs {
            out[*s as usize..*s as usize + r.len()].copy_from_slice(r);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn later_writes_win_and_runs_join() {
        let mut r = Runs::default();
        r.insert(2, b"aaaa");
        r.insert(10, b"bb");
        assert_eq!(view(&r, 14), "..aaaa....bb..");
        r.insert(4, b"ccc");
        assert_eq!(view(&r, 14), "..aaccc...bb..");
        r.insert(6, b"dddd");
        assert_eq!(view(&r, 14), "..aaccddddbb..");
        assert_eq!(r.runs.len(), 1, "runs that touch are one");
        assert_eq!(r.bytes(), 10);
        assert_eq!(r.end(), 12);
        // Appending is the fast path, and still one run.
        r.insert(12, b"ee");
        assert_eq!(r.runs.len(), 1);
        assert_eq!(r.bytes(), 12);
        // Overwriting in the middle keeps the count.
        r.insert(3, b"zz");
        assert_eq!(r.bytes(), 12);
        assert_eq!(&view(&r, 14)[2..6], "azzc");
    }

    #[test]
    fn an_insert_before_a_run_that_it_reaches_joins_it() {
        let mut r = Runs::default();
        r.insert(5, b"bbb");
        r.insert(1, b"aaaa");
        assert_eq!(view(&r, 9), ".aaaabbb.");
        assert_eq!(r.runs.len(), 1);
        // An append whose end reaches the next run must join it too.
        let mut r = Runs::default();
        r.insert(0, b"aa");
        r.insert(4, b"cc");
        r.insert(2, b"bb");
        assert_eq!(view(&r, 6), "aabbcc");
        assert_eq!(r.runs.len(), 1);
        assert_eq!(r.bytes(), 6);
    }

    #[test]
    fn taking_whole_pieces_leaves_the_tail() {
        let mut r = Runs::default();
        r.insert(0, &[1u8; 10]);
        r.insert(20, &[2u8; 3]);
        let taken = r.take(false, 4);
        assert_eq!(taken.len(), 1);
        assert_eq!((taken[0].0, taken[0].1.len()), (0, 8));
        assert_eq!(r.bytes(), 5);
        assert_eq!(view(&r, 24).as_bytes()[8..10], [1, 1]);
        let rest = r.take(true, 4);
        assert_eq!(
            rest.iter().map(|(s, d)| (*s, d.len())).collect::<Vec<_>>(),
            [(8, 2), (20, 3)]
        );
        assert_eq!(r.bytes(), 0);
        assert_eq!(r.end(), 0);
    }
}
