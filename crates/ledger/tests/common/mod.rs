//! Backends for the conformance suite: a fresh SQLite file per test, and a
//! fresh PostgreSQL database per test when `GARRISON_TEST_DATABASE_URL` is set.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use garrison_ledger::{Ledger, postgres::PgLedger, sqlite::SqliteLedger};

pub enum Backend {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        url: String,
    },
}

impl Backend {
    pub fn sqlite() -> Backend {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.db");
        Backend::Sqlite { _dir: dir, path }
    }

    /// A fresh database on the test server, or `None` (with a notice) when
    /// no server is configured.
    pub async fn postgres(test: &str) -> Option<Backend> {
        let Ok(base) = std::env::var("GARRISON_TEST_DATABASE_URL") else {
            // Straight to the process's stderr: the test harness captures
            // `eprintln!`, and a skip must never look like a pass.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED postgres::{test}: GARRISON_TEST_DATABASE_URL is not set, so this \
                 PostgreSQL conformance test did not run"
            );
            return None;
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "garrison_t_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            test.chars().take(20).collect::<String>()
        );
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
            .await
            .expect("connect to GARRISON_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        Some(Backend::Postgres {
            url: with_database(&base, &name),
        })
    }

    pub async fn open(&self) -> Arc<dyn Ledger> {
        match self {
            Backend::Sqlite { path, .. } => {
                Arc::new(SqliteLedger::open(path).expect("open sqlite"))
            }
            Backend::Postgres { url } => {
                Arc::new(PgLedger::connect(url).await.expect("connect postgres"))
            }
        }
    }
}

/// `url` with its database name replaced.
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

/// Declares each named async test (taking a `&Backend`) once per backend.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let backend = $crate::common::Backend::sqlite();
                    super::$name(&backend).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(backend) = $crate::common::Backend::postgres(stringify!($name)).await {
                        super::$name(&backend).await;
                    }
                }
            )+
        }
    };
}

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
