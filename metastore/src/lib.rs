//! The metadata service: namespace, extent maps, blob registry, storage
//! node registry, buckets and access keys.
//!
//! Every mutation is a [`api::Command`] applied by [`state::apply`] inside
//! one redb write transaction, committed with immediate durability (fsynced)
//! before the reply. `apply` is deterministic: it reads no clock and no
//! randomness (times and ids travel inside the command), so the same log of
//! commands gives the same tables on every replica.
//!
//! - [`api`]: commands, queries and replies: the wire types.
//! - [`state`]: the tables and the pure apply/query functions.
//! - [`store`]: the redb database and its durability; [`db`]: opening it,
//!   and its durable (quick-repair) transactions.
//! - [`server`] / [`client`]: the HTTP/2 service and its client; `local`:
//!   nodes of this process, which the client calls directly; [`lease`]:
//!   the leader's read lease.

pub mod api;
pub mod client;
pub mod db;
pub mod error;
pub mod lease;
mod local;
mod metrics;
pub mod raft;
pub mod server;
pub mod state;
pub mod store;

pub use client::MetaClient;
pub use error::Error;
