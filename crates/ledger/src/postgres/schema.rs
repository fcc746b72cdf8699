//! PostgreSQL migrations. Nodes sharing a database migrate under an advisory
//! lock so only one applies each step.

use sqlx::PgPool;

/// Advisory lock key for migrations ("garrison" in ASCII, truncated to i64).
const MIGRATE_LOCK: i64 = 0x6761_7272_6973_6f6e;

/// Every table the ledger creates: what a tool that wipes a scratch database
/// (the bench) drops. A test keeps it in step with the migrations.
pub const TABLES: &[&str] = &[
    "events",
    "run_snapshots",
    "order_snapshots",
    "dead_letters",
    "leases",
    "schema_migrations",
];

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE events (
    seq            BIGINT PRIMARY KEY,
    event_id       TEXT   NOT NULL UNIQUE,
    ts             TEXT   NOT NULL,
    type           TEXT   NOT NULL,
    garrison_id    TEXT   NOT NULL,
    theater_id     TEXT,
    run_id         TEXT,
    order_id       TEXT,
    unit_id        TEXT,
    payload        TEXT   NOT NULL,
    stream         TEXT   NOT NULL,
    stream_version BIGINT NOT NULL,
    UNIQUE (stream, stream_version)
);
CREATE INDEX events_by_run   ON events (run_id, seq)   WHERE run_id IS NOT NULL;
CREATE INDEX events_by_order ON events (order_id, seq) WHERE order_id IS NOT NULL;
CREATE INDEX events_by_type  ON events (type, seq);
CREATE TABLE run_snapshots (
    run_id TEXT PRIMARY KEY,
    data   TEXT NOT NULL
);
CREATE TABLE order_snapshots (
    order_id TEXT PRIMARY KEY,
    run_id   TEXT,
    data     TEXT NOT NULL
);
CREATE INDEX order_snapshots_by_run ON order_snapshots (run_id);
"#,
    ),
    (
        2,
        r#"
-- Bounded mailboxes of rejected input (e.g. milestone ingest). Deliberately
-- outside the event log: rejections come from unauthenticated callers.
CREATE TABLE dead_letters (
    id      BIGSERIAL PRIMARY KEY,
    mailbox TEXT NOT NULL,
    entry   TEXT NOT NULL
);
CREATE INDEX dead_letters_by_mailbox ON dead_letters (mailbox, id);
"#,
    ),
    (
        3,
        r#"
-- One lease per claimed order, beside the log: heartbeats update a row here
-- instead of appending events. Expiries are on the database clock (ms).
CREATE TABLE leases (
    order_id   TEXT   PRIMARY KEY,
    token      TEXT   NOT NULL,
    unit_id    TEXT   NOT NULL,
    attempt    BIGINT NOT NULL,
    version    BIGINT NOT NULL,
    theater_id TEXT,
    lock_scope TEXT   NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX leases_by_theater ON leases (theater_id);
CREATE INDEX leases_by_expiry  ON leases (expires_ms);
"#,
    ),
];

pub(super) async fn migrate(pool: &PgPool) -> sqlx::Result<()> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATE_LOCK)
        .execute(&mut *conn)
        .await?;
    let result = async {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .execute(&mut *conn)
        .await?;
        for (version, sql) in MIGRATIONS {
            let done: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)",
            )
            .bind(version)
            .fetch_one(&mut *conn)
            .await?;
            if done {
                continue;
            }
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            // Through `Executor::execute` (a boxed Send future): `RawSql::execute` is an
            // async fn whose future rustc cannot prove `Send`, which made
            // `garrison_ledger::open` unspawnable.
            sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(sql)).await?;
            sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
                .bind(version)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATE_LOCK)
        .execute(&mut *conn)
        .await?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_created_table_is_listed() {
        let created: Vec<&str> = MIGRATIONS
            .iter()
            .flat_map(|(_, sql)| sql.split("CREATE TABLE ").skip(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .chain(["schema_migrations"])
            .collect();
        assert!(created.len() >= 5, "{created:?}");
        for table in &created {
            assert!(TABLES.contains(table), "`{table}` is missing from TABLES");
        }
        assert_eq!(created.len(), TABLES.len(), "{created:?} vs {TABLES:?}");
    }
}
