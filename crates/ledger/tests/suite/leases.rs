//! The lease store, declared once and run per backend: claims and their
//! leases commit together, only the holder appends, a lapsed lease is
//! reaped once, and (PostgreSQL) every node sees the same leases.

use std::sync::Arc;
use std::time::Duration;

use garrison_contracts::ironclaw::EventType;
use garrison_ledger::{Grant, LeaseOp, Ledger, LedgerError, NewEvent, Query};
use serde_json::json;

use super::common::Backend;

crate::conformance!(
    a_claim_and_its_lease_commit_together,
    concurrent_claims_grant_one_lease,
    only_the_holder_appends_and_ends,
    lapsed_leases_are_reaped_once_unless_renewed,
    grants_refuse_conflicting_locks_in_a_theater,
    adopted_and_dropped_leases,
    leases_are_shared_between_nodes,
);

fn ev(t: EventType, order: &str) -> NewEvent {
    NewEvent::new(t).theater("demo").run("r").order(order)
}

fn grant(order: &str, unit: &str, locks: &[&str], ttl_ms: u64) -> Grant {
    Grant {
        order_id: order.into(),
        token: format!("{order}:{unit}:1"),
        unit_id: unit.into(),
        attempt: 1,
        theater_id: Some("demo".into()),
        lock_scope: locks.iter().map(|s| s.to_string()).collect(),
        ttl: Duration::from_millis(ttl_ms),
    }
}

/// A run with `orders` created and enqueued (each order stream at version 2).
async fn enqueued(l: &Arc<dyn Ledger>, orders: &[&str]) {
    l.append(
        NewEvent::new(EventType::RunCreated)
            .theater("demo")
            .run("r")
            .payload(json!({"objective": "o"})),
    )
    .await
    .unwrap();
    for o in orders {
        l.append_batch(vec![
            ev(EventType::OrderCreated, o),
            ev(EventType::OrderEnqueued, o),
        ])
        .await
        .unwrap();
    }
}

async fn claim(l: &Arc<dyn Ledger>, g: Grant, version: i64) -> Result<i64, LedgerError> {
    let order = g.order_id.clone();
    let unit = g.unit_id.clone();
    let out = l
        .append_leased(
            vec![
                ev(EventType::OrderClaimed, &order)
                    .unit(&unit)
                    .expect_version(version),
            ],
            LeaseOp::Grant(g),
        )
        .await?;
    Ok(out[0].record.stream_version)
}

async fn a_claim_and_its_lease_commit_together(b: &Backend) {
    let l = b.open().await;
    enqueued(&l, &["o1"]).await;
    assert!(l.lease("o1").await.unwrap().is_none());
    // A stale version: nothing is appended and no lease is written.
    let stale = claim(&l, grant("o1", "u1", &[], 30_000), 1).await;
    assert!(matches!(
        stale,
        Err(LedgerError::ConcurrencyConflict { .. })
    ));
    assert!(l.lease("o1").await.unwrap().is_none());
    assert_eq!(
        claim(&l, grant("o1", "u1", &[], 30_000), 2).await.unwrap(),
        3
    );
    let lease = l.lease("o1").await.unwrap().unwrap();
    assert_eq!(lease.token, "o1:u1:1");
    assert_eq!(lease.unit_id, "u1");
    assert_eq!(lease.version, 3);
    assert!(!lease.lapsed() && lease.remaining_ms <= 30_000);
    let all = l.leases(false).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!((&all[0].token, all[0].version), (&lease.token, 3));
    assert!(l.leases(true).await.unwrap().is_empty());
    // The holder's own appends move the lease's version.
    l.append_leased(
        vec![ev(EventType::OrderStarted, "o1").expect_version(3)],
        LeaseOp::Hold {
            order_id: "o1".into(),
            token: lease.token.clone(),
        },
    )
    .await
    .unwrap();
    assert_eq!(l.lease("o1").await.unwrap().unwrap().version, 4);
    l.close().await.unwrap();
}

