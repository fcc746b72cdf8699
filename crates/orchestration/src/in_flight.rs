//! One background task at a time, overlapping the caller's next step.
//!
//! A worker hands its finished attempt's report over and claims its next
//! order meanwhile; before handing over the next report it waits for the
//! previous one, so reports stay in order and never pile up.

use std::future::Future;

use tokio::task::{JoinError, JoinHandle};

/// Holds the task in flight, if any.
pub struct InFlight<T> {
    task: Option<JoinHandle<T>>,
}

impl<T> Default for InFlight<T> {
    fn default() -> Self {
        InFlight { task: None }
    }
}

impl<T: Send + 'static> InFlight<T> {
    /// Waits for the task in flight, then starts `next` in the background.
    /// Returns the previous task's outcome (`None` when there was none).
    pub async fn hand_over(
        &mut self,
        next: impl Future<Output = T> + Send + 'static,
    ) -> Option<Result<T, JoinError>> {
        let previous = self.finish().await;
        self.task = Some(tokio::spawn(next));
        previous
    }

    /// Waits for the task in flight, if any, and returns its outcome.
    pub async fn finish(&mut self) -> Option<Result<T, JoinError>> {
        match self.task.take() {
            Some(task) => Some(task.await),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn each_hand_over_waits_for_the_previous_task() {
        let done = Arc::new(AtomicUsize::new(0));
        let mut in_flight = InFlight::default();
        for n in 0..3 {
            let counter = done.clone();
            let previous = in_flight
                .hand_over(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    counter.fetch_add(1, Ordering::SeqCst);
                    n
                })
                .await;
            // The previous task has finished by the time the next one starts.
            assert_eq!(done.load(Ordering::SeqCst), n);
            assert_eq!(previous.map(|r| r.ok()), (n > 0).then(|| Some(n - 1)));
        }
        assert_eq!(in_flight.finish().await.and_then(|r| r.ok()), Some(2));
        assert_eq!(done.load(Ordering::SeqCst), 3);
        assert!(in_flight.finish().await.is_none());
    }
}
