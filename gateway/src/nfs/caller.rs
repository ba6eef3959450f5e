//! Who is calling: the AUTH_SYS credential of the RPC being served.
//!
//! The dispatcher decodes it from each call's header and passes it to the
//! file system as an argument, so a call's identity lives exactly as long
//! as the call and costs nothing to look up.

/// An AUTH_SYS identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub gids: Vec<u32>,
}

/// The identity of calls sent with AUTH_NULL (no credential).
pub const NOBODY: u32 = 65534;

impl Caller {
    pub fn anonymous() -> Self {
        Self {
            uid: NOBODY,
            gid: NOBODY,
            gids: Vec::new(),
        }
    }
}
