//! Leader leases: a linearizable read without a round to the followers on
//! every query.
//!
//! A ReadIndex round (`ensure_linearizable`) sends a heartbeat to every
//! follower and waits for a quorum; on a 3-node group that is most of a
//! point read's cost. Once a round that started at `t0` succeeds, a quorum
//! has heard from this leader at or after `t0`, and each of those followers
//! refuses to vote for anyone else until its own lease (openraft's
//! `leader_lease`, the election timeout maximum) has run from that moment.
//! No other leader can be elected, and so no write can be acknowledged
//! elsewhere, before `t0 + election_timeout_max`. Until `t0 + LEASE`, well
//! inside that (a margin for clock rates and scheduling), this node answers
//! reads from its own state machine: everything it acknowledged is applied
//! (a write is answered after its apply), and the round itself waited for
//! everything committed before it, the previous leaders' writes included.
//!
//! The lease is tied to the term it was confirmed in and dropped as soon
//! as this node is not leader of that term.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use openraft::ServerState;

use crate::raft::Raft;

/// How long a confirmed leadership serves reads without another round:
/// less than the election timeout minimum (600 ms), itself half the
/// followers' lease.
pub const LEASE: Duration = Duration::from_millis(400);

#[derive(Default)]
pub struct Lease {
    /// The term leadership was confirmed in, and until when reads may
    /// rely on it.
    held: Mutex<Option<(u64, Instant)>>,
}

/// This node's term, if it leads in it.
fn leading_term(raft: &Raft) -> Option<u64> {
    let m = raft.metrics();
    let m = m.borrow();
    (m.state == ServerState::Leader).then_some(m.current_term)
}

impl Lease {
    /// Whether reads may be answered locally now, without a round.
    pub fn valid(&self, raft: &Raft) -> bool {
        let Some((term, until)) = *self.held.lock().expect("lease lock") else {
            return false;
        };
        Instant::now() < until && leading_term(raft) == Some(term)
    }

    /// The term this node leads in, read before a round starts at the
    /// returned instant; pass both to [`Self::confirmed`] once the round
    /// succeeds.
    pub fn start(&self, raft: &Raft) -> (Option<u64>, Instant) {
        (leading_term(raft), Instant::now())
    }

    /// Records a successful round that started at `t0` in `term`, if this
    /// node still leads in that term.
    pub fn confirmed(&self, raft: &Raft, (term, t0): (Option<u64>, Instant)) {
        let Some(term) = term else { return };
        if leading_term(raft) != Some(term) {
            return;
        }
        let mut held = self.held.lock().expect("lease lock");
        let until = t0 + LEASE;
        if held.is_none_or(|(t, u)| t != term || u < until) {
            *held = Some((term, until));
        }
    }
}
