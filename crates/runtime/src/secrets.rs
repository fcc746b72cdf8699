//! The secret store behind `/api/admin/secrets`: one-way ingestion of named
//! values into `<data-dir>/secrets.json` (mode 0600, replaced atomically),
//! encrypted at rest.
//!
//! The file holds one AES-256-GCM box (ring) of the whole name → value map,
//! with a fresh random 96-bit nonce per write and a fixed associated data
//! string. The 32-byte key never lives in the data dir: it comes from
//! `GARRISON_MASTER_KEY` or from the file `[secrets] key_file` names (see
//! [`MasterKey`]); the caller resolves it and hands it to
//! [`SecretStore::open`]. Without a key nothing can be stored, an encrypted
//! store refuses to open, and a plaintext store written by an earlier
//! version refuses to open until a key is set (then it is encrypted in
//! place on the first open).
//!
//! Values leave this module only towards runs and units: as a provider's
//! API key and, through the [`SecretSet`] the store publishes to, as the
//! values every run and unit scrubs from what it shows the model and
//! writes. Nothing here logs or returns a value.

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use garrison_agent::SecretSet;
use garrison_agent::encoding::{BASE64_STD, base64_decode, base64_encode, hex_decode};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::error::OpenclawssyError;

/// The store's file name under the data dir.
pub const SECRETS_FILE: &str = "secrets.json";
/// Longest accepted value, in bytes.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;
/// The variable holding the master key.
pub const MASTER_KEY_ENV: &str = "GARRISON_MASTER_KEY";
/// The config key naming a file that holds the master key.
pub const KEY_FILE_SETTING: &str = "[secrets] key_file";
/// The `cipher` of an encrypted store.
const CIPHER: &str = "AES-256-GCM";
/// Associated data of every box: binds it to this use and format version.
const AAD: &[u8] = b"garrison-secrets-v1";

/// How to set a key, for error messages.
fn how_to_set_key() -> String {
    format!(
        "set {MASTER_KEY_ENV} (64 hex characters, or the base64 of 32 bytes; e.g. the output of \
         `openssl rand -hex 32`) or name a file holding one with `{KEY_FILE_SETTING}` in \
         garrison.toml (outside the data dir)"
    )
}

/// Whether `name` can name a secret: 1–128 bytes of `[A-Za-z0-9_.-]`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The secret store's 256-bit key. Accepted spellings (surrounding
/// whitespace ignored): 64 hex digits, or base64 (standard or URL-safe,
/// padded or not) of exactly 32 bytes; a key file may also hold the 32 raw
/// bytes. Never printed.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A key from its text form; the error says what is accepted, never
    /// what was given.
    pub fn parse(text: &str) -> Result<MasterKey, String> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex_decode(t)
        } else {
            base64_decode(t)
        };
        match bytes.map(<[u8; 32]>::try_from) {
            Some(Ok(key)) => Ok(MasterKey(key)),
            _ => Err(
                "the master key must be 64 hex characters or the base64 of exactly 32 bytes".into(),
            ),
        }
    }

    /// A key from `path`, which must not be inside `data_dir` (everything
    /// there is what the key protects against).
    pub fn from_file(path: &Path, data_dir: &Path) -> Result<MasterKey, OpenclawssyError> {
        let resolve = |p: &Path| {
            std::fs::canonicalize(p)
                .or_else(|_| std::path::absolute(p))
                .unwrap_or_else(|_| p.to_path_buf())
        };
        let (file, dir) = (resolve(path), resolve(data_dir));
        if file.starts_with(&dir) {
            return Err(OpenclawssyError::Invalid(format!(
                "{KEY_FILE_SETTING} {} is inside the data dir {}: keep the key elsewhere, \
                 or anyone who can read the data dir can read the secrets",
                path.display(),
                data_dir.display()
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| {
            OpenclawssyError::Invalid(format!(
                "{KEY_FILE_SETTING} {} cannot be read: {e}",
                path.display()
            ))
        })?;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(file = %path.display(), "the master key file is readable by others; chmod 600 it");
        }
        // Exactly 32 bytes can only be the raw key: no text form is that long.
        if let Ok(raw) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok(MasterKey(raw));
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            OpenclawssyError::Invalid(format!(
                "{KEY_FILE_SETTING} {}: the master key must be 64 hex characters, the base64 \
                 of 32 bytes, or 32 raw bytes",
                path.display()
            ))
        })?;
        MasterKey::parse(&text).map_err(|e| {
            OpenclawssyError::Invalid(format!("{KEY_FILE_SETTING} {}: {e}", path.display()))
        })
    }

    /// The key in force: `env` (the value of `GARRISON_MASTER_KEY`) when
    /// set and not blank, else the key file when one is configured, else
    /// none.
    pub fn resolve(
        env: Option<&str>,
        key_file: Option<&Path>,
        data_dir: &Path,
    ) -> Result<Option<MasterKey>, OpenclawssyError> {
        if let Some(text) = env.filter(|t| !t.trim().is_empty()) {
            return MasterKey::parse(text)
                .map(Some)
                .map_err(|e| OpenclawssyError::Invalid(format!("{MASTER_KEY_ENV}: {e}")));
        }
        match key_file {
            Some(path) => MasterKey::from_file(path, data_dir).map(Some),
            None => Ok(None),
        }
    }

    fn aead(&self) -> Result<LessSafeKey, OpenclawssyError> {
        UnboundKey::new(&AES_256_GCM, &self.0)
            .map(LessSafeKey::new)
            .map_err(|_| OpenclawssyError::Internal("cannot set up the store's cipher".into()))
    }
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

