//! How Garrison's background services start and stop.
//!
//! Each domain crate turns its options into a service whose `start(signal)`
//! returns a [`Handle`] (Options → Service → Handle): the outbox
//! (`garrison-milestones`), the Appleseed feed (`garrison-appleseed`), the
//! worker pool, patrol clock and follower (`garrison-orchestration`), the
//! scheduler's firing loop (`garrison-scheduler`). Every service returns
//! once the [`Signal`] turns `true`.
//!
//! [`Services`] owns the signal and stops its handles in one order: every
//! [`Drain::Finish`] handle is awaited in start order (its last appends must
//! land before the ledger closes), then every [`Drain::Bounded`] one gets the
//! drain timeout (a worker finishing the attempt in hand) and is aborted
//! after it.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The shutdown signal a service watches: `true` once stopping began (a
/// dropped sender counts as stopping too).
pub type Signal = watch::Receiver<bool>;

/// How a service's task is waited for at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Awaited to its end: it stops promptly on the signal.
    Finish,
    /// Given the drain timeout, then aborted (a unit may still be running;
    /// its lease lapses into a reissue on the next start).
    Bounded,
}

/// One running service.
#[derive(Debug)]
pub struct Handle {
    name: &'static str,
    task: JoinHandle<()>,
    drain: Drain,
}

impl Handle {
    /// Starts a service whose failure is logged and never takes the rest of
    /// the process down with it.
    pub fn spawn<E: std::fmt::Display>(
        name: &'static str,
        drain: Drain,
        service: impl Future<Output = Result<(), E>> + Send + 'static,
    ) -> Handle {
        let task = tokio::spawn(async move {
            if let Err(e) = service.await {
                tracing::error!(service = name, error = %e, "background service failed");
            }
        });
        Handle { name, task, drain }
    }

    /// A service that cannot fail.
    pub fn spawn_infallible(
        name: &'static str,
        drain: Drain,
        service: impl Future<Output = ()> + Send + 'static,
    ) -> Handle {
        Handle {
            name,
            task: tokio::spawn(service),
            drain,
        }
    }

    /// A task already started on the signal.
    pub fn from_task(name: &'static str, drain: Drain, task: JoinHandle<()>) -> Handle {
        Handle { name, task, drain }
    }

    /// Waits for the service to end (after its signal turned `true`).
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(service = self.name, error = %e, "background service panicked");
        }
    }

    /// Waits up to `timeout`, then aborts the service.
    async fn join_within(mut self, timeout: Duration) {
        match tokio::time::timeout(timeout, &mut self.task).await {
            Ok(Err(e)) => {
                tracing::error!(service = self.name, error = %e, "background service panicked")
            }
            Ok(Ok(())) => {}
            Err(_) => {
                tracing::warn!(
                    service = self.name,
                    "a unit was still running at shutdown; its order will be reissued"
                );
                self.task.abort();
            }
        }
    }
}

/// The running background services of one process, and their signal.
#[derive(Debug)]
pub struct Services {
    down: watch::Sender<bool>,
    handles: Vec<Handle>,
}

impl Default for Services {
    fn default() -> Self {
        Self::new()
    }
}

impl Services {
    pub fn new() -> Self {
        let (down, _) = watch::channel(false);
        Services {
            down,
            handles: Vec::new(),
        }
    }

    /// The signal to start services with.
    pub fn signal(&self) -> Signal {
        self.down.subscribe()
    }

    /// What sends the signal, for whatever notices shutdown first (the HTTP
    /// server's graceful shutdown); sending it twice is harmless.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.down.clone()
    }

    pub fn add(&mut self, handle: Handle) {
        self.handles.push(handle);
    }

    /// Stops every service: signal, then the drain order in the crate docs.
    pub async fn stop(self, drain_timeout: Duration) {
        // Stored even while no service listens, for any that subscribe later.
        self.down.send_replace(true);
        let (finish, bounded): (Vec<Handle>, Vec<Handle>) = self
            .handles
            .into_iter()
            .partition(|h| h.drain == Drain::Finish);
        for h in finish {
            h.join().await;
        }
        for h in bounded {
            h.join_within(drain_timeout).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn finishing_services_end_before_stop_returns_and_stuck_ones_are_aborted() {
        let mut services = Services::new();
        let finished = Arc::new(AtomicBool::new(false));
        let (mut down, done) = (services.signal(), finished.clone());
        services.add(Handle::spawn("finishing", Drain::Finish, async move {
            let _ = down.wait_for(|d| *d).await;
            // Its last step comes after the signal, before stop returns.
            tokio::time::sleep(Duration::from_millis(20)).await;
            done.store(true, Ordering::SeqCst);
            Ok::<(), String>(())
        }));
        let stuck = Handle::spawn_infallible("stuck", Drain::Bounded, std::future::pending());
        let abort = stuck.task.abort_handle();
        services.add(stuck);
        services.stop(Duration::from_millis(50)).await;
        assert!(finished.load(Ordering::SeqCst));
        tokio::task::yield_now().await;
        assert!(abort.is_finished());
    }
}
