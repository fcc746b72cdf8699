//! Scratch PostgreSQL databases for the tests that need one.
//!
//! Such tests read `GARRISON_TEST_DATABASE_URL` (a server URL with any
//! database name). Without it they are skipped, and the skip is printed
//! straight to the process's stderr, since the test harness captures
//! `eprintln!` and a skip must never look like a pass.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

/// The variable naming the PostgreSQL server tests may use.
pub const TEST_DATABASE_ENV: &str = "GARRISON_TEST_DATABASE_URL";

/// Prefix of every scratch database (CI drops leftovers by it).
pub const SCRATCH_PREFIX: &str = "garrison_t_";

/// `url` with its database name replaced by `db` (query string kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match head[scheme_end..].find('/') {
        Some(i) => &head[..scheme_end + i],
        None => head,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// A fresh, empty database for `test` on the server of
/// [`TEST_DATABASE_ENV`], as a URL; `Ok(None)` (after printing `SKIPPED
/// <test>`) when the variable is unset.
pub async fn scratch_database(test: &str) -> Result<Option<String>, sqlx::Error> {
    let Ok(base) = std::env::var(TEST_DATABASE_ENV) else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: {TEST_DATABASE_ENV} is not set, so this PostgreSQL test did not run"
        );
        return Ok(None);
    };
    static N: AtomicU32 = AtomicU32::new(0);
    let tag: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    let name = format!(
        "{SCRATCH_PREFIX}{}_{}_{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&base).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    Ok(Some(with_database(&base, &name)))
}

/// Drops the scratch database `url` names (best effort, connections forced
/// closed).
pub async fn drop_database(url: &str) {
    let Ok(base) = std::env::var(TEST_DATABASE_ENV) else {
        return;
    };
    let Some(name) = url.rsplit('/').next().and_then(|n| n.split('?').next()) else {
        return;
    };
    if let Ok(mut admin) = <sqlx::PgConnection as sqlx::Connection>::connect(&base).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://h/test?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
