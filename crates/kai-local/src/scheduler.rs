//! The compute thread that runs every chat generation.
//!
//! One thread owns all generations in progress. Up to `max_concurrent` of them are running;
//! the thread gives each a turn in order (a chunk of its prompt, or one token of its answer)
//! so they all move at once. Later requests wait in order of arrival. A generation whose
//! client went away (its stream was dropped) is dropped at its next turn, or before it starts.
//! Each turn's arithmetic runs on the shared rayon pool (`threads` threads), which is where
//! candle's CPU kernels split their work.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};

use kai_models::{ErrorKind, ProviderError};
use rayon::ThreadPool;

use crate::chat::Generation;

/// How busy the runtime is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeLoad {
    /// Generations taking turns now.
    pub running: usize,
    /// Generations waiting for a place.
    pub waiting: usize,
}

#[derive(Default)]
struct Counters {
    running: AtomicUsize,
    waiting: AtomicUsize,
}

/// The handle to the compute thread; the thread ends when the handle is dropped and the
/// generations it holds are done.
pub(crate) struct Scheduler {
    jobs: Sender<Generation>,
    counters: Arc<Counters>,
}

impl Scheduler {
    /// Starts the compute thread.
    pub(crate) fn start(pool: Arc<ThreadPool>, max_concurrent: usize) -> std::io::Result<Self> {
        let (jobs, receiver) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let shared = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("kai-local-scheduler".to_owned())
            .spawn(move || run(&receiver, &pool, max_concurrent.max(1), &shared))?;
        Ok(Scheduler { jobs, counters })
    }

    /// Queues a generation; it starts when a place is free.
    pub(crate) fn submit(&self, generation: Generation) -> Result<(), ProviderError> {
        self.jobs.send(generation).map_err(|_| {
            ProviderError::new(
                ErrorKind::Server,
                "the local model runtime has stopped; restart kai",
            )
        })
    }

    /// How many generations are running and waiting.
    pub(crate) fn load(&self) -> RuntimeLoad {
        RuntimeLoad {
            running: self.counters.running.load(Ordering::SeqCst),
            waiting: self.counters.waiting.load(Ordering::SeqCst),
        }
    }
}

fn run(jobs: &Receiver<Generation>, pool: &ThreadPool, max_concurrent: usize, counters: &Counters) {
    let mut waiting: VecDeque<Generation> = VecDeque::new();
    let mut running: Vec<Generation> = Vec::new();
    let publish = |running: &[Generation], waiting: &VecDeque<Generation>| {
        counters.running.store(running.len(), Ordering::SeqCst);
        counters.waiting.store(waiting.len(), Ordering::SeqCst);
    };
    loop {
        if running.is_empty() && waiting.is_empty() {
            match jobs.recv() {
                Ok(generation) => waiting.push_back(generation),
                Err(_) => return,
            }
        }
        while let Ok(generation) = jobs.try_recv() {
            waiting.push_back(generation);
        }
        waiting.retain(|generation| !generation.is_cancelled());
        while running.len() < max_concurrent
            && let Some(generation) = waiting.pop_front()
        {
            running.push(generation);
        }
        publish(&running, &waiting);
        running.retain_mut(|generation| {
            if generation.is_cancelled() {
                return false;
            }
            // A panic in a kernel ends this generation with an error, not the thread.
            match catch_unwind(AssertUnwindSafe(|| pool.install(|| generation.step()))) {
                Ok(more) => more,
                Err(_) => {
                    generation.fail("the local model's computation panicked");
                    false
                }
            }
        });
        publish(&running, &waiting);
    }
}
