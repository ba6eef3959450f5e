//! Meta nodes served by this process, by the address they advertise. A
//! client in the same process (the all-in-one server's gateway and storage
//! nodes) calls such a node directly: no HTTP, no JSON, no MAC, since
//! nothing crosses a process boundary. Leadership, redirects and retries
//! work as over the network.

use troika_rpc::local::Registry;

use crate::server::Shared;

pub(crate) static NODES: Registry<Shared> = Registry::new();
