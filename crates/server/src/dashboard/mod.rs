//! The operator dashboard: server-rendered pages (askama templates under
//! `templates/dashboard/`) with one small embedded script for live order
//! states. Everything is read from the ledger, the data dir or the
//! orchestrator on each request; the dashboard keeps no state of its own.
//!
//! Routes: `/` (runs, or the login form), `/dashboard/runs/{id}` (with its
//! live `…/events` stream), `/dashboard/orders/{id}`, `/dashboard/patrols`,
//! `/dashboard/milestones`, `/dashboard/appleseed`, `/dashboard/scheduler`,
//! `POST /dashboard/login|logout` and `/dashboard/assets/…`. They accept the
//! bearer token or the session cookie (see [`session`]).

pub mod appleseed;
pub mod assets;
pub mod feeds;
pub mod graph;
pub mod orders;
pub mod runs;
pub mod scheduler;
pub mod session;

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::route_table::Routes;

/// Where every dashboard page other than `/` lives.
pub const PREFIX: &str = "/dashboard";

pub fn routes() -> Routes {
    Routes::new()
        .get("/", runs::list)
        .get("/dashboard", runs::dashboard_home)
        .get("/dashboard/runs/{id}", runs::detail)
        .get("/dashboard/runs/{id}/events", runs::events)
        .get("/dashboard/orders/{id}", orders::detail)
        .get("/dashboard/patrols", feeds::patrols)
        .get("/dashboard/milestones", feeds::milestones)
        .get("/dashboard/appleseed", appleseed::page)
        .get("/dashboard/scheduler", scheduler::page)
        .post("/dashboard/login", session::login)
        .post("/dashboard/logout", session::logout)
        .get("/dashboard/assets/{name}", assets::asset)
        .get("/dashboard/{*rest}", unknown_page)
}

/// Any other dashboard path: a page, not the API's JSON 404.
#[utoipa::path(
    get,
    path = "/dashboard/{rest}",
    operation_id = "dashboard_unknown_page",
    tag = "dashboard",
    summary = "Any other dashboard path",
    params(("rest" = String, Path, description = "The rest of the path (may contain `/`).")),
    responses(
        (status = 404, description = "There is no such page.", content_type = "text/html", body = String),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn unknown_page() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        Tab::Runs,
        "There is no such dashboard page.",
    )
}

/// Whether `path` belongs to the dashboard (and so to its auth rules).
pub fn is_dashboard_path(path: &str) -> bool {
    path == "/"
        || path == PREFIX
        || path
            .strip_prefix(PREFIX)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Which navigation tab a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Runs,
    Patrols,
    Milestones,
    Appleseed,
    Scheduler,
}

/// The navigation bar, one entry per tab: (id, label, href, current).
pub struct Nav {
    pub items: Vec<(&'static str, &'static str, &'static str, bool)>,
}

impl Nav {
    pub fn new(current: Tab) -> Nav {
        let all = [
            (Tab::Runs, "runs", "Runs", "/"),
            (
                Tab::Patrols,
                "patrols",
                "Patrols & escalations",
                "/dashboard/patrols",
            ),
            (
                Tab::Milestones,
                "milestones",
                "Milestones",
                "/dashboard/milestones",
            ),
            (
                Tab::Appleseed,
                "appleseed",
                "Appleseed",
                "/dashboard/appleseed",
            ),
            (
                Tab::Scheduler,
                "scheduler",
                "Scheduler",
                "/dashboard/scheduler",
            ),
        ];
        Nav {
            items: all
                .into_iter()
                .map(|(t, id, label, href)| (id, label, href, t == current))
                .collect(),
        }
    }
}

/// A rendered page: HTML with headers that keep it private and confine
/// scripts and styles to the embedded assets.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Renders a template into a page; a template failure is a 500 page.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "dashboard template failed");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Garrison</title><p>The page could not be rendered.</p>"
                    .into(),
            )
        }
    }
}

/// The page for a failure (unknown id, ledger unavailable).
#[derive(Template)]
#[template(path = "dashboard/error.html")]
pub struct ErrorPage {
    pub nav: Nav,
    pub title: String,
    pub message: String,
}

pub fn error_page(status: StatusCode, tab: Tab, message: impl Into<String>) -> Response {
    let title = status.canonical_reason().unwrap_or("Error").to_string();
    render(
        status,
        &ErrorPage {
            nav: Nav::new(tab),
            title,
            message: message.into(),
        },
    )
}

/// A ledger failure as a page.
pub fn ledger_error(tab: Tab, e: garrison_ledger::LedgerError) -> Response {
    tracing::warn!(error = %e, "dashboard: ledger read failed");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        tab,
        format!("The ledger could not be read: {e}"),
    )
}

/// A JSON value as short display text: strings as they are, `null` as
/// empty, anything else compact JSON, cut to `max` characters.
pub fn text(v: Option<&Value>, max: usize) -> String {
    let s = match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    clip(&s, max)
}

/// `s` cut to at most `max` characters, with an ellipsis when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// An RFC 3339 timestamp shown as `YYYY-MM-DD HH:MM:SS` (UTC), or as given.
pub fn when(ts: &str) -> String {
    match (ts.get(..10), ts.get(11..19)) {
        (Some(d), Some(t)) if ts.as_bytes().get(10) == Some(&b'T') => format!("{d} {t}"),
        _ => ts.to_string(),
    }
}

/// The last 8 characters of an id, for compact labels (the leading ones of
/// time-ordered ids are shared by everything created in the same moment).
pub fn short(id: &str) -> String {
    let n = id.chars().count();
    id.chars().skip(n.saturating_sub(8)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashboard_paths() {
        for p in [
            "/",
            "/dashboard",
            "/dashboard/runs/x",
            "/dashboard/assets/app.js",
        ] {
            assert!(is_dashboard_path(p), "{p}");
        }
        for p in ["/dashboards", "/runs/x", "/api/events", "/health", ""] {
            assert!(!is_dashboard_path(p), "{p}");
        }
    }

    #[test]
    fn display_helpers() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
        assert_eq!(when("2026-01-02T03:04:05.678Z"), "2026-01-02 03:04:05");
        assert_eq!(when("soon"), "soon");
        assert_eq!(text(Some(&serde_json::json!({"a": 1})), 50), r#"{"a":1}"#);
        assert_eq!(text(None, 5), "");
        assert_eq!(short("0123456789"), "23456789");
        assert_eq!(short("abc"), "abc");
    }
}
