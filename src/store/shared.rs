//! `SharedStore`: the synchronous [`Store`] behind an async handle that many tasks
//! can share.
//!
//! The store is `Send` but not `Sync`, and its calls block (a large `apply` or
//! `load_events` takes seconds). So the store lives in a `std::sync::Mutex`, and
//! every call runs on tokio's blocking pool (`spawn_blocking`), never on an async
//! worker thread. A call, once started, always runs to completion: dropping the
//! future that awaits it does not stop the blocking task, so shutdown never leaves
//! half a transaction behind (and SQLite would roll one back anyway).
//!
//! It adds no caching and no logic: each method is one store call.

use super::{Store, StoreError};
use std::sync::{Arc, Mutex, PoisonError};

/// A [`Store`] shared between the sync tasks; cheap to clone.
#[derive(Clone)]
pub struct SharedStore {
    inner: Arc<Mutex<Box<dyn Store>>>,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore").finish_non_exhaustive()
    }
}

impl SharedStore {
    /// Shares `store`.
    pub fn new(store: impl Store + 'static) -> Self {
        SharedStore {
            inner: Arc::new(Mutex::new(Box::new(store))),
        }
    }

    /// Shares a store that is already boxed (as [`open`](super::open) gives it).
    pub fn from_box(store: Box<dyn Store>) -> Self {
        SharedStore {
            inner: Arc::new(Mutex::new(store)),
        }
    }

    /// Runs `call` with the store on the blocking pool and returns its result.
    pub async fn call<T: Send + 'static>(
        &self,
        call: impl FnOnce(&mut dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        let task = tokio::task::spawn_blocking(move || {
            // A panic inside a store call cannot leave the store half-written (each
            // call is one transaction), so a poisoned lock is still usable.
            let mut store = inner.lock().unwrap_or_else(PoisonError::into_inner);
            call(store.as_mut())
        });
        match task.await {
            Ok(result) => result,
            Err(error) => Err(StoreError::Task(error.to_string())),
        }
    }
}
