//! ONC RPC (RFC 5531) over TCP: record marking, call headers, replies.
//!
//! Records are bounded ([`MAX_RECORD`]): a client claiming a larger
//! fragment is disconnected before anything is allocated for it. Each call
//! is served in its own task, so a slow WRITE does not hold up the
//! GETATTRs behind it; the calls in flight per connection are bounded too.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use nfs3_types::rpc::{
    accept_stat_data, accepted_reply, auth_flavor, auth_stat, auth_unix, msg_body, opaque_auth,
    rejected_reply, reply_body, rpc_msg, RPC_VERSION_2,
};
use nfs3_types::xdr_codec::{Pack, Unpack};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};

use super::caller::Caller;

/// The largest record a client may send: a 1 MiB WRITE (the `wtmax` FSINFO
/// announces) with its headers.
pub const MAX_RECORD: usize = (1 << 20) + 4096;
/// Calls of one connection served at once; further records wait unread.
const MAX_IN_FLIGHT: usize = 64;
/// Once a record has begun, the rest of it must arrive within this.
const RECORD_TIMEOUT: Duration = Duration::from_secs(60);
/// A connection that sends nothing for this long is closed (clients
/// reconnect on their next call).
const IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// One RPC call: its header fields and its undecoded arguments.
pub struct Call {
    pub xid: u32,
    pub prog: u32,
    pub vers: u32,
    pub proc: u32,
    /// The AUTH_SYS credential, `None` for AUTH_NULL.
    pub caller: Option<Caller>,
    record: Vec<u8>,
    args_at: usize,
}

impl Call {
    /// Decodes the call's arguments; `None` if they do not parse.
    pub fn args<T: Unpack>(&self) -> Option<T> {
        let mut cur = Cursor::new(&self.record[self.args_at..]);
        T::unpack(&mut cur).ok().map(|(v, _)| v)
    }
}

/// How a call is answered.
pub enum Reply {
    /// Accepted and run: the procedure's encoded result.
    Success(Vec<u8>),
    ProgUnavail,
    ProgMismatch {
        low: u32,
        high: u32,
    },
    ProcUnavail,
    GarbageArgs,
    /// The server failed to answer (a reply that would not encode).
    SystemErr,
    /// Refused for its credential.
    AuthError(auth_stat),
    /// Refused: not RPC version 2.
    RpcMismatch,
}

impl Reply {
    /// A procedure's result, encoded.
    pub fn of<T: Pack>(result: &T) -> Reply {
        let mut out = Vec::with_capacity(result.packed_size());
        match result.pack(&mut out) {
            Ok(_) => Reply::Success(out),
            Err(e) => {
                tracing::error!(error = %e, "encoding an NFS reply failed");
                Reply::SystemErr
            }
        }
    }
}

/// What serves the calls of a connection.
pub trait Service: Send + Sync + 'static {
    fn call(&self, call: Call) -> impl std::future::Future<Output = Reply> + Send;
}

/// What a record turned out to be.
enum Parsed {
    Call(Call),
    /// Answered without running anything (bad version, credential).
    Refused {
        xid: u32,
        reply: Reply,
    },
    /// Not a call at all: dropped.
    Ignore,
}

fn parse(record: Vec<u8>) -> Parsed {
    let mut cur = Cursor::new(&record[..]);
    let Ok((msg, _)) = rpc_msg::unpack(&mut cur) else {
        return Parsed::Ignore;
    };
    let xid = msg.xid;
    let msg_body::CALL(call) = msg.body else {
        return Parsed::Ignore;
    };
    if call.rpcvers != RPC_VERSION_2 {
        return Parsed::Refused {
            xid,
            reply: Reply::RpcMismatch,
        };
    }
    let caller = match call.cred.flavor {
        auth_flavor::AUTH_NULL => None,
        auth_flavor::AUTH_UNIX => {
            match auth_unix::unpack(&mut Cursor::new(call.cred.body.as_ref())) {
                Ok((a, _)) => Some(Caller {
                    uid: a.uid,
                    gid: a.gid,
                    gids: a.gids,
                }),
                Err(_) => {
                    return Parsed::Refused {
                        xid,
                        reply: Reply::AuthError(auth_stat::AUTH_BADCRED),
                    }
                }
            }
        }
        _ => {
            return Parsed::Refused {
                xid,
                reply: Reply::AuthError(auth_stat::AUTH_BADCRED),
            }
        }
    };
    let args_at = cur.position() as usize;
    Parsed::Call(Call {
        xid,
        prog: call.prog,
        vers: call.vers,
        proc: call.proc,
        caller,
        record,
        args_at,
    })
}

