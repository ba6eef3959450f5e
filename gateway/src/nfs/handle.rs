//! NFS file handles: an inode id and a MAC under the cluster secret.
//!
//! Inode ids are never reused, so a handle names one file forever: once the
//! file is gone the handle answers `NFS3ERR_STALE`. The MAC makes handles
//! unguessable (a client cannot forge one to reach outside its export) and
//! ties them to this cluster: another cluster's handle fails the check and
//! answers `NFS3ERR_BADHANDLE`. Nothing in a handle depends on the gateway
//! that minted it, so every gateway accepts it, before and after restarts.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The handle generation put before every handle on the wire (8 bytes,
/// little-endian), the same on every gateway of every cluster: cluster
/// identity is in the MAC.
pub const HANDLE_GENERATION: u64 = 1;

const MAC_LEN: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle {
    bytes: [u8; 8 + MAC_LEN],
}

impl Handle {
    pub fn inode_unchecked(&self) -> u64 {
        u64::from_be_bytes(self.bytes[..8].try_into().expect("8 bytes"))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(Self {
            bytes: bytes.try_into().ok()?,
        })
    }
}

/// Mints and checks handles with a key derived from the cluster secret.
#[derive(Clone)]
pub struct HandleKey {
    key: [u8; 32],
}

impl HandleKey {
    /// Keys differ per export root, so a handle minted for one export is
    /// refused by a gateway exporting another.
    pub fn new(secret: &troika_rpc::ClusterSecret, export_root: u64) -> Self {
        Self {
            key: secret.derive(&format!("nfs-file-handle/{export_root}")),
        }
    }

    fn mac(&self, inode: u64) -> [u8; MAC_LEN] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(&inode.to_be_bytes());
        let full = mac.finalize().into_bytes();
        full[..MAC_LEN].try_into().expect("MAC_LEN bytes")
    }

    pub fn handle(&self, inode: u64) -> Handle {
        let mut bytes = [0u8; 8 + MAC_LEN];
        bytes[..8].copy_from_slice(&inode.to_be_bytes());
        bytes[8..].copy_from_slice(&self.mac(inode));
        Handle { bytes }
    }

    /// The inode a handle names, if this cluster minted it.
    pub fn check(&self, h: &Handle) -> Option<u64> {
        let inode = h.inode_unchecked();
        let want = self.mac(inode);
        let ok: bool = subtle::ConstantTimeEq::ct_eq(&want[..], &h.bytes[8..]).into();
        ok.then_some(inode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use troika_rpc::ClusterSecret;

    #[test]
    fn handles_verify_only_under_their_own_cluster() {
        let secret = ClusterSecret::generate();
        let a = HandleKey::new(&secret, 1);
        let b = HandleKey::new(&ClusterSecret::generate(), 1);
        let other_export = HandleKey::new(&secret, 7);
        let h = a.handle(42);
        assert_eq!(a.check(&h), Some(42));
        assert_eq!(b.check(&h), None, "another cluster's handle");
        assert_eq!(other_export.check(&h), None, "another export's handle");
        let mut forged = h.as_bytes().to_vec();
        forged[7] = 43;
        let forged = Handle::from_bytes(&forged).unwrap();
        assert_eq!(a.check(&forged), None, "an inode id changed by hand");
        assert!(Handle::from_bytes(&[0; 8]).is_none(), "a short handle");
    }
}
