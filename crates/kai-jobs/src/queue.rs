//! Enqueueing, with a nudge to this process's idle workers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use kai_core::JobId;
use kai_store::{NewJob, Store, StoreError};
use tokio::sync::Notify;

/// Puts jobs on the durable queue. Cheap to clone: clones share the store and the wake-ups.
///
/// A job enqueued here wakes this process's idle workers of its kind at once; one enqueued by
/// another process (or straight through the [`Store`]) is found at their next poll.
#[derive(Debug, Clone)]
pub struct Queue {
    store: Store,
    /// Per kind, the wake-up of each running dispatcher; weak, so that a stopped one's goes
    /// with it.
    wakers: Arc<Mutex<HashMap<String, Vec<Weak<Notify>>>>>,
    /// The wake-up of each running scheduler, for schedules added or enabled here.
    schedulers: Arc<Mutex<Vec<Weak<Notify>>>>,
}

impl Queue {
    /// A queue on `store`.
    #[must_use]
    pub fn new(store: Store) -> Queue {
        Queue {
            store,
            wakers: Arc::default(),
            schedulers: Arc::default(),
        }
    }

    /// The database.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Enqueues `job` and returns its id (with a dedupe key already taken, the id of the job
    /// that took it), then wakes this process's workers of its kind.
    pub async fn enqueue(&self, job: &NewJob) -> Result<JobId, StoreError> {
        let id = self.store.enqueue_job(job).await?;
        self.wake(&job.kind);
        Ok(id)
    }

    /// Wakes this process's idle workers of `kind`: a job of that kind was just enqueued.
    pub(crate) fn wake(&self, kind: &str) {
        let wakers: Vec<Arc<Notify>> = {
            let mut all = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
            all.get_mut(kind).map_or_else(Vec::new, |wakers| {
                wakers.retain(|waker| waker.strong_count() > 0);
                wakers.iter().filter_map(Weak::upgrade).collect()
            })
        };
        // `notify_one` keeps the wake-up for a dispatcher that is busy leasing right now, so
        // a job that lands just after its lease found nothing is not left to the next poll.
        for waker in wakers {
            waker.notify_one();
        }
    }

    /// Wakes this process's schedulers: a schedule was added or enabled, and may fire before
    /// the time they sleep until.
    pub(crate) fn wake_schedulers(&self) {
        let wakers: Vec<Arc<Notify>> = {
            let mut all = self
                .schedulers
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            all.retain(|waker| waker.strong_count() > 0);
            all.iter().filter_map(Weak::upgrade).collect()
        };
        for waker in wakers {
            waker.notify_one();
        }
    }

    /// Registers a scheduler to be woken by [`Queue::wake_schedulers`].
    pub(crate) fn subscribe_scheduler(&self) -> Arc<Notify> {
        let waker = Arc::new(Notify::new());
        let mut all = self
            .schedulers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        all.retain(|waker| waker.strong_count() > 0);
        all.push(Arc::downgrade(&waker));
        waker
    }

    /// Registers a dispatcher of `kind` to be woken by [`Queue::enqueue`].
    pub(crate) fn subscribe(&self, kind: &str) -> Arc<Notify> {
        let waker = Arc::new(Notify::new());
        let mut all = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        let wakers = all.entry(kind.to_owned()).or_default();
        wakers.retain(|waker| waker.strong_count() > 0);
        wakers.push(Arc::downgrade(&waker));
        waker
    }
}