/// The encrypted file: `ciphertext` is the JSON [`Document`] sealed with
/// AES-256-GCM (tag appended), both fields standard padded base64.
#[derive(Serialize, Deserialize)]
struct Sealed {
    cipher: String,
    nonce: String,
    ciphertext: String,
}

/// What `secrets.json` may hold: a box, or (earlier versions) plaintext.
#[derive(Deserialize)]
#[serde(untagged)]
enum OnDisk {
    Sealed(Sealed),
    Plain(Document),
}

fn seal(key: &MasterKey, doc: &Document) -> Result<Sealed, OpenclawssyError> {
    let mut data = serde_json::to_vec(doc)
        .map_err(|e| OpenclawssyError::Internal(format!("cannot encode the secrets: {e}")))?;
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| OpenclawssyError::Internal("no randomness for the store's nonce".into()))?;
    key.aead()?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(AAD),
            &mut data,
        )
        .map_err(|_| OpenclawssyError::Internal("cannot encrypt the secrets".into()))?;
    Ok(Sealed {
        cipher: CIPHER.into(),
        nonce: base64_encode(&nonce, BASE64_STD, true),
        ciphertext: base64_encode(&data, BASE64_STD, true),
    })
}

fn unseal(key: &MasterKey, sealed: &Sealed, path: &Path) -> Result<Document, OpenclawssyError> {
    let damaged = |what: &str| {
        OpenclawssyError::Internal(format!(
            "secret store {} is damaged: {what}",
            path.display()
        ))
    };
    if sealed.cipher != CIPHER {
        return Err(damaged(&format!(
            "unknown cipher `{}` (this version reads {CIPHER})",
            sealed.cipher
        )));
    }
    let nonce = base64_decode(&sealed.nonce)
        .and_then(|n| Nonce::try_assume_unique_for_key(&n).ok())
        .ok_or_else(|| damaged("its nonce is not 12 bytes of base64"))?;
    let mut data =
        base64_decode(&sealed.ciphertext).ok_or_else(|| damaged("its ciphertext is not base64"))?;
    let plain = key
        .aead()?
        .open_in_place(nonce, Aad::from(AAD), &mut data)
        .map_err(|_| {
            OpenclawssyError::Internal(format!(
                "secret store {} does not decrypt with the configured master key ({MASTER_KEY_ENV} \
                 or {KEY_FILE_SETTING}): it was written with another key, or it was altered",
                path.display()
            ))
        })?;
    serde_json::from_slice(plain).map_err(|_| damaged("its decrypted content is not a secret map"))
}

