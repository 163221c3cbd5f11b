//! A fixed pool of threads for argon2id verifications, fed by a bounded
//! queue that serves client addresses round-robin (SPEC §9).
//!
//! - Fixed threads: each verification needs a work area of m KiB (7 MiB;
//!   19 MiB for hashes made with ficha's former setting). On tokio's
//!   blocking pool, successive verifications landed on ever new threads and
//!   glibc kept a freed block in each thread's arena (past 130 MiB in a
//!   warm-up); a fixed set of threads bounds it to one block per thread, and
//!   is the concurrency bound.
//! - Bounded queue: a flood cannot pile up work without limit; when it is
//!   full the caller is told at once ([`PoolError::Full`]) and answers 503.
//! - Round-robin by address: one address's burst delays another address's
//!   job by about one job per thread, not by the whole burst.
//! - Cancellation: a caller that goes away takes its job out of the queue,
//!   so hung-up requests leave no argon2 work behind.
//! - Lower priority: the hashing threads run at nice 9, so on a small
//!   machine the runtime serving cached clients gets the CPU first (about
//!   7:1 when both want it) and a flood of hashing cannot stall them; cold
//!   verifications still progress under full load.
//! - Work areas given back: a thread whose queue stays empty for
//!   [`IDLE_RELEASE`] frees its argon2 work area, so that a server past its
//!   warm-up does not hold one per thread for good (`oauth::secret`).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// How long a hashing thread waits without work before it frees its work
/// area: long enough that a burst of cold requests (a restart, a warm-up)
/// reuses one area throughout, short enough that the steady state that
/// follows holds none.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(2);

/// Why a job could not be run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    /// The queue holds its maximum of jobs.
    #[error("the hashing queue is full")]
    Full,
    /// The pool has stopped.
    #[error("the hashing pool has stopped")]
    Stopped,
}

#[derive(Default)]
struct Queue {
    by_address: HashMap<IpAddr, VecDeque<(u64, Job)>>,
    /// Addresses with queued jobs, in serving order.
    ring: VecDeque<IpAddr>,
    len: usize,
    peak: usize,
    next_id: u64,
    stopped: bool,
}

impl Queue {
    fn pop(&mut self) -> Option<Job> {
        let address = self.ring.pop_front()?;
        let jobs = self.by_address.get_mut(&address)?;
        let (_, job) = jobs.pop_front()?;
        if jobs.is_empty() {
            self.by_address.remove(&address);
        } else {
            self.ring.push_back(address);
        }
        self.len -= 1;
        Some(job)
    }

    fn cancel(&mut self, address: IpAddr, id: u64) {
        let Some(jobs) = self.by_address.get_mut(&address) else {
            return;
        };
        if let Some(at) = jobs.iter().position(|(j, _)| *j == id) {
            jobs.remove(at);
            self.len -= 1;
            if jobs.is_empty() {
                self.by_address.remove(&address);
                self.ring.retain(|a| *a != address);
            }
        }
    }
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    capacity: usize,
    idle_release: std::time::Duration,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pool; dropping it stops its threads once they finish their job.
pub struct HashPool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.ready.notify_all();
    }
}

/// Takes a queued job back out if its caller stops waiting.
struct Ticket<'a> {
    shared: &'a Shared,
    address: IpAddr,
    id: u64,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.shared.lock().cancel(self.address, self.id);
    }
}

impl HashPool {
    /// Starts `threads` workers behind a queue of at most `capacity` jobs.
    pub fn new(threads: usize, capacity: usize) -> std::io::Result<Self> {
        Self::with_idle_release(threads, capacity, IDLE_RELEASE)
    }

    fn with_idle_release(
        threads: usize,
        capacity: usize,
        idle_release: std::time::Duration,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            idle_release,
        });
        for i in 0..threads.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("ficha-argon2-{i}"))
                .spawn(move || {
                    lower_priority();
                    worker(&shared)
                })?;
        }
        Ok(HashPool { shared })
    }

    /// Queues `f` on behalf of `address` and awaits its result. Dropping
    /// the returned future before the job starts removes it from the queue.
    pub async fn run<T: Send + 'static>(
        &self,
        address: IpAddr,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        let id = {
            let mut guard = self.shared.lock();
            let q = &mut *guard;
            if q.stopped {
                return Err(PoolError::Stopped);
            }
            if q.len >= self.shared.capacity {
                return Err(PoolError::Full);
            }
            let id = q.next_id;
            q.next_id += 1;
            let jobs = q.by_address.entry(address).or_default();
            if jobs.is_empty() {
                q.ring.push_back(address);
            }
            jobs.push_back((id, job));
            q.len += 1;
            q.peak = q.peak.max(q.len);
            id
        };
        self.shared.ready.notify_one();
        let _ticket = Ticket {
            shared: &self.shared,
            address,
            id,
        };
        rx.await.map_err(|_| PoolError::Stopped)
    }

    /// Jobs waiting now.
    pub fn queued(&self) -> usize {
        self.shared.lock().len
    }

    /// The most jobs ever waiting at once.
    pub fn peak(&self) -> usize {
        self.shared.lock().peak
    }
}

