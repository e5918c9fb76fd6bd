//! A fixed set of threads for blocking NVML reads.
//!
//! tokio's blocking pool grows a thread per concurrent call and lets idle
//! ones die after 10 s, so with a 15 s scrape interval every scrape would
//! create fresh threads, and each thread that ever ran a read keeps a malloc
//! arena (about 100 KiB of RSS). A few long-lived threads bound both.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The threads and their job queue.
pub struct Pool {
    queue: Sender<Job>,
}

/// Stack size of a reader thread; NVML reads need little.
const STACK: usize = 256 * 1024;

impl Pool {
    /// Starts `threads` threads named `name-N`.
    pub fn new(threads: usize, name: &str) -> std::io::Result<Pool> {
        let (queue, jobs) = channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads.max(1) {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .stack_size(STACK)
                .spawn(move || work(&jobs))?;
        }
        Ok(Pool { queue })
    }

    /// Runs `f` on a pool thread. The receiver yields `Err` if `f` panicked.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> oneshot::Receiver<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            if let Ok(v) = catch_unwind(AssertUnwindSafe(f)) {
                let _ = tx.send(v);
            }
        });
        // The threads only exit when the pool is dropped, so sending fails
        // only then; the dropped job makes the receiver answer Err.
        let _ = self.queue.send(job);
        rx
    }
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let queue = jobs.lock().unwrap_or_else(|e| e.into_inner());
            queue.recv()
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_survives_panics() {
        let pool = Pool::new(2, "t").unwrap();
        let bad = pool.run(|| -> u32 { panic!("boom") });
        assert!(bad.await.is_err());
        let results: Vec<_> = (0..10u32).map(|i| pool.run(move || i * 2)).collect();
        let mut sum = 0;
        for r in results {
            sum += r.await.unwrap();
        }
        assert_eq!(sum, 90);
    }
}
