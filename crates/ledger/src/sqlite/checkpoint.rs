//! WAL checkpoints off the writer's path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold: that commit, and every append waiting for the group behind it,
//! pays for copying the WAL's pages back into the database and an fsync of
//! it. Instead a thread with its own connection runs PASSIVE checkpoints
//! while the writer goes on committing (durability is unchanged: every
//! commit is still fsynced to the WAL before it is acknowledged).
//!
//! A passive checkpoint cannot catch up with a WAL that is being appended to,
//! and SQLite only starts the WAL over after a checkpoint that did. So once
//! the WAL has grown past [`WAL_LIMIT`] frames the writer finishes the
//! checkpoint itself between two groups; only the frames since the last
//! background round are left to copy by then.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::{LedgerError, Result};

/// WAL size (frames) past which the writer finishes a checkpoint itself.
const WAL_LIMIT: i64 = 8_000;

/// Least time between two background rounds: each costs an fsync of the
/// database, and pages rewritten meanwhile are copied once instead of twice.
const ROUND_GAP: Duration = Duration::from_millis(50);

pub(super) struct Checkpointer {
    /// WAL frames past which the writer finishes a checkpoint.
    limit: i64,
    nudge: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// WAL frames as of the last checkpoint either side ran.
    wal_frames: Arc<AtomicI64>,
}

impl Checkpointer {
    /// Starts the checkpoint thread on its own connection to `path`.
    pub(super) fn start(path: &Path) -> Result<Checkpointer> {
        Checkpointer::with_limit(path, WAL_LIMIT)
    }

    fn with_limit(path: &Path, limit: i64) -> Result<Checkpointer> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let wal_frames = Arc::new(AtomicI64::new(0));
        let (nudge, rx) = mpsc::sync_channel(1);
        let frames = wal_frames.clone();
        let thread = std::thread::Builder::new()
            .name("ledger-checkpoint".into())
            .spawn(move || run(conn, rx, frames))
            .map_err(|e| {
                LedgerError::Storage(format!("cannot start the checkpoint thread: {e}"))
            })?;
        Ok(Checkpointer {
            limit,
            nudge: Some(nudge),
            thread: Some(thread),
            wal_frames,
        })
    }

    /// Called by the writer after each commit on `conn`.
    pub(super) fn committed(&self, conn: &Connection) {
        if self.wal_frames.load(Ordering::Relaxed) > self.limit {
            // Busy (the background round is running) or failed: the next
            // commit tries again.
            if let Ok((0, log, done)) = passive(conn)
                && log == done
            {
                self.wal_frames.store(0, Ordering::Relaxed);
            }
        }
        if let Some(nudge) = &self.nudge {
            // Full: a round is already due.
            let _ = nudge.try_send(());
        }
    }

    /// Stops the thread after its current round.
    pub(super) fn stop(&mut self) {
        self.nudge = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: (busy, WAL frames, frames checkpointed).
fn passive(conn: &Connection) -> rusqlite::Result<(i64, i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}

/// One round per nudge, at most one per [`ROUND_GAP`]: a nudge that comes
/// during the gap waits in the channel. Ends when the writer hangs up.
fn run(conn: Connection, rx: Receiver<()>, wal_frames: Arc<AtomicI64>) {
    while rx.recv().is_ok() {
        match passive(&conn) {
            Ok((_, log, _)) => wal_frames.store(log, Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "background WAL checkpoint failed"),
        }
        std::thread::sleep(ROUND_GAP);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Under appends that never pause, the WAL still starts over: its file
    /// stays near the limit instead of holding every frame ever written.
    #[test]
    fn the_wal_stays_bounded_under_steady_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE t (b BLOB NOT NULL)")
            .unwrap();
        let mut ckpt = Checkpointer::with_limit(&path, 20).unwrap();
        let commits = 1000;
        for _ in 0..commits {
            // Two overflowing rows: at least three frames per commit.
            conn.execute_batch(
                "BEGIN IMMEDIATE; INSERT INTO t VALUES (zeroblob(5000)), (zeroblob(5000)); COMMIT",
            )
            .unwrap();
            ckpt.committed(&conn);
            // Paced, so a background round sees some commits whatever the disk.
            std::thread::sleep(Duration::from_millis(1));
        }
        ckpt.stop();
        let wal = std::fs::metadata(dir.path().join("t.db-wal"))
            .unwrap()
            .len();
        let frames = wal / (4096 + 24);
        // Every frame ever written would be over 3 per commit: the file stays
        // near the limit plus what two background rounds let through.
        assert!(frames < commits as u64, "the WAL grew to {frames} frames");
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2 * commits);
    }
}
