//! The gateway's view of the storage nodes (refreshed from the metastore)
//! and the placement decision: which nodes get a new blob's copies.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use metastore::api::{NodeId, NodeInfo};
use metastore::MetaClient;
use rand::Rng;

/// How often the gateway refreshes its node list.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone, Default)]
pub struct Cluster {
    nodes: Arc<RwLock<Vec<NodeInfo>>>,
}

impl Cluster {
    /// Keeps the node list fresh in the background.
    pub fn spawn_refresh(&self, meta: MetaClient) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.refresh(&meta).await {
                    tracing::debug!(error = %e, "node list refresh failed");
                }
                tokio::time::sleep(REFRESH_INTERVAL).await;
            }
        })
    }

    pub async fn refresh(&self, meta: &MetaClient) -> Result<(), metastore::Error> {
        let nodes = meta.list_nodes().await?;
        *self.nodes.write().expect("node list lock") = nodes;
        Ok(())
    }

    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes.read().expect("node list lock").clone()
    }

    pub fn addrs(&self) -> HashMap<NodeId, String> {
        self.nodes
            .read()
            .expect("node list lock")
            .iter()
            .map(|n| (n.id, n.addr.clone()))
            .collect()
    }

    /// Nodes that may take new copies (up and active).
    pub fn writable_count(&self) -> usize {
        self.nodes
            .read()
            .expect("node list lock")
            .iter()
            .filter(|n| n.writable())
            .count()
    }
}

/// Orders the writable nodes (up, active: not in maintenance, draining or
/// removed) with room for `bytes` more as candidates for a new blob: the
/// first `copies` are the targets, the rest are fallbacks, tried in order if
/// a target fails. Distinct zones come first, and within that choice nodes
/// are drawn at random weighted by free space, so load spreads and fuller
/// nodes fill more slowly.
///
/// A node whose capacity is not known yet (a new metadata leader has not
/// heard its heartbeat) is a candidate, weighted like the emptiest node.
pub fn place(nodes: &[NodeInfo], copies: usize, bytes: u64, rng: &mut impl Rng) -> Vec<NodeInfo> {
    let known = |n: &NodeInfo| n.capacity_bytes > 0;
    let default_weight = nodes
        .iter()
        .filter(|n| known(n))
        .map(|n| n.free_bytes)
        .max()
        .unwrap_or(1)
        .max(1);
    let weight = |n: &NodeInfo| {
        if known(n) {
            n.free_bytes as f64
        } else {
            default_weight as f64
        }
    };
    let mut pool: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| n.writable() && (n.free_bytes > bytes || !known(n)))
        .collect();
    let mut out: Vec<NodeInfo> = Vec::with_capacity(pool.len());
    while !pool.is_empty() {
        // Prefer nodes in zones not yet used, while targets remain to choose.
        let fresh: Vec<usize> = (0..pool.len())
            .filter(|&i| out.len() >= copies || !out.iter().any(|o| o.zone == pool[i].zone))
            .collect();
        let choices = if fresh.is_empty() {
            (0..pool.len()).collect()
        } else {
            fresh
        };
        let total: f64 = choices.iter().map(|&i| weight(pool[i])).sum();
        let mut pick = rng.gen::<f64>() * total;
        let mut chosen = choices[choices.len() - 1];
        for &i in &choices {
            pick -= weight(pool[i]);
            if pick <= 0.0 {
                chosen = i;
                break;
            }
        }
        out.push(pool.swap_remove(chosen).clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn node(id: u64, zone: &str, free: u64, alive: bool) -> NodeInfo {
        NodeInfo {
            id,
            addr: format!("n{id}"),
            zone: zone.into(),
            alive,
            capacity_bytes: 100,
            free_bytes: free,
            ..Default::default()
        }
    }

    #[test]
    fn distinct_zones_first_and_dead_nodes_never() {
        let nodes = vec![
            node(1, "a", 50, true),
            node(2, "a", 50, true),
            node(3, "b", 50, true),
            node(4, "c", 50, true),
            node(5, "d", 50, false),
            node(6, "e", 0, true),
            NodeInfo {
                mode: metastore::api::NodeMode::Draining,
                ..node(7, "f", 50, true)
            },
            NodeInfo {
                mode: metastore::api::NodeMode::Maintenance { until: u64::MAX },
                ..node(8, "g", 50, true)
            },
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let p = place(&nodes, 3, 0, &mut rng);
            let ids: Vec<u64> = p.iter().map(|n| n.id).collect();
            assert_eq!(ids.len(), 4, "only live, active nodes with space: {ids:?}");
            let zones: std::collections::HashSet<_> = p[..3].iter().map(|n| &n.zone).collect();
            assert_eq!(zones.len(), 3, "targets span three zones: {ids:?}");
            assert!(!ids.contains(&5) && !ids.contains(&6));
            assert!(
                !ids.contains(&7) && !ids.contains(&8),
                "draining, maintenance"
            );
        }
    }

    #[test]
    fn nodes_without_a_report_yet_are_candidates() {
        let mut fresh = node(1, "a", 0, true);
        fresh.capacity_bytes = 0;
        let nodes = vec![fresh, node(2, "b", 50, true), node(3, "c", 0, true)];
        let p = place(&nodes, 3, 0, &mut rand::rngs::StdRng::seed_from_u64(3));
        let ids: Vec<u64> = p.iter().map(|n| n.id).collect();
        assert_eq!(ids.len(), 2, "the full node is left out: {ids:?}");
        assert!(ids.contains(&1));
    }

    #[test]
    fn free_space_weights_the_draw() {
        let nodes = vec![node(1, "a", 900, true), node(2, "b", 100, true)];
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let first_is_1 = (0..1000)
            .filter(|_| place(&nodes, 1, 0, &mut rng)[0].id == 1)
            .count();
        assert!((800..=980).contains(&first_is_1), "{first_is_1}");
    }
}
