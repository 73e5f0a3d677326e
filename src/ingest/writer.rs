//! The push API's one writer: takes the requests that handlers hand it, keeps
//! every request that waits at that moment in ONE store transaction (a group
//! commit: one fsync for many pushes, not one each), then answers each handler.
//! A handler answers `202` only after its answer came, so every `202` is durable.
//!
//! It owns its own store connection, so pushes never wait behind a sync's
//! reads of the shared one. It does not validate (the handler did) and knows no
//! HTTP.

use crate::domain::batch::{PushRequest, PushVerdict};
use crate::store::SharedStore;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

/// Requests waiting for the writer at most; a handler waits for room beyond.
pub const QUEUE_CAPACITY: usize = 4_096;

/// The most requests kept in one transaction (and so answered together).
pub const MAX_REQUESTS_PER_COMMIT: usize = 512;

/// The most items kept in one transaction: a group stops growing past it, so a
/// commit of many full requests stays short.
pub const MAX_ITEMS_PER_COMMIT: usize = 20_000;

/// Why a request was not kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The store failed (the text names the file and operation, no secret).
    #[error("the store could not keep the items: {0}")]
    Store(String),
    /// The writer has stopped (shutdown).
    #[error("the collector is shutting down")]
    Stopped,
}

struct Job {
    request: PushRequest,
    reply: oneshot::Sender<Result<PushVerdict, WriteError>>,
}

/// What has changed since the last look: new data (recompute the metrics) or
/// only push counters (re-render them). Set by the push API, taken by the
/// daemon's publisher, which waits for [`Changes::changed`].
#[derive(Debug, Default)]
pub struct Changes {
    data: AtomicBool,
    counters: AtomicBool,
    notify: Notify,
}

impl Changes {
    /// New events are in the store.
    pub fn data_changed(&self) {
        self.data.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// A push counter moved.
    pub fn counters_changed(&self) {
        self.counters.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// Waits until something changed since the last [`Changes::take`].
    pub async fn changed(&self) {
        self.notify.notified().await;
    }

    /// What changed, `(data, counters)`, clearing both.
    pub fn take(&self) -> (bool, bool) {
        (
            self.data.swap(false, Ordering::AcqRel),
            self.counters.swap(false, Ordering::AcqRel),
        )
    }
}

/// The handlers' side of the writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer on `store` (its own connection); it stops once every
    /// [`Writer`] is dropped and the queue is empty.
    pub fn spawn(store: SharedStore, changes: Arc<Changes>) -> (Writer, JoinHandle<()>) {
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        let task = tokio::spawn(run(queue, store, changes));
        (Writer { jobs }, task)
    }

    /// Keeps `request` (whole or not at all) and returns once it is durable.
    pub async fn write(&self, request: PushRequest) -> Result<PushVerdict, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { request, reply })
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer.await.unwrap_or(Err(WriteError::Stopped))
    }
}

async fn run(mut queue: mpsc::Receiver<Job>, store: SharedStore, changes: Arc<Changes>) {
    while let Some(first) = queue.recv().await {
        let mut items = first.request.items.len();
        let mut jobs = vec![first];
        while jobs.len() < MAX_REQUESTS_PER_COMMIT && items < MAX_ITEMS_PER_COMMIT {
            match queue.try_recv() {
                Ok(job) => {
                    items += job.request.items.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let (requests, replies): (Vec<PushRequest>, Vec<_>) =
            jobs.into_iter().map(|job| (job.request, job.reply)).unzip();
        let result = store.call(move |store| store.push(&requests)).await;
        match result {
            Ok(verdicts) => {
                let wrote = verdicts.iter().any(|verdict| {
                    matches!(verdict, PushVerdict::Stored { inserted, updated, .. }
                        if inserted + updated > 0)
                });
                if wrote {
                    changes.data_changed();
                }
                for (reply, verdict) in replies.into_iter().zip(verdicts) {
                    // A handler that went away (client disconnected) is fine:
                    // its items are kept all the same.
                    let _ = reply.send(Ok(verdict));
                }
            }
            Err(error) => {
                tracing::error!(%error, requests = replies.len(), "cannot keep pushed items");
                let error = WriteError::Store(error.to_string());
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}