/// The reply record (with its record mark) for `xid`.
fn encode(xid: u32, reply: Reply) -> Vec<u8> {
    let accepted = |data, result| {
        (
            reply_body::MSG_ACCEPTED(accepted_reply {
                verf: opaque_auth::default(),
                reply_data: data,
            }),
            result,
        )
    };
    let (body, result) = match reply {
        Reply::AuthError(stat) => (
            reply_body::MSG_DENIED(rejected_reply::AUTH_ERROR(stat)),
            Vec::new(),
        ),
        Reply::RpcMismatch => (
            reply_body::MSG_DENIED(rejected_reply::RPC_MISMATCH {
                low: RPC_VERSION_2,
                high: RPC_VERSION_2,
            }),
            Vec::new(),
        ),
        Reply::Success(r) => accepted(accept_stat_data::SUCCESS, r),
        Reply::ProgUnavail => accepted(accept_stat_data::PROG_UNAVAIL, Vec::new()),
        Reply::ProgMismatch { low, high } => {
            accepted(accept_stat_data::PROG_MISMATCH { low, high }, Vec::new())
        }
        Reply::ProcUnavail => accepted(accept_stat_data::PROC_UNAVAIL, Vec::new()),
        Reply::GarbageArgs => accepted(accept_stat_data::GARBAGE_ARGS, Vec::new()),
        Reply::SystemErr => accepted(accept_stat_data::SYSTEM_ERR, Vec::new()),
    };
    let msg = rpc_msg {
        xid,
        body: msg_body::REPLY(body),
    };
    let mut out = Vec::with_capacity(4 + msg.packed_size() + result.len());
    out.extend_from_slice(&[0; 4]);
    msg.pack(&mut out).expect("a Vec takes any write");
    out.extend_from_slice(&result);
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&(len | 0x8000_0000).to_be_bytes());
    out
}

/// Reads one record; `Ok(None)` at a clean end of stream.
async fn read_record<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut record = Vec::new();
    let mut first = true;
    loop {
        let mut mark = [0u8; 4];
        if first {
            match tokio::time::timeout(IDLE_TIMEOUT, r.read_exact(&mut mark)).await {
                Err(_) => return Ok(None),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Ok(r) => r?,
            };
        } else {
            timed(r.read_exact(&mut mark)).await?;
        }
        first = false;
        let mark = u32::from_be_bytes(mark);
        let len = (mark & 0x7fff_ffff) as usize;
        if record.len() + len > MAX_RECORD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("an RPC record over {MAX_RECORD} bytes"),
            ));
        }
        let at = record.len();
        record.resize(at + len, 0);
        timed(r.read_exact(&mut record[at..])).await?;
        if mark & 0x8000_0000 != 0 {
            return Ok(Some(record));
        }
    }
}

async fn timed<F: std::future::Future<Output = std::io::Result<usize>>>(
    f: F,
) -> std::io::Result<usize> {
    tokio::time::timeout(RECORD_TIMEOUT, f)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "a record stalled"))?
}

