//! The metadata tables and the pure functions that change and read them.
//!
//! [`apply`] runs one [`Command`] inside the redb write transaction it is
//! given and nothing else: no clock, no randomness, no network. Whoever owns
//! the transaction commits it when `apply` returns `Ok` and aborts it on
//! `Err`, so a failed command changes nothing.

mod codec;
mod keys;
mod namespace;
mod objects;
mod query;
pub mod tables;
mod uploads;

pub use keys::validate_key;
pub use query::query;
pub use tables::{create_all, TableSet};

use redb::WriteTransaction;

use crate::api::{Command, Reply};
use crate::error::Error;

/// Applies one command to the tables of `txn`.
pub fn apply(txn: &WriteTransaction, cmd: &Command) -> Result<Reply, Error> {
    let mut t = TableSet::open(txn)?;
    match cmd {
        Command::RegisterNode { id, addr, zone } => {
            namespace::register_node(&mut t, *id, addr, zone)?;
            Ok(Reply::Done)
        }
        Command::CreateKey {
            access_key,
            secret_key,
            name,
            now,
        } => {
            namespace::create_key(&mut t, access_key, secret_key, name, *now)?;
            Ok(Reply::Done)
        }
        Command::CreateBucket { name, now } => {
            namespace::create_bucket(&mut t, name, *now)?;
            Ok(Reply::Done)
        }
        Command::DeleteBucket { name } => {
            namespace::delete_bucket(&mut t, name)?;
            Ok(Reply::Done)
        }
        Command::PutObject {
            bucket,
            key,
            size,
            etag,
            meta,
            extents,
            blobs,
            now,
        } => {
            objects::record_blobs(&mut t, blobs)?;
            objects::put_object(&mut t, bucket, key, *size, etag, meta, extents, *now)?;
            Ok(Reply::Done)
        }
        Command::DeleteObject { bucket, key, now } => {
            objects::delete_object(&mut t, bucket, key, *now)?;
            Ok(Reply::Done)
        }
        Command::CreateUpload {
            upload_id,
            bucket,
            key,
            meta,
            now,
        } => {
            uploads::create(&mut t, upload_id, bucket, key, meta, *now)?;
            Ok(Reply::Done)
        }
        Command::PutPart {
            upload_id,
            part_number,
            size,
            etag,
            extents,
            blobs,
            now,
        } => {
            objects::record_blobs(&mut t, blobs)?;
            uploads::put_part(&mut t, upload_id, *part_number, *size, etag, extents, *now)?;
            Ok(Reply::Done)
        }
        Command::CompleteUpload {
            upload_id,
            parts,
            etag,
            now,
        } => {
            uploads::complete(&mut t, upload_id, parts, etag, *now)?;
            Ok(Reply::Done)
        }
        Command::AbortUpload { upload_id, now } => {
            uploads::abort(&mut t, upload_id, *now)?;
            Ok(Reply::Done)
        }
    }
}

#[cfg(test)]
mod tests;
