//! The metadata tables and the pure functions that change and read them.
//!
//! [`apply`] runs one [`Command`] inside the redb write transaction it is
//! given and nothing else: no clock, no randomness, no network. Whoever owns
//! the transaction commits it when `apply` returns `Ok` and aborts it on
//! `Err`, so a failed command changes nothing.

mod codec;
mod files;
mod garbage;
mod goals;
mod keys;
mod namespace;
mod objects;
mod query;
pub mod reader;
pub mod repair;
pub mod tables;
mod uploads;

pub use files::NAME_MAX;
pub use keys::validate_key;
pub use objects::etag_matches;
pub use query::query;
pub use tables::{create_all, TableSet};

use redb::WriteTransaction;

use crate::api::{Command, Reply};
use crate::error::Error;

/// Whether a stored blob record places a copy on `node`.
pub fn placed_on(rec: &[u8], node: crate::api::NodeId) -> Result<bool, Error> {
    Ok(codec::dec::<objects::BlobRec>(rec)?.nodes.contains(&node))
}

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
            all_buckets,
            now,
        } => {
            namespace::create_key(&mut t, access_key, secret_key, name, *all_buckets, *now)?;
            Ok(Reply::Done)
        }
        Command::DeleteKey { access_key } => {
            namespace::delete_key(&mut t, access_key)?;
            Ok(Reply::Done)
        }
        Command::AllowKey {
            access_key,
            bucket,
            grant,
        } => {
            namespace::allow_key(&mut t, access_key, bucket, *grant)?;
            Ok(Reply::Done)
        }
        Command::CreateBucket { name, owner, now } => {
            namespace::create_bucket(&mut t, name, owner.as_deref(), *now)?;
            Ok(Reply::Done)
        }
        Command::PutBucketCors { bucket, rules } => {
            namespace::put_bucket_cors(&mut t, bucket, rules.as_ref())?;
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
            cond,
            now,
        } => {
            objects::check_condition(&t, bucket, key, cond)?;
            objects::record_blobs(&mut t, blobs)?;
            objects::put_object(&mut t, bucket, key, *size, etag, meta, extents, *now)?;
            Ok(Reply::Written {
                etag: etag.clone(),
                mtime: *now,
            })
        }
        Command::CopyObject {
            src_bucket,
            src_key,
            src_etag,
            bucket,
            key,
            meta,
            cond,
            now,
        } => {
            objects::check_condition(&t, bucket, key, cond)?;
            let etag = objects::copy_object(
                &mut t,
                src_bucket,
                src_key,
                src_etag.as_deref(),
                bucket,
                key,
                meta.as_ref(),
                *now,
            )?;
            Ok(Reply::Written { etag, mtime: *now })
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
            checksum,
            now,
        } => {
            uploads::create(
                &mut t,
                upload_id,
                bucket,
                key,
                meta,
                checksum.as_ref(),
                *now,
            )?;
            Ok(Reply::Done)
        }
        Command::PutPart {
            upload_id,
            part_number,
            size,
            etag,
            extents,
            blobs,
            checksum,
            now,
        } => {
            objects::record_blobs(&mut t, blobs)?;
            let part = uploads::NewPart {
                size: *size,
                etag,
                extents,
                checksum: checksum.as_ref(),
            };
            uploads::put_part(&mut t, upload_id, *part_number, part, *now)?;
            Ok(Reply::Done)
        }
        Command::CopyPart {
            upload_id,
            part_number,
            src_bucket,
            src_key,
            src_etag,
            range,
            etag,
            checksum,
            now,
        } => {
            uploads::copy_part(
                &mut t,
                upload_id,
                *part_number,
                src_bucket,
                src_key,
                src_etag.as_deref(),
                *range,
                etag,
                checksum.as_ref(),
                *now,
            )?;
            Ok(Reply::Written {
                etag: etag.clone(),
                mtime: *now,
            })
        }
        Command::CompleteUpload {
            upload_id,
            parts,
            etag,
            part_checksums,
            checksum,
            checksum_type,
            cond,
            now,
        } => {
            let c = uploads::Completion {
                listed: parts,
                part_checksums,
                etag,
                checksum: checksum.as_ref(),
                checksum_type: checksum_type.as_deref(),
            };
            Ok(match uploads::complete(&mut t, upload_id, c, cond, *now)? {
                // A repeat of a completion: its first answer.
                Some(done) => Reply::Written {
                    etag: done.etag,
                    mtime: done.mtime,
                },
                None => Reply::Written {
                    etag: etag.clone(),
                    mtime: *now,
                },
            })
        }
        Command::AbortUpload { upload_id, now } => {
            uploads::abort(&mut t, upload_id, *now)?;
            Ok(Reply::Done)
        }
        Command::CreateNode {
            parent,
            name,
            kind,
            mode,
            uid,
            gid,
            target,
            verifier,
            now,
        } => {
            let node = files::create_node(
                &mut t, *parent, name, *kind, *mode, *uid, *gid, target, *verifier, *now,
            )?;
            Ok(Reply::Changed {
                node: Some(node),
                dirs: vec![files::node_attr(&t, *parent)?],
            })
        }
        Command::SetAttr {
            inode,
            owner,
            size,
            atime,
            mtime,
            now,
        } => files::set_attr(&mut t, *inode, *owner, *size, *atime, *mtime, *now).map(Reply::Node),
        Command::WriteFile {
            inode,
            offset,
            blob,
            now,
        } => files::write_file(&mut t, *inode, *offset, blob, *now).map(Reply::Node),
        Command::MergeExtents {
            inode,
            expect,
            blob,
            now,
        } => {
            files::merge_extents(&mut t, *inode, expect, blob, *now)?;
            Ok(Reply::Done)
        }
        Command::RecordCopies {
            blobs,
            moves,
            cutoff,
        } => {
            repair::record_copies(&mut t, blobs, moves, *cutoff)?;
            Ok(Reply::Done)
        }
        Command::TrimCopies { copies, cutoff } => {
            repair::trim_copies(&mut t, copies, *cutoff)?;
            Ok(Reply::Done)
        }
        Command::LostCopies {
            node,
            blobs,
            missing,
        } => {
            repair::lost_copies(&mut t, *node, blobs, missing)?;
            Ok(Reply::Done)
        }
        Command::SetNodeMode { id, mode } => {
            namespace::set_node_mode(&mut t, *id, *mode)?;
            Ok(Reply::Done)
        }
        Command::SetGoal { path, goal } => {
            goals::set(&mut t, path, *goal)?;
            Ok(Reply::Done)
        }
        Command::CollectGarbage { cutoff, limit } => {
            garbage::collect(&mut t, *cutoff, *limit as usize).map(Reply::Collected)
        }
        Command::DeletedBlobs { node, blobs } => {
            garbage::deleted(&mut t, *node, blobs)?;
            Ok(Reply::Done)
        }
        Command::ClearFragmented { inode, mark } => {
            files::clear_fragmented(&mut t, *inode, *mark)?;
            Ok(Reply::Done)
        }
        Command::RemoveNode { parent, name, now } => {
            files::remove_node(&mut t, *parent, name, *now)?;
            Ok(Reply::Changed {
                node: None,
                dirs: vec![files::node_attr(&t, *parent)?],
            })
        }
        Command::Rename {
            from_parent,
            from_name,
            to_parent,
            to_name,
            now,
        } => {
            files::rename(&mut t, *from_parent, from_name, *to_parent, to_name, *now)?;
            let mut dirs = vec![files::node_attr(&t, *from_parent)?];
            if to_parent != from_parent {
                dirs.push(files::node_attr(&t, *to_parent)?);
            }
            Ok(Reply::Changed { node: None, dirs })
        }
    }
}

#[cfg(test)]
mod tests;
