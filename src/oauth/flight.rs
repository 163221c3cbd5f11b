//! Single flight: concurrent callers asking for the same key share one
//! computation instead of each running their own.
//!
//! Right after a start or a client change, every concurrent first request
//! of a client misses the cache at once; without this, each would read the
//! store and run its own argon2 verification (and be charged for it by the
//! throttles). With it, one runs and the others wait for its result. When
//! the one running is cancelled (its caller hung up) or fails, the next
//! waiter runs in its place; errors are never shared, since they belong to
//! the caller who met them (a throttled address, say).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// Computations in flight, by key.
pub struct SingleFlight<K, V> {
    inflight: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        SingleFlight {
            inflight: Mutex::new(HashMap::new()),
        }
    }
}

impl<K, V> std::fmt::Debug for SingleFlight<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleFlight").finish_non_exhaustive()
    }
}

/// Forgets the key's cell once it is settled or nobody waits on it any more.
struct Leave<'a, K: Hash + Eq, V> {
    flight: &'a SingleFlight<K, V>,
    key: &'a K,
    cell: &'a Arc<OnceCell<V>>,
}

impl<K: Hash + Eq, V> Drop for Leave<'_, K, V> {
    fn drop(&mut self) {
        let mut map = self
            .flight
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(current) = map.get(self.key) {
            // Clones are only made under this lock, so a count of two (the
            // map's and ours) means no one else waits on this cell.
            if Arc::ptr_eq(current, self.cell)
                && (self.cell.initialized() || Arc::strong_count(self.cell) <= 2)
            {
                map.remove(self.key);
            }
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> SingleFlight<K, V> {
    /// Runs `init` for `key` unless a run for it is already in flight, in
    /// which case this waits for that run's value.
    pub async fn run<E, F, Fut>(&self, key: &K, init: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let cell = self
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let _leave = Leave {
            flight: self,
            key,
            cell: &cell,
        };
        cell.get_or_try_init(init).await.cloned()
    }

    /// Keys in flight now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Whether nothing is in flight.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let flight = Arc::new(SingleFlight::<u8, u32>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (flight, runs) = (flight.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                flight
                    .run(&1, || async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, ()>(7)
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(7));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(flight.is_empty());
    }

    #[tokio::test]
    async fn a_cancelled_runner_hands_over_to_a_waiter() {
        let flight = Arc::new(SingleFlight::<u8, u32>::default());
        let first = {
            let flight = flight.clone();
            tokio::spawn(async move {
                flight
                    .run(&1, || async {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        Ok::<_, ()>(1)
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = {
            let flight = flight.clone();
            tokio::spawn(async move { flight.run(&1, || async { Ok::<_, ()>(2) }).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        first.abort();
        assert_eq!(second.await.unwrap(), Ok(2));
        assert!(flight.is_empty());
    }

    #[tokio::test]
    async fn errors_are_not_shared() {
        let flight = SingleFlight::<u8, u32>::default();
        assert_eq!(flight.run(&1, || async { Err("no") }).await, Err("no"));
        assert_eq!(flight.run(&1, || async { Ok::<_, &str>(3) }).await, Ok(3));
        assert!(flight.is_empty());
    }
}
