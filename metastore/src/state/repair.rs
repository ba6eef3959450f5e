//! Repair, trimming and rebalancing: which copies to make and which to drop.
//!
//! Everything here reads the `blobs` table against a [`View`] of the storage
//! nodes: which are alive (the leader's soft state) and what an operator
//! made of them (their mode). Whether a copy counts toward its blob's goal:
//!
//! - on an active node: while the node is alive;
//! - on a node in maintenance: until the maintenance ends, alive or not, so
//!   a node down on purpose starts no repair;
//! - on a draining or removed node: never (its copies are made elsewhere,
//!   then dropped).
//!
//! Storage nodes pull their work ([`work_for`]): a blob below its goal goes
//! to exactly one node at a time, the first of the nodes taking copies in an
//! order derived from the blob's id (other zones first), so no two nodes
//! copy the same blob and the work spreads; one-copy-left blobs first. When
//! nothing is below goal and no node is away, a node filled less than the
//! others pulls blobs from the fullest nodes (a move: the old copy is
//! dropped once the new one is recorded). The leader trims copies above
//! goal ([`trims`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use redb::ReadableTable;

use super::reader::Reader;

use super::codec::{dec, enc};
use super::namespace::NodeRec;
use super::objects::{get_blob, put_blob, BlobRec};
use super::tables::{TableSet, BLOBS};
use crate::api::{BlobCount, BlobId, BlobWrite, Health, NodeId, NodeMode, RepairTask};
use crate::error::Error;

/// A node starts pulling blobs to rebalance once it holds this share less
/// than its fair share (the cluster's mean fill times its capacity)...
pub const BALANCE_TOLERANCE: f64 = 0.02;
/// ...and at least this many bytes less (two full blobs): one blob of
/// imbalance is not worth moving.
pub const BALANCE_MIN_BYTES: f64 = (8 << 20) as f64;

/// A storage node as the leader sees it.
#[derive(Clone, Debug)]
pub struct NodeView {
    pub addr: String,
    pub zone: String,
    /// Heard from within the down timeout.
    pub alive: bool,
    pub mode: NodeMode,
    /// Capacity for blobs, as last reported (0: not known yet).
    pub capacity: u64,
}

/// The storage nodes at one moment.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub nodes: BTreeMap<NodeId, NodeView>,
    /// The leader's clock (ns), for maintenance windows.
    pub now: u64,
}

impl View {
    /// A copy on `id` counts toward its blob's goal.
    pub fn counts(&self, id: &NodeId) -> bool {
        self.nodes.get(id).is_some_and(|n| match n.mode {
            NodeMode::Active => n.alive,
            NodeMode::Maintenance { until } => n.alive || until > self.now,
            NodeMode::Draining | NodeMode::Removed => false,
        })
    }

    /// A copy on `id` can be read now.
    pub fn readable(&self, id: &NodeId) -> bool {
        self.nodes
            .get(id)
            .is_some_and(|n| n.alive && n.mode != NodeMode::Removed)
    }

    /// `id` may take new copies.
    pub fn takes(&self, id: &NodeId) -> bool {
        self.nodes
            .get(id)
            .is_some_and(|n| n.alive && n.mode == NodeMode::Active)
    }

    fn zone(&self, id: &NodeId) -> Option<&str> {
        self.nodes.get(id).map(|n| n.zone.as_str())
    }
}

/// The node that should make the next copy of `blob`: among the nodes
/// taking copies and not holding it, those in zones without a counted copy
/// first, then by a hash of (blob, node), so the choice is stable and
/// spread.
pub fn target(blob: &BlobId, holders: &[NodeId], view: &View) -> Option<NodeId> {
    let used: HashSet<&str> = holders
        .iter()
        .filter(|h| view.counts(h))
        .filter_map(|h| view.zone(h))
        .collect();
    view.nodes
        .iter()
        .filter(|(id, _)| !holders.contains(id) && view.takes(id))
        .min_by_key(|(id, n)| {
            let mut key = blob.0.to_vec();
            key.extend_from_slice(&id.to_be_bytes());
            let h = BlobId::of(&key);
            (used.contains(n.zone.as_str()), h.0)
        })
        .map(|(id, _)| *id)
}

/// One referenced blob, as the scan sees it.
struct Seen {
    id: BlobId,
    rec: BlobRec,
    /// Copies counting toward the goal.
    counted: usize,
}

