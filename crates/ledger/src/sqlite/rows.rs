//! Row ↔ record conversions and the statements both the writer and readers use.

use garrison_contracts::ironclaw::EventType;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{LedgerError, Result};
use crate::event::{Query, Record};
use crate::projection::{OrderSnapshot, RunSnapshot};

pub(super) const RECORD_COLUMNS: &str = "seq, event_id, ts, type, garrison_id, theater_id, run_id, \
     order_id, unit_id, payload, stream, stream_version";

/// Reads a record row; payload JSON is parsed by the caller (`finish`), since
/// rusqlite's row closure cannot return our error type.
pub(super) fn raw_record(row: &Row<'_>) -> rusqlite::Result<(Record, String, String)> {
    let type_name: String = row.get(3)?;
    let payload: String = row.get(9)?;
    Ok((
        Record {
            seq: row.get(0)?,
            event_id: row.get(1)?,
            ts: row.get(2)?,
            event_type: EventType::PatrolTick,
            garrison_id: row.get(4)?,
            theater_id: row.get(5)?,
            run_id: row.get(6)?,
            order_id: row.get(7)?,
            unit_id: row.get(8)?,
            payload: serde_json::Value::Null,
            stream: row.get(10)?,
            stream_version: row.get(11)?,
        },
        type_name,
        payload,
    ))
}

pub(super) fn finish((mut rec, type_name, payload): (Record, String, String)) -> Result<Record> {
    rec.event_type = type_name
        .parse()
        .map_err(|e| LedgerError::Storage(format!("event {}: {e}", rec.seq)))?;
    rec.payload = serde_json::from_str(&payload)?;
    Ok(rec)
}

pub(super) fn get_event(conn: &Connection, event_id: &str) -> Result<Option<Record>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM events WHERE event_id = ?1"
    ))?;
    stmt.query_row([event_id], raw_record)
        .optional()?
        .map(finish)
        .transpose()
}

pub(super) fn stream_version(conn: &Connection, stream: &str) -> Result<i64> {
    let mut stmt = conn
        .prepare_cached("SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream = ?1")?;
    Ok(stmt.query_row([stream], |r| r.get(0))?)
}

pub(super) fn head(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?)
}

pub(super) fn read(conn: &Connection, q: &Query) -> Result<Vec<Record>> {
    let type_name = q.event_type.map(|t| t.as_str());
    let mut filters = String::from("seq > ?1");
    if q.run_id.is_some() {
        filters.push_str(" AND run_id = ?2");
    }
    if type_name.is_some() {
        // With a run or order id, that id's index is the selective one; the
        // unary `+` keeps SQLite from walking every event of the type instead.
        filters.push_str(if q.run_id.is_some() || q.order_id.is_some() {
            " AND +type = ?4"
        } else {
            " AND type = ?4"
        });
    }
    let mut sql = if q.order_id.is_some() {
        // An order's events are those of its own stream (the stream index)
        // plus the few filed elsewhere (the partial `events_by_order`, whose
        // condition the second part repeats word for word so SQLite uses it).
        format!(
            "SELECT {RECORD_COLUMNS} FROM events
                 WHERE stream = 'order:' || ?3 AND order_id = ?3 AND {filters}
             UNION ALL
             SELECT {RECORD_COLUMNS} FROM events
                 WHERE order_id = ?3 AND stream <> 'order:' || order_id AND {filters}"
        )
    } else {
        format!("SELECT {RECORD_COLUMNS} FROM events WHERE {filters}")
    };
    sql.push_str(if q.newest_first {
        " ORDER BY seq DESC LIMIT ?5"
    } else {
        " ORDER BY seq LIMIT ?5"
    });
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            q.after_seq.unwrap_or(0),
            q.run_id,
            q.order_id,
            type_name,
            q.limit.unwrap_or(-1)
        ],
        raw_record,
    )?;
    let mut out = Vec::new();
    for row in rows {
        out.push(finish(row?)?);
    }
    Ok(out)
}

