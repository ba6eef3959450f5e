//! Meta nodes served by this process, by the address they advertise. A
//! client in the same process (the all-in-one server's gateway and storage
//! nodes) calls such a node directly: no HTTP, no JSON, no MAC, since
//! nothing crosses a process boundary. Leadership, redirects and retries
//! work as over the network.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use crate::server::Shared;

static NODES: LazyLock<Mutex<HashMap<String, Weak<Shared>>>> = LazyLock::new(Default::default);

/// Keeps a node findable until dropped.
pub(crate) struct Registration(String);

impl Drop for Registration {
    fn drop(&mut self) {
        NODES.lock().expect("local nodes lock").remove(&self.0);
    }
}

pub(crate) fn register(addr: &str, node: &Arc<Shared>) -> Registration {
    NODES
        .lock()
        .expect("local nodes lock")
        .insert(addr.to_string(), Arc::downgrade(node));
    Registration(addr.to_string())
}

/// The node serving `addr` in this process, if any.
pub(crate) fn find(addr: &str) -> Option<Arc<Shared>> {
    NODES
        .lock()
        .expect("local nodes lock")
        .get(addr)
        .and_then(Weak::upgrade)
}
