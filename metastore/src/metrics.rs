//! `GET /metrics` on a meta node: the storage layer's health in the
//! Prometheus text format. The leader reports the cluster (nodes, blobs
//! per health class, backlogs); every meta node reports its Raft role.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, GaugeVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::api::{Activity, BlobCount};
use crate::server::{cluster_status, Shared};

fn gauge_vec(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    reg.register(Box::new(g.clone())).expect("unique metric");
    g
}

pub(crate) async fn render(State(s): State<Arc<Shared>>) -> Response {
    let reg = Registry::new();
    let leader = IntGauge::new("troika_meta_leader", "1 on the metadata leader").expect("metric");
    reg.register(Box::new(leader.clone()))
        .expect("unique metric");
    let scans = prometheus::IntCounter::new(
        "troika_meta_blob_scans_total",
        "Reads of the whole blobs table (repair work, trims, census) by this node",
    )
    .expect("metric");
    reg.register(Box::new(scans.clone()))
        .expect("unique metric");
    scans.inc_by(s.scans.count.load(std::sync::atomic::Ordering::Relaxed));
    let served = prometheus::IntCounterVec::new(
        Opts::new(
            "troika_meta_requests_total",
            "Commands and queries this meta node was asked to serve",
        ),
        &["kind"],
    )
    .expect("metric");
    reg.register(Box::new(served.clone()))
        .expect("unique metric");
    for (kind, n) in [
        ("command", &s.served.commands),
        ("query", &s.served.queries),
    ] {
        served
            .with_label_values(&[kind])
            .inc_by(n.load(std::sync::atomic::Ordering::Relaxed));
    }
    for (name, help, n) in [
        (
            "troika_meta_log_syncs_total",
            "Group commits of the Raft log (one fdatasync each) since this node started",
            &s.log_stats.syncs,
        ),
        (
            "troika_meta_log_bytes_total",
            "Bytes written to the Raft log since this node started",
            &s.log_stats.bytes,
        ),
    ] {
        let c = prometheus::IntCounter::new(name, help).expect("metric");
        reg.register(Box::new(c.clone())).expect("unique metric");
        c.inc_by(n.load(std::sync::atomic::Ordering::Relaxed));
    }
    if s.is_leader() {
        leader.set(1);
        if let Ok(st) = cluster_status(&s).await {
            let up = gauge_vec(
                &reg,
                "troika_node_up",
                "1 while the storage node heartbeats",
                &["node", "zone", "state"],
            );
            let bytes = gauge_vec(
                &reg,
                "troika_node_bytes",
                "Storage node capacity, used and placed bytes",
                &["node", "kind"],
            );
            let fill = GaugeVec::new(
                Opts::new(
                    "troika_node_fill_ratio",
                    "Used share of the node's capacity",
                ),
                &["node"],
            )
            .expect("metric");
            reg.register(Box::new(fill.clone())).expect("unique metric");
            let scrub = gauge_vec(
                &reg,
                "troika_node_scrub",
                "Scrub passes done and bad copies found",
                &["node", "kind"],
            );
            for n in &st.nodes {
                let id = n.id.to_string();
                up.with_label_values(&[id.as_str(), &n.zone, &n.state])
                    .set(n.alive as i64);
                for (kind, v) in [
                    ("capacity", n.capacity_bytes),
                    ("used", n.used_bytes),
                    ("free", n.free_bytes),
                    ("placed", n.placed.bytes),
                ] {
                    bytes.with_label_values(&[id.as_str(), kind]).set(v as i64);
                }
                fill.with_label_values(&[id.as_str()]).set(n.fill());
                scrub
                    .with_label_values(&[id.as_str(), "passes"])
                    .set(n.scrub.passes as i64);
                scrub
                    .with_label_values(&[id.as_str(), "bad_found"])
                    .set(n.scrub.bad_found as i64);
            }
            let blobs = gauge_vec(
                &reg,
                "troika_blobs",
                "Referenced blobs by health class",
                &["class"],
            );
            let blob_bytes = gauge_vec(
                &reg,
                "troika_blob_bytes",
                "Bytes of referenced blobs by health class",
                &["class"],
            );
            let h = &st.health;
            let classes: [(&str, BlobCount); 5] = [
                ("ok", h.ok),
                ("over_goal", h.over_goal),
                ("under_goal", h.under_goal),
                ("one_copy", h.one_copy),
                ("lost", h.lost),
            ];
            for (class, c) in classes {
                blobs.with_label_values(&[class]).set(c.blobs as i64);
                blob_bytes.with_label_values(&[class]).set(c.bytes as i64);
            }
            let backlog = gauge_vec(
                &reg,
                "troika_backlog_bytes",
                "Bytes left to copy or check",
                &["activity"],
            );
            let rate = gauge_vec(
                &reg,
                "troika_rate_bytes_per_second",
                "Recent pace of each background activity",
                &["activity"],
            );
            let acts: [(&str, &Activity); 4] = [
                ("repair", &st.repair),
                ("rebalance", &st.rebalance),
                ("drain", &st.drain),
                ("scrub", &st.scrub),
            ];
            for (name, a) in acts {
                backlog
                    .with_label_values(&[name])
                    .set(a.pending_bytes as i64);
                rate.with_label_values(&[name]).set(a.bytes_per_s as i64);
            }
        }
    }
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&reg.gather(), &mut out) {
        return (http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    (
        [(
            http::header::CONTENT_TYPE,
            TextEncoder::new().format_type().to_string(),
        )],
        out,
    )
        .into_response()
}
