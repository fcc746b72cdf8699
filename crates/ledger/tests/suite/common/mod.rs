//! Backends for the conformance suite: a fresh SQLite file per test, and a
//! fresh PostgreSQL database per test when `GARRISON_TEST_DATABASE_URL` is set.

use std::path::PathBuf;
use std::sync::Arc;

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
        let url = garrison_test_support::db::scratch_database(&format!("postgres::{test}"))
            .await
            .expect("create a scratch database on GARRISON_TEST_DATABASE_URL")?;
        Some(Backend::Postgres { url })
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

/// Declares each named async test (taking a `&Backend`) once per backend.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let backend = $crate::suite::common::Backend::sqlite();
                    super::$name(&backend).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(backend) = $crate::suite::common::Backend::postgres(stringify!($name)).await {
                        super::$name(&backend).await;
                    }
                }
            )+
        }
    };
}
