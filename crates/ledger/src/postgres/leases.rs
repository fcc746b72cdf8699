//! The `leases` table: one row per claimed order, shared by every node.
//! Expiries are milliseconds on the database's clock, so nodes whose clocks
//! disagree still agree on which lease has lapsed.

use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row as _};

use crate::error::{LedgerError, Result};
use crate::lease::{Change, Grant, Lease, Row, ttl_ms};

/// The database clock in milliseconds since the epoch.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::BIGINT";

const COLUMNS: &str =
    "order_id, token, unit_id, attempt, version, theater_id, lock_scope, expires_ms";

fn row(r: &PgRow) -> Result<Row> {
    let scope: String = r.try_get(6)?;
    let attempt: i64 = r.try_get(3)?;
    Ok(Row {
        order_id: r.try_get(0)?,
        token: r.try_get(1)?,
        unit_id: r.try_get(2)?,
        attempt: u32::try_from(attempt)
            .map_err(|_| LedgerError::Storage(format!("lease attempt {attempt} out of range")))?,
        version: r.try_get(4)?,
        theater_id: r.try_get(5)?,
        lock_scope: serde_json::from_str(&scope)?,
        expires_ms: r.try_get(7)?,
    })
}

pub(super) async fn now_ms(c: &mut PgConnection) -> Result<i64> {
    Ok(sqlx::query_scalar(&format!("SELECT {NOW_MS}"))
        .fetch_one(&mut *c)
        .await?)
}

/// The rows of `orders` and of every lease in `theaters` (plus those
/// without a theater when `no_theater`), locked until the transaction ends
/// so a heartbeat cannot revive a lease between its check and its reaping.
pub(super) async fn lock_rows(
    c: &mut PgConnection,
    orders: &[String],
    theaters: &[String],
    no_theater: bool,
) -> Result<Vec<Row>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM leases
         WHERE order_id = ANY($1) OR theater_id = ANY($2) OR ($3 AND theater_id IS NULL)
         ORDER BY order_id FOR UPDATE"
    ))
    .bind(orders)
    .bind(theaters)
    .bind(no_theater)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(row).collect()
}

/// Writes a committed group's lease changes (in its transaction).
pub(super) async fn write(c: &mut PgConnection, changes: &[Change]) -> Result<()> {
    for change in changes {
        match change {
            Change::Put(r) => {
                sqlx::query(&format!(
                    "INSERT INTO leases ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (order_id) DO UPDATE SET token = EXCLUDED.token,
                       unit_id = EXCLUDED.unit_id, attempt = EXCLUDED.attempt,
                       version = EXCLUDED.version, theater_id = EXCLUDED.theater_id,
                       lock_scope = EXCLUDED.lock_scope, expires_ms = EXCLUDED.expires_ms"
                ))
                .bind(&r.order_id)
                .bind(&r.token)
                .bind(&r.unit_id)
                .bind(i64::from(r.attempt))
                .bind(r.version)
                .bind(&r.theater_id)
                .bind(serde_json::to_string(&r.lock_scope)?)
                .bind(r.expires_ms)
                .execute(&mut *c)
                .await?;
            }
            Change::Version {
                order_id,
                token,
                version,
            } => {
                sqlx::query(
                    "UPDATE leases SET version = GREATEST(version, $3)
                     WHERE order_id = $1 AND token = $2",
                )
                .bind(order_id)
                .bind(token)
                .bind(version)
                .execute(&mut *c)
                .await?;
            }
            Change::Delete { order_id, token } => {
                sqlx::query("DELETE FROM leases WHERE order_id = $1 AND token = $2")
                    .bind(order_id)
                    .bind(token)
                    .execute(&mut *c)
                    .await?;
            }
        }
    }
    Ok(())
}

pub(super) async fn get(c: &mut PgConnection, order_id: &str) -> Result<Option<Lease>> {
    let r = sqlx::query(&format!(
        "SELECT {COLUMNS}, {NOW_MS} FROM leases WHERE order_id = $1"
    ))
    .bind(order_id)
    .fetch_optional(&mut *c)
    .await?;
    r.map(|r| Ok(row(&r)?.lease(r.try_get(8)?))).transpose()
}

pub(super) async fn list(c: &mut PgConnection, lapsed_only: bool) -> Result<Vec<Lease>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS}, {NOW_MS} FROM leases
         WHERE NOT $1 OR expires_ms <= {NOW_MS} ORDER BY order_id"
    ))
    .bind(lapsed_only)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| Ok(row(r)?.lease(r.try_get(8)?)))
        .collect()
}

pub(super) async fn renew(
    c: &mut PgConnection,
    order_id: &str,
    token: &str,
    ttl: Duration,
) -> Result<bool> {
    let done = sqlx::query(&format!(
        "UPDATE leases SET expires_ms = {NOW_MS} + $3 WHERE order_id = $1 AND token = $2"
    ))
    .bind(order_id)
    .bind(token)
    .bind(ttl_ms(ttl))
    .execute(&mut *c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn lapse(c: &mut PgConnection, order_id: &str, token: &str) -> Result<bool> {
    let done = sqlx::query(&format!(
        "UPDATE leases SET expires_ms = LEAST(expires_ms, {NOW_MS})
         WHERE order_id = $1 AND token = $2"
    ))
    .bind(order_id)
    .bind(token)
    .execute(&mut *c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn adopt(c: &mut PgConnection, g: &Grant, version: i64) -> Result<bool> {
    let done = sqlx::query(&format!(
        "INSERT INTO leases ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, {NOW_MS} + $8)
         ON CONFLICT (order_id) DO NOTHING"
    ))
    .bind(&g.order_id)
    .bind(&g.token)
    .bind(&g.unit_id)
    .bind(i64::from(g.attempt))
    .bind(version)
    .bind(&g.theater_id)
    .bind(serde_json::to_string(&g.lock_scope)?)
    .bind(ttl_ms(g.ttl))
    .execute(&mut *c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn remove(c: &mut PgConnection, order_id: &str, token: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM leases WHERE order_id = $1 AND token = $2")
        .bind(order_id)
        .bind(token)
        .execute(&mut *c)
        .await?;
    Ok(done.rows_affected() == 1)
}
