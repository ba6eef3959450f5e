//! The data of a snapshot as openraft handles it: a file that, for a
//! snapshot to send, is written only when it is first read.
//!
//! The state machine is durable in redb, so a snapshot needs no copy of
//! it until a follower needs one: building a snapshot is a checkpoint, and
//! the copy is dumped from a consistent read view when the leader first
//! reads it to send. The dump runs on a blocking thread; the replication
//! task that reads waits for it, while the state machine keeps applying.
//! A snapshot that is never read (the one openraft looks at when it
//! starts, or the one a build returns) costs nothing.

use std::future::Future;
use std::io::{self, BufWriter, SeekFrom};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

use super::snapshot;

/// What is needed to dump the copy: a read view and its metadata.
struct Source {
    txn: redb::ReadTransaction,
    meta: Vec<u8>,
    dir: PathBuf,
}

enum State {
    /// Not read yet.
    Idle(Option<Source>),
    /// Being dumped.
    Dumping(tokio::sync::oneshot::Receiver<io::Result<std::fs::File>>),
    Ready(tokio::fs::File),
    Failed(String),
}

pub struct SnapshotFile {
    state: State,
    /// A seek asked for before the file was ready.
    seek: Option<SeekFrom>,
    received: bool,
}

impl SnapshotFile {
    /// A snapshot being received into `file`.
    pub fn ready(file: tokio::fs::File) -> Self {
        Self {
            state: State::Ready(file),
            seek: None,
            received: true,
        }
    }

    /// A copy of `txn`'s tables, under `meta` (JSON), dumped to a file in
    /// `dir` when first read.
    pub fn lazy(txn: redb::ReadTransaction, meta: Vec<u8>, dir: PathBuf) -> Self {
        Self {
            state: State::Idle(Some(Source { txn, meta, dir })),
            seek: None,
            received: false,
        }
    }

    /// Whether this is a file being received ([`Self::ready`]), not a
    /// copy of a state machine.
    pub fn is_received(&self) -> bool {
        self.received
    }

    /// The received file, once written (see [`Self::ready`]).
    pub fn into_file(self) -> Option<tokio::fs::File> {
        match self.state {
            State::Ready(f) => Some(f),
            _ => None,
        }
    }

    /// Drives the dump until the file is ready.
    fn poll_file(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&mut tokio::fs::File>> {
        loop {
            match &mut self.state {
                State::Ready(_) => break,
                State::Failed(e) => return Poll::Ready(Err(io::Error::other(e.clone()))),
                State::Idle(source) => {
                    let Some(source) = source.take() else {
                        self.state = State::Failed("snapshot source taken".into());
                        continue;
                    };
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    tokio::task::spawn_blocking(move || {
                        let _ = tx.send(dump(source));
                    });
                    self.state = State::Dumping(rx);
                }
                State::Dumping(rx) => {
                    let done = ready!(Pin::new(rx).poll(cx));
                    self.state = match done {
                        Ok(Ok(f)) => State::Ready(tokio::fs::File::from_std(f)),
                        Ok(Err(e)) => State::Failed(e.to_string()),
                        Err(_) => State::Failed("the snapshot dump stopped".into()),
                    };
                }
            }
        }
        let State::Ready(file) = &mut self.state else {
            unreachable!("the loop breaks only when ready")
        };
        if let Some(pos) = self.seek.take() {
            Pin::new(&mut *file).start_seek(pos)?;
        }
        Poll::Ready(Ok(file))
    }
}

/// Writes the copy to an unnamed file (created, then unlinked at once, so
/// nothing is left behind whatever happens) and returns it at its start.
fn dump(source: Source) -> io::Result<std::fs::File> {
    let path = source
        .dir
        .join(format!("send-{:016x}.snap", rand::random::<u64>()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    let _ = std::fs::remove_file(&path);
    let started = std::time::Instant::now();
    let mut w = BufWriter::with_capacity(1 << 20, file);
    snapshot::write(&source.txn, &source.meta, &mut w).map_err(io::Error::other)?;
    let mut file = w.into_inner().map_err(|e| e.into_error())?;
    use std::io::Seek;
    let len = file.seek(SeekFrom::End(0))?;
    file.seek(SeekFrom::Start(0))?;
    tracing::info!(bytes = len, took = ?started.elapsed(), "snapshot dumped to send");
    Ok(file)
}

impl AsyncRead for SnapshotFile {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let file = ready!(self.get_mut().poll_file(cx))?;
        Pin::new(file).poll_read(cx, buf)
    }
}

impl AsyncWrite for SnapshotFile {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let file = ready!(self.get_mut().poll_file(cx))?;
        Pin::new(file).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let file = ready!(self.get_mut().poll_file(cx))?;
        Pin::new(file).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let file = ready!(self.get_mut().poll_file(cx))?;
        Pin::new(file).poll_shutdown(cx)
    }
}

impl AsyncSeek for SnapshotFile {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        match &mut this.state {
            State::Ready(f) => Pin::new(f).start_seek(position),
            _ => {
                this.seek = Some(position);
                Ok(())
            }
        }
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let file = ready!(self.get_mut().poll_file(cx))?;
        Pin::new(file).poll_complete(cx)
    }
}
