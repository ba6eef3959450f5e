//! Meta nodes served by this process, by the address they advertise. A
//! client in the same process (the all-in-one server's gateway and storage
//! nodes) calls such a node directly: no HTTP, no JSON, no MAC, since
//! nothing crosses a process boundary. Leadership, redirects and retries
//! work as over the network.

use std::sync::Arc;

use troika_rpc::local::{Registration, Registry};

use crate::server::Shared;

static NODES: Registry<Shared> = Registry::new();

pub(crate) fn register(addr: &str, node: &Arc<Shared>) -> Registration<Shared> {
    NODES.register(addr, node)
}

/// The node serving `addr` in this process, if any.
pub(crate) fn find(addr: &str) -> Option<Arc<Shared>> {
    NODES.find(addr)
}
