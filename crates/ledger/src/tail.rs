//! Following the log: backlog from a sequence number, then live events, with
//! no gaps and no duplicates even when a subscriber lags.

use std::sync::Arc;

use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use crate::error::Result;
use crate::event::{Query, Record};
use crate::store::Ledger;

const PAGE: i64 = 1000;

/// Every event with `seq > after`, then every new one as it commits.
pub fn follow(ledger: Arc<dyn Ledger>, after: i64) -> impl Stream<Item = Result<Record>> {
    // Subscribe before reading the backlog so nothing commits unseen in between.
    let rx = ledger.subscribe();
    let state = (ledger, rx, after, Vec::<Record>::new().into_iter());
    stream::unfold(state, |(ledger, mut rx, mut last, mut buf)| async move {
        loop {
            if let Some(rec) = buf.next() {
                last = rec.seq;
                return Some((Ok(rec), (ledger, rx, last, buf)));
            }
            // Drain whatever the store has past `last` before waiting.
            let q = Query {
                after_seq: Some(last),
                limit: Some(PAGE),
                ..Query::default()
            };
            match ledger.read(&q).await {
                Ok(page) if !page.is_empty() => {
                    buf = page.into_iter();
                    continue;
                }
                Ok(_) => {}
                Err(e) => return Some((Err(e), (ledger, rx, last, buf))),
            }
            loop {
                match rx.recv().await {
                    Ok(rec) if rec.seq <= last => continue,
                    Ok(rec) if rec.seq == last + 1 => {
                        last = rec.seq;
                        let rec = Arc::unwrap_or_clone(rec);
                        return Some((Ok(rec), (ledger, rx, last, buf)));
                    }
                    // A gap or a lag: fall back to reading the store.
                    Ok(_) | Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    })
}