/// Calls `f` for every blob (garbage too: callers look at `refs`); returns
/// bytes placed per node.
fn scan(
    txn: &impl Reader,
    view: &View,
    mut f: impl FnMut(&Seen),
) -> Result<HashMap<NodeId, BlobCount>, Error> {
    let mut placed: HashMap<NodeId, BlobCount> = HashMap::new();
    for entry in txn.open_table(BLOBS)?.iter()? {
        let (k, v) = entry?;
        let rec: BlobRec = dec(v.value())?;
        for n in &rec.nodes {
            placed.entry(*n).or_default().add(rec.size);
        }
        let id = BlobId(
            k.value()
                .try_into()
                .map_err(|_| Error::Internal("blob key is not 32 bytes".into()))?,
        );
        let counted = rec.nodes.iter().filter(|h| view.counts(h)).count();
        f(&Seen { id, rec, counted });
    }
    Ok(placed)
}

fn sources(view: &View, holders: &[NodeId], first: Option<NodeId>) -> Vec<String> {
    let mut out: Vec<String> = first
        .iter()
        .chain(holders.iter().filter(|h| Some(**h) != first))
        .filter(|h| view.readable(h))
        .filter_map(|h| view.nodes.get(h).map(|n| n.addr.clone()))
        .collect();
    out.dedup();
    out
}

/// Each balanced node's fair share of bytes: the mean fill of the nodes
/// taking copies (with a known capacity) times its own capacity.
fn fair_shares(view: &View, placed: &HashMap<NodeId, BlobCount>) -> HashMap<NodeId, f64> {
    let members: Vec<(&NodeId, &NodeView)> = view
        .nodes
        .iter()
        .filter(|(id, n)| view.takes(id) && n.capacity > 0)
        .collect();
    let total: u64 = members
        .iter()
        .map(|(id, _)| placed.get(id).map_or(0, |c| c.bytes))
        .sum();
    let cap: u64 = members.iter().map(|(_, n)| n.capacity).sum();
    if cap == 0 {
        return HashMap::new();
    }
    let mean = total as f64 / cap as f64;
    members
        .into_iter()
        .map(|(id, n)| (*id, mean * n.capacity as f64))
        .collect()
}

/// Up to `limit` blobs that `node` should copy now: repairs, those with the
/// fewest counted copies first; or, when no blob anywhere waits for repair,
/// rebalancing moves if the node holds less than its fair share.
pub fn work_for(
    txn: &impl Reader,
    node: NodeId,
    view: &View,
    limit: usize,
) -> Result<Vec<RepairTask>, Error> {
    if !view.takes(&node) {
        return Ok(Vec::new());
    }
    let mut repairs: Vec<(usize, RepairTask)> = Vec::new();
    let mut repair_pending = false;
    // Healthy blobs this node does not hold: what it could take to balance.
    let mut movable: Vec<(BlobId, u64, Vec<NodeId>)> = Vec::new();
    let placed = scan(txn, view, |b| {
        let holders = &b.rec.nodes;
        if b.rec.refs == 0 {
            return;
        }
        if b.counted < b.rec.goal() {
            let Some(t) = target(&b.id, holders, view) else {
                return;
            };
            let srcs = sources(view, holders, None);
            if srcs.is_empty() {
                return;
            }
            repair_pending = true;
            if t == node {
                repairs.push((
                    srcs.len(),
                    RepairTask {
                        blob: b.id,
                        size: b.rec.size,
                        sources: srcs,
                        move_from: None,
                    },
                ));
            }
        } else if !holders.contains(&node) {
            movable.push((b.id, b.rec.size, holders.clone()));
        }
    })?;
    if !repairs.is_empty() {
        repairs.sort_by_key(|(n, _)| *n);
        return Ok(repairs.into_iter().take(limit).map(|(_, t)| t).collect());
    }
    // Repair first; and no moves while a node is away (down, or in
    // maintenance): it will come back with its blobs.
    let away = view.nodes.values().any(|n| {
        n.mode != NodeMode::Removed
            && (!n.alive || matches!(n.mode, NodeMode::Maintenance { until } if until > view.now))
    });
    if repair_pending || away {
        return Ok(Vec::new());
    }
    let fair = fair_shares(view, &placed);
    let Some(mine) = fair.get(&node) else {
        return Ok(Vec::new());
    };
    let held = |n: &NodeId| placed.get(n).map_or(0, |c| c.bytes) as f64;
    let mut deficit = mine - held(&node);
    if deficit <= (mine * BALANCE_TOLERANCE).max(BALANCE_MIN_BYTES) {
        return Ok(Vec::new());
    }
    let mut surplus: HashMap<NodeId, f64> = fair.iter().map(|(n, f)| (*n, held(n) - f)).collect();
    let my_zone = view.zone(&node).unwrap_or_default().to_string();
    let mut out = Vec::new();
    for (blob, size, holders) in movable {
        let half = size as f64 / 2.0;
        if out.len() >= limit || deficit < half {
            break;
        }
        // From the holder with the most to give, if the move keeps the
        // blob's zones distinct.
        let Some(from) = holders
            .iter()
            .filter(|h| surplus.get(h).is_some_and(|s| *s > half))
            .max_by(|a, b| surplus[a].total_cmp(&surplus[b]))
            .copied()
        else {
            continue;
        };
        let zone_taken = holders
            .iter()
            .filter(|h| **h != from && view.counts(h))
            .any(|h| view.zone(h) == Some(my_zone.as_str()));
        if zone_taken {
            continue;
        }
        *surplus.get_mut(&from).expect("source has a surplus") -= size as f64;
        deficit -= size as f64;
        out.push(RepairTask {
            blob,
            size,
            sources: sources(view, &holders, Some(from)),
            move_from: Some(from),
        });
    }
    Ok(out)
}

