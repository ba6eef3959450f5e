//! What a snapshot carries, and its file format.
//!
//! The tables a snapshot carries are listed once, in [`CARRIED`]; the
//! tables it leaves out, with the reason, in [`NOT_CARRIED`]. A test lists
//! the tables of a populated database and fails on one in neither list, so
//! a new table cannot be forgotten (a follower installing a snapshot would
//! come up with it empty).
//!
//! File: [`MAGIC`], the schema version (u32, big endian), the snapshot meta
//! as JSON (u32 length first), then each carried table as its name (u16
//! length first) and its rows, each as key and value in redb's own
//! encoding (u32 length first), ended by [`END_OF_TABLE`]; an empty name
//! ends the tables, and the CRC-32C of everything before follows. Rows are
//! bytes as stored: no text encoding, no JSON arrays of numbers.

use std::io::{Read, Write};

use redb::{Key, ReadTransaction, ReadableTable, TableDefinition, Value, WriteTransaction};

use super::state_machine::{APPLIED, APPLIED_BY_TIME};
use crate::state::tables::*;

pub const MAGIC: &[u8; 16] = b"troika-snapshot\n";
/// The layout of the tables and their records. Raised with any change a
/// node of the previous version would misread; a database or snapshot of
/// another version is refused, never guessed at.
pub const SCHEMA_VERSION: u32 = 1;
const END_OF_TABLE: u32 = u32::MAX;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One table of the replicated state, whatever its key and value types.
pub trait CarriedTable: Sync {
    fn name(&self) -> &str;
    /// Writes every row of the table to `w`, ended by [`END_OF_TABLE`].
    fn dump(&self, txn: &ReadTransaction, w: &mut dyn Write) -> Result<u64, Error>;
    /// Empties the table, creating it if missing.
    fn clear(&self, txn: &WriteTransaction) -> Result<(), Error>;
    /// Inserts rows read from `r` up to [`END_OF_TABLE`].
    fn load(&self, txn: &WriteTransaction, r: &mut dyn Read) -> Result<u64, Error>;
}

struct Carried<K: Key + 'static, V: Value + 'static>(TableDefinition<'static, K, V>);

impl<K: Key + 'static, V: Value + 'static> CarriedTable for Carried<K, V>
where
    TableDefinition<'static, K, V>: Sync,
{
    fn name(&self) -> &str {
        redb::TableHandle::name(&self.0)
    }

    fn dump(&self, txn: &ReadTransaction, w: &mut dyn Write) -> Result<u64, Error> {
        let mut rows = 0;
        for item in txn.open_table(self.0)?.iter()? {
            let (k, v) = item?;
            write_bytes(w, K::as_bytes(&k.value()).as_ref())?;
            write_bytes(w, V::as_bytes(&v.value()).as_ref())?;
            rows += 1;
        }
        w.write_all(&END_OF_TABLE.to_be_bytes())?;
        Ok(rows)
    }

    fn clear(&self, txn: &WriteTransaction) -> Result<(), Error> {
        txn.delete_table(self.0)?;
        txn.open_table(self.0)?;
        Ok(())
    }

    fn load(&self, txn: &WriteTransaction, r: &mut dyn Read) -> Result<u64, Error> {
        let mut t = txn.open_table(self.0)?;
        let (mut key, mut value) = (Vec::new(), Vec::new());
        let mut rows = 0;
        while read_bytes(r, &mut key)? {
            if !read_bytes(r, &mut value)? {
                return Err("a snapshot row has a key and no value".into());
            }
            t.insert(K::from_bytes(&key), V::from_bytes(&value))?;
            rows += 1;
        }
        Ok(rows)
    }
}

/// Every table a snapshot carries: the namespace and the retry table (a
/// request retried after a leader change must still be answered, not
/// applied again).
pub static CARRIED: &[&dyn CarriedTable] = &[
    &Carried(INODES),
    &Carried(DIRENTS),
    &Carried(DIRCOOKIES),
    &Carried(EXTENTS),
    &Carried(BLOBS),
    &Carried(UNREFERENCED),
    &Carried(OBJECTS),
    &Carried(BUCKETS),
    &Carried(KEYS),
    &Carried(NODES),
    &Carried(UPLOADS),
    &Carried(PARTS),
    &Carried(COUNTERS),
    &Carried(FRAGMENTED),
    &Carried(DELETIONS),
    &Carried(APPLIED),
    &Carried(APPLIED_BY_TIME),
];

/// Tables of a meta node's database a snapshot leaves out, and why.
pub const NOT_CARRIED: &[(&str, &str)] = &[(
    "sm_meta",
    "last applied entry and membership: travel as the snapshot's meta",
)];

fn write_bytes(w: &mut dyn Write, b: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(b.len()).map_err(std::io::Error::other)?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(b)
}

/// Reads one length-prefixed field into `buf`; false at [`END_OF_TABLE`].
fn read_bytes(r: &mut dyn Read, buf: &mut Vec<u8>) -> Result<bool, Error> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len == END_OF_TABLE {
        return Ok(false);
    }
    buf.resize(len as usize, 0);
    r.read_exact(buf)?;
    Ok(true)
}

