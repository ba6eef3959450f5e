//! Repair: which blobs are below their goal, and who should copy them.
//!
//! Storage nodes pull: each asks the leader for its share of the work
//! ([`work_for`]), copies each blob from a live holder (verifying it), and
//! records the new copy ([`record_copies`]). Every blob missing copies is
//! given to exactly one node at a time, the first of the live non-holders
//! in an order derived from the blob's id (other zones first), so nodes do
//! not copy the same blob twice and the work spreads over the cluster.

use std::collections::{BTreeMap, HashSet};

use redb::{ReadTransaction, ReadableTable};

use super::codec::{dec, enc};
use super::objects::{get_blob, BlobRec};
use super::tables::{TableSet, BLOBS};
use crate::api::{BlobId, BlobWrite, NodeId, RepairTask, GOAL_COPIES};
use crate::error::Error;

/// A live storage node as the leader sees it.
#[derive(Clone, Debug)]
pub struct LiveNode {
    pub addr: String,
    pub zone: String,
}

/// The node that should make the next copy of `blob`: among live nodes not
/// holding it, those in zones without a live copy first, then by a hash of
/// (blob, node), so the choice is stable and spread.
pub fn target(
    blob: &BlobId,
    holders: &[NodeId],
    live: &BTreeMap<NodeId, LiveNode>,
) -> Option<NodeId> {
    let used: HashSet<&str> = holders
        .iter()
        .filter_map(|h| live.get(h))
        .map(|n| n.zone.as_str())
        .collect();
    live.iter()
        .filter(|(id, _)| !holders.contains(id))
        .min_by_key(|(id, n)| {
            let mut key = blob.0.to_vec();
            key.extend_from_slice(&id.to_be_bytes());
            let h = BlobId::of(&key);
            (used.contains(n.zone.as_str()), h.0)
        })
        .map(|(id, _)| *id)
}

/// Up to `limit` blobs that `node` should copy now, those with the fewest
/// live copies first.
pub fn work_for(
    txn: &ReadTransaction,
    node: NodeId,
    live: &BTreeMap<NodeId, LiveNode>,
    limit: usize,
) -> Result<Vec<RepairTask>, Error> {
    let goal = GOAL_COPIES.min(live.len());
    let mut found: Vec<(usize, RepairTask)> = Vec::new();
    for entry in txn.open_table(BLOBS)?.iter()? {
        let (k, v) = entry?;
        let rec: BlobRec = dec(v.value())?;
        if rec.refs == 0 || rec.nodes.contains(&node) {
            continue;
        }
        let sources: Vec<String> = rec
            .nodes
            .iter()
            .filter_map(|h| live.get(h))
            .map(|n| n.addr.clone())
            .collect();
        if sources.is_empty() || sources.len() >= goal {
            continue;
        }
        let blob = BlobId(
            k.value()
                .try_into()
                .map_err(|_| Error::Internal("blob key is not 32 bytes".into()))?,
        );
        if target(&blob, &rec.nodes, live) != Some(node) {
            continue;
        }
        found.push((
            sources.len(),
            RepairTask {
                blob,
                size: rec.size,
                sources,
            },
        ));
    }
    found.sort_by_key(|(n, _)| *n);
    Ok(found.into_iter().take(limit).map(|(_, t)| t).collect())
}

/// Adds copies made by repair to the blobs' placements. A blob no longer
/// known (collected meanwhile) is skipped: its copy is garbage.
pub fn record_copies(t: &mut TableSet, blobs: &[BlobWrite]) -> Result<(), Error> {
    for b in blobs {
        let Some(mut rec) = get_blob(t, &b.id)? else {
            continue;
        };
        if rec.size != b.size {
            return Err(Error::Invalid(format!("blob {} size mismatch", b.id)));
        }
        for n in &b.nodes {
            if !rec.nodes.contains(n) {
                rec.nodes.push(*n);
            }
        }
        t.blobs.insert(b.id.0.as_slice(), enc(&rec).as_slice())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(n: u64) -> BTreeMap<NodeId, LiveNode> {
        (1..=n)
            .map(|i| {
                (
                    i,
                    LiveNode {
                        addr: format!("n{i}"),
                        zone: format!("z{}", i % 3),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn one_target_per_blob_other_zones_first_and_spread() {
        let nodes = live(6);
        let mut chosen = std::collections::HashMap::new();
        for i in 0..300u32 {
            let blob = BlobId::of(&i.to_be_bytes());
            // Holders 1 (z1) and 2 (z2): the target is in zone z0 (3 or 6).
            let t = target(&blob, &[1, 2], &nodes).unwrap();
            assert!(t == 3 || t == 6, "{t}");
            *chosen.entry(t).or_insert(0) += 1;
            assert_eq!(target(&blob, &[1, 2], &nodes), Some(t), "stable");
        }
        assert!(chosen.values().all(|c| *c > 100), "spread: {chosen:?}");
    }
}
