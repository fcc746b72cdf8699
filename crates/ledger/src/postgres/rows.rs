//! Statements shared by the PostgreSQL writer and readers.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::error::{LedgerError, Result};
use crate::event::{Query, Record};
use crate::projection::{OrderSnapshot, RunSnapshot};

pub(super) const RECORD_COLUMNS: &str = "seq, event_id, ts, type, garrison_id, theater_id, run_id, \
     order_id, unit_id, payload, stream, stream_version";

pub(super) fn record(row: &PgRow) -> Result<Record> {
    let seq: i64 = row.try_get(0)?;
    let type_name: String = row.try_get(3)?;
    let payload: String = row.try_get(9)?;
    Ok(Record {
        seq,
        event_id: row.try_get(1)?,
        ts: row.try_get(2)?,
        event_type: type_name
            .parse()
            .map_err(|e| LedgerError::Storage(format!("event {seq}: {e}")))?,
        garrison_id: row.try_get(4)?,
        theater_id: row.try_get(5)?,
        run_id: row.try_get(6)?,
        order_id: row.try_get(7)?,
        unit_id: row.try_get(8)?,
        payload: serde_json::from_str(&payload)?,
        stream: row.try_get(10)?,
        stream_version: row.try_get(11)?,
    })
}

pub(super) async fn get_event(c: &mut PgConnection, event_id: &str) -> Result<Option<Record>> {
    let row = sqlx::query(&format!(
        "SELECT {RECORD_COLUMNS} FROM events WHERE event_id = $1"
    ))
    .bind(event_id)
    .fetch_optional(&mut *c)
    .await?;
    row.as_ref().map(record).transpose()
}

pub(super) async fn stream_version(c: &mut PgConnection, stream: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COALESCE(MAX(stream_version), 0)::BIGINT FROM events WHERE stream = $1",
    )
    .bind(stream)
    .fetch_one(&mut *c)
    .await?)
}

pub(super) async fn head(c: &mut PgConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM events")
            .fetch_one(&mut *c)
            .await?,
    )
}

pub(super) async fn read(c: &mut PgConnection, q: &Query) -> Result<Vec<Record>> {
    let rows = sqlx::query(&format!(
        "SELECT {RECORD_COLUMNS} FROM events
         WHERE seq > $1
           AND ($2::TEXT IS NULL OR run_id = $2)
           AND ($3::TEXT IS NULL OR order_id = $3)
           AND ($4::TEXT IS NULL OR type = $4)
         ORDER BY seq
         LIMIT $5"
    ))
    .bind(q.after_seq.unwrap_or(0))
    .bind(q.run_id.as_deref())
    .bind(q.order_id.as_deref())
    .bind(q.event_type.map(|t| t.as_str()))
    .bind(q.limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(record).collect()
}

pub(super) async fn run_snapshot(
    c: &mut PgConnection,
    run_id: &str,
) -> Result<Option<RunSnapshot>> {
    let data: Option<String> =
        sqlx::query_scalar("SELECT data FROM run_snapshots WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(&mut *c)
            .await?;
    Ok(data.map(|d| serde_json::from_str(&d)).transpose()?)
}

pub(super) async fn order_snapshot(
    c: &mut PgConnection,
    order_id: &str,
) -> Result<Option<OrderSnapshot>> {
    let data: Option<String> =
        sqlx::query_scalar("SELECT data FROM order_snapshots WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(&mut *c)
            .await?;
    Ok(data.map(|d| serde_json::from_str(&d)).transpose()?)
}

pub(super) async fn run_orders(c: &mut PgConnection, run_id: &str) -> Result<Vec<OrderSnapshot>> {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT data FROM order_snapshots WHERE run_id = $1")
            .bind(run_id)
            .fetch_all(&mut *c)
            .await?;
    let mut out = rows
        .iter()
        .map(|d| serde_json::from_str::<OrderSnapshot>(d))
        .collect::<Result<Vec<_>, _>>()?;
    // Creation order, as on SQLite (the ORDER_CREATED event's seq).
    out.sort_by_key(|o| o.created_seq);
    Ok(out)
}

pub(super) async fn put_run(c: &mut PgConnection, run: &RunSnapshot) -> Result<()> {
    sqlx::query(
        "INSERT INTO run_snapshots (run_id, data) VALUES ($1, $2)
         ON CONFLICT (run_id) DO UPDATE SET data = excluded.data",
    )
    .bind(&run.run_id)
    .bind(serde_json::to_string(run)?)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(super) async fn put_order(c: &mut PgConnection, order: &OrderSnapshot) -> Result<()> {
    sqlx::query(
        "INSERT INTO order_snapshots (order_id, run_id, data) VALUES ($1, $2, $3)
         ON CONFLICT (order_id) DO UPDATE SET run_id = excluded.run_id, data = excluded.data",
    )
    .bind(&order.order_id)
    .bind(order.run_id.as_deref())
    .bind(serde_json::to_string(order)?)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Inserts `rec` at `rec.seq`, which the writer assigns under the append lock.
pub(super) async fn insert_event(c: &mut PgConnection, rec: &Record) -> Result<()> {
    sqlx::query(
        "INSERT INTO events (seq, event_id, ts, type, garrison_id, theater_id, run_id, order_id,
                             unit_id, payload, stream, stream_version)
         VALUES ($12, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&rec.event_id)
    .bind(&rec.ts)
    .bind(rec.event_type.as_str())
    .bind(&rec.garrison_id)
    .bind(rec.theater_id.as_deref())
    .bind(rec.run_id.as_deref())
    .bind(rec.order_id.as_deref())
    .bind(rec.unit_id.as_deref())
    .bind(serde_json::to_string(&rec.payload)?)
    .bind(&rec.stream)
    .bind(rec.stream_version)
    .bind(rec.seq)
    .execute(&mut *c)
    .await?;
    Ok(())
}