/// The thread's CPU priority, on the portable 0-99 scale: 25 is nice 9 on
/// Linux (see the module documentation). Best effort: a platform that
/// refuses keeps the default.
const HASH_THREAD_PRIORITY: u8 = 25;

fn lower_priority() {
    if let Ok(p) = thread_priority::ThreadPriorityValue::try_from(HASH_THREAD_PRIORITY) {
        if let Err(e) = thread_priority::set_current_thread_priority(
            thread_priority::ThreadPriority::Crossplatform(p),
        ) {
            tracing::debug!(error = ?e, "could not lower the hashing threads' priority");
        }
    }
}

fn worker(shared: &Shared) {
    // Whether this thread may hold a work area (it has run a job since it
    // last freed one).
    let mut holding = false;
    loop {
        let job = {
            let mut q = shared.lock();
            loop {
                if q.stopped {
                    return;
                }
                if let Some(job) = q.pop() {
                    break job;
                }
                if holding {
                    let (guard, waited) = shared
                        .ready
                        .wait_timeout(q, shared.idle_release)
                        .unwrap_or_else(|e| e.into_inner());
                    q = guard;
                    if waited.timed_out() && q.len == 0 {
                        drop(q);
                        super::secret::release_work_area();
                        holding = false;
                        q = shared.lock();
                    }
                } else {
                    q = shared.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            }
        };
        holding = true;
        job();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));

    /// A pool whose single thread is held until the returned sender fires.
    async fn blocked_pool(capacity: usize) -> (Arc<HashPool>, std::sync::mpsc::Sender<()>) {
        let pool = Arc::new(HashPool::new(1, capacity).unwrap());
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let p = pool.clone();
        tokio::spawn(async move {
            p.run(A, move || {
                let _ = started_tx.send(());
                let _ = wait.recv();
            })
            .await
        });
        started.await.unwrap();
        (pool, release)
    }

    #[tokio::test]
    async fn jobs_run_on_the_pool_threads() {
        let pool = HashPool::new(2, 8).unwrap();
        let name = pool
            .run(A, || std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("ficha-argon2-"));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_a_lower_priority() {
        let pool = HashPool::new(1, 8).unwrap();
        let stat = pool
            .run(A, || {
                std::fs::read_to_string("/proc/thread-self/stat").unwrap()
            })
            .await
            .unwrap();
        // Field 19 is the nice value; the command name (field 2) has no
        // spaces here ("ficha-argon2-0").
        let nice: i32 = stat.split_whitespace().nth(18).unwrap().parse().unwrap();
        assert_eq!(nice, 9, "{stat}");
    }

    #[tokio::test]
    async fn an_idle_thread_frees_its_work_area() {
        let pool = HashPool::with_idle_release(1, 8, Duration::from_millis(100)).unwrap();
        let phc = crate::oauth::hash_secret(&"s3cret".to_owned().into()).unwrap();
        let blocks = pool
            .run(A, move || {
                crate::oauth::verify_secret(&phc, &"s3cret".to_owned().into());
                crate::oauth::secret::work_area_blocks()
            })
            .await
            .unwrap();
        assert_eq!(blocks, crate::oauth::ARGON2_M_COST as usize);
        // Back to back, the next job finds the area still there...
        let kept = pool
            .run(A, crate::oauth::secret::work_area_blocks)
            .await
            .unwrap();
        assert_eq!(kept, blocks);
        // ...and after the idle period it is gone.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let after = pool
            .run(A, crate::oauth::secret::work_area_blocks)
            .await
            .unwrap();
        assert_eq!(after, 0);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let (pool, release) = blocked_pool(2).await;
        let queued: Vec<_> = (0..2)
            .map(|_| {
                let p = pool.clone();
                tokio::spawn(async move { p.run(A, || ()).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.queued(), 2);
        assert_eq!(pool.run(B, || ()).await, Err(PoolError::Full));
        release.send(()).unwrap();
        for q in queued {
            assert_eq!(q.await.unwrap(), Ok(()));
        }
        assert_eq!(pool.peak(), 2);
    }

    #[tokio::test]
    async fn a_cancelled_job_leaves_the_queue_and_never_runs() {
        let (pool, release) = blocked_pool(8).await;
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let p = pool.clone();
        let waiting = tokio::spawn(async move {
            p.run(A, move || {
                r.fetch_add(1, Ordering::SeqCst);
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.queued(), 1);
        waiting.abort();
        let _ = waiting.await;
        assert_eq!(pool.queued(), 0);
        release.send(()).unwrap();
        pool.run(B, || ()).await.unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn addresses_are_served_round_robin() {
        let (pool, release) = blocked_pool(64).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // A burst of ten from A, then one from B: B's job runs second, not
        // eleventh.
        for (i, address) in std::iter::repeat_n(A, 10).chain([B]).enumerate() {
            let (p, order) = (pool.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                p.run(address, move || {
                    order.lock().unwrap().push((i, address));
                })
                .await
            }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        release.send(()).unwrap();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let order = order.lock().unwrap();
        assert_eq!(order.len(), 11);
        assert_eq!(order[1], (10, B), "{order:?}");
    }
}
