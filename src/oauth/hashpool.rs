//! A fixed pool of threads for argon2id verifications.
//!
//! Each verification needs a work area of m KiB (7 MiB; 19 MiB for hashes
//! made with ficha's former setting). On tokio's blocking pool, successive
//! verifications land on ever new threads, and glibc keeps a freed block of
//! that size in each thread's arena: the resident size grew past 130 MiB in
//! a benchmark warm-up. A fixed set of threads bounds it to
//! one block per thread, and doubles as the concurrency bound.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// The pool; dropping it lets its threads finish their queue and exit.
#[derive(Debug)]
pub struct HashPool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl HashPool {
    /// Starts `threads` worker threads.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("ficha-argon2-{i}"))
                .spawn(move || loop {
                    let job = {
                        let guard = rx.lock().unwrap_or_else(|e| e.into_inner());
                        guard.recv()
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => break,
                    }
                })?;
        }
        Ok(HashPool {
            jobs: Mutex::new(tx),
        })
    }

    /// Runs `f` on a pool thread and awaits its result.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .map_err(|_| anyhow::anyhow!("the hashing pool has stopped"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("a hashing job was dropped"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_pool_threads() {
        let pool = HashPool::new(2).unwrap();
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("ficha-argon2-"));
    }
}
