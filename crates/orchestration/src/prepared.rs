//! What a claim needs to know about an order — its snapshot and its
//! ORDER_CREATED payload (the spec) — kept from when `advance` enqueued it,
//! so the claim need not read them back from the ledger.
//!
//! A claim uses only the snapshot's fields fixed at creation (ids,
//! objective, dependencies), so an entry never goes stale. A claim takes its
//! order's entry; a miss (a reissue, an order another node enqueued, an
//! entry dropped because the cache filled up) reads the ledger instead.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use garrison_ledger::OrderSnapshot;
use serde_json::Value;

/// Entries kept at most; past this the cache starts over (entries of orders
/// cancelled before their claim would otherwise stay forever).
const LIMIT: usize = 16_384;

#[derive(Default)]
pub(crate) struct Prepared {
    orders: Mutex<HashMap<String, (OrderSnapshot, Value)>>,
}

impl Prepared {
    pub(crate) fn put(&self, order: OrderSnapshot, spec: Value) {
        let mut orders = self.orders.lock().unwrap_or_else(PoisonError::into_inner);
        if orders.len() >= LIMIT {
            orders.clear();
        }
        orders.insert(order.order_id.clone(), (order, spec));
    }

    pub(crate) fn take(&self, order_id: &str) -> Option<(OrderSnapshot, Value)> {
        self.orders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(order_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_taken_once_and_the_cache_stays_bounded() {
        let p = Prepared::default();
        let snapshot = |id: &str| {
            serde_json::from_value::<OrderSnapshot>(serde_json::json!({
                "order_id": id, "run_id": "r", "garrison_id": "g", "theater_id": null,
                "status": "QUEUED", "objective": "o", "unit_id": null, "attempt": 1,
                "depends_on": [], "lock_scope": [], "worktree_path": null, "branch": null,
                "artifacts": [], "aar": null, "commit_sha": null, "reason": null,
                "last_event_type": "ORDER_CREATED", "created_seq": 1,
                "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z",
                "last_seq": 1
            }))
            .unwrap()
        };
        p.put(snapshot("a"), serde_json::json!({"n": 1}));
        assert_eq!(
            p.take("a").map(|(o, s)| (o.order_id, s)),
            Some(("a".into(), serde_json::json!({"n": 1})))
        );
        assert!(p.take("a").is_none(), "taken once");
        for i in 0..=LIMIT {
            p.put(snapshot(&format!("o{i}")), Value::Null);
        }
        assert!(p.orders.lock().unwrap().len() <= LIMIT);
    }
}
