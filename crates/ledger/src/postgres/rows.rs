//! Statements shared by the PostgreSQL writer and readers.

use std::collections::HashMap;

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

/// Only the filters a query sets appear in its SQL: a generic plan for
/// `($2 IS NULL OR run_id = $2)` would not use the indexes.
pub(super) async fn read(c: &mut PgConnection, q: &Query) -> Result<Vec<Record>> {
    let mut sql = format!("SELECT {RECORD_COLUMNS} FROM events WHERE seq > $1");
    let mut binds: Vec<&str> = Vec::new();
    for (column, value) in [
        ("run_id", q.run_id.as_deref()),
        ("order_id", q.order_id.as_deref()),
        ("type", q.event_type.map(|t| t.as_str())),
    ] {
        if let Some(v) = value {
            binds.push(v);
            sql.push_str(&format!(" AND {column} = ${}", binds.len() + 1));
        }
    }
    sql.push_str(if q.newest_first {
        " ORDER BY seq DESC"
    } else {
        " ORDER BY seq"
    });
    sql.push_str(&format!(" LIMIT ${}", binds.len() + 2));
    let mut query = sqlx::query(&sql).bind(q.after_seq.unwrap_or(0));
    for v in binds {
        query = query.bind(v);
    }
    let rows = query.bind(q.limit).fetch_all(&mut *c).await?;
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

/// Stored events among `ids`, by id.
pub(super) async fn get_events(
    c: &mut PgConnection,
    ids: &[String],
) -> Result<HashMap<String, Record>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(&format!(
        "SELECT {RECORD_COLUMNS} FROM events WHERE event_id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| record(r).map(|rec| (rec.event_id.clone(), rec)))
        .collect()
}

/// What a group reads under the append lock, fetched in one statement.
#[derive(Default)]
pub(super) struct GroupState {
    /// The highest `seq` stored.
    pub head: i64,
    /// Current versions of those of the streams asked for that have events.
    pub streams: HashMap<String, i64>,
    pub runs: HashMap<String, RunSnapshot>,
    pub orders: HashMap<String, OrderSnapshot>,
}

/// Reads the head and the given streams' versions and snapshots in one round
/// trip. Run after the append lock is taken, so its snapshot of the store
/// includes every commit that preceded the lock.
pub(super) async fn group_state(
    c: &mut PgConnection,
    streams: &[String],
    runs: &[String],
    orders: &[String],
) -> Result<GroupState> {
    // One index probe per stream (a generic plan for `stream = ANY($1)` may
    // choose to scan the whole table).
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT 'h', '', COALESCE(MAX(seq), 0)::TEXT FROM events
         UNION ALL
         SELECT 's', s.stream, v.version::TEXT FROM UNNEST($1::TEXT[]) AS s(stream)
         CROSS JOIN LATERAL (
             SELECT stream_version AS version FROM events e
             WHERE e.stream = s.stream ORDER BY stream_version DESC LIMIT 1
         ) v
         UNION ALL
         SELECT 'r', run_id, data FROM run_snapshots WHERE run_id = ANY($2)
         UNION ALL
         SELECT 'o', order_id, data FROM order_snapshots WHERE order_id = ANY($3)",
    )
    .bind(streams)
    .bind(runs)
    .bind(orders)
    .fetch_all(&mut *c)
    .await?;
    let mut state = GroupState::default();
    let number = |v: &str| {
        v.parse::<i64>()
            .map_err(|e| LedgerError::Storage(format!("bad number `{v}` from the store: {e}")))
    };
    for (kind, key, value) in rows {
        match kind.as_str() {
            "h" => state.head = number(&value)?,
            "s" => {
                state.streams.insert(key, number(&value)?);
            }
            "r" => {
                state.runs.insert(key, serde_json::from_str(&value)?);
            }
            "o" => {
                state.orders.insert(key, serde_json::from_str(&value)?);
            }
            other => {
                return Err(LedgerError::Storage(format!(
                    "unexpected row kind `{other}` in a group read"
                )));
            }
        }
    }
    Ok(state)
}

/// Writes a group in one statement (one round trip): `records` inserted at
/// the `seq` the writer assigned each, the touched snapshots upserted, and,
/// when `notify` names a channel and there are records, a notification that
/// PostgreSQL delivers at commit.
pub(super) async fn write_group<'a>(
    c: &mut PgConnection,
    records: &[Record],
    runs: impl Iterator<Item = &'a RunSnapshot>,
    orders: impl Iterator<Item = &'a OrderSnapshot>,
    notify: Option<&str>,
) -> Result<()> {
    let col = |f: fn(&Record) -> Option<String>| records.iter().map(f).collect::<Vec<_>>();
    let payloads = records
        .iter()
        .map(|r| serde_json::to_string(&r.payload))
        .collect::<Result<Vec<_>, _>>()?;
    let (mut run_ids, mut run_data) = (Vec::new(), Vec::new());
    for r in runs {
        run_ids.push(r.run_id.clone());
        run_data.push(serde_json::to_string(r)?);
    }
    let (mut order_ids, mut order_runs, mut order_data) = (Vec::new(), Vec::new(), Vec::new());
    for o in orders {
        order_ids.push(o.order_id.clone());
        order_runs.push(o.run_id.clone());
        order_data.push(serde_json::to_string(o)?);
    }
    if records.is_empty() && run_ids.is_empty() && order_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH new_events AS (
             INSERT INTO events (seq, event_id, ts, type, garrison_id, theater_id, run_id,
                                 order_id, unit_id, payload, stream, stream_version)
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                                  $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[],
                                  $11::TEXT[], $12::BIGINT[])
         ), runs AS (
             INSERT INTO run_snapshots (run_id, data)
             SELECT * FROM UNNEST($13::TEXT[], $14::TEXT[])
             ON CONFLICT (run_id) DO UPDATE SET data = excluded.data
         ), orders AS (
             INSERT INTO order_snapshots (order_id, run_id, data)
             SELECT * FROM UNNEST($15::TEXT[], $16::TEXT[], $17::TEXT[])
             ON CONFLICT (order_id) DO UPDATE SET run_id = excluded.run_id, data = excluded.data
         )
         SELECT pg_notify($18::TEXT, '')
         WHERE $18::TEXT IS NOT NULL AND cardinality($1::BIGINT[]) > 0",
    )
    .bind(records.iter().map(|r| r.seq).collect::<Vec<_>>())
    .bind(col(|r| Some(r.event_id.clone())))
    .bind(col(|r| Some(r.ts.clone())))
    .bind(col(|r| Some(r.event_type.as_str().to_string())))
    .bind(col(|r| Some(r.garrison_id.clone())))
    .bind(col(|r| r.theater_id.clone()))
    .bind(col(|r| r.run_id.clone()))
    .bind(col(|r| r.order_id.clone()))
    .bind(col(|r| r.unit_id.clone()))
    .bind(payloads)
    .bind(col(|r| Some(r.stream.clone())))
    .bind(records.iter().map(|r| r.stream_version).collect::<Vec<_>>())
    .bind(run_ids)
    .bind(run_data)
    .bind(order_ids)
    .bind(order_runs)
    .bind(order_data)
    .bind(notify)
    .fetch_all(&mut *c)
    .await?;
    Ok(())
}

pub(super) async fn push_dead_letter(
    c: &mut PgConnection,
    mailbox: &str,
    entry: &str,
    keep: usize,
) -> Result<()> {
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let mut tx = sqlx::Connection::begin(&mut *c).await?;
    sqlx::query("INSERT INTO dead_letters (mailbox, entry) VALUES ($1, $2)")
        .bind(mailbox)
        .bind(entry)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "DELETE FROM dead_letters WHERE mailbox = $1 AND id NOT IN
             (SELECT id FROM dead_letters WHERE mailbox = $1 ORDER BY id DESC LIMIT $2)",
    )
    .bind(mailbox)
    .bind(keep)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn dead_letter_mailboxes(c: &mut PgConnection) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT mailbox FROM dead_letters ORDER BY mailbox")
            .fetch_all(&mut *c)
            .await?,
    )
}

pub(super) async fn dead_letters(
    c: &mut PgConnection,
    mailbox: &str,
    limit: usize,
) -> Result<Vec<String>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(sqlx::query_scalar(
        "SELECT entry FROM dead_letters WHERE mailbox = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(mailbox)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?)
}
