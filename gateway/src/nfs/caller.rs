//! Who is calling: the AUTH_SYS credential of the RPC being served.
//!
//! The NFS layer checks each call's credential with `authorize` and then,
//! in the same tokio task, calls the file system, which is not told the
//! caller. So `authorize` files the credential under the task's id, and the
//! file system looks it up there. Task ids are never reused while the
//! process runs; entries are dropped once old, so the table stays small.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longer than any one call takes.
const KEEP: Duration = Duration::from_secs(120);
/// Size at which old entries are dropped.
const PRUNE_AT: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
}

#[derive(Default)]
pub struct Callers {
    by_task: Mutex<HashMap<tokio::task::Id, (Caller, Instant)>>,
}

impl Callers {
    /// Files `caller` for the current task.
    pub fn set(&self, caller: Caller) {
        let Some(task) = tokio::task::try_id() else {
            return;
        };
        let mut map = self.by_task.lock().expect("callers lock");
        if map.len() >= PRUNE_AT {
            map.retain(|_, (_, at)| at.elapsed() < KEEP);
        }
        map.insert(task, (caller, Instant::now()));
    }

    /// The caller of the RPC the current task serves, if it sent AUTH_SYS.
    pub fn get(&self) -> Option<Caller> {
        let task = tokio::task::try_id()?;
        self.by_task
            .lock()
            .expect("callers lock")
            .get(&task)
            .map(|(c, _)| *c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn each_task_sees_its_own_caller() {
        let callers = Arc::new(Callers::default());
        let mut tasks = Vec::new();
        for uid in 0..50u32 {
            let callers = callers.clone();
            tasks.push(tokio::spawn(async move {
                callers.set(Caller { uid, gid: uid + 1 });
                tokio::task::yield_now().await;
                callers.get()
            }));
        }
        for (uid, t) in tasks.into_iter().enumerate() {
            let uid = uid as u32;
            assert_eq!(t.await.unwrap(), Some(Caller { uid, gid: uid + 1 }));
        }
        assert_eq!(callers.get(), None, "the test's own task never called");
    }
}
