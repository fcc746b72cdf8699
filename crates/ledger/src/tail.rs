//! Following the log: backlog from a sequence number, then live events, with
//! no gaps and no duplicates even when a subscriber lags.

use std::future::Future;
use std::sync::Arc;

use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::error::Result;
use crate::event::{Query, Record};
use crate::store::Ledger;

const PAGE: i64 = 1000;

/// Every event with `seq > after`, then every new one as it commits.
pub fn follow(ledger: Arc<dyn Ledger>, after: i64) -> impl Stream<Item = Result<Record>> {
    // Subscribe before reading the backlog so nothing commits unseen in between.
    let rx = ledger.subscribe();
    let read = move |last: i64| {
        let ledger = ledger.clone();
        async move {
            ledger
                .read(&Query {
                    after_seq: Some(last),
                    limit: Some(PAGE),
                    ..Query::default()
                })
                .await
        }
    };
    follow_with(rx, after, PAGE, read)
}

/// The store is read (`read(last)`, a page of at most `page` events after
/// `last`) only while the follower is behind: at the start, after a full
/// page, and when the live feed skips a number or lags. Once caught up,
/// contiguous live events are passed on as they come — reading the store
/// after each of them would cost every follower one query per event.
fn follow_with<R, F>(
    rx: broadcast::Receiver<Arc<Record>>,
    after: i64,
    page: i64,
    read: R,
) -> impl Stream<Item = Result<Record>>
where
    R: FnMut(i64) -> F,
    F: Future<Output = Result<Vec<Record>>>,
{
    let state = (read, rx, after, Vec::<Record>::new().into_iter(), true);
    stream::unfold(
        state,
        move |(mut read, mut rx, mut last, mut buf, mut behind)| async move {
            loop {
                if let Some(rec) = buf.next() {
                    last = rec.seq;
                    return Some((Ok(rec), (read, rx, last, buf, behind)));
                }
                if behind {
                    match read(last).await {
                        Ok(events) => {
                            // A short page reached the head as of the read; what
                            // commits after it arrives live (subscribed first).
                            behind = events.len() as i64 >= page;
                            if !events.is_empty() {
                                buf = events.into_iter();
                                continue;
                            }
                        }
                        Err(e) => return Some((Err(e), (read, rx, last, buf, behind))),
                    }
                }
                match rx.recv().await {
                    Ok(rec) if rec.seq <= last => {}
                    Ok(rec) if rec.seq == last + 1 => {
                        last = rec.seq;
                        let rec = Arc::unwrap_or_clone(rec);
                        return Some((Ok(rec), (read, rx, last, buf, behind)));
                    }
                    // A gap or a lag: catch up from the store.
                    Ok(_) | Err(RecvError::Lagged(_)) => behind = true,
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::StreamExt;
    use garrison_contracts::ironclaw::EventType;

    use super::*;

    fn record(seq: i64) -> Record {
        Record {
            seq,
            event_id: format!("e{seq}"),
            ts: "2026-01-01T00:00:00.000Z".into(),
            event_type: EventType::PatrolTick,
            garrison_id: "g".into(),
            theater_id: None,
            run_id: None,
            order_id: None,
            unit_id: None,
            payload: serde_json::Value::Null,
            stream: "s".into(),
            stream_version: seq,
        }
    }

    /// A store of records 1..=n and a count of the reads made of it.
    struct Store {
        head: Mutex<i64>,
        reads: AtomicUsize,
    }

    impl Store {
        fn read(&self, last: i64, page: i64) -> Vec<Record> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let head = *self.head.lock().unwrap();
            (last + 1..=head.min(last + page)).map(record).collect()
        }
        fn commit(&self, tx: &broadcast::Sender<Arc<Record>>, seq: i64, publish: bool) {
            *self.head.lock().unwrap() = seq;
            if publish {
                tx.send(Arc::new(record(seq))).unwrap();
            }
        }
    }

    #[tokio::test]
    async fn the_store_is_read_to_catch_up_and_never_per_live_event() {
        let store = Arc::new(Store {
            head: Mutex::new(5),
            reads: AtomicUsize::new(0),
        });
        let (tx, rx) = broadcast::channel(64);
        let s = store.clone();
        let read = move |last| {
            let s = s.clone();
            async move { Ok(s.read(last, 3)) }
        };
        let follower = follow_with(rx, 0, 3, read);
        tokio::pin!(follower);
        let reads = || store.reads.load(Ordering::SeqCst);

        // Backlog 1..=5 in pages of 3: a full page, then a short one.
        for want in 1..=5 {
            assert_eq!(next(&mut follower).await, want);
        }
        assert_eq!(reads(), 2);

        // Live and contiguous: no read at all.
        for seq in 6..=20 {
            store.commit(&tx, seq, true);
        }
        for want in 6..=20 {
            assert_eq!(next(&mut follower).await, want);
        }
        assert_eq!(reads(), 2);

        // 21 commits without a notice, 22 with one: the gap sends the
        // follower to the store, which has both.
        store.commit(&tx, 21, false);
        store.commit(&tx, 22, true);
        assert_eq!(next(&mut follower).await, 21);
        assert_eq!(next(&mut follower).await, 22);
        assert_eq!(reads(), 3);

        // Caught up again: live events flow without reads.
        store.commit(&tx, 23, true);
        assert_eq!(next(&mut follower).await, 23);
        assert_eq!(reads(), 3);
    }

    async fn next(follower: &mut (impl Stream<Item = Result<Record>> + Unpin)) -> i64 {
        let rec = tokio::time::timeout(std::time::Duration::from_secs(5), follower.next());
        rec.await.unwrap().unwrap().unwrap().seq
    }
}