/// Serves one connection until the client closes it or breaks the protocol.
pub async fn serve<S: Service>(stream: TcpStream, service: Arc<S>) {
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().ok();
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            if wr.write_all(&out).await.is_err() {
                break;
            }
        }
    });
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let record = match read_record(&mut rd).await {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(client = ?peer, error = %e, "closing an NFS connection");
                break;
            }
        };
        let (xid, reply) = match parse(record) {
            Parsed::Ignore => continue,
            Parsed::Refused { xid, reply } => (xid, Some(reply)),
            Parsed::Call(call) => (call.xid, {
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    break;
                };
                let service = service.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let xid = call.xid;
                    let reply = service.call(call).await;
                    let _ = tx.send(encode(xid, reply)).await;
                    drop(permit);
                });
                None
            }),
        };
        if let Some(reply) = reply {
            if tx.send(encode(xid, reply)).await.is_err() {
                break;
            }
        }
    }
    drop(tx);
    // Calls still running finish and their replies are written.
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(len: u32, last: bool) -> [u8; 4] {
        (len | if last { 0x8000_0000 } else { 0 }).to_be_bytes()
    }

    fn unix(uid: u32, gid: u32, gids: Vec<u32>) -> opaque_auth<'static> {
        opaque_auth::auth_unix(&auth_unix {
            stamp: 0,
            machinename: nfs3_types::xdr_codec::Opaque::borrowed(b"web1"),
            uid,
            gid,
            gids,
        })
    }

    /// An NFS call's header (no record mark).
    fn call_msg(xid: u32, rpcvers: u32, proc: u32, cred: opaque_auth<'static>) -> Vec<u8> {
        let msg = rpc_msg {
            xid,
            body: msg_body::CALL(nfs3_types::rpc::call_body {
                rpcvers,
                prog: 100_003,
                vers: 3,
                proc,
                cred,
                verf: opaque_auth::default(),
            }),
        };
        let mut out = Vec::new();
        msg.pack(&mut out).unwrap();
        out
    }

    #[tokio::test]
    async fn records_join_fragments_and_refuse_oversized_ones() {
        let mut input = Vec::new();
        input.extend_from_slice(&mark(3, false));
        input.extend_from_slice(b"abc");
        input.extend_from_slice(&mark(2, true));
        input.extend_from_slice(b"de");
        let mut r = &input[..];
        assert_eq!(read_record(&mut r).await.unwrap().unwrap(), b"abcde");
        assert!(read_record(&mut r).await.unwrap().is_none(), "clean end");

        // A 2 GiB claim is refused before anything is read or allocated.
        let huge = mark(0x7fff_ffff, true);
        let mut r = &huge[..];
        let e = read_record(&mut r).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);

        // Fragments that add up past the bound are refused too.
        let mut input = Vec::new();
        for _ in 0..3 {
            input.extend_from_slice(&mark(MAX_RECORD as u32 / 2, false));
            input.resize(input.len() + MAX_RECORD / 2, 0);
        }
        let mut r = &input[..];
        assert!(read_record(&mut r).await.is_err());
    }

    #[test]
    fn a_call_carries_its_credential_and_a_reply_its_xid() {
        let mut record = call_msg(7, 2, 1, unix(33, 34, vec![35, 36]));
        record.extend_from_slice(&42u32.to_be_bytes());
        let Parsed::Call(call) = parse(record) else {
            panic!("not parsed as a call");
        };
        assert_eq!(
            (call.xid, call.prog, call.vers, call.proc),
            (7, 100_003, 3, 1)
        );
        assert_eq!(
            call.caller,
            Some(Caller {
                uid: 33,
                gid: 34,
                gids: vec![35, 36]
            })
        );
        assert_eq!(call.args::<u32>(), Some(42));

        let out = encode(7, Reply::Success(vec![0, 0, 0, 9]));
        let len = u32::from_be_bytes(out[..4].try_into().unwrap());
        assert_eq!(len as usize | 0x8000_0000, 0x8000_0000 | (out.len() - 4));
        assert_eq!(&out[4..8], &7u32.to_be_bytes(), "xid first");
        assert_eq!(&out[out.len() - 4..], &[0, 0, 0, 9]);
    }

    #[test]
    fn calls_of_another_rpc_version_or_credential_are_denied() {
        let record = |rpcvers, cred| call_msg(9, rpcvers, 0, cred);
        // xid, REPLY, then MSG_DENIED (1) and the reject status.
        let denied = |reply: Reply| {
            let out = encode(9, reply);
            (
                u32::from_be_bytes(out[12..16].try_into().unwrap()),
                u32::from_be_bytes(out[16..20].try_into().unwrap()),
            )
        };
        let Parsed::Refused { reply, .. } = parse(record(3, opaque_auth::default())) else {
            panic!("RPC version 3 accepted");
        };
        assert_eq!(denied(reply), (1, 0), "MSG_DENIED, RPC_MISMATCH");
        let des = opaque_auth {
            flavor: auth_flavor::AUTH_DES,
            body: nfs3_types::xdr_codec::Opaque::owned(vec![0; 8]),
        };
        let Parsed::Refused { reply, .. } = parse(record(2, des)) else {
            panic!("AUTH_DES accepted");
        };
        assert_eq!(denied(reply), (1, 1), "MSG_DENIED, AUTH_ERROR");
    }

    /// Answers each call with its caller's uid, after a pause that lets
    /// calls overlap.
    struct EchoUid;

    impl Service for EchoUid {
        async fn call(&self, call: Call) -> Reply {
            tokio::task::yield_now().await;
            Reply::of(&call.caller.map(|c| c.uid).unwrap_or(u32::MAX))
        }
    }

    /// A NULL call from `uid` as one record.
    fn call_record(xid: u32, uid: u32) -> Vec<u8> {
        let msg = call_msg(xid, 2, 0, unix(uid, uid, vec![]));
        let mut out = mark(msg.len() as u32, true).to_vec();
        out.extend_from_slice(&msg);
        out
    }

    /// Tens of thousands of pipelined calls from many identities over real
    /// connections: every reply carries its own call's identity, whatever
    /// else is in flight. (Identity travels with the call; there is no
    /// table to grow.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_call_sees_its_own_caller() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = Arc::new(EchoUid);
        tokio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(s, service.clone()));
            }
        });
        const CONNS: u32 = 4;
        const CALLS: u32 = 5000;
        let mut clients = Vec::new();
        for c in 0..CONNS {
            clients.push(tokio::spawn(async move {
                let s = TcpStream::connect(addr).await.unwrap();
                let (rd, mut wr) = s.into_split();
                let sender = tokio::spawn(async move {
                    for i in 0..CALLS {
                        let xid = c * CALLS + i;
                        wr.write_all(&call_record(xid, xid * 7 + 1)).await.unwrap();
                    }
                    wr
                });
                let mut rd = BufReader::new(rd);
                let mut seen = 0;
                while seen < CALLS {
                    let rec = read_record(&mut rd).await.unwrap().expect("a reply");
                    let xid = u32::from_be_bytes(rec[..4].try_into().unwrap());
                    let uid = u32::from_be_bytes(rec[rec.len() - 4..].try_into().unwrap());
                    assert_eq!(uid, xid * 7 + 1, "reply to xid {xid} has another's uid");
                    seen += 1;
                }
                drop(sender.await.unwrap());
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
    }
}
