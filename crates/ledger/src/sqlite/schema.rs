//! SQLite migrations, applied in order inside one transaction each.

pub(super) const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY,
    event_id       TEXT    NOT NULL UNIQUE,
    ts             TEXT    NOT NULL,
    type           TEXT    NOT NULL,
    garrison_id    TEXT    NOT NULL,
    theater_id     TEXT,
    run_id         TEXT,
    order_id       TEXT,
    unit_id        TEXT,
    payload        TEXT    NOT NULL,
    stream         TEXT    NOT NULL,
    stream_version INTEGER NOT NULL,
    UNIQUE (stream, stream_version)
);
CREATE INDEX events_by_run   ON events (run_id, seq)   WHERE run_id IS NOT NULL;
CREATE INDEX events_by_order ON events (order_id, seq) WHERE order_id IS NOT NULL;
CREATE INDEX events_by_type  ON events (type, seq);
CREATE TABLE run_snapshots (
    run_id TEXT PRIMARY KEY,
    data   TEXT NOT NULL
);
-- No index on run_id: a run's orders are found through events_by_run (their
-- ORDER_CREATED events), which saves a scattered index write per append.
CREATE TABLE order_snapshots (
    order_id TEXT PRIMARY KEY,
    run_id   TEXT,
    data     TEXT NOT NULL
);
"#,
    ),
    (
        2,
        r#"
-- Bounded mailboxes of rejected input (e.g. milestone ingest). Deliberately
-- outside the event log: rejections come from unauthenticated callers.
CREATE TABLE dead_letters (
    id      INTEGER PRIMARY KEY,
    mailbox TEXT NOT NULL,
    entry   TEXT NOT NULL
);
CREATE INDEX dead_letters_by_mailbox ON dead_letters (mailbox, id);
"#,
    ),
    (
        3,
        r#"
-- An order's events normally live in its own stream, which the stream index
-- already finds; indexing them by order id again cost every append one more
-- scattered page. Only events filed in another stream stay in this index.
DROP INDEX events_by_order;
CREATE INDEX events_by_order ON events (order_id, seq)
    WHERE order_id IS NOT NULL AND stream <> 'order:' || order_id;
"#,
    ),
];

pub(super) fn migrate(conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))",
    )?;
    for (version, sql) in MIGRATIONS {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let done: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |r| r.get(0),
        )?;
        if !done {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES (?1)",
                [version],
            )?;
        }
        tx.commit()?;
    }
    Ok(())
}