async fn concurrent_claims_grant_one_lease(b: &Backend) {
    let l = b.open().await;
    enqueued(&l, &["o1"]).await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let l = l.clone();
            tokio::spawn(
                async move { claim(&l, grant("o1", &format!("u{i}"), &[], 30_000), 2).await },
            )
        })
        .collect();
    let mut won = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(_) => won.push(i),
            Err(LedgerError::ConcurrencyConflict { .. } | LedgerError::LeaseConflict(_)) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one claim wins");
    let lease = l.lease("o1").await.unwrap().unwrap();
    assert_eq!(
        lease.unit_id,
        format!("u{}", won[0]),
        "the winner holds the lease"
    );
    let claims = l
        .read(&Query {
            event_type: Some(EventType::OrderClaimed),
            ..Query::default()
        })
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    // A second grant on a leased order fails on the lease even at the right version.
    let again = claim(&l, grant("o1", "late", &[], 30_000), 3).await;
    assert!(
        matches!(again, Err(LedgerError::LeaseConflict(_))),
        "{again:?}"
    );
    l.close().await.unwrap();
}

async fn only_the_holder_appends_and_ends(b: &Backend) {
    let l = b.open().await;
    enqueued(&l, &["o1"]).await;
    claim(&l, grant("o1", "u1", &[], 30_000), 2).await.unwrap();
    let head = l.head().await.unwrap();
    let forged = l
        .append_leased(
            vec![ev(EventType::OrderCompleted, "o1").expect_version(3)],
            LeaseOp::End {
                order_id: "o1".into(),
                token: "o1:u2:1".into(),
            },
        )
        .await;
    assert!(
        matches!(forged, Err(LedgerError::LeaseConflict(_))),
        "{forged:?}"
    );
    assert_eq!(
        l.head().await.unwrap(),
        head,
        "a refused lease check appends nothing"
    );
    assert!(
        !l.renew_lease("o1", "o1:u2:1", Duration::from_secs(1))
            .await
            .unwrap()
    );
    assert!(
        l.renew_lease("o1", "o1:u1:1", Duration::from_secs(60))
            .await
            .unwrap()
    );
    // A batch the ledger refuses leaves the lease as it was.
    let refused = l
        .append_leased(
            vec![ev(EventType::OrderCompleted, "o1").expect_version(2)],
            LeaseOp::End {
                order_id: "o1".into(),
                token: "o1:u1:1".into(),
            },
        )
        .await;
    assert!(matches!(
        refused,
        Err(LedgerError::ConcurrencyConflict { .. })
    ));
    assert!(l.lease("o1").await.unwrap().is_some());
    l.append_leased(
        vec![ev(EventType::OrderCompleted, "o1").expect_version(3)],
        LeaseOp::End {
            order_id: "o1".into(),
            token: "o1:u1:1".into(),
        },
    )
    .await
    .unwrap();
    assert!(
        l.lease("o1").await.unwrap().is_none(),
        "the report ended the lease"
    );
    assert!(
        !l.renew_lease("o1", "o1:u1:1", Duration::from_secs(1))
            .await
            .unwrap()
    );
    assert!(!l.lapse_lease("o1", "o1:u1:1").await.unwrap());
    l.close().await.unwrap();
}