/// Up to `limit` copies to drop: those on draining and removed nodes of
/// blobs at goal without them, and copies beyond the goal (from a node
/// that came back), taken where zones repeat first, then from the fullest
/// nodes.
pub fn trims(
    txn: &impl Reader,
    view: &View,
    fill: &HashMap<NodeId, f64>,
    limit: usize,
) -> Result<Vec<(BlobId, NodeId)>, Error> {
    let mut out = Vec::new();
    scan(txn, view, |b| {
        if out.len() >= limit {
            return;
        }
        let goal = b.rec.goal();
        // Garbage leaves draining nodes at once (so they can be removed
        // without waiting for the collection); live blobs once at goal.
        if b.rec.refs > 0 && b.counted < goal {
            return;
        }
        for h in &b.rec.nodes {
            let leaving = view
                .nodes
                .get(h)
                .is_some_and(|n| matches!(n.mode, NodeMode::Draining | NodeMode::Removed));
            if leaving {
                out.push((b.id, *h));
            }
        }
        if b.rec.refs > 0 && b.counted > goal {
            let counted: Vec<NodeId> = b
                .rec
                .nodes
                .iter()
                .filter(|h| view.counts(h))
                .copied()
                .collect();
            let zone_copies = |h: &NodeId| {
                counted
                    .iter()
                    .filter(|o| view.zone(o) == view.zone(h))
                    .count()
            };
            let mut extra: Vec<NodeId> =
                counted.iter().filter(|h| view.takes(h)).copied().collect();
            extra.sort_by(|a, b| {
                zone_copies(b).cmp(&zone_copies(a)).then(
                    fill.get(b)
                        .unwrap_or(&0.0)
                        .total_cmp(fill.get(a).unwrap_or(&0.0)),
                )
            });
            out.extend(extra.into_iter().take(b.counted - goal).map(|h| (b.id, h)));
        }
    })?;
    out.truncate(limit);
    Ok(out)
}

/// Referenced blobs by health class, the bytes placed on each node, and
/// the backlogs of repair, rebalancing and draining (bytes).
#[derive(Clone)]
pub struct Census {
    pub health: Health,
    pub placed: HashMap<NodeId, BlobCount>,
    pub repair_bytes: u64,
    pub rebalance_bytes: u64,
    pub drain_bytes: u64,
}

pub fn census(txn: &impl Reader, view: &View) -> Result<Census, Error> {
    let mut health = Health::default();
    let mut repair_bytes = 0;
    let placed = scan(txn, view, |b| {
        if b.rec.refs == 0 {
            return;
        }
        let goal = b.rec.goal();
        let readable = b.rec.nodes.iter().filter(|h| view.readable(h)).count();
        let class = if readable == 0 {
            &mut health.lost
        } else if readable == 1 && goal > 1 {
            &mut health.one_copy
        } else if b.counted < goal {
            &mut health.under_goal
        } else if b.counted > goal {
            &mut health.over_goal
        } else {
            &mut health.ok
        };
        class.add(b.rec.size);
        repair_bytes += goal.saturating_sub(b.counted) as u64 * b.rec.size;
    })?;
    let fair = fair_shares(view, &placed);
    let held = |n: &NodeId| placed.get(n).map_or(0, |c| c.bytes) as f64;
    let rebalance_bytes = fair
        .iter()
        .map(|(n, f)| (f - held(n), f))
        .filter(|(d, f)| *d > (*f * BALANCE_TOLERANCE).max(BALANCE_MIN_BYTES))
        .map(|(d, _)| d as u64)
        .sum();
    let drain_bytes = view
        .nodes
        .iter()
        .filter(|(_, n)| n.mode == NodeMode::Draining)
        .map(|(id, _)| placed.get(id).map_or(0, |c| c.bytes))
        .sum();
    Ok(Census {
        health,
        placed,
        repair_bytes,
        rebalance_bytes,
        drain_bytes,
    })
}

