//! The caller's side of a backend's writer thread: a command queue, a
//! request/reply helper, and an orderly stop. Shared by both backends, whose
//! writer threads differ only in how they receive.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use serde_json::Value;
use tokio::sync::oneshot;

use crate::error::{LedgerError, Result};

/// A channel sender the writer thread listens on.
pub(crate) trait Queue<C>: Send {
    /// Hands `cmd` over; an error means the writer has stopped.
    fn push(&self, cmd: C) -> std::result::Result<(), ()>;
}

impl<C: Send> Queue<C> for std::sync::mpsc::Sender<C> {
    fn push(&self, cmd: C) -> std::result::Result<(), ()> {
        self.send(cmd).map_err(|_| ())
    }
}

impl<C: Send> Queue<C> for tokio::sync::mpsc::UnboundedSender<C> {
    fn push(&self, cmd: C) -> std::result::Result<(), ()> {
        self.send(cmd).map_err(|_| ())
    }
}

/// The mutexes only guard taking the sender and the join handle; whether
/// the writer is alive is told by the channel (a failed push, a dropped
/// reply), never by lock poisoning, so a poisoned lock is recovered.
pub(crate) struct WriterHandle<Q> {
    queue: Mutex<Option<Q>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<Q> WriterHandle<Q> {
    pub(crate) fn new(queue: Q, thread: JoinHandle<()>) -> Self {
        WriterHandle {
            queue: Mutex::new(Some(queue)),
            thread: Mutex::new(Some(thread)),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Option<Q>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take_thread(&self) -> Option<JoinHandle<()>> {
        self.thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Sends the command `make` builds around a reply channel, and waits for the reply.
    pub(crate) async fn request<C, T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> C,
    ) -> Result<T>
    where
        Q: Queue<C>,
    {
        let (reply, rx) = oneshot::channel();
        {
            let guard = self.queue();
            let queue = guard.as_ref().ok_or(LedgerError::Closed)?;
            queue.push(make(reply)).map_err(|_| LedgerError::Closed)?;
        }
        rx.await.map_err(|_| LedgerError::Closed)?
    }

    /// Closes the queue, which lets the writer drain it and exit, and waits
    /// for the thread. Later requests fail with `Closed`.
    pub(crate) async fn stop(&self) -> Result<()> {
        drop(self.queue().take());
        if let Some(t) = self.take_thread() {
            tokio::task::spawn_blocking(move || t.join())
                .await
                .map_err(|e| LedgerError::Storage(format!("writer join failed: {e}")))?
                .map_err(|_| LedgerError::Storage("the writer thread panicked".into()))?;
        }
        Ok(())
    }

    /// `stop` for `Drop`: no runtime needed, errors ignored.
    pub(crate) fn stop_blocking(&self) {
        drop(self.queue().take());
        if let Some(t) = self.take_thread() {
            let _ = t.join();
        }
    }
}

/// Dead-letter entries as stored (JSON text) back into values.
pub(crate) fn parse_entries(raw: &[String]) -> Result<Vec<Value>> {
    Ok(raw
        .iter()
        .map(|e| serde_json::from_str(e))
        .collect::<std::result::Result<_, _>>()?)
}
