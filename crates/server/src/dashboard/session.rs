//! Dashboard sign-in: a form that takes the API token once and answers with
//! an `HttpOnly`, `SameSite=Strict` session cookie. The cookie holds a value
//! derived from the token ([`crate::ApiToken::session_value`]), never the
//! token, and it opens only the dashboard: the API routes still need the
//! bearer header.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "garrison_session";
/// How long a browser keeps the cookie.
const MAX_AGE_SECS: u64 = 12 * 3600;

/// Dashboard routes reachable without a session: the sign-in itself and the
/// static assets (no data in them).
pub fn is_public(method: &Method, path: &str) -> bool {
    (method == Method::POST && path == "/dashboard/login")
        || ((method == Method::GET || method == Method::HEAD)
            && path.starts_with("/dashboard/assets/"))
}

/// Whether the request carries the bearer token or a valid session cookie.
pub fn signed_in(state: &AppState, headers: &HeaderMap) -> bool {
    if let Some(t) = crate::auth::bearer(headers) {
        return state.token.matches(t);
    }
    session_cookie(headers).is_some_and(|v| state.token.matches_session(v.as_bytes()))
}

/// The value of our cookie in the `Cookie` headers, if present.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
}

/// Auth for dashboard paths: a signed-in request goes through; otherwise
/// `GET /` shows the login form, any other page redirects there, and what a
/// browser does not navigate to (the event stream, logout) gets a 401.
pub async fn gate(state: &AppState, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if is_public(req.method(), &path) || signed_in(state, req.headers()) {
        return next.run(req).await;
    }
    let is_get = req.method() == Method::GET || req.method() == Method::HEAD;
    match path.as_str() {
        "/" | "/dashboard" if is_get => login_page(StatusCode::OK, None),
        p if is_get && !p.ends_with("/events") => see_other("/"),
        _ => super::html(
            StatusCode::UNAUTHORIZED,
            "<!doctype html><title>Garrison</title><p>Sign in at <a href=\"/\">/</a>.</p>".into(),
        ),
    }
}

#[derive(Template)]
#[template(path = "dashboard/login.html")]
struct LoginPage {
    error: Option<String>,
}

fn login_page(status: StatusCode, error: Option<String>) -> Response {
    super::render(status, &LoginPage { error })
}

fn see_other(location: &'static str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static(location))],
    )
        .into_response()
}

/// `POST /dashboard/login` with the form field `token`.
#[utoipa::path(
    post,
    path = "/dashboard/login",
    operation_id = "dashboard_login",
    tag = "dashboard",
    summary = "Sign in (public)",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`token=<the API token>`."),
    responses(
        (status = 303, description = "Signed in: `Set-Cookie: garrison_session=…; HttpOnly; SameSite=Strict`, redirect to `/`."),
        (status = 401, description = "Not this server's token: the sign-in form with a message.", content_type = "text/html", body = String),
    ),
)]
pub async fn login(State(state): State<AppState>, body: Bytes) -> Response {
    let token = form_field(&body, "token").unwrap_or_default();
    if token.is_empty() || !state.token.matches(token.trim().as_bytes()) {
        return login_page(
            StatusCode::UNAUTHORIZED,
            Some("That is not this server's API token.".into()),
        );
    }
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={MAX_AGE_SECS}",
        state.token.session_value()
    );
    let mut resp = see_other("/");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /dashboard/logout`: forget the cookie, back to the login form.
#[utoipa::path(
    post,
    path = "/dashboard/logout",
    operation_id = "dashboard_logout",
    tag = "dashboard",
    summary = "Sign out",
    responses(
        (status = 303, description = "The session cookie cleared; redirect to `/`."),
    ),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn logout() -> Response {
    let mut resp = see_other("/");
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("garrison_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    resp
}

/// The first value of `name` in an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (url_decode(k)? == name).then(|| url_decode(v)).flatten()
        })
        .next()
}

/// Decodes `+` and `%XX`; `None` for a broken escape or non-UTF-8 result.
fn url_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_decode() {
        assert_eq!(
            form_field(b"token=a%2Bb+c", "token").as_deref(),
            Some("a+b c")
        );
        assert_eq!(form_field(b"x=1&token=t", "token").as_deref(), Some("t"));
        assert_eq!(form_field(b"x=1", "token"), None);
        assert_eq!(form_field(b"token=%zz", "token"), None);
        assert_eq!(form_field(b"token", "token").as_deref(), Some(""));
    }

    #[test]
    fn cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; garrison_session=abc ; b=2"),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }
}
