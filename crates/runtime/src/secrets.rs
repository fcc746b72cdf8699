//! The secret store behind `/api/admin/secrets`: one-way ingestion of named
//! values into `<data-dir>/secrets.json` (mode 0600, replaced atomically).
//!
//! Values leave this module only towards runs: as a provider's API key and
//! as the list every run redacts from its events, records and sessions.
//! Nothing here logs or returns a value.

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use serde::{Deserialize, Serialize};

use super::error::OpenclawssyError;

/// The store's file name under the data dir.
pub const SECRETS_FILE: &str = "secrets.json";
/// Longest accepted value, in bytes.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// Whether `name` can name a secret: 1–128 bytes of `[A-Za-z0-9_.-]`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

#[derive(Clone, Serialize, Deserialize)]
struct Entry {
    value: String,
    updated_at: String,
}

#[derive(Default, Serialize, Deserialize)]
struct Document {
    #[serde(default)]
    secrets: BTreeMap<String, Entry>,
}

/// Named secret values, loaded once and written through.
pub struct SecretStore {
    path: PathBuf,
    entries: RwLock<BTreeMap<String, Entry>>,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStore")
            .field("path", &self.path)
            .field("names", &self.names())
            .finish()
    }
}

impl SecretStore {
    /// Loads `<data_dir>/secrets.json` (absent: empty). A file readable by
    /// others is tightened to 0600 first.
    pub fn open(data_dir: &Path) -> Result<SecretStore, OpenclawssyError> {
        let path = data_dir.join(SECRETS_FILE);
        let entries = match std::fs::read(&path) {
            Ok(bytes) => {
                if let Ok(meta) = std::fs::metadata(&path)
                    && meta.permissions().mode() & 0o077 != 0
                {
                    tracing::warn!(file = %path.display(), "secret store was readable by others; setting mode 0600");
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| OpenclawssyError::io(&path, e))?;
                }
                let doc: Document = serde_json::from_slice(&bytes).map_err(|e| {
                    OpenclawssyError::Internal(format!(
                        "secret store {} is not valid: {e}",
                        path.display()
                    ))
                })?;
                doc.secrets
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(OpenclawssyError::io(&path, e)),
        };
        Ok(SecretStore {
            path,
            entries: RwLock::new(entries),
        })
    }

    /// Stores (or replaces) `name`.
    pub fn put(&self, name: &str, value: &str) -> Result<(), OpenclawssyError> {
        if !valid_name(name) {
            return Err(OpenclawssyError::Invalid(format!(
                "secret name `{name}` must be 1-128 characters of letters, digits, `_`, `.` and `-`"
            )));
        }
        if value.is_empty() {
            return Err(OpenclawssyError::Invalid("value is required".into()));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(OpenclawssyError::Invalid(format!(
                "value is longer than {MAX_VALUE_BYTES} bytes"
            )));
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = entries.clone();
        next.insert(
            name.to_string(),
            Entry {
                value: value.to_string(),
                updated_at: super::now(),
            },
        );
        let doc = Document { secrets: next };
        garrison_files::write_json(&self.path, &doc, garrison_files::PRIVATE)
            .map_err(|e| OpenclawssyError::io(&self.path, e))?;
        *entries = doc.secrets;
        tracing::info!(secret = name, "secret stored");
        Ok(())
    }

    fn entries(&self) -> RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stored names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.entries().keys().cloned().collect()
    }

    /// The value of `name`, for a run's provider key.
    pub fn get(&self, name: &str) -> Option<String> {
        self.entries().get(name).map(|e| e.value.clone())
    }

    /// Every value, for redaction.
    pub fn values(&self) -> Vec<String> {
        self.entries().values().map(|e| e.value.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_privately_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::open(dir.path()).unwrap();
        store.put("API_KEY", "v-one").unwrap();
        store.put("other.key", "v-two").unwrap();
        store.put("API_KEY", "v-three").unwrap();
        let path = dir.path().join(SECRETS_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = SecretStore::open(dir.path()).unwrap();
        assert_eq!(again.names(), ["API_KEY", "other.key"]);
        assert_eq!(again.get("API_KEY").as_deref(), Some("v-three"));
        assert!(!format!("{again:?}").contains("v-three"));
        for (name, value) in [("", "x"), ("a b", "x"), ("../x", "x"), ("ok", "")] {
            assert!(matches!(
                store.put(name, value),
                Err(OpenclawssyError::Invalid(_))
            ));
        }
        // Only the store itself is in the dir: no temp files left.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn loose_permissions_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SECRETS_FILE);
        std::fs::write(&path, br#"{"secrets":{}}"#).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        SecretStore::open(dir.path()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
