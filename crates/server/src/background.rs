//! The background services a node runs beside its HTTP surface (workers,
//! follower, outbox, Appleseed feed, the scheduler's firing loop): started
//! with one shutdown signal, stopped in one place.
//!
//! Each service is one task that returns when the signal turns `true`. On
//! stop, every [`Drain::Finish`] task is awaited in start order (they append
//! their last steps, which must land before the ledger closes), then every
//! [`Drain::Bounded`] task gets the drain timeout (a worker finishing the
//! attempt in hand) and is aborted after it.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a service's task is waited for at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drain {
    /// Awaited to its end: it stops promptly on the signal.
    Finish,
    /// Given the drain timeout, then aborted (a unit may still be running;
    /// its lease lapses into a reissue on the next start).
    Bounded,
}

struct Task {
    name: &'static str,
    handle: JoinHandle<()>,
    drain: Drain,
}

/// The running background services of one node.
pub(crate) struct Background {
    down: watch::Sender<bool>,
    tasks: Vec<Task>,
}

impl Background {
    pub fn new() -> Self {
        let (down, _) = watch::channel(false);
        Background {
            down,
            tasks: Vec::new(),
        }
    }

    /// The shutdown signal services watch: `true` once stopping began.
    pub fn signal(&self) -> watch::Receiver<bool> {
        self.down.subscribe()
    }

    /// Starts a service whose failure is logged and never takes the API
    /// down with it.
    pub fn spawn<E: std::fmt::Display>(
        &mut self,
        name: &'static str,
        drain: Drain,
        service: impl Future<Output = Result<(), E>> + Send + 'static,
    ) {
        let handle = tokio::spawn(async move {
            if let Err(e) = service.await {
                tracing::error!(service = name, error = %e, "background service failed");
            }
        });
        self.adopt(name, drain, handle);
    }

    /// Takes a task a domain crate started on the same signal.
    pub fn adopt(&mut self, name: &'static str, drain: Drain, handle: JoinHandle<()>) {
        self.tasks.push(Task {
            name,
            handle,
            drain,
        });
    }

    /// What sends the shutdown signal, for the HTTP server's graceful
    /// shutdown (sending it twice is harmless).
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.down.clone()
    }

    fn begin_stop(&self) {
        // Stored even while no service listens, for any that subscribe later.
        self.down.send_replace(true);
    }

    /// Stops every service: signal, then the drain order in the module docs.
    pub async fn stop(self, drain_timeout: Duration) {
        self.begin_stop();
        let (finish, bounded): (Vec<Task>, Vec<Task>) = self
            .tasks
            .into_iter()
            .partition(|t| t.drain == Drain::Finish);
        for t in finish {
            if let Err(e) = t.handle.await {
                tracing::error!(service = t.name, error = %e, "background service panicked");
            }
        }
        for mut t in bounded {
            match tokio::time::timeout(drain_timeout, &mut t.handle).await {
                Ok(Err(e)) => {
                    tracing::error!(service = t.name, error = %e, "background service panicked")
                }
                Ok(Ok(())) => {}
                Err(_) => {
                    tracing::warn!(
                        service = t.name,
                        "a unit was still running at shutdown; its order will be reissued"
                    );
                    t.handle.abort();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn finishing_services_end_before_stop_returns_and_stuck_ones_are_aborted() {
        let mut bg = Background::new();
        let finished = Arc::new(AtomicBool::new(false));
        let (mut down, done) = (bg.signal(), finished.clone());
        bg.spawn("finishing", Drain::Finish, async move {
            let _ = down.wait_for(|d| *d).await;
            // Its last step comes after the signal, before stop returns.
            tokio::time::sleep(Duration::from_millis(20)).await;
            done.store(true, Ordering::SeqCst);
            Ok::<(), String>(())
        });
        let stuck = tokio::spawn(std::future::pending::<()>());
        let abort = stuck.abort_handle();
        bg.adopt("stuck", Drain::Bounded, stuck);
        bg.stop(Duration::from_millis(50)).await;
        assert!(finished.load(Ordering::SeqCst));
        tokio::task::yield_now().await;
        assert!(abort.is_finished());
    }
}