/// Named secret values, loaded once and written through.
pub struct SecretStore {
    path: PathBuf,
    key: Option<MasterKey>,
    entries: RwLock<BTreeMap<String, Entry>>,
    published: SecretSet,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStore")
            .field("path", &self.path)
            .field("names", &self.names())
            .field("encrypted", &self.key.is_some())
            .finish()
    }
}

impl SecretStore {
    /// Loads `<data_dir>/secrets.json` (absent: empty) with `key`, and
    /// publishes the values to `published`. A file readable by others is
    /// tightened to 0600 first; a plaintext store is encrypted in place when
    /// a key is given and refused when none is.
    pub fn open(
        data_dir: &Path,
        key: Option<MasterKey>,
        published: SecretSet,
    ) -> Result<SecretStore, OpenclawssyError> {
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
                let on_disk: OnDisk = serde_json::from_slice(&bytes).map_err(|e| {
                    OpenclawssyError::Internal(format!(
                        "secret store {} is not valid: {e}",
                        path.display()
                    ))
                })?;
                match (on_disk, &key) {
                    (OnDisk::Sealed(_), None) => {
                        return Err(OpenclawssyError::Internal(format!(
                            "secret store {} is encrypted and no master key is configured: {}",
                            path.display(),
                            how_to_set_key()
                        )));
                    }
                    (OnDisk::Sealed(sealed), Some(k)) => unseal(k, &sealed, &path)?.secrets,
                    (OnDisk::Plain(doc), None) if doc.secrets.is_empty() => doc.secrets,
                    (OnDisk::Plain(_), None) => {
                        return Err(OpenclawssyError::Internal(format!(
                            "secret store {} holds values in plaintext, written by an earlier \
                             version; secrets are now encrypted at rest: {}, and it is \
                             encrypted in place on the next start",
                            path.display(),
                            how_to_set_key()
                        )));
                    }
                    (OnDisk::Plain(doc), Some(k)) => {
                        let sealed = seal(k, &doc)?;
                        garrison_files::write_json(&path, &sealed, garrison_files::PRIVATE)
                            .map_err(|e| OpenclawssyError::io(&path, e))?;
                        tracing::info!(file = %path.display(), secrets = doc.secrets.len(), "plaintext secret store encrypted in place");
                        doc.secrets
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(OpenclawssyError::io(&path, e)),
        };
        published.replace(entries.values().map(|e| e.value.clone()));
        Ok(SecretStore {
            path,
            key,
            entries: RwLock::new(entries),
            published,
        })
    }

    /// Stores (or replaces) `name`. Refused without a master key.
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
        let Some(key) = &self.key else {
            return Err(OpenclawssyError::Unavailable(format!(
                "secrets are stored encrypted and no master key is configured: {}",
                how_to_set_key()
            )));
        };
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
        let sealed = seal(key, &doc)?;
        garrison_files::write_json(&self.path, &sealed, garrison_files::PRIVATE)
            .map_err(|e| OpenclawssyError::io(&self.path, e))?;
        *entries = doc.secrets;
        self.published
            .replace(entries.values().map(|e| e.value.clone()));
        if value.len() < garrison_agent::MIN_SECRET_BYTES {
            tracing::warn!(
                secret = name,
                "secret stored; it is shorter than {} bytes, so it is not scrubbed from output by value",
                garrison_agent::MIN_SECRET_BYTES
            );
        } else {
            tracing::info!(secret = name, "secret stored");
        }
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

    const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn key() -> Option<MasterKey> {
        Some(MasterKey::parse(KEY_HEX).unwrap())
    }

    fn other_key() -> Option<MasterKey> {
        Some(MasterKey([7u8; 32]))
    }

    fn open(dir: &Path, key: Option<MasterKey>) -> Result<SecretStore, OpenclawssyError> {
        SecretStore::open(dir, key, SecretSet::new())
    }

    fn file_text(dir: &Path) -> String {
        String::from_utf8_lossy(&std::fs::read(dir.join(SECRETS_FILE)).unwrap()).into_owned()
    }

    #[test]
    fn stores_encrypted_privately_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let published = SecretSet::new();
        let store = SecretStore::open(dir.path(), key(), published.clone()).unwrap();
        store.put("API_KEY", "v-one-value").unwrap();
        store.put("other.key", "v-two-value").unwrap();
        store.put("API_KEY", "v-three-value").unwrap();
        let path = dir.path().join(SECRETS_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = file_text(dir.path());
        for plain in ["v-two-value", "v-three-value", "API_KEY", "other.key"] {
            assert!(!text.contains(plain), "{plain} in {text}");
        }
        assert!(text.contains(CIPHER));
        assert_eq!(published.redactor().len(), 2);
        let again = open(dir.path(), key()).unwrap();
        assert_eq!(again.names(), ["API_KEY", "other.key"]);
        assert_eq!(again.get("API_KEY").as_deref(), Some("v-three-value"));
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
    fn every_write_uses_a_fresh_nonce() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), key()).unwrap();
        store.put("A", "same-value-1").unwrap();
        let first: Sealed = serde_json::from_str(&file_text(dir.path())).unwrap();
        store.put("A", "same-value-1").unwrap();
        let second: Sealed = serde_json::from_str(&file_text(dir.path())).unwrap();
        assert_ne!(first.nonce, second.nonce);
        assert_ne!(first.ciphertext, second.ciphertext);
    }

    #[test]
    fn storing_without_a_key_is_refused_and_says_how_to_set_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), None).unwrap();
        let err = store.put("API_KEY", "some-value").unwrap_err();
        assert!(matches!(err, OpenclawssyError::Unavailable(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(MASTER_KEY_ENV), "{msg}");
        assert!(msg.contains("key_file"), "{msg}");
        assert!(!dir.path().join(SECRETS_FILE).exists());
    }

    #[test]
    fn an_encrypted_store_needs_its_key() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path(), key())
            .unwrap()
            .put("API_KEY", "hunter2-secret-value")
            .unwrap();
        let missing = open(dir.path(), None).unwrap_err().to_string();
        assert!(missing.contains("encrypted"), "{missing}");
        assert!(missing.contains(MASTER_KEY_ENV), "{missing}");
        let wrong = open(dir.path(), other_key()).unwrap_err().to_string();
        assert!(wrong.contains("does not decrypt"), "{wrong}");
        assert!(!wrong.contains("hunter2"), "{wrong}");
        // A tampered box does not open either.
        let mut sealed: Sealed = serde_json::from_str(&file_text(dir.path())).unwrap();
        let mut ct = base64_decode(&sealed.ciphertext).unwrap();
        ct[0] ^= 1;
        sealed.ciphertext = base64_encode(&ct, BASE64_STD, true);
        std::fs::write(
            dir.path().join(SECRETS_FILE),
            serde_json::to_vec(&sealed).unwrap(),
        )
        .unwrap();
        let tampered = open(dir.path(), key()).unwrap_err().to_string();
        assert!(tampered.contains("does not decrypt"), "{tampered}");
    }

    #[test]
    fn a_plaintext_store_is_encrypted_in_place_when_a_key_is_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SECRETS_FILE);
        std::fs::write(
            &path,
            br#"{"secrets":{"LEGACY":{"value":"legacy-plain-value","updated_at":"2026-01-01T00:00:00Z"}}}"#,
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = open(dir.path(), None).unwrap_err().to_string();
        assert!(refused.contains("plaintext"), "{refused}");
        assert!(refused.contains(MASTER_KEY_ENV), "{refused}");
        assert!(!refused.contains("legacy-plain-value"), "{refused}");
        // Refusing left the file as it was.
        assert!(file_text(dir.path()).contains("legacy-plain-value"));

        let store = open(dir.path(), key()).unwrap();
        assert_eq!(store.get("LEGACY").as_deref(), Some("legacy-plain-value"));
        let text = file_text(dir.path());
        assert!(!text.contains("legacy-plain-value"), "{text}");
        assert!(text.contains(CIPHER));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let again = open(dir.path(), key()).unwrap();
        assert_eq!(again.get("LEGACY").as_deref(), Some("legacy-plain-value"));
        // An empty plaintext store is no secret: it opens without a key.
        std::fs::write(&path, br#"{"secrets":{}}"#).unwrap();
        assert!(open(dir.path(), None).unwrap().names().is_empty());
    }

    #[test]
    fn loose_permissions_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SECRETS_FILE);
        std::fs::write(&path, br#"{"secrets":{}}"#).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        open(dir.path(), None).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn master_key_spellings() {
        let raw: Vec<u8> = (0u8..32).collect();
        let from_hex = MasterKey::parse(KEY_HEX).unwrap();
        assert_eq!(from_hex.0.as_slice(), raw.as_slice());
        let upper = MasterKey::parse(&format!("  {}\n", KEY_HEX.to_uppercase())).unwrap();
        assert_eq!(upper.0, from_hex.0);
        for alphabet in [BASE64_STD, garrison_agent::encoding::BASE64_URL] {
            for pad in [true, false] {
                let b64 = base64_encode(&raw, alphabet, pad);
                assert_eq!(MasterKey::parse(&b64).unwrap().0, from_hex.0, "{b64}");
            }
        }
        for bad in [
            "",
            "abc",
            &KEY_HEX[..62],
            &base64_encode(&raw[..31], BASE64_STD, true),
        ] {
            let err = MasterKey::parse(bad).unwrap_err();
            assert!(err.contains("64 hex"), "{err}");
        }
        assert!(!format!("{from_hex:?}").contains("01"));
    }

    #[test]
    fn key_files_live_outside_the_data_dir() {
        let data = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let inside = data.path().join("master.key");
        std::fs::write(&inside, KEY_HEX).unwrap();
        let err = MasterKey::from_file(&inside, data.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("inside the data dir"), "{err}");
        // A relative spelling of the same place is refused too.
        let sneaky = data.path().join("sub/../master.key");
        std::fs::create_dir(data.path().join("sub")).unwrap();
        assert!(MasterKey::from_file(&sneaky, data.path()).is_err());

        let text = elsewhere.path().join("master.key");
        std::fs::write(&text, format!("{KEY_HEX}\n")).unwrap();
        let k = MasterKey::from_file(&text, data.path()).unwrap();
        let raw = elsewhere.path().join("raw.key");
        std::fs::write(&raw, k.0).unwrap();
        assert_eq!(MasterKey::from_file(&raw, data.path()).unwrap().0, k.0);
        let junk = elsewhere.path().join("junk.key");
        std::fs::write(&junk, "not a key").unwrap();
        assert!(MasterKey::from_file(&junk, data.path()).is_err());

        // The variable wins over the file; neither: no key.
        let env = base64_encode(&[9u8; 32], BASE64_STD, true);
        let resolved = MasterKey::resolve(Some(&env), Some(&text), data.path())
            .unwrap()
            .unwrap();
        assert_eq!(resolved.0, [9u8; 32]);
        let resolved = MasterKey::resolve(Some("  "), Some(&text), data.path())
            .unwrap()
            .unwrap();
        assert_eq!(resolved.0, k.0);
        assert!(
            MasterKey::resolve(None, None, data.path())
                .unwrap()
                .is_none()
        );
        let bad = MasterKey::resolve(Some("nope"), None, data.path()).unwrap_err();
        assert!(bad.to_string().contains(MASTER_KEY_ENV), "{bad}");
    }
}