async fn lapsed_leases_are_reaped_once_unless_renewed(b: &Backend) {
    let l = b.open().await;
    enqueued(&l, &["o1", "o2"]).await;
    claim(&l, grant("o1", "u1", &[], 0), 2).await.unwrap();
    claim(&l, grant("o2", "u2", &[], 60_000), 2).await.unwrap();
    let lapsed = l.leases(true).await.unwrap();
    assert_eq!(lapsed.len(), 1);
    assert_eq!(lapsed[0].order_id, "o1");
    assert!(lapsed[0].lapsed());
    let reap = |order: &str, token: &str, version: i64| {
        let l = l.clone();
        let (order, token) = (order.to_string(), token.to_string());
        async move {
            l.append_leased(
                vec![
                    ev(EventType::OrderBlocked, &order)
                        .payload(json!({"code": "TASK_TIMEOUT"}))
                        .expect_version(version),
                    ev(EventType::OrderReissued, &order).payload(json!({"attempt": 2})),
                ],
                LeaseOp::Reap {
                    order_id: order,
                    token,
                },
            )
            .await
        }
    };
    // A live lease is not reaped.
    assert!(matches!(
        reap("o2", "o2:u2:1", 3).await,
        Err(LedgerError::LeaseConflict(_))
    ));
    // A renewal revives a lapsed lease before any reaper ends it.
    assert!(
        l.renew_lease("o1", "o1:u1:1", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(l.leases(true).await.unwrap().is_empty());
    assert!(reap("o1", "o1:u1:1", 3).await.is_err());
    // Lapsed again (the unit died): two reapers race, one wins.
    assert!(l.lapse_lease("o1", "o1:u1:1").await.unwrap());
    let (a, b2) = tokio::join!(reap("o1", "o1:u1:1", 3), reap("o1", "o1:u1:1", 3));
    assert_eq!(usize::from(a.is_ok()) + usize::from(b2.is_ok()), 1);
    assert!(l.lease("o1").await.unwrap().is_none());
    let reissued = l
        .read(&Query {
            event_type: Some(EventType::OrderReissued),
            ..Query::default()
        })
        .await
        .unwrap();
    assert_eq!(reissued.len(), 1);
    l.close().await.unwrap();
}

async fn grants_refuse_conflicting_locks_in_a_theater(b: &Backend) {
    let l = b.open().await;
    enqueued(&l, &["a", "b", "c"]).await;
    claim(&l, grant("a", "u1", &["src"], 30_000), 2)
        .await
        .unwrap();
    let b1 = claim(&l, grant("b", "u2", &["src/api.py"], 30_000), 2).await;
    assert!(matches!(b1, Err(LedgerError::LockConflict(_))), "{b1:?}");
    assert_eq!(b1.unwrap_err().code(), "LOCK_CONFLICT");
    assert!(l.lease("b").await.unwrap().is_none());
    claim(&l, grant("c", "u3", &["docs"], 30_000), 2)
        .await
        .unwrap();
    l.append_leased(
        vec![ev(EventType::OrderCompleted, "a").expect_version(3)],
        LeaseOp::End {
            order_id: "a".into(),
            token: "a:u1:1".into(),
        },
    )
    .await
    .unwrap();
    claim(&l, grant("b", "u2", &["src/api.py"], 30_000), 2)
        .await
        .unwrap();
    l.close().await.unwrap();
}

async fn adopted_and_dropped_leases(b: &Backend) {
    let l = b.open().await;
    enqueued(&l, &["o1"]).await;
    assert!(
        l.adopt_lease(grant("o1", "u1", &[], 30_000), 2)
            .await
            .unwrap()
    );
    assert!(
        !l.adopt_lease(grant("o1", "u9", &[], 30_000), 2)
            .await
            .unwrap()
    );
    assert_eq!(l.lease("o1").await.unwrap().unwrap().unit_id, "u1");
    assert!(!l.drop_lease("o1", "o1:u9:1").await.unwrap());
    assert!(l.drop_lease("o1", "o1:u1:1").await.unwrap());
    assert!(l.lease("o1").await.unwrap().is_none());
    l.close().await.unwrap();
}

async fn leases_are_shared_between_nodes(b: &Backend) {
    if matches!(b, Backend::Sqlite { .. }) {
        // One process owns an embedded ledger: there is no second node.
        return;
    }
    let a = b.open().await;
    let n2 = b.open().await;
    enqueued(&a, &["o1"]).await;
    claim(&a, grant("o1", "u1", &[], 30_000), 2).await.unwrap();
    // The other node sees the lease, takes the heartbeat, refuses a second claim.
    let seen = n2.lease("o1").await.unwrap().unwrap();
    assert_eq!(seen.token, "o1:u1:1");
    assert!(
        n2.renew_lease("o1", "o1:u1:1", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(claim(&n2, grant("o1", "u2", &[], 30_000), 3).await.is_err());
    // And ends it with the holder's report.
    n2.append_leased(
        vec![ev(EventType::OrderCompleted, "o1").expect_version(seen.version)],
        LeaseOp::End {
            order_id: "o1".into(),
            token: seen.token,
        },
    )
    .await
    .unwrap();
    assert!(a.lease("o1").await.unwrap().is_none());
    a.close().await.unwrap();
    n2.close().await.unwrap();
}
