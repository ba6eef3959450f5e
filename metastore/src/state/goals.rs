//! Replication goals: how many copies the blobs of a file should have.
//!
//! A goal lives on inodes (0 there means the default) and is copied to a new
//! inode from its directory. A blob carries the highest goal of the files
//! that took a reference on it; repair and trimming read only the blob.

use redb::ReadableTable;

use super::namespace::{effective_goal, lookup, must_inode, put_inode, InodeKind};
use super::objects::{get_blob, put_blob, read_extents};
use super::tables::TableSet;
use crate::api::{InodeId, GOAL_RANGE, ROOT_INODE};
use crate::error::Error;

/// The inode at `path` (`/bucket/dir/file`; `/` is the root).
pub fn resolve(t: &TableSet, path: &str) -> Result<InodeId, Error> {
    let mut id = ROOT_INODE;
    for name in path.split('/').filter(|n| !n.is_empty()) {
        id = lookup(t, id, name)?.ok_or_else(|| Error::NoEntry(path.to_string()))?;
    }
    Ok(id)
}

/// Sets `goal` on `path` and everything below it, and on the blobs of the
/// files there. A blob shared with other files keeps a higher goal it has
/// (its other files may want it), so lowering never leaves a file below
/// its own goal.
pub fn set(t: &mut TableSet, path: &str, goal: u8) -> Result<u64, Error> {
    if !GOAL_RANGE.contains(&goal) {
        return Err(Error::Invalid(format!(
            "a goal is {} to {} copies, not {goal}",
            GOAL_RANGE.start(),
            GOAL_RANGE.end()
        )));
    }
    let mut todo = vec![resolve(t, path)?];
    let mut changed = 0;
    while let Some(id) = todo.pop() {
        let mut inode = must_inode(t, id)?;
        inode.goal = goal;
        put_inode(t, id, &inode)?;
        changed += 1;
        match inode.kind {
            InodeKind::Dir => {
                for entry in t.dirents.range((id, "")..)? {
                    let (k, v) = entry?;
                    if k.value().0 != id {
                        break;
                    }
                    todo.push(v.value());
                }
            }
            InodeKind::File => {
                for e in read_extents(t, id)? {
                    let Some(mut rec) = get_blob(t, &e.blob)? else {
                        continue;
                    };
                    let to = if rec.refs <= 1 {
                        goal
                    } else {
                        rec.goal().max(goal as usize) as u8
                    };
                    if effective_goal(rec.goal) != to {
                        rec.goal = to;
                        put_blob(t, &e.blob, &rec)?;
                    }
                }
            }
            InodeKind::Symlink => {}
        }
    }
    Ok(changed)
}
