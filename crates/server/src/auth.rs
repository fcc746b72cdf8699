//! Bearer-token auth: where the token comes from, and the middleware that
//! checks it in constant time.

use std::fmt;
use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::TryRngCore;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::ApiError;

/// The file under the data dir that holds a generated token.
pub const TOKEN_FILE: &str = "api-token";

/// Routes reachable without a token: health probes and the milestone ingest,
/// which authenticates each request with its HMAC signature instead.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/healthz"),
    ("POST", "/internal/milestones/ingest"),
];

/// The bearer token. `Debug` never shows it.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn new(token: impl Into<String>) -> Self {
        ApiToken(token.into())
    }

    /// Constant-time comparison; a length mismatch is a mismatch.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(candidate).into()
    }

    /// The dashboard session cookie's value: an HMAC of a fixed label keyed
    /// with the token, so the cookie never carries the token itself and
    /// changing the token ends every session.
    pub fn session_value(&self) -> String {
        use hmac::{Hmac, Mac};
        // HMAC accepts keys of any length, so this never fails.
        let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(self.0.as_bytes()) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(b"garrison dashboard session v1");
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Constant-time check of a presented session cookie value.
    pub fn matches_session(&self, candidate: &[u8]) -> bool {
        let expected = self.session_value();
        !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(candidate))
    }

    /// The token itself, for clients that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// Where the token in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// Set explicitly (environment or configuration).
    Explicit,
    /// Read from a token file an earlier start wrote.
    Stored(PathBuf),
    /// Generated on this start and written to this file (mode 0600).
    Generated(PathBuf),
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the API token is set but empty")]
    Empty,
    #[error("cannot read the API token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the API token file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

/// The token to use: `explicit` if given, else the one stored in
/// `<data_dir>/api-token`, else a fresh random one written there.
pub fn resolve_token(
    data_dir: &Path,
    explicit: Option<&str>,
) -> Result<(ApiToken, TokenSource), TokenError> {
    if let Some(t) = explicit {
        let t = t.trim();
        if t.is_empty() {
            return Err(TokenError::Empty);
        }
        return Ok((ApiToken::new(t), TokenSource::Explicit));
    }
    let path = data_dir.join(TOKEN_FILE);
    if let Some(t) = read_stored_token(data_dir)? {
        return Ok((t, TokenSource::Stored(path)));
    }
    let token = generate()?;
    let stored = write_new(&path, token.expose())?;
    let source = if stored.0 == token.0 {
        TokenSource::Generated(path)
    } else {
        // Another process created the file first; use its token.
        TokenSource::Stored(path)
    };
    Ok((stored, source))
}

/// The token stored in `<data_dir>/api-token`, if the file exists and is not blank.
pub fn read_stored_token(data_dir: &Path) -> Result<Option<ApiToken>, TokenError> {
    let path = data_dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().is_empty() => Ok(None),
        Ok(s) => Ok(Some(ApiToken::new(s.trim()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TokenError::Read { path, source }),
    }
}

fn generate() -> Result<ApiToken, TokenError> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| TokenError::Random(e.to_string()))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(ApiToken::new(hex))
}

/// Writes `token` to `path` with mode 0600 without ever exposing a partial
/// file: write a private temp file, fsync, then hard-link it into place (which
/// fails rather than clobbers if another process won the race). Returns the
/// token that ends up stored.
fn write_new(path: &Path, token: &str) -> Result<ApiToken, TokenError> {
    let werr = |source| TokenError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let result = garrison_files::create_once(
        path,
        format!("{token}\n").as_bytes(),
        garrison_files::PRIVATE,
    );
    match result.map_err(werr)? {
        true => Ok(ApiToken::new(token)),
        false => read_stored_token(dir)?.ok_or_else(|| {
            werr(std::io::Error::other(
                "another process created an empty token file",
            ))
        }),
    }
}

/// The token an `Authorization: Bearer <token>` header presents, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
}

/// Whether a request needs no credentials: the routes in [`PUBLIC`] and the
/// dashboard's sign-in and static assets. `HEAD` is answered by the `GET`
/// handler, so it is as public as `GET`. The OpenAPI document marks exactly
/// these operations as having no security requirement (the tests check it).
pub fn is_public(method: &Method, path: &str) -> bool {
    let m = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    PUBLIC.iter().any(|(pm, pp)| m == *pm && path == *pp)
        || crate::dashboard::session::is_public(method, path)
}

/// Rejects every non-public request without `Authorization: Bearer <token>`.
/// Dashboard pages also accept the session cookie, and send a browser
/// without either to the login page (see [`crate::dashboard::session`]).
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_public(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    if crate::dashboard::is_dashboard_path(req.uri().path()) {
        return crate::dashboard::session::gate(&state, req, next).await;
    }
    let refuse = |message: &str| {
        if crate::error::is_openclawssy_path(req.uri().path()) {
            crate::error::V1Error::unauthorized(message).into_response()
        } else {
            ApiError::unauthorized(message).into_response()
        }
    };
    match bearer(req.headers()) {
        None => refuse("missing `Authorization: Bearer <token>` header"),
        Some(t) if state.token.matches(t) => next.run(req).await,
        Some(_) => refuse("invalid API token"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generates_once_with_private_mode_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let (t1, s1) = resolve_token(dir.path(), None).unwrap();
        let path = dir.path().join(TOKEN_FILE);
        assert_eq!(s1, TokenSource::Generated(path.clone()));
        assert_eq!(t1.expose().len(), 64);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (t2, s2) = resolve_token(dir.path(), None).unwrap();
        assert_eq!(s2, TokenSource::Stored(path));
        assert_eq!(t1.expose(), t2.expose());
        // No temp files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn explicit_token_wins_and_blank_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (t, s) = resolve_token(dir.path(), Some("abc")).unwrap();
        assert_eq!((t.expose(), s), ("abc", TokenSource::Explicit));
        assert!(matches!(
            resolve_token(dir.path(), Some("  ")),
            Err(TokenError::Empty)
        ));
        assert!(!dir.path().join(TOKEN_FILE).exists());
    }

    #[test]
    fn comparison_rejects_prefixes_and_extensions() {
        let t = ApiToken::new("secret");
        assert!(t.matches(b"secret"));
        assert!(!t.matches(b"secre"));
        assert!(!t.matches(b"secrets"));
        assert!(!t.matches(b""));
        assert_eq!(format!("{t:?}"), "ApiToken(<redacted>)");
    }

    #[test]
    fn session_value_hides_the_token_and_follows_it() {
        let t = ApiToken::new("secret");
        let v = t.session_value();
        assert_eq!(v.len(), 64);
        assert!(!v.contains("secret"));
        assert!(t.matches_session(v.as_bytes()));
        assert!(!t.matches_session(b"secret"));
        assert!(!t.matches_session(&v.as_bytes()[..63]));
        assert!(!ApiToken::new("other").matches_session(v.as_bytes()));
    }
}