/// Adds copies made by repair to the blobs' placements, and completes
/// rebalancing moves by dropping the old copy where the blob stays at goal.
/// A blob no longer known (collected meanwhile) is skipped: its copy is
/// garbage.
pub fn record_copies(
    t: &mut TableSet,
    blobs: &[BlobWrite],
    moves: &[(BlobId, NodeId)],
    cutoff: u64,
) -> Result<(), Error> {
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
            t.deletions.remove((*n, b.id.0.as_slice()))?;
        }
        t.blobs.insert(b.id.0.as_slice(), enc(&rec).as_slice())?;
    }
    trim_copies(t, moves, cutoff)
}

/// Drops each copy if its blob keeps as many placements as its goal
/// without it, queueing the file's deletion on its node (unless the node
/// was removed: it will not ask).
pub fn trim_copies(
    t: &mut TableSet,
    copies: &[(BlobId, NodeId)],
    cutoff: u64,
) -> Result<(), Error> {
    for (blob, node) in copies {
        let Some(mut rec) = get_blob(t, blob)? else {
            continue;
        };
        if !rec.nodes.contains(node) || (rec.refs > 0 && rec.nodes.len() <= rec.goal()) {
            continue;
        }
        rec.nodes.retain(|n| n != node);
        put_blob(t, blob, &rec)?;
        let removed = match t.nodes.get(*node)? {
            Some(v) => dec::<NodeRec>(v.value())?.mode == NodeMode::Removed,
            None => true,
        };
        if !removed {
            t.deletions.insert((*node, blob.0.as_slice()), cutoff)?;
        }
    }
    Ok(())
}

/// Forgets copies a node found bad or missing.
pub fn lost_copies(
    t: &mut TableSet,
    node: NodeId,
    bad: &[BlobId],
    missing: &[BlobId],
) -> Result<(), Error> {
    let lost = bad
        .iter()
        .map(|b| (b, false))
        .chain(missing.iter().map(|b| (b, true)));
    for (blob, is_missing) in lost {
        if let Some(mut rec) = get_blob(t, blob)? {
            if is_missing && rec.nodes == [node] {
                continue;
            }
            rec.nodes.retain(|n| *n != node);
            put_blob(t, blob, &rec)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(n: u64) -> View {
        View {
            nodes: (1..=n)
                .map(|i| {
                    (
                        i,
                        NodeView {
                            addr: format!("n{i}"),
                            zone: format!("z{}", i % 3),
                            alive: true,
                            mode: NodeMode::Active,
                            capacity: 1000,
                        },
                    )
                })
                .collect(),
            now: 100,
        }
    }

    #[test]
    fn one_target_per_blob_other_zones_first_and_spread() {
        let nodes = view(6);
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

    #[test]
    fn copies_count_by_mode() {
        let mut v = view(5);
        v.nodes.get_mut(&1).unwrap().alive = false;
        v.nodes.get_mut(&2).unwrap().alive = false;
        v.nodes.get_mut(&2).unwrap().mode = NodeMode::Maintenance { until: 200 };
        v.nodes.get_mut(&3).unwrap().mode = NodeMode::Maintenance { until: 50 };
        v.nodes.get_mut(&4).unwrap().mode = NodeMode::Draining;
        v.nodes.get_mut(&5).unwrap().mode = NodeMode::Removed;
        assert!(!v.counts(&1), "down");
        assert!(v.counts(&2), "down in maintenance");
        assert!(v.counts(&3), "up after its maintenance ended");
        assert!(!v.takes(&3), "but takes nothing until made active");
        assert!(
            !v.counts(&4) && v.readable(&4),
            "draining: read, not counted"
        );
        assert!(!v.counts(&5) && !v.readable(&5), "removed");
        let blob = BlobId::of(b"x");
        assert_eq!(target(&blob, &[], &v), None, "no node takes copies");
    }
}