/// Writes a whole snapshot of `txn` with `meta` (JSON) to `w`.
pub fn write(txn: &ReadTransaction, meta: &[u8], w: impl Write) -> Result<(), Error> {
    let mut w = Crc::new(w);
    w.write_all(MAGIC)?;
    w.write_all(&SCHEMA_VERSION.to_be_bytes())?;
    write_bytes(&mut w, meta)?;
    for table in CARRIED {
        let name = table.name().as_bytes();
        w.write_all(&(name.len() as u16).to_be_bytes())?;
        w.write_all(name)?;
        table.dump(txn, &mut w)?;
    }
    w.write_all(&0u16.to_be_bytes())?;
    let crc = w.crc;
    w.inner.write_all(&crc.to_be_bytes())?;
    w.inner.flush()?;
    Ok(())
}

/// Reads a snapshot's header: checks its magic and version, and returns
/// its meta (JSON).
pub fn read_header(r: &mut dyn Read) -> Result<Vec<u8>, Error> {
    let mut magic = [0u8; 16];
    r.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err("not a Troika snapshot (bad magic)".into());
    }
    let mut version = [0u8; 4];
    r.read_exact(&mut version)?;
    let version = u32::from_be_bytes(version);
    if version != SCHEMA_VERSION {
        return Err(format!(
            "snapshot of schema version {version}; this build reads version {SCHEMA_VERSION}"
        )
        .into());
    }
    let mut meta = Vec::new();
    if !read_bytes(r, &mut meta)? {
        return Err("snapshot without meta".into());
    }
    Ok(meta)
}

/// Replaces every carried table in `txn` with the rows of the snapshot in
/// `r`, checking its CRC at the end (the caller commits only on success).
pub fn load(txn: &WriteTransaction, r: impl Read) -> Result<u64, Error> {
    let mut r = Crc::new(r);
    read_header(&mut r)?;
    for table in CARRIED {
        table.clear(txn)?;
    }
    let mut rows = 0;
    loop {
        let mut len = [0u8; 2];
        r.read_exact(&mut len)?;
        let len = u16::from_be_bytes(len) as usize;
        if len == 0 {
            break;
        }
        let mut name = vec![0u8; len];
        r.read_exact(&mut name)?;
        let name = String::from_utf8_lossy(&name);
        let table = CARRIED.iter().find(|t| t.name() == name).ok_or_else(|| {
            format!("the snapshot holds table {name:?}, which this build does not know")
        })?;
        rows += table.load(txn, &mut r)?;
    }
    let computed = r.crc;
    let mut stored = [0u8; 4];
    r.inner.read_exact(&mut stored)?;
    if u32::from_be_bytes(stored) != computed {
        return Err("the snapshot's checksum does not match its contents".into());
    }
    Ok(rows)
}

/// A reader or writer that keeps the CRC-32C of the bytes through it.
struct Crc<T> {
    inner: T,
    crc: u32,
}

impl<T> Crc<T> {
    fn new(inner: T) -> Self {
        Self { inner, crc: 0 }
    }
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Crc<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }
}