pub(super) fn run_snapshot(conn: &Connection, run_id: &str) -> Result<Option<RunSnapshot>> {
    let mut stmt = conn.prepare_cached("SELECT data FROM run_snapshots WHERE run_id = ?1")?;
    let data: Option<String> = stmt.query_row([run_id], |r| r.get(0)).optional()?;
    Ok(data.map(|d| serde_json::from_str(&d)).transpose()?)
}

pub(super) fn order_snapshot(conn: &Connection, order_id: &str) -> Result<Option<OrderSnapshot>> {
    let mut stmt = conn.prepare_cached("SELECT data FROM order_snapshots WHERE order_id = ?1")?;
    let data: Option<String> = stmt.query_row([order_id], |r| r.get(0)).optional()?;
    Ok(data.map(|d| serde_json::from_str(&d)).transpose()?)
}

pub(super) fn run_orders(conn: &Connection, run_id: &str) -> Result<Vec<OrderSnapshot>> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.data FROM events e JOIN order_snapshots o ON o.order_id = e.order_id
         WHERE e.run_id = ?1 AND +e.type = 'ORDER_CREATED'
         ORDER BY e.seq",
    )?;
    let rows = stmt.query_map([run_id], |r| r.get::<_, String>(0))?;
    let mut out: Vec<OrderSnapshot> = Vec::new();
    for row in rows {
        out.push(serde_json::from_str(&row?)?);
    }
    Ok(out)
}

pub(super) fn put_run(conn: &Connection, run: &RunSnapshot) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO run_snapshots (run_id, data) VALUES (?1, ?2)
         ON CONFLICT (run_id) DO UPDATE SET data = excluded.data",
    )?;
    stmt.execute(params![run.run_id, serde_json::to_string(run)?])?;
    Ok(())
}

pub(super) fn put_order(conn: &Connection, order: &OrderSnapshot) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO order_snapshots (order_id, run_id, data) VALUES (?1, ?2, ?3)
         ON CONFLICT (order_id) DO UPDATE SET run_id = excluded.run_id, data = excluded.data",
    )?;
    stmt.execute(params![
        order.order_id,
        order.run_id,
        serde_json::to_string(order)?
    ])?;
    Ok(())
}

/// Inserts `rec` at `rec.seq`, which the writer assigns.
pub(super) fn insert_event(conn: &Connection, rec: &Record) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO events (seq, event_id, ts, type, garrison_id, theater_id, run_id, order_id,
                             unit_id, payload, stream, stream_version)
         VALUES (?12, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    stmt.execute(params![
        rec.event_id,
        rec.ts,
        rec.event_type.as_str(),
        rec.garrison_id,
        rec.theater_id,
        rec.run_id,
        rec.order_id,
        rec.unit_id,
        serde_json::to_string(&rec.payload)?,
        rec.stream,
        rec.stream_version,
        rec.seq
    ])?;
    Ok(())
}

pub(super) fn push_dead_letter(
    conn: &Connection,
    mailbox: &str,
    entry: &str,
    keep: usize,
) -> Result<()> {
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    conn.prepare_cached("INSERT INTO dead_letters (mailbox, entry) VALUES (?1, ?2)")?
        .execute(params![mailbox, entry])?;
    conn.prepare_cached(
        "DELETE FROM dead_letters WHERE mailbox = ?1 AND id NOT IN
             (SELECT id FROM dead_letters WHERE mailbox = ?1 ORDER BY id DESC LIMIT ?2)",
    )?
    .execute(params![mailbox, keep])?;
    Ok(())
}

pub(super) fn dead_letter_mailboxes(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT DISTINCT mailbox FROM dead_letters ORDER BY mailbox")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn dead_letters(conn: &Connection, mailbox: &str, limit: usize) -> Result<Vec<String>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT entry FROM dead_letters WHERE mailbox = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![mailbox, limit], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
