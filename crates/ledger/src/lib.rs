//! The ledger: append-only events, idempotency, compare-and-append, subscriptions and inline projections.
