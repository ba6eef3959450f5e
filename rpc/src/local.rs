//! Services of this process, by the address they advertise: a client in
//! the same process (the all-in-one server) finds the service it would
//! call over HTTP and calls it directly, since nothing crosses a process
//! boundary. Each service kind keeps its own [`Registry`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

pub struct Registry<T> {
    nodes: Mutex<BTreeMap<String, Weak<T>>>,
}

impl<T> Registry<T> {
    pub const fn new() -> Self {
        Self {
            nodes: Mutex::new(BTreeMap::new()),
        }
    }

    /// Makes `node` findable at `addr` until the registration is dropped.
    pub fn register(&'static self, addr: &str, node: &Arc<T>) -> Registration<T> {
        self.lock().insert(addr.to_string(), Arc::downgrade(node));
        Registration {
            registry: self,
            addr: addr.to_string(),
        }
    }

    /// The service at `addr` in this process, if any.
    pub fn find(&self, addr: &str) -> Option<Arc<T>> {
        self.lock().get(addr).and_then(Weak::upgrade)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Weak<T>>> {
        self.nodes.lock().expect("local services lock")
    }
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Keeps a service findable until dropped.
pub struct Registration<T: 'static> {
    registry: &'static Registry<T>,
    addr: String,
}

impl<T> Drop for Registration<T> {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.addr);
    }
}
